"""Dockerfile builds on real containers: RUN steps, the cache, failures, COPY/ADD, USER, ARG.

Each test builds into its own data root (busybox:latest bootstrapped there) and checks
that nothing is left: mounts, container snapshot dirs, holds, runtime state, cgroups.
"""

import gzip
import io
import os
import tarfile
import time

import pytest

from teachdock.image.build import BuildStepFailed

pytestmark = [
    pytest.mark.root,
    pytest.mark.usefixtures("leak_check"),
]

SIX_STEPS = """\
# the six steps of the issue
FROM busybox
ENV GREETING="hello from ENV"
WORKDIR /app
COPY message.txt ./
RUN echo "$GREETING" >> message.txt \\
    && echo built > /built
CMD ["cat", "/app/message.txt"]
"""


@pytest.fixture
def images(data_roots):
    return data_roots("overlay")


def snapshot_dirs(images) -> set[str]:
    return {p.name for p in (images.data_root / "snapshots").iterdir() if len(p.name) == 64}


def expected_snapshot_dirs(images) -> set[str]:
    from teachdock.image.digest import chain_id

    wanted = set()
    for image in images.list():
        wanted |= {chain_id(image.diff_ids[:i + 1])[7:] for i in range(len(image.diff_ids))}
    return wanted


# ---------------------------------------------------------------------------- build, run, cache

def test_six_step_build_runs_and_an_unchanged_rebuild_is_all_cache(images, context, new_id):
    ctx = context(Dockerfile=SIX_STEPS, **{"message.txt": "hello from COPY\n"})
    lines = []
    started = time.monotonic()
    first = images.build(ctx, tags=["six:1"], progress=lines.append)
    first_seconds = time.monotonic() - started

    assert [step.cached for step in first.steps] == [False] * 6
    assert lines[0] == "Step 1/6 : FROM busybox"
    assert "Step 5/6 : RUN echo \"$GREETING\" >> message.txt     && echo built > /built" in lines
    assert lines[-2:] == [f"Successfully built {first.image.short_id}", "Successfully tagged six:1"]
    history = first.image.history
    assert [bool(h.get("empty_layer")) for h in history[2:]] == [True, False, False, False, True]
    assert len(first.image.layers) == 4                    # busybox + WORKDIR + COPY + RUN

    result = images.run("six:1", container_id=new_id())
    assert (result.exit_code, result.stdout) == (0, "hello from COPY\nhello from ENV\n")
    assert images.run("six:1", ["cat", "/built"], container_id=new_id()).stdout == "built\n"

    lines.clear()
    started = time.monotonic()
    second = images.build(ctx, tags=["six:1"], progress=lines.append)
    rebuild_seconds = time.monotonic() - started
    assert [step.cached for step in second.steps] == [False] + [True] * 5   # FROM has nothing to cache
    assert lines.count(" ---> Using cache") == 5
    assert second.id == first.id                            # cached steps keep their times: same image
    print(f"\nfirst build {first_seconds * 1000:.0f} ms, unchanged rebuild {rebuild_seconds * 1000:.1f} ms")


def test_changing_a_copied_file_misses_the_cache_from_that_step_on(images, context):
    ctx = context(Dockerfile=SIX_STEPS, **{"message.txt": "one\n"})
    first = images.build(ctx, tags=["six"])
    (ctx / "message.txt").write_text("two\n")
    second = images.build(ctx, tags=["six"])
    assert [step.cached for step in second.steps] == [False, True, True, False, False, False]
    assert second.id != first.id
    assert images.run("six").stdout == "two\nhello from ENV\n"

    # only the times changed: the COPY key hashes contents and modes, so the cache holds
    os.utime(ctx / "message.txt", (1, 1))
    third = images.build(ctx, tags=["six"])
    assert [step.cached for step in third.steps] == [False] + [True] * 5
    # --no-cache runs everything again
    assert not any(step.cached for step in images.build(ctx, tags=["six"], no_cache=True).steps)


def test_a_failing_run_names_the_line_and_leaves_nothing_behind(images, context):
    ctx = context(Dockerfile="FROM busybox\nRUN echo step one > /one\nRUN echo oops; \\\n    exit 3\nCMD sh\n")
    before = [(i.id, i.names) for i in images.list()]
    with pytest.raises(BuildStepFailed) as caught:
        images.build(ctx, tags=["broken"])
    error = caught.value
    assert error.line == 3 and error.exit_code == 3
    assert str(error).startswith("Dockerfile:3: The command '/bin/sh -c echo oops;     exit 3' returned a "
                                 "non-zero code: 3")
    assert error.output == "oops"
    assert [(i.id, i.names) for i in images.list()] == before       # no half image
    assert snapshot_dirs(images) == expected_snapshot_dirs(images)  # no unpacked layers of the failed build
    assert not any((images.data_root / "containers").iterdir())

    # the successful step before it is cached: fix the Dockerfile and it is reused
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo step one > /one\nRUN echo fixed\nCMD sh\n")
    fixed = images.build(ctx, tags=["broken"])
    assert [step.cached for step in fixed.steps] == [False, True, False, False]


def test_a_command_that_cannot_start_is_a_clear_error(images, context):
    ctx = context(Dockerfile='FROM busybox\nRUN ["/no/such/program"]\n')
    with pytest.raises(BuildStepFailed) as caught:
        images.build(ctx)
    assert caught.value.line == 2
    assert "/no/such/program" in str(caught.value)
    assert not any((images.data_root / "containers").iterdir())


# ---------------------------------------------------------------------------- what RUN gets

def test_run_sees_env_workdir_user_and_build_args_and_no_network(images, context, new_id):
    ctx = context(Dockerfile="""\
FROM busybox
ARG WHO=world
ENV HOME_DIR=/srv
WORKDIR $HOME_DIR/data
RUN echo "hello $WHO" > hello && ls /sys/class/net > /net && grep CapEff /proc/self/status > /caps
USER nobody
RUN id -u > /tmp/uid && pwd > /tmp/pwd
""")
    result = images.build(ctx, tags=["env"], build_args={"WHO": "you"})
    run_step = result.image.history[-3]
    assert run_step["created_by"].startswith("|1 WHO=you /bin/sh -c echo")      # Docker's record of build args
    out = images.run("env", ["sh", "-c", "cat /srv/data/hello /net /tmp/uid /tmp/pwd /caps; id -u"],
                     container_id=new_id())
    assert out.exit_code == 0, out.stderr
    hello, net, uid, pwd, caps, user = out.stdout.splitlines()
    assert (hello, net, uid, pwd, user) == ("hello you", "lo", "65534", "/srv/data", "65534")
    assert caps.split()[1] == "00000000a80425fb"          # Docker's 14 default capabilities


def test_copy_honours_dockerignore_and_add_unpacks_archives(images, context, new_id):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("pkg/bin/tool", b"#!/bin/sh\necho tool\n"), ("pkg/README", b"readme\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    ctx = context(**{
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nADD pkg.tar.gz /opt/\nADD notes.txt /opt/notes.txt\n"
                      "COPY --chmod=600 --chown=nobody sub/ /sub\n",
        ".dockerignore": "*.log\nsecret/\n!secret/public\n",
        "pkg.tar.gz": gzip.compress(archive.getvalue()),
        "notes.txt": "notes\n",
        "debug.log": "noise\n",
        "secret__key": "s3cret\n",
        "secret__public": "shared\n",
        "sub__a.txt": "a\n",
        "sub__deeper__b.txt": "b\n",
    })
    images.build(ctx, tags=["copied"])
    out = images.run("copied", ["sh", "-c", "cd /ctx && find . | sort; /opt/pkg/bin/tool; cat /opt/notes.txt; "
                                            "ls -ln /sub/a.txt /sub/deeper/b.txt"], container_id=new_id())
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    listing = lines[:lines.index("tool")]
    assert "./debug.log" not in listing and "./secret/key" not in listing
    assert {"./secret/public", "./Dockerfile", "./notes.txt", "./sub/deeper/b.txt"} <= set(listing)
    assert lines[lines.index("tool") + 1] == "notes"
    for line in lines[-2:]:
        mode, _, uid, gid = line.split()[:4]
        assert (mode, uid, gid) == ("-rw-------", "65534", "65534")


def test_the_command_line_builds_and_shows_the_disk_used(images, context, monkeypatch, capsys, state_root):
    from teachdock.cli.store import main

    monkeypatch.setenv("TEACHDOCK_STATE_ROOT", str(state_root))
    ctx = context(Dockerfile=SIX_STEPS, **{"message.txt": "via the CLI\n"})
    root = ["--data-root", str(images.data_root)]
    assert main([*root, "build", "-t", "cli-built", "--build-arg", "UNUSED=1", str(ctx)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Step 1/6 : FROM busybox" and out[-1] == "Successfully tagged cli-built:latest"
    assert "[Warning] One or more build-args ['UNUSED'] were not consumed" in out
    assert main([*root, "build", "-t", "cli-built", str(ctx)]) == 0
    assert capsys.readouterr().out.count(" ---> Using cache") == 5
    assert main([*root, "df"]) == 0
    assert "on disk:" in capsys.readouterr().out
    assert images.run("cli-built").stdout == "via the CLI\nhello from ENV\n"
