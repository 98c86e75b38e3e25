"""`teachdock store ...` (the image store, no daemon) as a learner types it: the installed console script in a subprocess.

(Not test_image_cli.py: tests/unit has that name already, and test files need unique names.)

Each test has its own data roots (``--data-root``) and its own runtime state root
(``TEACHDOCK_STATE_ROOT``, so the leak check sees any container state left behind), and
starts its own registry on 127.0.0.1, stopped by its PID. Progress bars are checked on a
pseudo-terminal; everywhere else the output is docker's plain one.
"""

import errno
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from teachdock import kernel
from teachdock.errors import TeachdockError
from teachdock.image import busybox
from teachdock.image.overlay import mount_points

from tests.support.registry import REGISTRY_BINARY, free_port, local_registry


TEACHDOCK = Path(sys.executable).parent / "teachdock"

pytestmark = [
    pytest.mark.root,
    pytest.mark.usefixtures("leak_check"),
    pytest.mark.skipif(not TEACHDOCK.exists(), reason=f"the console script {TEACHDOCK} is not installed "
                                                      "(pip install -e . in the venv)"),
]

DOCKERFILE = """\
FROM busybox
COPY greeting.txt /greeting.txt
RUN echo "and from RUN" >> /greeting.txt
CMD ["cat", "/greeting.txt"]
"""


@pytest.fixture
def roots(scratch_dir):
    """``roots()`` -> a fresh data root; all are unmounted-checked and removed at the end."""
    made = []

    def make() -> Path:
        root = Path(tempfile.mkdtemp(prefix="cli-", dir=scratch_dir))
        made.append(root)
        return root

    yield make
    left = [p for p in mount_points() for root in made if p.startswith(f"{root}/")]
    for point in sorted(left, reverse=True):
        kernel.umount2(point, kernel.MNT_DETACH)
    for root in made:
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"mounts left behind: {left}"


@pytest.fixture
def td(state_root):
    """``td(data_root, "ls", ...)`` -> CompletedProcess of `teachdock store --data-root ROOT ...`."""

    def run(data_root, *args, input=None, stdin=None, check=True):
        done = subprocess.run([str(TEACHDOCK), "store", "--data-root", str(data_root), *map(str, args)],
                              input=input, stdin=stdin, capture_output=True, timeout=180,
                              env={**os.environ, "TEACHDOCK_STATE_ROOT": str(state_root), "TERM": "xterm"})
        if check:
            assert done.returncode == 0, f"teachdock store {' '.join(map(str, args))} failed: {done.stderr.decode()}"
        return done

    return run


@pytest.fixture
def based(roots, td):
    """A data root with busybox:latest, made by `teachdock store bootstrap busybox`."""
    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    root = roots()
    out = td(root, "bootstrap", "busybox").stdout.decode()
    assert "image busybox:latest: sha256:" in out
    return root


@pytest.fixture
def context(tmp_path):
    directory = tmp_path / "ctx"
    directory.mkdir()
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "greeting.txt").write_text("hello from COPY\n")
    return directory


@pytest.fixture
def registry(tmp_path):
    if REGISTRY_BINARY is None:
        pytest.skip("needs Debian's docker-registry (apt-get install docker-registry)")
    with local_registry(tmp_path) as running:
        yield running


def text(done) -> str:
    return done.stdout.decode()


def image_id(td, root, name) -> str:
    (details,) = json.loads(text(td(root, "inspect", name)))
    return details["Id"]


def on_a_terminal(argv: list[str], env: dict, timeout: float = 120) -> tuple[int, str]:
    """Run argv with stdout and stderr on a pseudo-terminal; (exit status, everything it wrote)."""
    main, child = pty.openpty()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([main], [], [], timeout)
            if not ready:
                raise AssertionError(f"{argv} wrote nothing for {timeout} s")
            try:
                data = os.read(main, 65536)
            except OSError as error:          # EIO: the child side is closed, everything is read
                if error.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(main)
        status = process.wait(timeout=timeout)
    return status, b"".join(chunks).decode(errors="replace")


# ---------------------------------------------------------------------------- build, look, save, load

def test_build_ls_history_save_load_tag_rm(based, roots, td, context, tmp_path):
    out = text(td(based, "build", "-t", "hello:1", context)).splitlines()
    assert out[0] == "Step 1/4 : FROM busybox"
    assert "and from RUN" not in out                       # echo's output went to the file, not the log
    assert out[-1] == "Successfully tagged hello:1"
    built = image_id(td, based, "hello:1")

    rows = [line.split() for line in text(td(based, "ls")).splitlines()]
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert ["hello", "1", built[7:19]] in [row[:3] for row in rows[1:]]
    assert ["busybox", "latest"] in [row[:2] for row in rows[1:]]

    history = text(td(based, "history", "--no-trunc", "hello:1")).splitlines()
    assert history[1].startswith(built) and 'CMD ["cat", "/greeting.txt"]' in history[1]
    assert 'echo "and from RUN" >> /greeting.txt' in history[2]
    assert "COPY file:" in history[3]

    archive = tmp_path / "hello.tar"
    done = td(based, "save", "-o", archive, "hello:1")
    assert (done.stdout, done.stderr) == (b"", b"")        # not a terminal: no progress, as docker
    assert archive.stat().st_size > 1_000_000

    elsewhere = roots()
    assert text(td(elsewhere, "load", "-i", archive)) == "Loaded image: hello:1\n"
    assert image_id(td, elsewhere, "hello:1") == built

    # the same through a pipe: save to stdout, load from stdin
    piped = roots()
    saved = td(based, "save", "hello:1", "busybox")
    assert text(td(piped, "load", input=saved.stdout)) == "Loaded image: hello:1\nLoaded image: busybox:latest\n"
    with open(archive, "rb") as stdin:
        assert text(td(roots(), "load", stdin=stdin)) == "Loaded image: hello:1\n"

    assert td(based, "tag", "hello:1", "other/name:2").stdout == b""
    assert image_id(td, based, "other/name:2") == built
    assert text(td(based, "rm", "other/name:2")) == "Untagged: other/name:2\n"
    removed = text(td(based, "rm", "hello:1")).splitlines()
    assert removed[:2] == ["Untagged: hello:1", f"Deleted: {built}"]
    assert text(td(based, "ls", "-q")).split() == [image_id(td, based, "busybox")[7:19]]


def test_an_unchanged_rebuild_uses_the_cache(based, td, context):
    first = text(td(based, "build", "-q", "-t", "hello", context)).strip()
    out = text(td(based, "build", "-t", "hello", context)).splitlines()
    assert out.count(" ---> Using cache") == 3
    assert out[-2] == f"Successfully built {first[7:19]}"


# ---------------------------------------------------------------------------- pull and push

def test_push_then_pull_into_another_data_root(based, roots, td, context, registry):
    name = f"{registry.host}/team/hello:1"
    td(based, "build", "-q", "-t", name, context)
    built = image_id(td, based, name)

    out = text(td(based, "push", name)).splitlines()
    assert out[0] == f"The push refers to repository [{registry.host}/team/hello]"
    assert sum(line.endswith(": Pushed") for line in out) == 4          # busybox + COPY + RUN layers, config
    assert out[-1].startswith("1: digest: sha256:") and " size: " in out[-1]
    digest = out[-1].split()[2]
    again = text(td(based, "push", name)).splitlines()
    assert sum(line.endswith(": Layer already exists") for line in again) == 4

    other = roots()
    out = text(td(other, "pull", name)).splitlines()
    assert out[0] == "1: Pulling from team/hello"
    assert sum(line.endswith(": Pull complete") for line in out) == 4
    assert out[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}", name]
    assert image_id(td, other, name) == built
    (details,) = json.loads(text(td(other, "inspect", name)))
    assert details["RepoDigests"] == [f"{registry.host}/team/hello@{digest}"]

    out = text(td(other, "pull", name)).splitlines()
    assert out[-2] == f"Status: Image is up to date for {name}"
    assert text(td(roots(), "pull", "-q", name)) == name + "\n"

    td(other, "rm", name)
    missing = td(other, "pull", f"{registry.host}/team/hello", check=False)   # no tag: latest, which was never pushed
    assert missing.returncode == 1
    assert text(missing).splitlines()[0] == "Using default tag: latest"
    assert missing.stderr.decode() == (f"teachdock: error: No such image on registry: {registry.host}/team/hello:latest"
                                       " (MANIFEST_UNKNOWN: manifest unknown)\n")
    assert text(td(other, "ls", "-q")) == ""                            # nothing half-pulled


def test_progress_bars_on_a_terminal(based, roots, td, context, registry, state_root):
    name = f"{registry.host}/team/bars:1"
    td(based, "build", "-q", "-t", name, context)
    env = {**os.environ, "TEACHDOCK_STATE_ROOT": str(state_root), "TERM": "xterm", "COLUMNS": "120"}

    status, screen = on_a_terminal([str(TEACHDOCK), "store", "--data-root", str(based), "push", name], env)
    assert status == 0, screen
    assert "Pushed" in screen and "━" in screen                        # rich's bar, one per layer
    status, screen = on_a_terminal([str(TEACHDOCK), "store", "--data-root", str(roots()), "pull", name], env)
    assert status == 0, screen
    assert "Pull complete" in screen and "━" in screen and f"Status: Downloaded newer image for {name}" in screen

    status, screen = on_a_terminal([str(TEACHDOCK), "store", "--data-root", str(based), "build", "--no-cache",
                                    "-t", "bars", str(context)], env)
    assert status == 0, screen
    assert "Step 3/4 : RUN" in screen and "steps" in screen           # the step bar below the log

    status, screen = on_a_terminal([str(TEACHDOCK), "store", "--data-root", str(based), "save", "bars"], env)
    assert status == 1
    assert screen.strip() == "teachdock: error: cowardly refusing to save to a terminal. Use the -o flag or redirect"


# ---------------------------------------------------------------------------- errors

def test_errors_are_one_line_with_exit_status_1(based, td, tmp_path, registry):
    cases = {
        ("pull", "Not/Valid:Name"): "teachdock: error: invalid reference format 'Not/Valid:Name': ",
        ("tag", "busybox", "bad name"): "teachdock: error: invalid reference format",
        ("inspect", "missing"): "teachdock: error: No such image: missing:latest",
        ("rm", "missing:2"): "teachdock: error: No such image: missing:2",
        ("history", "missing"): "teachdock: error: No such image: missing:latest",
        ("save", "-o", tmp_path / "x.tar", "missing"): "teachdock: error: No such image: missing:latest",
        ("push", f"{registry.host}/team/missing:1"): f"teachdock: error: No such image: {registry.host}/team/missing:1",
        ("load", "-i", tmp_path / "nothing.tar"): f"teachdock: error: archive {tmp_path / 'nothing.tar'} does not exist",
        ("save", "-o", tmp_path / "no" / "dir.tar", "busybox"): "teachdock: error: cannot write",
        ("build", "-t", "x", tmp_path / "no-context"): "teachdock: error: unable to prepare context",
    }
    for args, start in cases.items():
        done = td(based, *args, check=False)
        err = done.stderr.decode()
        assert done.returncode == 1, (args, err)
        assert err.startswith(start) and err.count("\n") == 1, (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "x.tar").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".x.tar")]

    (tmp_path / "junk.tar").write_bytes(b"this is not a tar archive" * 100)
    done = td(based, "load", "-i", tmp_path / "junk.tar", check=False)
    assert done.returncode == 1 and done.stderr.decode().startswith("teachdock: error: ")

    unreachable = f"127.0.0.1:{free_port()}/team/x:1"
    done = td(based, "pull", unreachable, check=False)
    assert done.returncode == 1
    assert "connection refused" in done.stderr.decode() and done.stderr.decode().count("\n") == 1

    usage = td(based, "pull", check=False)                  # a usage error: argparse says how, exit status 2
    assert usage.returncode == 2 and b"usage: teachdock store pull" in usage.stderr
