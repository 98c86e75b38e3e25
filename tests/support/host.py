"""What the host can see of a container: its processes in /proc, the mount table, its cgroups,
and the pipes to its stdin and stdout.

Plain functions, shared by the integration tests' fixtures (tests/integration/conftest.py hands
them out as the ``host`` and ``finish`` fixtures) and by tests that import them directly::

    from tests.support.host import finish, proc_stat, wait_until
"""

from __future__ import annotations

import os
import select
import time

from teachdock.runtime import Container

CGROUP_ROOT = "/sys/fs/cgroup"


# --- the container's pipes ------------------------------------------------------------------------------
def read_line(fd: int, timeout: float = 10.0) -> str:
    """One line from a pipe, or AssertionError when none arrives in time (a hung container)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no line from the container within {timeout} s (got {data!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode().rstrip("\n")


def read_rest(fd: int) -> str:
    """Everything left on a pipe until the container closes it."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def finish(container: Container, timeout: float = 10.0) -> tuple[int, str]:
    """Close the container's stdin (so ``read x`` returns), wait; returns (exit code, rest of stdout)."""
    os.close(container.stdin)
    container.stdin = None
    code = container.wait(timeout)
    return code, read_rest(container.stdout)


# --- processes and mounts, as the host sees them ------------------------------------------------------
def proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state letter, parent pid, command name) of a host process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    name = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), name


def host_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def children_of(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, name) of the processes whose parent is ``pid``. Zombies included."""
    found = []
    for candidate in host_pids():
        info = proc_stat(candidate)
        if info and info[1] == pid:
            found.append((candidate, info[0], info[2]))
    return found


def descendants_of(pid: int) -> set[int]:
    parents = {}
    for candidate in host_pids():
        info = proc_stat(candidate)
        if info:
            parents[candidate] = info[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01):
    """Poll ``condition()`` until it returns something true; return that, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def mountinfo(pid: str | int = "self") -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return f.read().splitlines()


# --- cgroups ----------------------------------------------------------------------------------------------
def cgroup_dirs_named(prefix: str) -> list[str]:
    """Like ``find /sys/fs/cgroup -path '*teachdock*'``, narrowed to this test's container ids."""
    found = []
    for directory, subdirs, _files in os.walk(CGROUP_ROOT):
        for name in subdirs:
            path = os.path.join(directory, name)
            if "teachdock" in path and prefix in path:
                found.append(path)
    return found


def processes_in_cgroups_named(prefix: str) -> list[int]:
    found = []
    for pid in host_pids():
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if prefix in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found
