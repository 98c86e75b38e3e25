"""The Engine API's transport: HTTP/1.1 on a Unix socket, one thread per connection.

Built on the standard library (``socketserver`` + ``http.server``) so that a learner can
see every byte that matters. What dockerd does and ``http.server`` does not do by itself:

- keep-alive (``protocol_version = "HTTP/1.1"``): the docker CLI sends several requests
  on one connection;
- chunked *request* bodies (``docker build`` and ``docker load`` upload that way);
- streaming *responses*: ``Transfer-Encoding: chunked``, flushed as produced (pull
  progress, ``wait`` whose headers must arrive before the container exits, ``logs -f``);
- the connection hijack: ``101 UPGRADED``, then raw bytes both ways (``attach``, ``exec``);
- errors as ``{"message": ...}`` with ``Content-Type`` exactly ``application/json``
  (the CLI only parses it on an exact match).

And what a daemon facing strangers needs: a JSON body is refused past ``MAX_BODY`` (from its
Content-Length, before reading it; a chunked one when the limit is crossed), a client that
is slow to send its request is hung up (deadlines.py), and the TCP door speaks TLS and wants
a client certificate (tls.py).
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import socketserver
import sys
import tempfile
import traceback
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from teachdock import __version__
from teachdock.daemon.deadlines import Watchdog
from teachdock.daemon.tls import give_socket_to_group
from teachdock.errors import TeachdockError

MAX_BODY = 16 * 1024 * 1024  # a JSON body larger than this is a mistake or an attack (a create body is ~2 KiB)
HEADER_TIMEOUT = 60.0  # seconds for a request line and headers (and for each MiB of a body); dockerd: 5 min


class HTTPError(TeachdockError):
    """An error with an explicit HTTP status (400 for a bad request, 404 for an unknown route)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Request:
    """What a route handler gets: method, path (version prefix already stripped), query, body."""

    def __init__(self, handler: "Handler", method: str, path: str, query: dict[str, str], api_version: str | None):
        self.handler = handler
        self.method = method
        self.path = path
        self.query = query
        self.api_version = api_version
        self.headers = handler.headers
        self.body_check = None  # the router's check of the JSON body's field types (bodies.py)
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.handler.read_body()
        return self._body

    def json(self) -> dict:
        data = self.body()
        if not data.strip():
            return {}
        try:
            value = json.loads(data)
        except ValueError as error:
            raise HTTPError(400, f"invalid JSON in the request body: {error}") from None
        if not isinstance(value, dict):
            raise HTTPError(400, "the request body must be a JSON object")
        if self.body_check is not None:
            self.body_check(value)
        return value

    def body_to_file(self, directory, limit: int):
        """The body in an unlinked temporary file in ``directory``, positioned at 0 (uploads)."""
        spool = tempfile.TemporaryFile(dir=directory, prefix=".upload-")
        try:
            self.handler.copy_body(spool, limit)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def query_list(self, name: str) -> list[str]:
        """Every non-empty value of a repeated query parameter (``docker build -t a -t b`` sends
        ``t`` twice); ``query`` keeps only the last one."""
        values = parse_qs(urlsplit(self.handler.path).query, keep_blank_values=True).get(name, [])
        return [value for value in values if value]

    def filters(self) -> dict[str, list[str]]:
        """Docker's ``filters`` query: ``{"dangling":{"false":true}}`` (current clients) or the
        older ``{"dangling":["false"]}``, either way -> ``{"dangling": ["false"]}``."""
        try:
            raw = json.loads(self.query.get("filters") or "{}")
        except ValueError as error:
            raise HTTPError(400, f"filters is not valid JSON: {error}") from None
        if not isinstance(raw, dict):
            raise HTTPError(400, "filters must be a JSON object")
        filters = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                value = [item for item, on in value.items() if on]
            if not isinstance(value, list):
                raise HTTPError(400, f"filter {key!r}: give a list or an object of values")
            filters[key] = [str(item) for item in value]
        return filters

    def flag(self, name: str, default: bool = False) -> bool:
        """moby's BoolValue: "", 0, no, false, none are false; anything else is true."""
        if name not in self.query:
            return default
        return self.query[name].strip().lower() not in ("", "0", "no", "false", "none")

    def client_gone(self) -> bool:
        """True when the client has closed its connection (``docker run -d`` drops its ``wait``).

        A half-close (the CLI's CloseWrite on attach) also reads as end-of-file, so only
        use this where the client sends nothing more on the connection.
        """
        sock = self.handler.connection
        if hasattr(sock, "pending"):
            return _tls_client_gone(sock)
        if not select.select([sock], [], [], 0)[0]:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


def _tls_client_gone(sock) -> bool:
    """client_gone on TLS: peeking is not possible there; a read of what is waiting (nothing
    more is expected) tells a close (b"", or an error) from a partial record (want-read)."""
    import ssl  # noqa: PLC0415 - only a TLS connection gets here

    if not sock.pending() and not select.select([sock], [], [], 0)[0]:
        return False
    sock.settimeout(0)
    try:
        return sock.recv(1) == b""
    except ssl.SSLWantReadError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(None)


def _send_plain(sock, data: bytes) -> None:
    """Bytes on the TCP connection under a TLS socket (the plain socket's sendall)."""
    try:
        socket.socket.sendall(sock, data)
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    """One connection; ``handle_one_request`` runs once per request while keep-alive lasts."""

    protocol_version = "HTTP/1.1"
    server_version = f"Teachdock/{__version__}"
    sys_version = ""
    tls_failed = False

    def setup(self) -> None:
        """On the TLS door, the handshake first — here, in the connection's thread, under a
        deadline, so a client that never finishes it holds up nobody else."""
        if hasattr(self.request, "do_handshake"):
            watchdog = self.server.watchdog
            watchdog.arm(self.request, self.server.header_timeout)
            try:
                self.request.do_handshake()
            except OSError as error:  # ssl.SSLError is one: no client certificate, another CA, not TLS at all
                self.tls_failed = True
                reason = getattr(error, "reason", None) or error
                sys.stderr.write(f"teachdockd: TLS handshake with {self.client_address[0]} failed: {reason}\n")
                if reason == "HTTP_REQUEST":  # plain HTTP on the TLS door: say so in plain HTTP, as dockerd (Go) does
                    _send_plain(self.request, b"HTTP/1.0 400 Bad Request\r\n\r\n"
                                              b"Client sent an HTTP request to an HTTPS server.\n")
            finally:
                watchdog.disarm(self.request)
        super().setup()

    def handle(self) -> None:
        if not self.tls_failed:
            super().handle()

    def handle_one_request(self) -> None:
        """The wait for the next request line and its headers has a deadline (keep-alive idle
        time included); ``_dispatch`` lifts it once the headers are in."""
        self.server.watchdog.arm(self.connection, self.server.header_timeout)
        try:
            super().handle_one_request()
        finally:
            self.server.watchdog.disarm(self.connection)

    def version_string(self) -> str:
        return f"Docker/{__version__} (linux) teachdockd"  # the CLI reads the OS in parentheses

    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's name
        if self.server.verbose:
            sys.stderr.write(f"teachdockd: {format % args}\n")

    def send_error(self, code, message=None, explain=None) -> None:
        """Malformed requests (http.server's own parser rejects them): Docker's JSON error,
        never the stdlib's HTML page, and never an HTTP/0.9 answer without a status line."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"
        body = json.dumps({"message": message or self.responses.get(code, ("error",))[0]}).encode() + b"\n"
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- dispatch ------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self.server.watchdog.disarm(self.connection)
        self.response_started = False
        self._chunked = False
        self._body_read = False
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            path, api_version = self.server.router.strip_version(url.path)
            request = Request(self, self.command, path, query, api_version)
            self.server.router.dispatch(request)
        except (TeachdockError, OSError) as error:
            if isinstance(error, (BrokenPipeError, ConnectionResetError)):
                self.close_connection = True
                return
            self._fail(getattr(error, "status", 500), str(error))
        except Exception as error:  # noqa: BLE001 - a bug must not kill the connection thread silently
            traceback.print_exc()
            self._fail(500, f"internal error in teachdockd: {type(error).__name__}: {error}")
        finally:
            if not self._body_read:
                self.close_connection = True  # an unread body would be taken for the next request

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _dispatch

    def _fail(self, status: int, message: str) -> None:
        if self.response_started:  # too late for a status code: say it in the stream, then hang up
            if self._chunked:
                self.write_chunk(json.dumps({"errorDetail": {"message": message}, "error": message}).encode() + b"\n")
                self.end_chunks()
            self.close_connection = True
            return
        try:
            self.send_json(status, {"message": message})
        except OSError:  # the client is gone (or was hung up on): nobody to tell
            self.close_connection = True

    # --- request bodies ---------------------------------------------------------------------------------
    def read_body(self) -> bytes:
        """The whole request body, from Content-Length or chunked transfer encoding (≤ MAX_BODY)."""
        buffer = io.BytesIO()
        self.copy_body(buffer, MAX_BODY)
        return buffer.getvalue()

    def copy_body(self, destination, limit: int) -> int:
        """Copy the request body into ``destination`` (a file), a megabyte at a time, so that a
        large upload (``docker build``'s context, ``docker load``'s tar) never sits in memory."""
        self._body_read = True  # read once: an unread body would be taken for the next request
        try:
            return self._copy_body(destination, limit)
        except BaseException:
            self.close_connection = True  # the rest of the body is still on the wire
            raise
        finally:
            self.server.watchdog.disarm(self.connection)

    def _deadline(self) -> None:
        """Each megabyte (and each chunk header) of a body must come within the header timeout."""
        self.server.watchdog.arm(self.connection, self.server.header_timeout)

    def _copy_body(self, destination, limit: int) -> int:
        total = 0

        def copy(size: int) -> None:
            nonlocal total
            total += size
            if total > limit:
                raise HTTPError(413, f"request body larger than {limit} bytes: refused")
            while size:
                self._deadline()
                data = self.rfile.read(min(size, 1 << 20))
                if not data:
                    raise HTTPError(400, "the request body ended early (connection closed)")
                destination.write(data)
                size -= len(data)

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                self._deadline()
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                except ValueError:
                    raise HTTPError(400, "malformed chunked request body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return total
                copy(size)
                self.rfile.readline(1024)  # the CRLF after each chunk
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HTTPError(400, "Content-Length is not a number") from None
        if length < 0:
            raise HTTPError(400, "Content-Length is negative")
        copy(length)
        return total

    # --- responses ------------------------------------------------------------------------------------
    def _common_headers(self) -> None:
        self.send_header("Api-Version", self.server.router.api_version)
        self.send_header("Ostype", "linux")
        self.send_header("Docker-Experimental", "true" if self.server.router.experimental else "false")

    def send_bytes(self, status: int, body: bytes, content_type: str | None = "application/json",
                   headers: dict | None = None) -> None:
        if not self._body_read:
            self.read_body()  # so that keep-alive finds the next request, not this body's rest
        self.response_started = True
        self.send_response(status)
        self._common_headers()
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def send_file(self, status: int, source, size: int, content_type: str, headers: dict | None = None) -> None:
        """A body of ``size`` bytes read from the open file ``source``, a megabyte at a time."""
        if not self._body_read:
            self.read_body()
        self.response_started = True
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command != "HEAD":
            while chunk := source.read(1 << 20):
                self.wfile.write(chunk)

    def send_json(self, status: int, value) -> None:
        self.send_bytes(status, json.dumps(value).encode() + b"\n")

    def start_chunks(self, status: int = 200, content_type: str = "application/json") -> None:
        """Headers of a streamed response, flushed at once (``wait`` depends on that)."""
        if not self._body_read:
            self.read_body()
        self.response_started = True
        self._chunked = True
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def start_raw_stream(self, content_type: str) -> socket.socket:
        """A 200 whose body is raw bytes until the connection closes (attach without Upgrade)."""
        if not self._body_read:
            self.read_body()
        self.response_started = True
        self.close_connection = True
        self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        return self.connection

    def hijack(self, content_type: str) -> socket.socket:
        """Answer ``101 UPGRADED`` and hand back the raw socket (attach, exec start).

        The connection is not reused for HTTP afterwards; the handler closes it when done,
        which is how the client learns the stream has ended.
        """
        if not self._body_read:
            self.read_body()
        self.response_started = True
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: " + content_type.encode()
                         + b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        self.wfile.flush()
        return self.connection


class ChunkedTarWriter:
    """A write-only file that sends what it gets as HTTP chunks (``docker export``, ``docker
    save``); the 200 goes out with the first bytes, so an error found before them (an unknown
    image or container) is still an ordinary HTTP error."""

    def __init__(self, handler: "Handler"):
        self.handler = handler

    def write(self, data) -> int:
        if not self.handler.response_started:
            self.handler.start_chunks(200, "application/x-tar")
        self.handler.write_chunk(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _Server:
    """What both doors share: the router, the deadlines, the per-connection thread."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: 20 `docker run`s at once open ~60 connections (stdlib default: 5)

    def _setup_common(self, router, verbose: bool, header_timeout: float) -> None:
        self.router = router
        self.verbose = verbose
        self.header_timeout = header_timeout
        self.watchdog = Watchdog(on_expire=self._hung_up)

    def _hung_up(self, sock) -> None:
        if self.verbose:
            sys.stderr.write(f"teachdockd: hung up on a client that sent nothing for {self.header_timeout:g} s\n")

    def handle_error(self, request, client_address) -> None:
        """A connection that broke mid-way is the client's business; anything else is a bug."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        super().handle_error(request, client_address)


class UnixHTTPServer(_Server, socketserver.ThreadingUnixStreamServer):
    """A threading HTTP server on a Unix socket, mode 0660, group ``socket_gid`` (root's if None)."""

    allow_reuse_address = False

    def __init__(self, socket_path: str, router, *, verbose: bool = False, socket_gid: int | None = None,
                 header_timeout: float = HEADER_TIMEOUT):
        self._setup_common(router, verbose, header_timeout)
        self.socket_path = socket_path
        os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
        if os.path.exists(socket_path):
            _refuse_if_alive(socket_path)
            os.unlink(socket_path)
        old_umask = os.umask(0o117)  # the socket is born 0660: never a moment world-writable
        try:
            super().__init__(socket_path, Handler)
        finally:
            os.umask(old_umask)
        give_socket_to_group(socket_path, socket_gid)

    def server_close(self) -> None:
        super().server_close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass


class TCPHTTPServer(_Server, socketserver.ThreadingTCPServer):
    """The same API on a TCP port: with ``tls`` (an ssl.SSLContext that requires a client
    certificate, see tls.py), or plain with ``teachdockd --insecure-tcp`` on loopback only.

    Anyone who reaches this port and is let in is root on the machine (they can start a
    privileged container that mounts /).
    """

    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], router, *, verbose: bool = False, tls=None,
                 header_timeout: float = HEADER_TIMEOUT):
        self._setup_common(router, verbose, header_timeout)
        self.tls = tls
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def get_request(self):
        """Accept; on the TLS door wrap the socket, the handshake waits for the connection's
        own thread (Handler.setup) so that the accepting thread never blocks on a client."""
        sock, address = self.socket.accept()
        # No Nagle (Go's default, so dockerd's too): a response's headers and body leave as two
        # small writes, and the second would wait for the delayed ACK of the first (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


def parse_tcp_host(host: str) -> tuple[str, int]:
    """``tcp://127.0.0.1:2375`` / ``tcp://:2375`` (loopback) -> (address, port)."""
    rest = host[len("tcp://"):].rstrip("/")
    address, _, port = rest.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TeachdockError(f"{host}: give tcp://ADDRESS:PORT, e.g. tcp://127.0.0.1:2375")
    return address.strip("[]") or "127.0.0.1", int(port)


def _refuse_if_alive(socket_path: str) -> None:
    """A socket file left by a crash is replaced; one a live daemon answers on is not."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(socket_path)
    except OSError:
        return
    finally:
        probe.close()
    raise TeachdockError(f"another daemon is listening on {socket_path}: stop it, or give another -H unix://PATH")
