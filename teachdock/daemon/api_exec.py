"""Routes for exec: run a second program inside a running container (``docker exec``).

    POST /containers/{id}/exec   {"Cmd": [...], "AttachStdout": true, ...}  -> 201 {"Id": exec id}
    POST /exec/{id}/start        {"Detach": false}  -> 101, then the program's output as
                                 multiplexed frames; the connection closes once it exits
                                 {"Detach": true}   -> 200 at once, output discarded (exec -d)
    GET  /exec/{id}/json         -> {"Running": false, "ExitCode": 0, ...}: the CLI exits with it
    POST /exec/{id}/resize       -> 200 (no terminal to resize without -t)
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time

from teachdock.daemon import logs
from teachdock.daemon.api_containers import MULTIPLEXED, RAW, terminal_size
from teachdock.daemon.execs import close_quietly
from teachdock.errors import TeachdockError

OUTPUT_GRACE = 0.5  # seconds to keep draining after the program exits (a background child may still write)


def create(daemon, request, name: str) -> None:
    instance = daemon.execs.create(daemon.containers.get(name), request.json())
    request.handler.send_json(201, {"Id": instance.id})


def inspect(daemon, request, exec_id: str) -> None:
    request.handler.send_json(200, daemon.execs.get(exec_id).inspect())


def resize(daemon, request, exec_id: str) -> None:
    daemon.execs.resize(daemon.execs.get(exec_id), *terminal_size(request))
    request.handler.send_bytes(200, b"", None)


def start(daemon, request, exec_id: str) -> None:
    execs = daemon.execs
    instance = execs.get(exec_id)
    body = request.json()
    if body.get("Detach"):
        execs.start(instance, attached=False)
        request.handler.send_bytes(200, b"", None)
        return
    handler = request.handler
    tty = instance.config["Tty"]
    content_type = RAW if tty else MULTIPLEXED
    if request.headers.get("Upgrade", "").lower() == "tcp":
        sock = handler.hijack(content_type)
    else:
        sock = handler.start_raw_stream(content_type)
    try:
        execs.start(instance, attached=True)
    except TeachdockError as error:
        # Too late for an HTTP error: like dockerd, say it on the stream; ExitCode is 126.
        try:
            sock.sendall(logs.frame("stdout", f"OCI runtime exec failed: {error}\r\n".encode()))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return
    process = instance.process
    if tty:
        # A terminal: its master side is stdin and the one output stream, sent raw.
        process.stdin, process.stdout = os.dup(instance.tty_fd), instance.tty_fd
    if process.stdin is not None and instance.config["AttachStdin"]:
        threading.Thread(target=_copy_stdin, args=(handler.rfile, process), daemon=True,
                         name=f"exec-stdin-{exec_id[:12]}").start()
    try:
        _copy_output(sock, process, instance, raw=tty)
        instance.finished.wait()  # the exit code is known before the client sees end-of-stream
    finally:
        close_quietly(process.stdout)
        close_quietly(process.stderr)
        process.stdout = process.stderr = instance.tty_fd = None
        try:
            sock.shutdown(socket.SHUT_RDWR)  # also wakes the stdin thread
        except OSError:
            pass


def _copy_output(sock: socket.socket, process, instance, *, raw: bool = False) -> None:
    """Program stdout/stderr -> multiplexed frames, until both pipes end (or the program has
    exited and nothing came for OUTPUT_GRACE seconds: a background child may hold them)."""
    streams = {fd: name for fd, name in ((process.stdout, "stdout"), (process.stderr, "stderr")) if fd is not None}
    quiet_since = None
    while streams:
        readable = select.select(list(streams), [], [], 0.1)[0]
        if not readable:
            if instance.finished.is_set():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > OUTPUT_GRACE:
                    return
            continue
        quiet_since = None
        for fd in readable:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""  # EIO: a terminal whose last user has closed it
            if not data:
                del streams[fd]
                continue
            try:
                sock.sendall(data if raw else logs.frame(streams[fd], data))
            except OSError:
                return  # the client left; the program goes on, as with dockerd


def _copy_stdin(source, process) -> None:
    """Client -> program stdin until the client's half-close; then close stdin (end-of-file)."""
    try:
        while chunk := source.read1(65536):
            view = memoryview(chunk)
            while view:
                view = view[os.write(process.stdin, view):]
    except OSError:
        pass
    finally:
        fd, process.stdin = process.stdin, None
        close_quietly(fd)


def register(router) -> None:
    router.add("POST", "/containers/{name}/exec", create)
    router.add("POST", "/exec/{exec_id}/start", start)
    router.add("GET", "/exec/{exec_id}/json", inspect)
    router.add("POST", "/exec/{exec_id}/resize", resize)
