"""The real docker CLI's ``export`` and ``import`` against teachdockd, the cold move's round trips
checked byte for byte, and bad input — with dockerd as the oracle where it runs.

- export → import → run → export gives the very same tar, and the imported layer's diff_id is
  the sha256 of the exported file; import reads files, stdin and URLs (served on loopback);
- commit → save on one teachdockd → load on a second → save again gives the same archive, the
  same image id and layer digests, and the container runs there with the committed config;
- a malicious tar (absolute names, ``..``, device nodes, hardlinks out), a bad change, a bad
  name, another OS, an unknown container: a clear error, exit 1, and nothing left in the store;
- beside dockerd: the same tar imported into both gives the same diff_id and config, commit
  bakes the container's config into the image on both, and the errors say the same things.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading

import pytest

from tests.support.daemons import DOCKER, docker_cli, running_daemon
from tests.support.dockerd import dockerd_missing, running_dockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed (/usr/local/bin/docker or /usr/bin/docker): "
                                              "it is the client under test"),
]

RUN = ("run", "--network", "none")
MAKE_FILES = ("echo moved > /data.txt; mkdir -p /srv/a; echo inside > /srv/a/f; ln /srv/a/f /srv/a/hard; "
              "ln -s /data.txt /srv/link; chmod 4755 /srv/a/f; mkfifo /srv/pipe")


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()


def ok(result) -> str | bytes:
    assert result.returncode == 0, f"{result.args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sha256_of(path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def tree(path) -> dict[str, tuple]:
    """name -> (type, mode, uid, gid, size, content digest, link target, mtime) of a tar's entries."""
    entries = {}
    with tarfile.open(path) as tar:
        for member in tar:
            data = tar.extractfile(member).read() if member.isreg() else b""
            entries[member.name.rstrip("/")] = (member.type, member.mode, member.uid, member.gid, member.size,
                                                hashlib.sha256(data).hexdigest(), member.linkname, member.mtime)
    return entries


def store_files(daemon) -> set[str]:
    """Every file and directory of the daemon's image store and snapshots: a refused import adds none."""
    found = set()
    for top in ("images", "snapshots"):
        for directory, dirs, files in os.walk(daemon.data_root / top):
            found |= {os.path.join(directory, name) for name in dirs + files}
    return found


def malicious(path, *members) -> str:
    with tarfile.open(path, "w") as tar:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))
                continue
            info.type, info.linkname = kind, target or ""
            info.devmajor, info.devminor = (1, 3) if kind == tarfile.CHRTYPE else (0, 0)
            tar.addfile(info)
    return str(path)


@contextlib.contextmanager
def serving(directory):
    """An HTTP server on 127.0.0.1 (a free port) serving ``directory``: the daemon downloads from it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args):
            super().__init__(*args, directory=str(directory))

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- export → import, byte for byte ------------------------------------------------------------------
def test_export_import_run_export_gives_the_same_tar(docker, tmp_path):
    ok(docker(*RUN, "--name", "source", "busybox", "sh", "-c", MAKE_FILES))
    first, second = tmp_path / "first.tar", tmp_path / "second.tar"
    ok(docker("export", "-o", str(first), "source"))
    image_id = ok(docker("import", "-c", 'CMD ["cat", "/data.txt"]', str(first), "course/moved:v1")).strip()
    assert image_id.startswith("sha256:")
    assert ok(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", "course/moved:v1")).strip() == \
        f'["{sha256_of(first)}"]'                                 # the layer is the exported file as it was
    assert ok(docker(*RUN, "--name", "moved", "course/moved:v1")) == "moved\n"
    second.write_bytes(ok(docker("export", "moved", binary=True)))   # to stdout, redirected
    assert sha256_of(second) == sha256_of(first)
    entries = tree(first)
    assert entries["srv/a/hard"][0] == tarfile.LNKTYPE and entries["srv/a/f"][1] == 0o4755
    assert entries["srv/link"][6] == "/data.txt" and entries["srv/pipe"][0] == tarfile.FIFOTYPE
    assert "bin/busybox" in entries and not any(name.startswith("proc/") for name in entries)


def test_import_from_stdin_and_from_a_url_with_changes_and_a_message(docker, tmp_path):
    ok(docker(*RUN, "--name", "source", "busybox", "sh", "-c", MAKE_FILES))
    exported = tmp_path / "rootfs.tar"
    ok(docker("export", "-o", str(exported), "source"))
    with open(exported, "rb") as stdin:
        ok(docker("import", "-c", "ENV A=b", "-c", "WORKDIR /srv", "-m", "from stdin", "-", "course/stdin:v1",
                  stdin=stdin))
    shown = ok(docker("image", "inspect", "-f", "{{json .Config.Env}} {{.Config.WorkingDir}} {{.Comment}}",
                      "course/stdin:v1")).strip()
    assert shown == '["A=b"] /srv from stdin'
    assert ok(docker(*RUN, "--rm", "course/stdin:v1", "/bin/sh", "-c", "pwd; echo $A")) == "/srv\nb\n"
    with serving(tmp_path) as url:
        ok(docker("import", f"{url}/rootfs.tar", "course/url:v1"))
        history = ok(docker("history", "--format", "{{.Comment}}", "course/url:v1")).strip()
        assert history == f"Imported from {url}/rootfs.tar"
        missing = docker("import", f"{url}/not-there.tar", "course/url:v2")
    assert missing.returncode == 1 and "404" in missing.stderr
    assert ok(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", "course/url:v1")).strip() == \
        f'["{sha256_of(exported)}"]'
    assert docker("image", "inspect", "course/url:v2").returncode == 1


# --- commit → save → load into a second daemon ---------------------------------------------------------
def test_commit_save_load_into_a_second_daemon_keeps_every_digest(docker, tmp_path):
    ok(docker(*RUN, "--name", "source", "-e", "GREETING=moved", "-w", "/tmp", "busybox", "sh", "-c",
              'echo "$GREETING" > note; cat note'))
    ok(docker("commit", "source", "course/committed:v1"))
    first, again = tmp_path / "first.tar", tmp_path / "again.tar"
    ok(docker("save", "-o", str(first), "course/committed:v1"))
    inspect = "{{.Id}} {{json .RootFS.Layers}} {{json .Config.Cmd}} {{.Config.WorkingDir}}"
    on_a = ok(docker("image", "inspect", "-f", inspect, "course/committed:v1"))
    with running_daemon() as other:
        on_b = docker_cli(other.socket_path, tmp_path / "config-b")
        ok(on_b("load", "-i", str(first)))
        assert ok(on_b("image", "inspect", "-f", inspect, "course/committed:v1")) == on_a
        assert ok(on_b(*RUN, "--name", "moved", "course/committed:v1")) == "moved\n"   # the committed Cmd and -w
        ok(on_b("save", "-o", str(again), "course/committed:v1"))
        on_b("rm", "-f", "moved")
    assert sha256_of(again) == sha256_of(first)


# --- the docker SDK (docker-py) -------------------------------------------------------------------------
def test_the_docker_sdk_exports_and_imports(daemon):
    docker_sdk = pytest.importorskip("docker")
    sdk = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket_path}", timeout=60)
    try:
        container = sdk.containers.run("busybox", ["sh", "-c", "echo sdk > /sdk.txt"], name="sdk-source",
                                       network_mode="none", detach=True)
        container.wait()
        data = b"".join(container.export())
        assert tarfile.open(fileobj=io.BytesIO(data)).extractfile("sdk.txt").read() == b"sdk\n"
        answer = sdk.api.import_image_from_data(data, repository="course/sdk", tag="v1",
                                                changes=['CMD ["cat", "/sdk.txt"]'])
        assert json.loads(answer.splitlines()[-1])["status"].startswith("sha256:")
        image = sdk.images.get("course/sdk:v1")
        assert image.attrs["RootFS"]["Layers"] == ["sha256:" + hashlib.sha256(data).hexdigest()]
        assert sdk.containers.run("course/sdk:v1", network_mode="none", remove=True) == b"sdk\n"
        with pytest.raises(docker_sdk.errors.NotFound):
            b"".join(sdk.api.export("no-such-container"))   # the SDK raises when the stream is read
    finally:
        daemon.remove_all()
        sdk.close()


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("members, message", [
    ([("/etc/evil", "file", None)], "absolute path refused"),
    ([("../evil", "file", None)], "'..' path component refused"),
    ([("dev/null", tarfile.CHRTYPE, None)], "device nodes are refused"),
    ([("x", tarfile.LNKTYPE, "../../etc/passwd")], "'..' path component refused"),
], ids=["absolute", "dotdot", "device", "hardlink-out"])
def test_a_malicious_tar_is_refused_and_nothing_is_left(docker, daemon, tmp_path, members, message):
    before_files, before_images = store_files(daemon), ok(docker("images", "-q"))
    result = docker("import", malicious(tmp_path / "evil.tar", ("ok", "file", None), *members), "mal/evil:1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error response from daemon: Error processing tar file: ")
    assert message in result.stderr
    assert store_files(daemon) == before_files and ok(docker("images", "-q")) == before_images
    assert not os.path.exists("/etc/evil") and not os.path.exists(daemon.data_root.parent / "evil")


@pytest.mark.parametrize("args, message", [
    (("-c", "FROM busybox"), "FROM is not a valid change command"),
    (("-c", "RUN true"), "RUN is not a valid change command"),
    (("--platform", "windows/amd64"), "operating system is not supported"),
], ids=["from", "run", "windows"])
def test_bad_changes_and_platforms_are_refused(docker, daemon, tmp_path, args, message):
    before = store_files(daemon)
    result = docker("import", *args, malicious(tmp_path / "ok.tar", ("ok", "file", None)), "course/x:1")
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert store_files(daemon) == before


def test_bad_names_and_unknown_containers(docker, daemon, tmp_path):
    plain = malicious(tmp_path / "ok.tar", ("ok", "file", None))
    result = docker("import", plain, "UPPER:1")
    assert result.returncode == 1 and "invalid reference format" in result.stderr
    result = docker("export", "-o", str(tmp_path / "x.tar"), "no-such-container")
    assert result.returncode == 1 and "No such container: no-such-container" in result.stderr
    assert not (tmp_path / "x.tar").exists()


# --- beside dockerd ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dockerd(daemon):
    if dockerd_missing():
        pytest.skip(f"needs a private dockerd: {dockerd_missing()}")
    with running_dockerd(daemon.data_root) as process:
        yield process


@pytest.fixture
def both(docker, dockerd, tmp_path):
    """The same docker CLI command on teachdockd and on dockerd."""
    theirs = docker_cli(dockerd.socket_path, tmp_path / "dockerd-config")

    def run(*args, **options) -> dict:
        return {"teachdockd": docker(*args, **options), "dockerd": theirs(*args, **options)}

    yield run
    ids = dockerd.docker("ps", "-aq").stdout.split()
    if ids:
        dockerd.docker("rm", "-f", *ids)


def test_the_same_tar_imported_into_both_gives_the_same_layer_and_config(both, tmp_path):
    ok(both(*RUN, "--name", "source", "busybox", "sh", "-c", MAKE_FILES)["teachdockd"])
    exported = tmp_path / "rootfs.tar"
    exported.write_bytes(ok(both("export", "source", binary=True)["teachdockd"]))
    results = both("import", "-c", 'CMD ["sh"]', "-c", "ENV A=b", "-m", "moved", str(exported), "course/both:v1")
    for result in results.values():
        ok(result)
    shown = both("image", "inspect", "-f", "{{json .RootFS.Layers}} {{json .Config.Cmd}} {{json .Config.Env}} "
                                         "{{.Comment}} {{.Os}}", "course/both:v1")
    assert ok(shown["teachdockd"]) == ok(shown["dockerd"]) == \
        f'["{sha256_of(exported)}"] ["sh"] ["A=b"] moved linux\n'


def test_both_exports_hold_the_containers_files(both, tmp_path):
    results = both(*RUN, "--name", "source", "busybox", "sh", "-c", MAKE_FILES)
    exported = {}
    for result in results.values():
        ok(result)
    for name, result in both("export", "source", binary=True).items():
        path = tmp_path / f"{name}.tar"
        path.write_bytes(ok(result))
        exported[name] = tree(path)
    ours, theirs = exported["teachdockd"], exported["dockerd"]
    for name in ("data.txt", "srv/a/f", "srv/a/hard", "srv/link", "srv/pipe", "bin/busybox", "etc/passwd"):
        # type, mode, owner, size, content, link (Go's tar also writes the file type's bits into the mode field)
        assert ours[name][0] == theirs[name][0] and ours[name][1] == theirs[name][1] & 0o7777, name
        assert ours[name][2:7] == theirs[name][2:7], name
    # dockerd adds its init layer (.dockerenv, dev/console, empty etc/hosts...); teachdockd binds its files
    # over the image's at run time and adds nothing to the container's filesystem
    assert set(ours) - set(theirs) == set()
    assert {".dockerenv", "dev/console"} <= set(theirs) - set(ours)


def test_commit_bakes_the_containers_config_into_the_image_on_both(both):
    for result in both(*RUN, "--name", "cm", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c",
                       "echo x > /f").values():
        ok(result)
    for result in both("commit", "cm", "course/cm:v1").values():
        ok(result)
    shown = both("image", "inspect", "-f", "{{json .Config.Cmd}} {{.Config.WorkingDir}}", "course/cm:v1")
    plain = {name: ok(result).replace("\\u003e", ">") for name, result in shown.items()}  # the CLI may escape >
    assert plain["teachdockd"] == plain["dockerd"] == '["sh","-c","echo x > /f"] /tmp\n'
    # the same variables; dockerd puts the container's own before the image's (teachdockd: the image's first)
    env = both("image", "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", "course/cm:v1")
    assert sorted(ok(env["teachdockd"]).split()) == sorted(ok(env["dockerd"]).split())
    assert "FOO=bar" in ok(env["dockerd"]).split()


@pytest.mark.parametrize("args, words", [
    (("export", "no-such-container"), "No such container: no-such-container"),
    (("import", "-c", "FROM busybox", "PLAIN", "x:1"), "not a valid change command"),
    (("import", "PLAIN", "UPPER:1"), "invalid reference format"),
    (("import", "--platform", "windows/amd64", "PLAIN", "x:1"), "operating system is not supported"),
], ids=["unknown-container", "bad-change", "bad-name", "windows"])
def test_errors_say_what_dockerds_say(both, tmp_path, args, words):
    plain = malicious(tmp_path / "plain.tar", ("ok", "file", None))
    results = both(*[plain if arg == "PLAIN" else arg for arg in args])
    for name, result in results.items():
        assert result.returncode == 1, (name, result.stderr)
        assert words.lower() in result.stderr.lower(), (name, result.stderr)
