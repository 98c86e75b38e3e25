"""Process plumbing every runtime process shares: exit codes, reaping, start times, inherited fds.

The caller, the monitor, the container's init and ``td-exec`` each fork children and wait
for them; each must also let go of the file descriptors it inherited before it runs
someone else's program. These few functions do those things one way for all of them.
"""

from __future__ import annotations

import os
import resource
import time


def exit_code(wait_status: int) -> int:
    """A shell's view of how a process ended: its exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def wait_child(pid: int, timeout: float | None = None, what: str = "process") -> int:
    """Wait for our child ``pid`` to exit and return its exit code (128+N after signal N);
    TimeoutError if it still runs after ``timeout`` seconds (None: as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        if done:
            return exit_code(status)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} {pid} still running after {timeout} s")
        time.sleep(0.005)


def reap(pid: int) -> None:
    """Wait for our child ``pid``, so it does not stay a zombie; fine if it was reaped already."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def reap_until(pid: int) -> int:
    """A subreaper's loop (the monitor's, the restored container's monitor's): reap every child,
    adopted orphans too, until ``pid`` ends; its exit code (0 when no child is left first)."""
    while True:
        try:
            child, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if child == pid:
            return exit_code(wait_status)


def reap_if_our_child(pid: int) -> None:
    """A Container loaded by id in the process that created it: its monitor is our child,
    and a child nobody waits for stays a zombie. The container has stopped, so the monitor
    is about to exit: wait for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return  # gone already
    parent = int(data[data.rindex(b")") + 2:].split()[1])
    if parent == os.getpid():
        reap(pid)


def close_inherited_fds(keep, *, lowest: int = 3) -> None:
    """Close every fd from ``lowest`` up except those in ``keep``: a notebook kernel's or a
    daemon's sockets and other containers' pipes must not live on in a container (a stdin
    pipe would then never reach end-of-file)."""
    start = lowest
    for fd in sorted(set(keep)):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1
    os.closerange(start, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
