"""HTTP/1.1 to teachdockd, written out by hand on a socket (Unix or TCP).

Why not ``http.client``? Importing it costs ~20 ms (it pulls in the ``email`` package), and
``teachdock run --rm busybox true`` should take ~80 ms in all. What the Engine API needs
from HTTP is small and worth seeing once:

- a request is a line, headers, a blank line and maybe a body (``Content-Length``);
- a response body is ``Content-Length`` bytes, or chunks (``Transfer-Encoding: chunked``:
  hex size, CRLF, bytes, CRLF ... ``0``), or everything until the server closes;
- keep-alive: after a complete response the same connection takes the next request;
- the hijack (``attach``, ``exec start``): ``Upgrade: tcp`` in, ``101`` out, then the socket
  is a raw byte pipe both ways, carrying the multiplexed stream (8-byte frame headers).

On a TCP host with TLS (``TLSConfig``: the docker CLI's ``--tlsverify`` and its files) the
same bytes go through ``ssl``, imported only then: ``teachdock run`` on the Unix socket
never pays for it.
"""

from __future__ import annotations

import _socket as socket  # the C module: `socket.py` adds ~3 ms of imports and nothing we need
import json
import os
import struct
import time

from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError
from teachdock.paths import DEFAULT_HOST  # noqa: F401 - clients take it from here

USER_AGENT = "teachdock-client/0.1"


# --- errors --------------------------------------------------------------------------------------------
class DaemonUnavailable(TeachdockError):
    """Nothing answers on the daemon's socket (not started, crashed, or the wrong -H).

    ``nobody_listens``: True when the socket is missing or refuses connections, the one
    case where starting a daemon there helps (not, say, a permission problem)."""

    nobody_listens = False


class APIError(TeachdockError):
    """The daemon answered with an error: ``status`` and its ``{"message": ...}``."""

    def __init__(self, status: int, message: str, method: str = "", path: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class NotFoundError(APIError, NotFound):
    """404: no such container, image, network, volume, exec — or route (an older daemon)."""


class ImageNotFoundError(NotFoundError):
    """404 whose message says "No such image": ``run`` pulls and tries again, as docker does."""


class ConflictError(APIError, Conflict):
    """409: a name in use, a running container to remove, an image a container uses."""


class BadRequestError(APIError, InvalidConfig):
    """400: the daemon refused the arguments."""


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode for a URL (urllib.parse.quote, without importing urllib: ~2 ms)."""
    allowed = _UNRESERVED.union(safe.encode())
    return "".join(chr(byte) if byte in allowed else f"%{byte:02X}" for byte in str(text).encode())


def urlencode(items) -> str:
    return "&".join(f"{quote(key)}={quote(value)}" for key, value in items)


def api_error(status: int, body: bytes, method: str = "", path: str = "") -> APIError:
    """Docker's error body ``{"message": "..."}`` -> the matching APIError subclass."""
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or f"HTTP {status}"
    if status == 404:
        cls = ImageNotFoundError if "no such image" in message.lower() else NotFoundError
    else:
        cls = {409: ConflictError, 400: BadRequestError}.get(status, APIError)
    return cls(status, message, method, path)


# --- hosts ----------------------------------------------------------------------------------------------
def parse_host(host: str) -> tuple[str, object]:
    """``unix:///path`` -> ("unix", "/path"); ``tcp://127.0.0.1:2375`` -> ("tcp", ("127.0.0.1", 2375))."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if not path.startswith("/"):
            raise InvalidConfig(f"unix host needs an absolute path: unix:///path/to/sock, not {host!r}")
        return "unix", path
    if host.startswith("tcp://"):
        address = host[len("tcp://"):].rstrip("/")
        name, _, port = address.rpartition(":")
        if not name or not port.isdigit():
            raise InvalidConfig(f"tcp host needs an address and a port: tcp://127.0.0.1:2375, not {host!r}")
        return "tcp", (name.strip("[]"), int(port))
    raise InvalidConfig(f"unsupported host {host!r}: use unix:///path/to/teachdock.sock or tcp://HOST:PORT")


def unavailable(host: str, error: OSError) -> DaemonUnavailable:
    kind, where = parse_host(host)
    if kind == "unix":
        reason = "no such socket" if isinstance(error, FileNotFoundError) else error.strerror or str(error)
        how = (f"start one with `sudo teachdock daemon -H {host}` (or `teachdockd -H {host}`), "
               "or let the client start it (autostart)")
    else:
        reason = error.strerror or str(error)
        how = f"start one with `teachdockd -H {host}`"
    unavailable = DaemonUnavailable(f"cannot connect to teachdockd at {host} ({reason}). Is the daemon running? {how}")
    unavailable.nobody_listens = isinstance(error, (FileNotFoundError, ConnectionRefusedError))
    return unavailable


# --- TLS ------------------------------------------------------------------------------------------------
class TLSConfig:
    """TLS to a TCP host, as the docker CLI's flags say it.

    ``verify`` (``--tlsverify``): the daemon's certificate must be signed by ``ca`` and name
    the host; otherwise (``--tls``) it is not checked. ``cert``/``key``: this client's
    certificate, which a daemon started with ``--tlsverify`` requires. None: not sent.
    """

    def __init__(self, *, verify: bool = True, ca: str | None = None, cert: str | None = None,
                 key: str | None = None):
        if verify and not ca:
            raise InvalidConfig("--tlsverify needs the CA that signed the daemon's certificate (--tlscacert)")
        if bool(cert) != bool(key):
            raise InvalidConfig("give the client certificate and its key together (--tlscert and --tlskey)")
        self.verify, self.ca, self.cert, self.key = verify, ca, cert, key
        self._context = None

    def __repr__(self) -> str:
        return f"TLSConfig(verify={self.verify}, ca={self.ca!r}, cert={self.cert!r}, key={self.key!r})"

    def context(self):
        """The ssl.SSLContext, made once (loading the files is the slow part)."""
        if self._context is None:
            import ssl  # noqa: PLC0415 - only TLS pays for ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                if self.verify:
                    context.load_verify_locations(cafile=self.ca)
                else:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                if self.cert:
                    context.load_cert_chain(self.cert, self.key)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                raise InvalidConfig(f"cannot use the TLS files ({self!r}): {error}") from None
            self._context = context
        return self._context

    def wrap(self, sock, host: str, server_name: str):
        """The TLS handshake on a connected socket; a daemon we do not trust is refused here."""
        try:
            return self.context().wrap_socket(sock, server_hostname=server_name)
        except OSError as error:
            sock.close()
            raise DaemonUnavailable(f"TLS handshake with teachdockd at {host} failed: {error}") from None


# --- one connection -------------------------------------------------------------------------------------
class Response:
    """Status, headers (lower-case names) and the body, read whole unless ``stream=True``."""

    def __init__(self, status: int, reason: str, headers: dict, connection: "Connection"):
        self.status = status
        self.reason = reason
        self.headers = headers
        self._connection = connection
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self.iter_chunks())
        return self._body

    def json(self):
        return json.loads(self.body) if self.body.strip() else None

    def iter_chunks(self):
        """The body piece by piece, as the server flushes it (pull progress, logs -f, events)."""
        if self._body is not None:
            yield self._body
            return
        yield from self._connection.read_body(self)

    def iter_lines(self):
        """One JSON object per line: Docker's progress and event streams."""
        pending = b""
        for chunk in self.iter_chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        if pending.strip():
            yield json.loads(pending)

    def close(self) -> None:
        """Give up on the rest of the body (the connection cannot be reused then)."""
        self._connection.close()


class Connection:
    """One socket to the daemon and a read buffer; reusable after a complete response."""

    def __init__(self, host: str, timeout: float | None = None, tls: TLSConfig | None = None):
        self.host = host
        kind, where = parse_host(host)
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET6 if ":" in where[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(where)
        except OSError as error:
            self.sock.close()
            raise unavailable(host, error) from None
        if kind == "tcp":  # no Nagle: a request's head and body must not wait for a delayed ACK
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            if kind != "tcp":
                self.sock.close()
                raise InvalidConfig(f"TLS is for tcp:// hosts, not {host}")
            self.sock = tls.wrap(self.sock, host, where[0])
        self.buffer = b""
        self.reusable = True
        self.used = 0  # requests sent on it

    # -- sending
    def send_request(self, method: str, path: str, body=None, headers: dict | None = None) -> None:
        """``body``: bytes, or a file object with a known size (build contexts, image archives)."""
        lines = [f"{method} {path} HTTP/1.1", "Host: teachdock", f"User-Agent: {USER_AGENT}"]
        size = 0 if body is None else len(body) if isinstance(body, (bytes, bytearray)) else \
            os.fstat(body.fileno()).st_size - body.tell()
        if method in ("POST", "PUT") or body is not None:
            lines.append(f"Content-Length: {size}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.used += 1
        if body is None or isinstance(body, (bytes, bytearray)):
            self.sock.sendall(head + (body or b""))
        else:
            self.sock.sendall(head)
            while block := body.read(1 << 20):
                self.sock.sendall(block)

    # -- receiving
    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _read_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionResetError("the daemon closed the connection in the middle of a response")
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ConnectionResetError("the daemon closed the connection in the middle of a response")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_response(self, method: str) -> Response:
        status_line = self._read_line().decode("latin-1")
        _version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = {}
        while line := self._read_line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        response = Response(int(status), reason, headers, self)
        response.no_body = method == "HEAD" or response.status in (101, 204, 304)
        if headers.get("connection", "").lower() == "close":
            self.reusable = False
        return response

    def read_body(self, response: Response):
        if response.no_body:
            return
        headers = response.headers
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    while self._read_line():
                        pass  # trailers, then the blank line
                    return
                yield self._read_exact(size)
                self._read_exact(2)
        elif "content-length" in headers:
            left = int(headers["content-length"])
            while left:
                if not self.buffer and not self._fill():
                    raise ConnectionResetError("the daemon closed the connection in the middle of a response")
                data, self.buffer = self.buffer[:left], self.buffer[left:]
                left -= len(data)
                yield data
        else:  # the body ends when the server closes the connection
            self.reusable = False
            if self.buffer:
                yield self.buffer
                self.buffer = b""
            while data := self.sock.recv(65536):
                yield data

    def close(self) -> None:
        self.reusable = False
        try:
            self.sock.close()
        except OSError:
            pass


# --- the hijacked stream ---------------------------------------------------------------------------
STDIN, STDOUT, STDERR, SYSTEM_ERROR = 0, 1, 2, 3


class RawStream:
    """The socket after ``101 UPGRADED``: frames come out, stdin bytes go in."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.sock = connection.sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: the daemon reads end-of-file (stdin closed), output keeps coming.
        The plain socket's shutdown, also under TLS (whose own would end TLS both ways)."""
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            pass

    def frames(self):
        """(stream id, payload) until the daemon closes the socket: Docker's stdcopy format,
        an 8-byte header (stream id, 3 zero bytes, big-endian length) before each payload."""
        conn = self.connection
        while True:
            while len(conn.buffer) < 8:
                try:
                    more = conn._fill()
                except (ConnectionResetError, OSError):
                    more = False
                if not more:
                    return
            stream, length = struct.unpack(">BxxxI", conn.buffer[:8])
            if stream > SYSTEM_ERROR:
                raise TeachdockError(f"unrecognized stream id {stream} in the multiplexed stream")
            conn.buffer = conn.buffer[8:]
            try:
                payload = conn._read_exact(length)
            except (ConnectionResetError, OSError):
                return
            yield stream, payload

    def chunks(self):
        """Raw bytes until the daemon closes the socket: a container with a terminal (``-t``)
        has one stream, the terminal's, and no frames."""
        conn = self.connection
        if conn.buffer:
            data, conn.buffer = conn.buffer, b""
            yield data
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            yield data

    def close(self) -> None:
        self.connection.close()


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete (stream id, payload) frames at the start of a multiplexed body, and the
    bytes left over (a frame cut in two by the chunk boundary, completed by the next chunk)."""
    frames, offset = [], 0
    while offset + 8 <= len(data):
        stream, length = struct.unpack(">BxxxI", data[offset:offset + 8])
        if offset + 8 + length > len(data):
            break
        frames.append((stream, data[offset + 8:offset + 8 + length]))
        offset += 8 + length
    return frames, data[offset:]


class TraceEntry:
    """One request this client made: what, the answer's status, and how long until it was complete."""

    __slots__ = ("method", "path", "status", "seconds", "started")

    def __init__(self, method: str, path: str):
        self.method, self.path, self.status, self.seconds = method, path, None, None
        self.started = time.monotonic()

    def done(self, status: int | None = None) -> None:
        if status is not None:
            self.status = status
        self.seconds = time.monotonic() - self.started

    def __repr__(self) -> str:
        took = "…" if self.seconds is None else f"{self.seconds * 1000:.1f} ms"
        return f"TraceEntry({self.method} {self.path} -> {self.status}, {took})"
