"""A request tracer for the Engine API: a small proxy between a client and the daemon's socket.

``docker run`` is one command, but on the wire it is several HTTP requests. To see them, the
client talks to the tracer's socket instead of the daemon's; the tracer passes every byte on,
unchanged, in both directions, and records what went past:

    docker CLI ──► tracer.sock ──► teachdock.sock (teachdockd)
                   (records)

Each client connection gets a connection of its own to the daemon and two threads, one per
direction. A thread reads what arrives, notes it, and forwards it at once: a small HTTP parser notes
each request (method, path, headers, the start of the body) and each response (status, the
start of the body), with times. After a ``101 UPGRADED`` answer (``docker attach`` and the
attach of ``docker run``) the connection is no longer HTTP: both threads just pipe bytes and
count them. A half-close (the CLI closing its sending side) is passed on as a half-close.

    with ApiTracer("/run/teachdock/teachdock.sock") as tracer:
        subprocess.run(["docker", "run", "--rm", "busybox", "echo", "hi"], env=tracer.env())
    tracer.table()          # one row per API call
    tracer.plot()           # the same as a sequence diagram, in the order things happened

The tracer listens on a socket in a temporary directory of its own; ``close()`` (or the end
of the ``with`` block) stops its threads and removes the socket and the directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

from teachdock.errors import NotFound
from teachdock.lab.common.language import say
from teachdock.lab.client_and_daemon.trace_views import BODY_KEEP, TraceEntry, plot_trace, trace_table


# ------------------------------------------------------------------ the HTTP parser (one direction)


class _HttpStream:
    """Reads one direction of a connection as its bytes go past, and tells the tracer about
    message heads, body bytes and message ends. It never changes or holds back a byte."""

    def __init__(self, tracer: ApiTracer, connection: _Connection, is_response: bool):
        self.tracer, self.connection, self.is_response = tracer, connection, is_response
        self.buffer = b""
        self.state = "head"
        self.remaining = 0           # body bytes left (length framing) or bytes left in this chunk
        self.entry: TraceEntry | None = None

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        while self.buffer and self._step(now):
            pass

    def end(self, now: float) -> None:
        """The sender closed its side. A body read "until close" or a raw stream ends here; so
        does a body cut short (the CLI hangs up once it has read an error from a pull's stream).
        Requests still waiting for an answer will never get one (``docker run -d`` drops its
        wait): they end now too, without a status."""
        if self.entry is not None and self.state != "head":
            self._finish(now)
        if self.is_response:
            while (waiting := self.connection.answer_next()) is not None:
                waiting.finished = now

    def _step(self, now: float) -> bool:
        """Consume what the current state can; False when more bytes are needed."""
        if self.state == "head":
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            self._head(head, now)
            return True
        if self.state in ("length", "chunk-data"):
            piece, self.buffer = self.buffer[:self.remaining], self.buffer[self.remaining:]
            self._body(piece, now)
            self.remaining -= len(piece)
            if self.remaining == 0:
                if self.state == "length":
                    self._finish(now)
                else:
                    self.state = "chunk-end"
            return True
        if self.state in ("chunk-size", "chunk-end", "trailer"):
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return False
            line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            if self.state == "chunk-end":
                self.state = "chunk-size"
            elif self.state == "trailer":
                if not line:
                    self._finish(now)
            else:
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                self.remaining, self.state = size, ("chunk-data" if size else "trailer")
            return True
        # "until-close" and "raw": everything is body (or stream) until the sender closes
        piece, self.buffer = self.buffer, b""
        self._body(piece, now)
        return True

    def _head(self, head: str, now: float) -> None:
        start_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        lower = {name.lower(): value.lower() for name, value in headers.items()}
        if self.is_response:
            version, status, reason = (start_line.split(" ", 2) + ["", ""])[:3]
            status = int(status)
            if 100 <= status < 200 and status != 101:
                return                         # 100 Continue: the real answer follows
            self.entry = self.connection.answer_next()
            if self.entry is not None:
                self.entry.status, self.entry.reason = status, reason
                self.entry.response_headers, self.entry.answered = headers, now
            method = self.entry.method if self.entry is not None else "GET"
            if status == 101:
                if self.entry is not None:
                    self.entry.upgraded = True
                self.connection.upgraded = True
                self.state = "raw"
                return
            if method == "HEAD" or status in (204, 304):
                self._finish(now)
                return
        else:
            method, target, _version = (start_line.split(" ", 2) + ["", ""])[:3]
            self.entry = self.tracer._begin(self.connection, method, target, headers, now)
            self.connection.asked(self.entry)
        if "chunked" in lower.get("transfer-encoding", ""):
            self.state = "chunk-size"
        elif "content-length" in lower and int(lower["content-length"]) > 0:
            self.state, self.remaining = "length", int(lower["content-length"])
        elif self.is_response and "content-length" not in lower:
            self.state = "until-close"         # HTTP/1.0 style: the body ends when the connection does
        else:
            self._finish(now)
        if not self.is_response and "upgrade" in lower.get("connection", "") and self.state == "head":
            self.state = "raw"                 # after an upgrade request the client's bytes are the stream

    def _body(self, piece: bytes, now: float) -> None:
        if self.entry is None or not piece:
            return
        if self.is_response and self.entry.upgraded and self.entry.streamed is None:
            self.entry.streamed = now
        if self.is_response:
            keep = BODY_KEEP - len(self.entry.response_body)
            self.entry.response_body += piece[:max(keep, 0)]
            self.entry.response_bytes += len(piece)
        else:
            keep = BODY_KEEP - len(self.entry.request_body)
            self.entry.request_body += piece[:max(keep, 0)]
            self.entry.request_bytes += len(piece)

    def _finish(self, now: float) -> None:
        if self.is_response and self.entry is not None:
            self.entry.finished = now
        self.entry = None
        self.state = "head"


# ------------------------------------------------------------------ the proxy


class _Connection:
    """One client connection and its own connection to the daemon."""

    def __init__(self, number: int, client: socket.socket, daemon: socket.socket):
        self.number, self.client, self.daemon = number, client, daemon
        self.waiting: list[TraceEntry] = []      # requests sent, not yet answered, in order
        self.upgraded = False
        self.directions_done = 0
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def asked(self, entry: TraceEntry) -> None:
        with self.lock:
            self.waiting.append(entry)

    def answer_next(self) -> TraceEntry | None:
        with self.lock:
            return self.waiting.pop(0) if self.waiting else None

    def shut(self) -> None:
        for sock in (self.client, self.daemon):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _socket_path(host: str) -> str:
    return host[len("unix://"):] if host.startswith("unix://") else host


class ApiTracer:
    """A tracing proxy for a daemon's Unix socket; a context manager.

    ``upstream``: the daemon's socket (a path or ``unix://PATH``). The proxy listens on
    ``tracer.socket_path`` (``tracer.host`` is the ``unix://`` form for DOCKER_HOST).
    ``entries`` holds the calls seen so far, in the order their requests arrived.
    """

    def __init__(self, upstream: str, directory: str | os.PathLike | None = None):
        self.upstream = _socket_path(upstream)
        if not os.path.exists(self.upstream):
            raise NotFound(say("no daemon socket at {path}: start the daemon first (or check the path)",
                               path=self.upstream))
        self.directory = tempfile.mkdtemp(prefix="api-tracer-", dir=directory)
        self.socket_path = os.path.join(self.directory, "tracer.sock")
        self.entries: list[TraceEntry] = []
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._stopping = threading.Event()
        self._started = time.monotonic()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o660)
        self._listener.listen(64)
        self._listener.settimeout(0.1)       # so that the accept loop notices close() quickly
        self._accept_thread = threading.Thread(target=self._accept_loop, name="api-tracer", daemon=True)
        self._accept_thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def env(self, base: dict | None = None) -> dict:
        """An environment in which the docker CLI (and the docker SDK's from_env) talk to us."""
        env = dict(os.environ if base is None else base)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        return env

    def clear(self) -> None:
        """Forget the calls recorded so far (start a new trace)."""
        with self._lock:
            self.entries.clear()
            self._started = time.monotonic()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded call has its answer and every connection is closed: the
        client's last bytes may still be on their way through when the client exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = any(e.finished is None for e in self.entries) or any(
                    any(t.is_alive() for t in c.threads) for c in self._connections)
            if not busy:
                return True
            time.sleep(0.02)
        return False

    # ---- the proxy's threads

    def _accept_loop(self) -> None:
        number = 0
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                daemon.connect(self.upstream)
            except OSError:
                client.close()                  # the daemon is gone: the client sees a closed connection
                daemon.close()
                continue
            number += 1
            connection = _Connection(number, client, daemon)
            requests = _HttpStream(self, connection, is_response=False)
            responses = _HttpStream(self, connection, is_response=True)
            connection.threads = [
                threading.Thread(target=self._pump, args=(connection, client, daemon, requests), daemon=True),
                threading.Thread(target=self._pump, args=(connection, daemon, client, responses), daemon=True),
            ]
            with self._lock:
                self._connections = [c for c in self._connections if any(t.is_alive() for t in c.threads)]
                self._connections.append(connection)
            for thread in connection.threads:
                thread.start()

    def _pump(self, connection: _Connection, source: socket.socket, target: socket.socket,
              parser: _HttpStream) -> None:
        """Forward source -> target until end-of-file; pass the half-close on; close when both
        directions are done."""
        try:
            while True:
                data = source.recv(65536)
                now = time.monotonic() - self._started
                if not data:
                    break
                try:
                    parser.feed(data, now)      # first: a request is on record before its answer can come
                except (ValueError, IndexError):
                    parser.state = "raw"        # not HTTP we understand: keep forwarding, stop reading
                target.sendall(data)
        except OSError:
            pass
        parser.end(time.monotonic() - self._started)
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with connection.lock:
            connection.directions_done += 1
            done = connection.directions_done == 2
        if done:
            source.close()
            target.close()

    def _begin(self, connection: _Connection, method: str, target: str, headers: dict, now: float) -> TraceEntry:
        with self._lock:
            entry = TraceEntry(number=len(self.entries) + 1, connection=connection.number, method=method,
                               target=target, request_headers=headers, sent=now)
            self.entries.append(entry)
            return entry

    # ---- ending

    def close(self) -> None:
        """Stop accepting, cut open connections, join the threads, remove the socket."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._accept_thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.shut()
        for connection in connections:
            for thread in connection.threads:
                thread.join(timeout=5)
            for sock in (connection.client, connection.daemon):
                sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ApiTracer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- looking at the trace

    def calls(self) -> list[str]:
        """``["HEAD /_ping", "POST /containers/create", ...]`` in the order the requests came."""
        return [entry.call for entry in self.entries]

    def table(self, title: str = ""):
        return trace_table(self.entries, title)

    def plot(self, title: str | None = None, client: str = "docker CLI"):
        title = say("the API calls, in the order things happened") if title is None else title
        return plot_trace(self.entries, title, client=client)


def traced_env(tracer: ApiTracer) -> dict:
    """The environment for a traced docker CLI: our socket, no hints, the legacy builder."""
    env = tracer.env()
    env.update({"DOCKER_CLI_HINTS": "false", "DOCKER_BUILDKIT": "0"})
    env.pop("DOCKER_API_VERSION", None)
    return env


__all__ = ["ApiTracer", "traced_env"]
