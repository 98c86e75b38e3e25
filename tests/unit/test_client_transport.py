"""The client's hand-written HTTP/1.1 against a scripted fake daemon on a Unix socket (no root)."""

import json
import socket
import struct
import threading

import pytest

from teachdock.client import Client, DaemonUnavailable
from teachdock.client.transport import (APIError, ConflictError, ImageNotFoundError, NotFoundError, split_frames,
                                        quote, urlencode)


class FakeDaemon:
    """Accepts connections; for each request calls ``answer(method, path, headers, body) -> bytes``.
    Records (connection number, method, path) so tests can see keep-alive at work."""

    def __init__(self, path, answer):
        self.path = str(path)
        self.answer = answer
        self.seen = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn, number):
        reader = conn.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ")
                headers = {}
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", 0)))
                self.seen.append((number, method, path))
                conn.sendall(self.answer(method, path, headers, body))
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.server.close()


def response(status, body=b"", headers=(), chunked=False):
    head = [f"HTTP/1.1 {status} X", *headers]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@pytest.fixture
def fake(tmp_path):
    daemons = []

    def make(answer):
        daemon = FakeDaemon(tmp_path / "fake.sock", answer)
        daemons.append(daemon)
        return daemon, Client(f"unix://{daemon.path}", autostart=False)

    yield make
    for daemon in daemons:
        daemon.close()


def test_keep_alive_reuses_one_connection(fake):
    daemon, client = fake(lambda m, p, h, b: response(200, b'[{"Id": "abc"}]', ["Content-Type: application/json"]))
    assert client.containers() == [{"Id": "abc"}]
    assert client.containers(all=True) == [{"Id": "abc"}]
    assert [entry[0] for entry in daemon.seen] == [1, 1]
    assert daemon.seen[1][2] == "/v1.45/containers/json?all=1"
    assert [(t.method, t.path, t.status) for t in client.trace] == [
        ("GET", "/containers/json", 200), ("GET", "/containers/json?all=1", 200)]
    assert all(t.seconds is not None and t.seconds >= 0 for t in client.trace)


def test_chunked_json_lines_split_anywhere(fake):
    lines = [b'{"status": "Pulling', b' from library/busybox"}\n{"status": "Do', b'ne"}\n']
    daemon, client = fake(lambda m, p, h, b: response(200, lines, chunked=True))
    messages = client.pull("busybox")
    assert [m["status"] for m in messages] == ["Pulling from library/busybox", "Done"]
    assert daemon.seen[0][2] == "/v1.45/images/create?fromImage=busybox&tag=latest"


def test_error_in_the_middle_of_a_pull_stream(fake):
    body = [b'{"status": "Pulling"}\n', b'{"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}\n']
    _, client = fake(lambda m, p, h, b: response(200, body, chunked=True))
    with pytest.raises(APIError, match="manifest unknown"):
        client.pull("busybox")


@pytest.mark.parametrize("status, message, cls", [
    (404, "No such container: x", NotFoundError),
    (404, "No such image: busybox:latest", ImageNotFoundError),
    (409, "Conflict. The container name is in use", ConflictError),
    (500, "internal error", APIError),
])
def test_docker_json_errors_become_exceptions(fake, status, message, cls):
    body = json.dumps({"message": message}).encode()
    _, client = fake(lambda m, p, h, b: response(status, body, ["Content-Type: application/json"]))
    with pytest.raises(cls) as caught:
        client.inspect("x")
    assert caught.value.status == status and caught.value.message == message
    assert type(caught.value) is cls


def test_create_pulls_on_no_such_image_then_retries(fake):
    calls = []

    def answer(method, path, headers, body):
        calls.append(path)
        if path.startswith("/v1.45/containers/create") and len(calls) == 1:
            return response(404, b'{"message": "No such image: busybox:latest"}')
        if path.startswith("/v1.45/images/create"):
            return response(200, [b'{"status": "Downloaded"}\n'], chunked=True)
        return response(201, b'{"Id": "c0ffee", "Warnings": []}')

    _, client = fake(answer)
    assert client.create("busybox", ["true"]) == "c0ffee"
    assert [c.split("?")[0] for c in calls] == ["/v1.45/containers/create", "/v1.45/images/create",
                                                 "/v1.45/containers/create"]


def test_other_404_from_create_is_not_a_pull(fake):
    calls = []

    def answer(method, path, headers, body):
        calls.append(path)
        return response(404, b'{"message": "No such network: nope"}')

    _, client = fake(answer)
    with pytest.raises(NotFoundError, match="No such network"):
        client.create("busybox", ["true"], network="nope")
    assert len(calls) == 1


def test_create_body_is_dockers(fake):
    bodies = []

    def answer(method, path, headers, body):
        bodies.append((path, headers.get("content-type"), json.loads(body)))
        return response(201, b'{"Id": "c1"}')

    _, client = fake(answer)
    client.create("busybox", ["sh"], name="web", environment={"A": "1"}, memory="64m", cpus=0.5, pids_limit=20,
                  volumes=["v:/data"], remove=True, stdin_open=True, workdir="/tmp", user="1000")
    path, content_type, body = bodies[0]
    assert path == "/v1.45/containers/create?name=web" and content_type == "application/json"
    assert body["Env"] == ["A=1"] and body["Cmd"] == ["sh"] and body["WorkingDir"] == "/tmp"
    assert (body["OpenStdin"], body["StdinOnce"], body["AttachStdin"], body["Tty"]) == (True, True, True, False)
    assert body["HostConfig"] == {"AutoRemove": True, "NetworkMode": "default", "Memory": 64 << 20,
                                  "NanoCpus": 500_000_000, "PidsLimit": 20, "Binds": ["v:/data"]}


def test_dead_daemon_says_which_socket_and_how_to_start_one(tmp_path):
    host = f"unix://{tmp_path}/none.sock"
    client = Client(host, autostart=False)
    assert client.ping() is False
    with pytest.raises(DaemonUnavailable) as caught:
        client.containers()
    message = str(caught.value)
    assert host in message and "no such socket" in message and "teachdock daemon -H" in message


def test_refused_socket_file(tmp_path):
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: ECONNREFUSED
    with pytest.raises(DaemonUnavailable, match="refused"):
        Client(f"unix://{path}", autostart=False).info()


def test_tcp_host(tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        reader = conn.makefile("rb")
        while reader.readline() not in (b"\r\n", b""):
            pass
        conn.sendall(response(200, b'{"Version": "9"}'))
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert Client(f"tcp://127.0.0.1:{port}").version() == {"Version": "9"}
    finally:
        thread.join(5)
        server.close()


def test_split_frames_and_quote():
    frames = struct.pack(">BxxxI", 1, 3) + b"out" + struct.pack(">BxxxI", 2, 4) + b"err\n"
    assert split_frames(frames) == ([(1, b"out"), (2, b"err\n")], b"")
    assert split_frames(frames[:13]) == ([(1, b"out")], frames[11:13])  # a frame cut by a chunk boundary waits
    assert quote("library/busybox:1", safe="/:") == "library/busybox:1"
    assert quote("a b&c") == "a%20b%26c"
    assert urlencode([("names", "x:1"), ("names", "y")]) == "names=x%3A1&names=y"


def test_autostart_only_when_nobody_listens(tmp_path, monkeypatch):
    """A missing socket starts a daemon; a path that cannot be a socket (here: under a regular
    file, ENOTDIR; for a user, a permission problem) is not helped by starting one."""
    from teachdock.client import autostart

    started = []

    def fake_start(*args, **kwargs):
        started.append(args)
        raise DaemonUnavailable("fake start")

    monkeypatch.setattr(autostart, "start_daemon", fake_start)
    with pytest.raises(DaemonUnavailable, match="fake start"):
        Client(f"unix://{tmp_path}/missing.sock", autostart=True).info()
    assert len(started) == 1
    (tmp_path / "file").write_text("")
    with pytest.raises(DaemonUnavailable, match="Not a directory"):
        Client(f"unix://{tmp_path}/file/x.sock", autostart=True).info()
    assert len(started) == 1  # not tried
    with pytest.raises(DaemonUnavailable, match="no such socket"):
        Client(f"unix://{tmp_path}/missing.sock", autostart=False).info()
    assert len(started) == 1
