"""teachdock.lab.client_and_daemon.api_tracer against a scripted fake daemon on a Unix socket (no root, no
teachdockd): what the tracer records for keep-alive, chunked, held and upgraded answers, and
that it passes every byte on unchanged."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from teachdock.lab.client_and_daemon.api_tracer import ApiTracer
from teachdock.lab.client_and_daemon.trace_views import meaning, timeline, trace_rows, trace_table


class FakeDaemon:
    """Answers each connection with a script: ``script(conn)`` reads and writes raw bytes."""

    def __init__(self, path: str, script):
        self.path, self.script = path, script
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(8)
        self.threads = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn):
        with conn:
            self.script(conn)

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.accepting.join(5)
        for thread in self.threads:
            thread.join(5)


def read_head(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(1)
        if not piece:
            return data
        data += piece
    return data


def talk(path: str, *messages: bytes, half_close: bool = False) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        for message in messages:
            client.sendall(message)
        if half_close:
            client.shutdown(socket.SHUT_WR)
        answer = b""
        while piece := client.recv(65536):
            answer += piece
        return answer


@pytest.fixture
def fake(tmp_path):
    daemons = []

    def start(script):
        daemon = FakeDaemon(str(tmp_path / f"fake{len(daemons)}.sock"), script)
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.close()


def test_keep_alive_length_and_chunked(fake, tmp_path):
    def script(conn):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
        head = read_head(conn)
        assert head.startswith(b"POST /v1.45/containers/create")
        body = conn.recv(11)
        assert body == b'{"Image":1}'
        conn.sendall(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\n{\"Id\"\r\n4;ext=1\r\n: 1}\r\n0\r\n\r\n")
        read_head(conn)
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    daemon = fake(script)
    with ApiTracer(daemon.path, tmp_path) as tracer:
        answer = talk(tracer.socket_path, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n",
                      b"POST /v1.45/containers/create HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"Image\":1}",
                      b"POST /v1.45/containers/" + b"a" * 64 + b"/start HTTP/1.1\r\n\r\n", half_close=True)
        assert tracer.wait_idle(3)
    assert answer.count(b"HTTP/1.1") == 3 and answer.endswith(b"204 No Content\r\n\r\n")   # bytes unchanged
    ping, create, start = tracer.entries
    assert (ping.call, ping.status, ping.response_body) == ("GET /_ping", 200, b"OK")
    assert (create.call, create.status, create.request_body) == ("POST /containers/create", 201, b'{"Image":1}')
    assert create.response_body == b'{"Id": 1}' and create.response_bytes == 9
    assert (start.call, start.status, start.finished is not None) == ("POST /containers/{id}/start", 204, True)
    assert {entry.connection for entry in tracer.entries} == {1}
    assert "aaaaaaaaaaaa…/start" in trace_rows(tracer.entries)[2]["path"]
    assert "start it" in repr(trace_table(tracer.entries))


def test_upgrade_becomes_a_raw_stream_both_ways(fake, tmp_path):
    def script(conn):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        conn.sendall(b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n")
        stdin = b""
        while piece := conn.recv(100):       # the client's half-close arrives as end-of-file
            stdin += piece
        conn.sendall(b"\x01\x00\x00\x00\x00\x00\x00" + bytes([len(stdin)]) + stdin)

    daemon = fake(script)
    with ApiTracer(daemon.path, tmp_path) as tracer:
        answer = talk(tracer.socket_path, b"POST /v1.45/containers/x/attach?stdin=1 HTTP/1.1\r\n"
                      b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nHTTP/1.1 not a request\r\n\r\n", half_close=True)
        assert tracer.wait_idle(3)
    assert answer.endswith(b"\x1aHTTP/1.1 not a request\r\n\r\n")        # stdin echoed back, untouched
    (attach,) = tracer.entries                                              # the raw bytes were not parsed
    assert attach.upgraded and attach.status == 101 and attach.streamed is not None
    assert attach.response_body.startswith(b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n")
    assert [m["kind"] for m in timeline(tracer.entries)] == ["request", "response", "stream", "end"]
    assert meaning(attach).startswith("attach")


def test_a_held_answer_and_an_unanswered_request(fake, tmp_path):
    release = threading.Event()

    def script(conn):
        head = read_head(conn)
        if b"/wait" in head:
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            release.wait(5)
            conn.sendall(b"11\r\n{\"StatusCode\": 0}\r\n0\r\n\r\n")
        else:
            conn.recv(1)                     # never answers: waits for the client to hang up

    daemon = fake(script)
    with ApiTracer(daemon.path, tmp_path) as tracer:
        waiter = threading.Thread(target=talk, args=(tracer.socket_path, b"POST /v1.45/containers/x/wait HTTP/1.1\r\n\r\n"))
        waiter.start()
        talk(tracer.socket_path, b"POST /v1.45/containers/x/nothing HTTP/1.1\r\n\r\n", half_close=True)
        deadline = time.monotonic() + 5
        while not any(e.answered for e in tracer.entries if e.path.endswith("/wait")) and time.monotonic() < deadline:
            time.sleep(0.01)                 # the wait's headers have gone through; its body is held
        release.set()
        waiter.join(5)
        assert tracer.wait_idle(3)
    by_path = {entry.endpoint: entry for entry in tracer.entries}
    wait = by_path["/containers/x/wait"]
    assert wait.status == 200 and wait.response_body == b'{"StatusCode": 0}' and wait.finished > wait.answered
    unanswered = by_path["/containers/x/nothing"]
    assert unanswered.status is None and unanswered.finished is not None


def test_close_removes_the_socket_and_its_directory(fake, tmp_path):
    daemon = fake(lambda conn: None)
    tracer = ApiTracer(f"unix://{daemon.path}", tmp_path)
    path = tracer.socket_path
    tracer.close()
    tracer.close()                          # twice is harmless
    assert not (tmp_path / path).exists() and list(tmp_path.glob("api-tracer-*")) == []
