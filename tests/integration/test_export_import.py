"""``teachdock export``/``teachdock import`` as a user types them, and ``Client.export_container`` /
``Client.import_image`` from Python, against a real teachdockd: the round trip, stdin and URLs,
progress, events, and the errors (each leaving nothing behind)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from teachdock.client import Client
from teachdock.client.transport import APIError

pytestmark = [pytest.mark.root]


@pytest.fixture
def td(daemon, tmp_path):
    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_CONFIG": str(tmp_path / "cfg"),
           "TEACHDOCK_AUTOSTART": "0"}

    def run(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "teachdock.cli", *args], stdin=stdin, capture_output=True,
                              timeout=60, env=env)

    yield run
    daemon.remove_all()


@pytest.fixture
def client(daemon):
    with Client(f"unix://{daemon.socket_path}", autostart=False) as client:
        yield client
    daemon.remove_all()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_files(daemon) -> set[str]:
    found = set()
    for top in ("images", "snapshots"):
        for directory, dirs, files in os.walk(daemon.data_root / top):
            found |= {os.path.join(directory, name) for name in dirs + files}
    return found


@contextlib.contextmanager
def serving(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args):
            super().__init__(*args, directory=str(directory))

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_teachdock_export_and_import_round_trip(td, tmp_path):
    made = td("run", "--name", "source", "busybox", "sh", "-c", "echo kept > /kept.txt")
    assert made.returncode == 0, made.stderr
    exported = tmp_path / "source.tar"
    result = td("export", "-o", str(exported), "source")
    assert result.returncode == 0 and result.stdout == b"", result.stderr
    assert not (tmp_path / "source.tar.partial").exists()
    imported = td("import", "-c", 'CMD ["cat", "/kept.txt"]', "-m", "by teachdock", str(exported), "course/kept:v1")
    assert imported.returncode == 0, imported.stderr
    image_id = imported.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert td("run", "--rm", "course/kept:v1").stdout == b"kept\n"
    again = td("export", "source")                        # to stdout, not a terminal here
    assert again.returncode == 0 and digest(again.stdout) == digest(exported.read_bytes())
    with open(exported, "rb") as stdin:
        from_stdin = td("image", "import", "-", "course/kept:stdin", stdin=stdin)
    assert from_stdin.returncode == 0, from_stdin.stderr
    shown = json.loads(td("image", "inspect", "course/kept:stdin").stdout)[0]
    assert shown["RootFS"]["Layers"] == [digest(exported.read_bytes())] and shown["Comment"] == "Imported from -"


def test_teachdock_import_errors(td, daemon, tmp_path):
    missing = td("import", str(tmp_path / "nothing.tar"))
    assert missing.returncode != 0 and b"nothing.tar" in missing.stderr
    unknown = td("export", "-o", str(tmp_path / "x.tar"), "no-such-container")
    assert unknown.returncode == 1 and b"No such container" in unknown.stderr
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "x.tar.partial").exists()
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    before = store_files(daemon)
    refused = td("import", str(evil), "mal/x:1")
    assert refused.returncode == 1 and b"Error processing tar file" in refused.stderr and b"'..'" in refused.stderr
    assert store_files(daemon) == before


def test_client_export_and_import_from_python(client, daemon):
    client.run("busybox", ["sh", "-c", "echo py > /py.txt"], name="py")
    archive = io.BytesIO()
    size = client.export_container("py", archive)
    data = archive.getvalue()
    assert size == len(data) and tarfile.open(fileobj=io.BytesIO(data)).getmember("py.txt").size == 3
    seen = []
    since = time.time() - 1
    image_id = client.import_image(gzip.compress(data), "course/py", "v1", changes=["ENV WHO=py"],
                                   message="from python", progress=seen.append)
    assert seen == [{"status": image_id}]
    image = client.inspect_image("course/py:v1")
    assert image["Id"] == image_id and image["RootFS"]["Layers"] == [digest(data)]   # inflated: the plain tar's
    assert image["Config"]["Env"] == ["WHO=py"] and image["Comment"] == "from python"
    events = [(e["Type"], e["Action"]) for e in client.events(since=since, until=time.time() + 1)]
    assert ("container", "export") in events and ("image", "import") in events and ("image", "tag") in events
    with pytest.raises(ValueError):
        client.import_image(data, url="http://127.0.0.1:1/x.tar")


def test_client_import_from_a_url_reports_progress(client, daemon, tmp_path):
    client.run("busybox", ["true"], name="for-url")
    with open(tmp_path / "rootfs.tar", "wb") as out:
        client.export_container("for-url", out)
    seen = []
    with serving(tmp_path) as url:
        image_id = client.import_image(url=f"{url}/rootfs.tar", repository="course/url", progress=seen.append)
        with pytest.raises(APIError, match="404"):
            client.import_image(url=f"{url}/missing.tar")
    statuses = [message["status"] for message in seen]
    assert statuses[0] == f"Downloading from {url}/rootfs.tar" and statuses[-1] == image_id
    assert "Importing" in statuses
    assert client.inspect_image("course/url:latest")["Id"] == image_id
    before = store_files(daemon)
    with pytest.raises(APIError, match="only http:// and https://"):
        client.import_image(url="file:///etc/passwd")
    assert store_files(daemon) == before


def test_export_of_a_running_container_leaves_out_its_volumes_and_the_daemons_files(client, daemon):
    """As dockerd: the root filesystem only — not what is mounted over it (a volume, /etc/hostname)."""
    client.run("busybox", ["sh", "-c", "echo in-volume > /data/v.txt; echo in-rootfs > /r.txt; sleep 60"],
               name="busy", detach=True, volumes=["export-vol:/data"])
    deadline = time.monotonic() + 10
    while "r.txt" not in client.exec("busy", ["ls", "/"]).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    archive = io.BytesIO()
    client.export_container("busy", archive)
    archive.seek(0)
    with tarfile.open(fileobj=archive) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("r.txt").read() == b"in-rootfs\n"
        assert tar.extractfile("etc/hostname").read() != (client.inspect("busy")["Config"]["Hostname"] + "\n").encode()
    assert "data/v.txt" not in names and not any(name.startswith(("proc/", "sys/")) and name.count("/") > 1
                                                   for name in names)
    assert client.inspect("busy")["State"]["Running"]
    client.remove("busy", force=True)
    client.remove_volume("export-vol")
