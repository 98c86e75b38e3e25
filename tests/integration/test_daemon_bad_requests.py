"""Bad input on the API, all at once: every request below gets a 4xx with dockerd's kind of
message, slow and endless clients are hung up or cut off, memory stays bounded, and the
daemon goes on serving everybody else — then runs a normal container.

The daemon runs with ``--read-header-timeout 3`` so that the slow clients' fate is seen
within the test; the default is 60 s.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import threading
import time

import pytest

from teachdock.client import Client
from tests.support.daemons import DaemonProcess

pytestmark = [pytest.mark.root]

HEADER_TIMEOUT = 3
MiB = 1 << 20


@pytest.fixture(scope="module")
def daemon():
    process = DaemonProcess()
    process.bootstrap_busybox()
    process.extra_args = ["--read-header-timeout", str(HEADER_TIMEOUT)]
    try:
        process.start()
        yield process
    finally:
        process.remove_all()
        assert process.close() == []


def connect(daemon, timeout: float = 20) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(daemon.socket_path)
    return sock


def exchange(daemon, data: bytes) -> tuple[int, dict]:
    """Send raw bytes, read the answer to the end: (status, JSON body)."""
    with connect(daemon) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def post(path: str, body) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n").encode() + data


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def escaping_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        payload = b"escaped\n"
        member = tarfile.TarInfo("../../../../../../tmp/teachdock-escaped-by-archive")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    return buffer.getvalue()


def bad_requests(container: str, host_secret: str, api: str = "/v1.45/") -> list[tuple[str, bytes, int, str]]:
    """(what, the request, status, a piece of the message); ``api``: the version prefix to use
    (tests/compat sends the same to dockerd with its own)."""
    tar = escaping_tar()
    return [(what, request.replace(b"/v1.45/", api.encode()), status, message) for what, request, status, message in [
        ("malformed JSON", post("/v1.45/containers/create", b'{"Image": "busybox"'), 400, "invalid JSON"),
        ("an array body", post("/v1.45/containers/create", [1, 2]), 400, "must be a JSON object"),
        ("Image a number", post("/v1.45/containers/create", {"Image": 5}), 400, "Image must be a string"),
        ("Cmd a number", post("/v1.45/containers/create", {"Image": "busybox", "Cmd": 5}), 400, "Cmd must be"),
        ("ExposedPorts a list", post("/v1.45/containers/create", {"Image": "busybox", "ExposedPorts": ["80"]}), 400,
         "json: cannot unmarshal array into Go struct field Config.ExposedPorts"),
        ("Tty a string", post("/v1.45/containers/create", {"Image": "busybox", "Tty": "yes"}), 400,
         "cannot unmarshal string into Go struct field Config.Tty of type bool"),
        ("PortBindings a list", post("/v1.45/containers/create",
                                     {"Image": "busybox", "HostConfig": {"PortBindings": []}}), 400,
         "Go struct field Config.HostConfig.PortBindings"),
        ("volume Name a number", post("/v1.45/volumes/create", {"Name": 5}), 400,
         "cannot unmarshal number into Go struct field CreateOptions.Name of type string"),
        ("network IPAM a string", post("/v1.45/networks/create", {"Name": "n1", "IPAM": "x"}), 400,
         "Go struct field CreateRequest.IPAM"),
        ("connect Container a number", post("/v1.45/networks/bridge/connect", {"Container": 5}), 400,
         "Go struct field ConnectOptions.Container"),
        ("unknown route", get("/v1.45/no/such/route"), 404, "page not found"),
        ("version too new", get("/v9.99/version"), 400, "client version 9.99 is too new"),
        ("version too old", get("/v1.12/version"), 400, "client version 1.12 is too old"),
        ("container name with ../", post("/v1.45/containers/create?name=../evil", {"Image": "busybox"}), 400,
         "Invalid container name (../evil)"),
        ("container name with NUL", post("/v1.45/containers/create?name=a%00b", {"Image": "busybox"}), 400,
         "NUL byte"),
        ("volume name with ../", post("/v1.45/volumes/create", {"Name": "../evil"}), 400,
         "includes invalid characters for a local volume name"),
        ("network name with ../", post("/v1.45/networks/create", {"Name": "../evil"}), 400, "invalid network name"),
        ("NUL in a path", get("/v1.45/containers/a%00b/json"), 400, "NUL byte"),
        ("../ in a path", get("/v1.45/containers/..%2F..%2Fetc/json"), 404, "No such container: ../../etc"),
        ("tag with ../", post("/v1.45/images/busybox/tag?repo=../x&tag=1", b""), 400, "invalid reference format"),
        ("archive path relative", get(f"/v1.45/containers/{container}/archive?path=../../etc/passwd"), 400,
         "must be absolute"),
        ("archive path climbing out", get(f"/v1.45/containers/{container}/archive?path=/../../../..{host_secret}"),
         404, "Could not find the file"),
        ("archive path with NUL", get(f"/v1.45/containers/{container}/archive?path=/etc%00x"), 400, "NUL byte"),
        ("archive upload climbing out",
         f"PUT /v1.45/containers/{container}/archive?path=/tmp HTTP/1.1\r\nHost: x\r\nContent-Type: "
         f"application/x-tar\r\nContent-Length: {len(tar)}\r\nConnection: close\r\n\r\n".encode() + tar, 400, ".."),
        ("body of 500 MB", (b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 524288000\r\n\r\n{"), 413, "request body larger than"),
        ("a chunk of 1 TB", (b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"\r\n10000000000\r\n"), 413, "request body larger than"),
        ("bad chunk size", (b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\nzz\r\n"), 400, "malformed chunked"),
        ("Content-Length not a number", (b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Length: lots\r\n\r\n"), 400, "Content-Length is not a number"),
        ("a request line of 70 kB", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, ""),
        ("200 headers", b"GET /_ping HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(200)) + b"\r\n",
         431, "Too many headers"),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400, ""),
    ]]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class SlowClient(threading.Thread):
    """Sends a request one byte at a time, a byte every 0.5 s; notes when the daemon hangs up."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.sock = connect(daemon, timeout=30)
        self.hung_up_at = None

    def run(self):
        request = b"GET /v1.45/version HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"y" * 1000
        try:
            for byte in request:
                self.sock.send(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            pass
        self.hung_up_at = time.monotonic()
        self.sock.close()


class SlowBody(SlowClient):
    """Complete headers, then a body one byte every 0.5 s: the body has its deadline too."""

    def run(self):
        try:
            self.sock.sendall(b"POST /v1.45/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 1000\r\n\r\n")
            for _ in range(1000):
                self.sock.send(b" ")
                time.sleep(0.5)
        except OSError:
            pass
        self.hung_up_at = time.monotonic()
        self.sock.close()


class EndlessUpload(threading.Thread):
    """A chunked body to a JSON route that never ends: how much the daemon took before it stopped."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.sock = connect(daemon, timeout=30)
        self.sent = 0
        self.answer = b""

    def run(self):
        self.sock.sendall(b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n")
        block = b"%x\r\n%s\r\n" % (MiB, b" " * MiB)
        try:
            while self.sent < 200 * MiB:
                self.sock.sendall(block)
                self.sent += MiB
        except OSError:
            pass
        try:
            while chunk := self.sock.recv(65536):
                self.answer += chunk
        except OSError:
            pass
        self.sock.close()


def test_bad_requests_all_at_once_then_a_normal_container(daemon, tmp_path):
    host_secret = tmp_path / "only-on-the-host"
    host_secret.write_text("secret\n")
    container = daemon.create(["sleep", "60"], name="target")
    daemon.json("POST", f"/v1.45/containers/{container}/start", expect=204)
    rss_before = rss_kib(daemon.pid)

    slow = [SlowClient(daemon) for _ in range(16)] + [SlowBody(daemon) for _ in range(4)]
    uploads = [EndlessUpload(daemon) for _ in range(4)]
    for thread in slow + uploads:
        thread.start()
    pinged_at = None
    assert daemon.request("GET", "/_ping", timeout=10)[0] == 200  # served while 20 slow clients trickle
    pinged_at = time.monotonic()

    failures = []
    for what, request, status, message in bad_requests(container, str(host_secret)):
        got_status, body = exchange(daemon, request)
        if got_status != status or message not in body.get("message", ""):
            failures.append(f"{what}: {got_status} {body}")
        assert daemon.request("GET", "/_ping", timeout=10)[0] == 200, f"the daemon stopped answering after {what}"
    assert failures == []
    assert not os.path.exists("/tmp/teachdock-escaped-by-archive")

    for thread in uploads:
        thread.join(timeout=60)
        assert b" 413 " in thread.answer.split(b"\r\n")[0], thread.answer[:200]
        assert thread.sent < 64 * MiB  # cut off at the 16 MiB limit (plus what the socket buffers held)
    for thread in slow:
        thread.join(timeout=HEADER_TIMEOUT + 30)
        assert thread.hung_up_at is not None and thread.hung_up_at > pinged_at
    rss_after = rss_kib(daemon.pid)
    print(f"\nteachdockd RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after "
          f"(16 slow headers, 4 slow bodies, 4 endless uploads of {sum(t.sent for t in uploads) / MiB:.0f} MiB in all, "
          f"{len(bad_requests(container, ''))} bad requests)")
    assert rss_after - rss_before < 64 * 1024, "memory grew by more than 64 MiB"

    with Client(f"unix://{daemon.socket_path}", autostart=False) as client:
        assert client.run("busybox", ["echo", "still serving"], remove=True).stdout == "still serving\n"
    assert daemon.request("DELETE", f"/v1.45/containers/{container}?force=1")[0] == 204
