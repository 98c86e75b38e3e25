"""Container logs in Docker's json-file format: one writer process per container, readers in the daemon.

Why a separate writer process? A container's stdout and stderr are pipes. Someone must keep
reading them, or the program blocks once 64 KiB are buffered. If the daemon itself read
them, a daemon restart would close the pipes and the program would die of SIGPIPE. So each
started container gets a tiny writer (``python -m teachdock.daemon.logs``) in its own
session: it outlives the daemon, just as the container's monitor (the runtime's shim) does.
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
import sys
import time
from typing import Callable, Iterator

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


def spawn_writer(log_path, stdout_read: int, stderr_read: int = -1) -> int:
    """Start the writer for one container run; returns its pid (it is not our child for long).
    ``stderr_read`` is -1 for a container with a terminal: it has one output stream.

    The lock is taken *here*, before the writer exists, and handed over with the fd: a
    reader that looks right after ``start`` must never see an unlocked, unfinished log.
    """
    import subprocess  # noqa: PLC0415 - only the daemon needs it, not the writer

    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(log_fd, fcntl.LOCK_EX)
        writer = subprocess.Popen(
            [sys.executable, "-m", "teachdock.daemon.logs", str(log_fd), str(stdout_read), str(stderr_read)],
            pass_fds=[fd for fd in (log_fd, stdout_read, stderr_read) if fd >= 0], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.close(log_fd)  # the writer's copy keeps the lock
    return writer


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
                 poll_interval: float = 0.02) -> Iterator[dict]:
    """Entries of a json-file log, like ``docker logs [--tail N] [-f]``.

    ``from_end`` starts at the current end (what ``attach`` wants: only new output).
    With ``follow``, waits for more until ``still_running()`` is false and the writer has
    let go of the file; that is what makes ``docker logs -f`` and ``docker run`` end.
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
                time.sleep(poll_interval)


def main(argv=None) -> int:
    """``python -m teachdock.daemon.logs LOG_FD STDOUT_FD STDERR_FD``: the writer process."""
    log_fd, stdout_fd, stderr_fd = (int(arg) for arg in (argv or sys.argv[1:]))
    write_log(log_fd, stdout_fd, stderr_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
