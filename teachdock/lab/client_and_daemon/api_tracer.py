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

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html import escape

from teachdock.errors import NotFound
from teachdock.lab.common.views import TextAndHTML

#: How much of each body the tracer keeps: enough to read, not a whole image.
BODY_KEEP = 4096

_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")
_LONG_HEX = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass
class TraceEntry:
    """One API call: the request, the response, and when each happened (seconds since the
    tracer started)."""

    number: int
    connection: int
    method: str
    target: str                                  # as sent: "/v1.45/containers/create?name=x"
    request_headers: dict = field(default_factory=dict)
    request_body: bytes = b""                    # the first BODY_KEEP bytes
    request_bytes: int = 0                       # the whole body's size
    status: int | None = None
    reason: str = ""
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""                   # the first BODY_KEEP bytes (after 101: of the raw stream)
    response_bytes: int = 0
    sent: float = 0.0                            # the request's head arrived from the client
    answered: float | None = None                # the response's head arrived from the daemon
    finished: float | None = None                # the response's body ended (or the upgraded stream closed)
    streamed: float | None = None                # after 101: the first bytes of the raw stream arrived
    upgraded: bool = False                       # 101: the connection became a raw stream

    @property
    def path(self) -> str:
        """The target without the query."""
        return self.target.split("?", 1)[0]

    @property
    def endpoint(self) -> str:
        """The path as the API reference writes it: no ``/v1.45`` prefix, container ids as {id}."""
        path = _VERSION_PREFIX.sub("", self.path)
        return _LONG_HEX.sub("{id}", path)

    @property
    def call(self) -> str:
        """``POST /containers/create``: method and endpoint, the name of the call."""
        return f"{self.method} {self.endpoint}"

    @property
    def short_target(self) -> str:
        """The target as sent, with long ids cut to 12 hex digits: readable in a table."""
        return _LONG_HEX.sub(lambda m: m.group(0)[:12] + "…", self.target)

    @property
    def seconds(self) -> float | None:
        """From request to the end of the answer (None while it is still open)."""
        return None if self.finished is None else self.finished - self.sent

    @property
    def meaning(self) -> str:
        return meaning(self)


# ------------------------------------------------------------------ what each call does

_MEANINGS = [
    ("/_ping", "is a daemon there? (its API version is in the headers)"),
    ("/version", "the daemon's version"),
    ("/info", "facts about the daemon and its host"),
    ("/containers/create", "create the container from the image (nothing runs yet)"),
    ("/containers/{id}/attach", "attach to its stdout/stderr: the connection becomes a raw stream"),
    ("/containers/{id}/wait", "wait for it to exit: the answer is held until then"),
    ("/containers/{id}/start", "start it: now the process runs"),
    ("/containers/{id}/json", "inspect it"),
    ("/containers/{id}/logs", "read its log"),
    ("/containers/{id}/stop", "stop it (SIGTERM, then SIGKILL)"),
    ("/containers/{id}/kill", "send it a signal"),
    ("/containers/{id}/exec", "prepare a process to run inside it"),
    ("/containers/{id}/resize", "tell it the terminal size"),
    ("/containers/json", "list containers"),
    ("/images/create", "pull the image from a registry"),
    ("/images/json", "list images"),
    ("/events", "the event stream"),
    ("/exec/{id}/start", "run the exec'd process"),
]


def meaning(entry: TraceEntry) -> str:
    """What this call does in the life of a ``docker`` command, in a few words."""
    endpoint = re.sub(r"^/containers/[^/]+/", "/containers/{id}/", entry.endpoint)
    endpoint = re.sub(r"^/exec/[^/]+/", "/exec/{id}/", endpoint)
    if entry.method == "DELETE" and endpoint.startswith("/containers/"):
        return "remove the container"
    if endpoint.startswith("/images/") and endpoint.endswith("/json"):
        return "inspect the image"
    for path, text in _MEANINGS:
        if endpoint == path:
            if path == "/containers/create" and entry.status == 404:
                return "create refused: no such image here"
            return text
    return ""


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
            raise NotFound(f"no daemon socket at {self.upstream}: start the daemon first (or check the path)")
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

    def table(self, title: str = "") -> TextAndHTML:
        return trace_table(self.entries, title)

    def plot(self, title: str = "the API calls, in the order things happened", client: str = "docker CLI"):
        return plot_trace(self.entries, title, client=client)


# ------------------------------------------------------------------ showing a trace


def short_body(data: bytes, limit: int = 80) -> str:
    """A body as one readable line: text as text, other bytes escaped, cut at ``limit``."""
    if not data:
        return ""
    text = data.decode("utf-8", "backslashreplace")
    if not text.isprintable():
        text = repr(data)[2:-1]
    text = " ".join(text.split()) if text.isprintable() else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def trace_rows(entries: list[TraceEntry]) -> list[dict]:
    """One row per call: step, connection, method, path, status, times in ms, bodies, meaning."""
    rows = []
    for entry in entries:
        rows.append({
            "step": entry.number,
            "conn": entry.connection,
            "method": entry.method,
            "path": entry.short_target,
            "status": "" if entry.status is None else entry.status,
            "sent ms": round(entry.sent * 1000, 1),
            "answer ms": "" if entry.answered is None else round((entry.answered - entry.sent) * 1000, 1),
            "open ms": "" if entry.seconds is None else round(entry.seconds * 1000, 1),
            "request body": short_body(entry.request_body, 60),
            "response": (f"raw stream, {entry.response_bytes} bytes: " if entry.upgraded else "")
            + short_body(entry.response_body, 60),
            "meaning": entry.meaning,
        })
    return rows


_STATUS_COLOURS = {1: "#e6eefb", 2: "#d9f2e6", 3: "#e6eefb", 4: "#fbdada", 5: "#fbdada"}


def trace_table(entries: list[TraceEntry], title: str = "") -> TextAndHTML:
    """The calls as a table (green 2xx, blue 101, red 4xx/5xx); a terminal gets plain text."""
    rows = trace_rows(entries)
    columns = ["step", "conn", "method", "path", "status", "sent ms", "answer ms", "open ms", "request body",
               "response", "meaning"]
    html_rows = []
    for row in rows:
        status = row["status"] or 0
        colour = _STATUS_COLOURS.get(status // 100, "#ffffff")
        cells = "".join(
            f"<td style='text-align:left'><code>{escape(str(row[c]))}</code></td>"
            if c in ("path", "request body", "response") else f"<td style='text-align:left'>{escape(str(row[c]))}</td>"
            for c in columns)
        html_rows.append(f"<tr style='background:{colour}'>{cells}</tr>")
    head = "".join(f"<th style='text-align:left'>{c}</th>" for c in columns)
    caption = f"<b>{escape(title)}</b>" if title else ""
    html = f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
    lines = [title] if title else []
    lines += [f"{r['step']:>2} c{r['conn']:<2} {r['method']:<6} {r['path'][:70]:<70} {r['status']!s:>3}  {r['meaning']}"
              for r in rows]
    return TextAndHTML(html, "\n".join(lines))


def timeline(entries: list[TraceEntry]) -> list[dict]:
    """Every moment of the trace in time order: a request sent, an answer begun, the first bytes
    on a raw stream, a held answer or a raw stream ended. Keys: time, entry, kind ("request" /
    "response" / "stream" / "end")."""
    moments = []
    for entry in entries:
        moments.append({"time": entry.sent, "entry": entry, "kind": "request"})
        if entry.answered is not None:
            moments.append({"time": entry.answered, "entry": entry, "kind": "response"})
        if entry.streamed is not None:
            moments.append({"time": entry.streamed, "entry": entry, "kind": "stream"})
        held = entry.finished is not None and entry.answered is not None and (
            entry.upgraded or entry.finished - entry.answered > 0.005)
        if held:
            moments.append({"time": entry.finished, "entry": entry, "kind": "end"})
    order = {"request": 0, "response": 1, "stream": 2, "end": 3}
    return sorted(moments, key=lambda m: (m["time"], m["entry"].number, order[m["kind"]]))


def _moment_label(moment: dict) -> str:
    entry, kind = moment["entry"], moment["kind"]
    if kind == "request":
        return f"{entry.method} {_VERSION_PREFIX.sub('', entry.short_target)}"
    if kind == "response":
        return f"{entry.status} {entry.reason}".strip() + (f"  ({entry.meaning})" if entry.meaning else "")
    if kind == "stream":
        return f"on the stream of step {entry.number}: {short_body(entry.response_body, 50)}"
    if entry.upgraded:
        return f"stream of step {entry.number} closed ({entry.response_bytes} bytes in all)"
    return f"answer to step {entry.number} ends: {short_body(entry.response_body, 50)}"


def plot_trace(entries: list[TraceEntry], title: str = "the API calls", client: str = "docker CLI"):
    """A sequence diagram: the client on the left, the daemon on the right, one row per moment
    in the order it happened; the step number on each request. A raw stream (``attach``) gets
    an arrow when its first bytes come and a dotted one when it closes; a held answer (``wait``)
    a dotted one when it ends."""
    from matplotlib.figure import Figure

    moments = timeline(entries)
    left, right = 1.5, 8.5
    top = len(moments) + 0.6
    fig = Figure(figsize=(11, 1.3 + 0.34 * len(moments)), layout="constrained")
    ax = fig.subplots()
    for name, x in ((client, left), ("teachdockd", right)):
        ax.plot([x, x], [0, top], color="#999999", linewidth=1, linestyle="--")
        ax.text(x, top + 0.2, name, ha="center", va="bottom", fontsize=10, weight="bold",
                bbox={"boxstyle": "round", "facecolor": "#eeeeee", "edgecolor": "#999999"})
    for row, moment in enumerate(moments):
        y = top - 0.8 - row
        entry, kind = moment["entry"], moment["kind"]
        if kind == "request":
            start, end, colour, style = left, right, "#0072B2", "-"
            ax.text(left - 0.3, y, str(entry.number), ha="right", va="center", fontsize=8, color="#555555")
        else:
            start, end, style = right, left, {"response": "--", "stream": "-"}.get(kind, ":")
            colour = "#8f1d1d" if (entry.status or 0) >= 400 else ("#6a3d9a" if entry.upgraded else "#009E73")
        ax.annotate("", xy=(end, y), xytext=(start, y),
                    arrowprops={"arrowstyle": "->", "color": colour, "linestyle": style})
        ax.text((left + right) / 2, y + 0.08, _moment_label(moment), ha="center", va="bottom", fontsize=7.5,
                color=colour, family="monospace")
        ax.text(right + 0.3, y, f"{moment['time'] * 1000:.0f} ms", ha="left", va="center", fontsize=7,
                color="#777777")
    ax.set_xlim(0, right + 1.6)
    ax.set_ylim(-0.5, top + 1.0)
    ax.axis("off")
    ax.set_title(title)
    return fig


def entry_details(entry: TraceEntry) -> str:
    """One call in full, as HTML: request line, headers and body; status, headers and body."""
    def headers(values: dict) -> str:
        return "".join(f"<div><code>{escape(k)}: {escape(v)}</code></div>" for k, v in values.items()) \
            or "<div><i>(none)</i></div>"

    def body(data: bytes, total: int, raw: bool = False) -> str:
        if not data:
            return "<div><i>(no body)</i></div>"
        text = data.decode("utf-8", "backslashreplace")
        if not raw:
            try:
                text = json.dumps(json.loads(text), indent=2)
            except ValueError:
                pass
        if raw or not all(c.isprintable() or c in "\n\r\t" for c in text):
            text = repr(data)[2:-1]          # a raw stream, or binary: show the bytes escaped
        more = f" (first {len(data):,} of {total:,} bytes)" if total > len(data) else f" ({total:,} bytes)"
        return (f"<div><i>body{more}</i></div><pre style='max-height:16em;overflow:auto;margin:2px 0'>"
                f"{escape(text)}</pre>")

    status = "(no answer yet)" if entry.status is None else f"{entry.status} {entry.reason}"
    return (f"<div style='font-size:90%'><b>{escape(entry.method)}</b> <code>{escape(entry.target)}</code>"
            f" <i>(connection {entry.connection})</i>"
            f"<div style='margin:4px 0 0 12px'><b>request headers</b>{headers(entry.request_headers)}"
            f"{body(entry.request_body, entry.request_bytes)}</div>"
            f"<div style='margin:4px 0 0 12px'><b>response: {escape(status)}</b>{headers(entry.response_headers)}"
            f"{body(entry.response_body, entry.response_bytes, raw=entry.upgraded)}</div>"
            f"<div style='margin:4px 0 0 12px'><i>{escape(entry.meaning)}</i></div></div>")


class TraceExplorer:
    """Type a docker command, run it through a tracer, and look at each of its calls in full.

    ``host``: the daemon (``unix://…``). ``explorer.run("ps -a")`` does what the button does,
    so a notebook (and its tests) can drive it too; ``explorer.entries`` is the last trace.
    """

    def __init__(self, host: str, directory: str | os.PathLike | None = None, command: str = "ps -a"):
        import ipywidgets as widgets

        self.host, self.directory = host, directory
        self.entries: list[TraceEntry] = []
        self.command = widgets.Text(value=command, description="docker", layout={"width": "60%"})
        self.button = widgets.Button(description="run through the tracer", button_style="primary")
        self.output = widgets.HTML()
        self.table = widgets.HTML()
        self.step_choice = widgets.Dropdown(description="call", layout={"width": "80%"})
        self.details = widgets.HTML()
        self.button.on_click(lambda _button: self.run(self.command.value))
        self.step_choice.observe(lambda _change: self._show(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.command, self.button]), self.output, self.table,
                                    self.step_choice, self.details])

    def run(self, command: str) -> list[TraceEntry]:
        import shlex
        import subprocess

        from teachdock.lab.client_and_daemon.daemon_lab import docker_cli  # noqa: PLC0415

        self.command.value = command
        binary = docker_cli()
        if binary is None:
            self.output.value = "<i>The docker CLI is not installed here (apt-get install docker.io).</i>"
            return []
        with ApiTracer(self.host, self.directory) as tracer:
            env = traced_env(tracer)
            try:
                done = subprocess.run([binary, *shlex.split(command)], env=env, capture_output=True, text=True,
                                      timeout=60, stdin=subprocess.DEVNULL)
                printed, code = done.stdout + done.stderr, done.returncode
            except subprocess.TimeoutExpired:
                printed, code = "(stopped after 60 s: a command that waits for input or runs for ever)", None
            tracer.wait_idle()
        self.entries = list(tracer.entries)
        self.output.value = (f"<b>$ docker {escape(command)}</b> → exit code {code}"
                             f"<pre style='max-height:10em;overflow:auto'>{escape(printed)}</pre>")
        self.table.value = trace_table(self.entries)._repr_html_()
        self.step_choice.options = [(f"{e.number}. {e.method} {_VERSION_PREFIX.sub('', e.short_target)[:70]} "
                                     f"→ {e.status}", e.number - 1) for e in self.entries]
        self.step_choice.value = 0 if self.entries else None
        self._show()
        return self.entries

    def _show(self) -> None:
        index = self.step_choice.value
        self.details.value = entry_details(self.entries[index]) if index is not None and index < len(self.entries) \
            else ""


def traced_env(tracer: ApiTracer) -> dict:
    """The environment for a traced docker CLI: our socket, no hints, the legacy builder."""
    env = tracer.env()
    env.update({"DOCKER_CLI_HINTS": "false", "DOCKER_BUILDKIT": "0"})
    env.pop("DOCKER_API_VERSION", None)
    return env


__all__ = ["ApiTracer", "BODY_KEEP", "TraceEntry", "TraceExplorer", "entry_details", "meaning", "plot_trace", "short_body", "timeline",
           "trace_rows", "trace_table", "traced_env"]
