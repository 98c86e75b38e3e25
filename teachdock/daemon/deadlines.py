"""Deadlines for slow clients: a connection that takes too long to say what it wants is hung up.

One thread per connection (server.py) is simple, and a client that sends a byte a minute
would hold its thread for ever. A socket timeout does not help: it bounds the wait for
*each* byte, not for the whole request line and headers. So each connection gets a
deadline while the daemon waits for it — for the request line and headers (which
includes an idle keep-alive connection, as Go's ReadHeaderTimeout in dockerd), for each
megabyte of a body, for the TLS handshake — and one watchdog thread shuts the socket
down when a deadline passes, which wakes the blocked read with end-of-file.

No deadline while the daemon is the slow side (a stream the client follows, a hijacked
``attach`` waiting for the user's typing).
"""

from __future__ import annotations

import socket
import threading
import time


class Watchdog:
    """``arm(sock, seconds)`` / ``disarm(sock)``; a socket still armed at its deadline is shut down."""

    def __init__(self, on_expire=None):
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._on_expire = on_expire  # called with the socket (the server logs it)
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[sock] = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
        self._wake.set()

    def disarm(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(sock, None)

    def armed(self) -> int:
        with self._lock:
            return len(self._deadlines)

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                expired = [sock for sock, deadline in self._deadlines.items() if deadline <= now]
                for sock in expired:
                    del self._deadlines[sock]
                upcoming = min(self._deadlines.values(), default=now + 3600)
            for sock in expired:
                hang_up(sock)
                if self._on_expire is not None:
                    self._on_expire(sock)
            self._wake.wait(max(0.0, min(upcoming - time.monotonic(), 1.0)))
            self._wake.clear()


def hang_up(sock: socket.socket) -> None:
    """Shut both directions of the connection down (the plain socket's shutdown: a TLS
    socket's own would first drop its TLS state under the thread that is reading)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
