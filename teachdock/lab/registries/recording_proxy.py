"""A recording proxy in front of a registry: what another client (skopeo, Docker's way) sends.

``push(..., trace=...)`` records teachdock's own requests from inside its client. To see how
*another* program talks to the same registry, the chapter puts this proxy between it and the
registry: it listens on 127.0.0.1, forwards each request to the registry with its headers
unchanged (``Host`` included, so the ``Location`` of an upload points back at the proxy), sends
the answer back, and appends one dict per exchange to ``entries`` in the same shape as
teachdock's trace, so ``trace_table`` and ``plot_sequence`` draw it the same way.

A request body sent with ``Transfer-Encoding: chunked`` (a stream whose length the
client does not know in advance) is read whole and forwarded with a ``Content-Length``; the entry keeps
the headers as the client sent them and counts the bytes in ``body_bytes``. Anything that is
not HTTP (a client first trying TLS) gets no answer and no entry.

``skopeo_copy(store, image, destination)`` runs skopeo (Debian's package: it speaks the same
registry protocol as Docker's client does when it pushes: ``POST`` an upload,
``PATCH`` the bytes, a closing ``PUT ?digest=``) to copy an image from a teachdock store, which
is an OCI layout on disk, to a registry over plain HTTP.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The headers an entry keeps (the same few teachdock's own trace keeps, plus Transfer-Encoding).
RECORDED_HEADERS = ("Accept", "Content-Type", "Content-Length", "Content-Range", "Range", "Location",
                    "Transfer-Encoding", "Docker-Content-Digest", "WWW-Authenticate", "Docker-Upload-UUID")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
               "expect"}   # the proxy answers a 100-continue itself and forwards the whole body
_DIGEST = re.compile(r"sha256(?::|%3A)([0-9a-f]{64})")


def read_chunked(stream) -> bytes:
    """The body of a chunked message: a hex size line, that many bytes, CRLF; size 0 ends it."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):   # trailers, then the empty line
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()


class RecordingProxy:
    """``with RecordingProxy("127.0.0.1:5000") as proxy:`` point a client at ``proxy.host``;
    ``proxy.entries`` holds the exchanges. Serves from a thread of this process."""

    def __init__(self, registry_host: str):
        self.registry_host = registry_host
        self.entries: list[dict] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def log_error(self, *args):       # a TLS hello is not a request: no entry, no noise
                pass

            def forward(self):
                proxy._forward(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.host = f"127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        sent_headers = dict(handler.headers.items())
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            body = read_chunked(handler.rfile)
        else:
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(self.registry_host, timeout=60)
        try:
            upstream.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            if body or handler.command in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            answer = b"" if handler.command == "HEAD" else response.read()
            handler.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(answer)
        finally:
            upstream.close()
        found = _DIGEST.search(handler.path) or _DIGEST.search(response.getheader("Docker-Content-Digest") or "")
        entry = {
            "method": handler.command, "url": f"http://{self.host}{handler.path}", "status": response.status,
            "reason": response.reason, "note": "",
            "auth": (sent_headers.get("Authorization") or "").split(" ")[0].lower(),
            "digest": f"sha256:{found.group(1)}" if found else "",
            "ms": round((time.monotonic() - started) * 1000, 1), "body_bytes": len(body),
            "user_agent": sent_headers.get("User-Agent", ""),
            "request": {k: v for k, v in sent_headers.items() if k in RECORDED_HEADERS},
            "response": {k: response.getheader(k) for k in RECORDED_HEADERS if response.getheader(k) is not None},
        }
        with self._lock:
            self.entries.append(entry)

    def close(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
            self._http.server_close()
            self._thread.join()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def skopeo_copy(store, image: str, destination: str, *, home: str | os.PathLike,
                timeout: float = 120) -> subprocess.CompletedProcess | None:
    """``skopeo copy oci:<store>:<image> docker://<destination>`` over plain HTTP; None when
    skopeo is not installed. ``home``: a directory of the chapter's, for skopeo's own files."""
    from teachdock.image.reference import parse_reference  # noqa: PLC0415

    binary = shutil.which("skopeo")
    if binary is None:
        return None
    source = f"oci:{store.root}:{parse_reference(image)}"   # the store names images in full
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}
    return subprocess.run([binary, "copy", "--dest-tls-verify=false", source, f"docker://{destination}"],
                          env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


__all__ = ["RECORDED_HEADERS", "RecordingProxy", "read_chunked", "skopeo_copy"]
