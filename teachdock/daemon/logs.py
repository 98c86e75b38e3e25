"""Container logs in Docker's json-file format: one writer process per container, readers in the daemon.

Why a separate writer process? A container's stdout and stderr are pipes. Someone must keep
reading them, or the program blocks once 64 KiB are buffered. If the daemon itself read
them, a daemon restart would close the pipes and the program would die of SIGPIPE. So each
started container gets a tiny writer (a forked child of the daemon) in its own session: it
outlives the daemon, just as the container's monitor (the runtime's shim) does.
Docker solves the same problem with containerd-shim holding FIFOs.

The file, ``<data root>/daemon/containers/<id>/<id>-json.log``, has one JSON object per line,
exactly as Docker's json-file driver writes it::

    {"log":"hi\\n","stream":"stdout","time":"2026-11-28T00:40:01.123456789Z"}

How does a reader know the writer is done (for ``docker logs -f`` and ``docker run``)?
The writer holds an exclusive ``flock`` on the log file for as long as it runs. When the
lock can be taken, every byte the container wrote is in the file.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import selectors
import struct
import time
from typing import Callable, Iterator

from teachdock.runtime.processes import close_inherited_fds, wait_child

STREAMS = {"stdout": 1, "stderr": 2}  # the stream ids of Docker's multiplexed framing


def timestamp(seconds: float | None = None) -> str:
    """RFC 3339 with nanoseconds in UTC, the format of Docker's ``time`` field."""
    now = time.time_ns() if seconds is None else int(seconds * 1e9)
    whole, nanos = divmod(now, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{nanos:09d}Z"


def frame(stream: str, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream (Tty=false): an 8-byte header, then the bytes.

    Header: stream id (1 stdout, 2 stderr), three zero bytes, payload length (big-endian u32).
    """
    return struct.pack(">BxxxI", STREAMS[stream], len(data)) + data


# --- the writer (runs as its own process) ---------------------------------------------------------
def write_log(log_fd: int, stdout_fd: int, stderr_fd: int) -> None:
    """Copy both pipes into the json-file until the container's last process closes them.

    With ``docker run -t`` there is one stream: ``stdout_fd`` is the terminal's master side
    and ``stderr_fd`` is -1. A terminal reports its end as EIO, not as end-of-file.
    """
    selector = selectors.DefaultSelector()
    names = {fd: name for fd, name in ((stdout_fd, "stdout"), (stderr_fd, "stderr")) if fd >= 0}
    for fd in names:
        selector.register(fd, selectors.EVENT_READ)
    open_pipes = len(names)
    while open_pipes:
        for key, _ in selector.select():
            try:
                chunk = os.read(key.fd, 65536)
            except OSError as error:
                if error.errno != errno.EIO:
                    raise
                chunk = b""  # the terminal's last user closed it
            if not chunk:
                selector.unregister(key.fd)
                os.close(key.fd)
                open_pipes -= 1
                continue
            now = timestamp()
            lines = chunk.splitlines(keepends=True)  # a partial last line is written as it is
            entries = [json.dumps({"log": line.decode(errors="replace"), "stream": names[key.fd], "time": now})
                       for line in lines]
            os.write(log_fd, ("\n".join(entries) + "\n").encode())
    os.close(log_fd)  # releases the flock: readers now know the log is complete


class Writer:
    """The writer process of one container run, as far as the daemon that forked it knows it."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to finish (it does once the container's last process closed its output)."""
        if self.returncode is None:
            self.returncode = wait_child(self.pid, timeout, "log writer")
        return self.returncode


def spawn_writer(log_path, stdout_read: int, stderr_read: int = -1) -> Writer:
    """Start the writer for one container run (a forked child in a session of its own).
    ``stderr_read`` is -1 for a container with a terminal: it has one output stream.

    Forked, not a new interpreter: ``python -m`` would cost ~20 ms of start-up on every
    ``docker run``, and the daemon could not report the exit of a short program (``true``)
    before the writer had started, read end-of-file and let go of the log. The child only
    runs :func:`write_log`, which needs nothing but modules already imported here.

    The lock is taken *here*, before the writer exists, and handed over with the fd: a
    reader that looks right after ``start`` must never see an unlocked, unfinished log.
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(log_fd, fcntl.LOCK_EX)
        pid = os.fork()
        if pid == 0:  # ---- the writer ----
            try:
                os.setsid()  # Ctrl-C in the daemon's terminal is not for us; we outlive the daemon
                # Close everything else, stdio too: other containers' pipes, the daemon's sockets.
                close_inherited_fds([fd for fd in (log_fd, stdout_read, stderr_read) if fd >= 0], lowest=0)
                write_log(log_fd, stdout_read, stderr_read)
                os._exit(0)
            except BaseException:  # noqa: BLE001 - a forked child must never return into the daemon
                os._exit(1)
    finally:
        os.close(log_fd)  # the writer's copy keeps the lock
    return Writer(pid)


def writer_running(log_file) -> bool:
    """True while a writer holds the log's lock (``log_file``: an open file of that log)."""
    try:
        fcntl.flock(log_file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(log_file.fileno(), fcntl.LOCK_UN)
    return False


# --- readers (in the daemon) ------------------------------------------------------------------------------
def _entries(log_file) -> Iterator[dict]:
    """Complete JSON lines from the current position; a half-written last line is left for later."""
    while True:
        position = log_file.tell()
        line = log_file.readline()
        if not line:
            return
        if not line.endswith(b"\n"):
            log_file.seek(position)
            return
        try:
            yield json.loads(line)
        except ValueError:
            continue  # a damaged line (a crash mid-write) is skipped, as Docker does


def read_entries(log_path, *, tail: int | None = None, follow: bool = False,
                 from_end: bool = False, still_running: Callable[[], bool] = lambda: False,
                 poll_interval: float = 0.02, pause: Callable[[float], object] = time.sleep) -> Iterator[dict]:
    """Entries of a json-file log, like ``docker logs [--tail N] [-f]``.

    ``from_end`` starts at the current end (what ``attach`` wants: only new output).
    With ``follow``, waits for more until ``still_running()`` is false and the writer has
    let go of the file; that is what makes ``docker logs -f`` and ``docker run`` end.
    ``pause(seconds)`` waits between looks; the daemon passes one that also wakes up the
    moment the container exits, so ``docker run true`` does not wait out a poll interval.
    """
    try:
        log_file = open(log_path, "rb")
    except FileNotFoundError:
        return
    with log_file:
        if from_end:
            log_file.seek(0, os.SEEK_END)
        elif tail is not None:
            entries = list(_entries(log_file))
            yield from entries[len(entries) - tail:] if tail else []
        yield from _entries(log_file)
        while follow:
            # Order matters: decide "finished" first, then read what is left.
            finished = not still_running() and not writer_running(log_file)
            got = False
            for entry in _entries(log_file):
                got = True
                yield entry
            if finished:
                return
            if not got:
                pause(poll_interval)
