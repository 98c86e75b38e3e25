"""Reading and writing cgroup files: every kernel refusal becomes a CgroupError that says why.

A cgroup is a directory; its limits and figures are small text files in it. The drivers
(v1.py, v2.py) do all their I/O through these helpers, which also know the races of a live
hierarchy: a parent removed by another container's destroy() while we create ours, a
process still leaving while we rmdir, a fork while we signal.
"""

from __future__ import annotations

import errno
import os
import time

from teachdock.errors import CgroupError, InvalidConfig

CGROUP_ROOT = "/sys/fs/cgroup"
#: How long freeze() waits for the kernel to stop every task (FREEZING -> FROZEN).
FREEZE_TIMEOUT = 10.0
#: How long destroy() waits for exiting processes to leave a cgroup before giving up.
RMDIR_RETRY_SECONDS = 1.0
#: errnos that mean "a parent cgroup is gone, or going": removed (ENOENT) or being removed
#: by another container's destroy() right now (v2 answers ENODEV then).
PARENT_GONE = (errno.ENOENT, errno.ENODEV)


def is_under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or below it (as strings: both are already real paths)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _why(path: str, value: str, err: int) -> str:
    name = os.path.basename(path)
    if err == errno.EBUSY and name.startswith("memory."):
        return ("the cgroup already uses more memory than that and the kernel could not free "
                "enough; raise the limit or stop some processes first")
    if err == errno.EBUSY and name == "cgroup.subtree_control":
        return ("this cgroup holds processes of its own, and cgroup v2 lets only cgroups without "
                "processes hand controllers to their children")
    if err == errno.EINVAL and name == "memory.memsw.limit_in_bytes":
        return "the memory+swap limit must be at least the memory limit"
    if err == errno.EINVAL and name == "memory.limit_in_bytes":
        return "the memory limit must not exceed the memory+swap limit (memory.memsw.limit_in_bytes)"
    if err == errno.EINVAL and name.startswith("cpu."):
        return ("the kernel accepts a quota of at least 1000µs and a period of 1000..1000000µs, "
                "and a child may not get more CPU than its parent cgroup")
    if err == errno.EINVAL:
        return "the kernel rejected the value as invalid"
    if err == errno.ESRCH:
        return "no process with that PID exists (it may have exited already)"
    if err in (errno.EPERM, errno.EACCES):
        return "permission denied: changing cgroups needs root"
    if err in (errno.ENOENT, errno.EOPNOTSUPP):
        return "the controller is not available in the parent cgroup"
    if err == errno.EBUSY:
        return "the kernel says the cgroup is busy"
    return "the kernel refused it"


def _kernel_error(message: str, err: int) -> CgroupError:
    """A CgroupError that also keeps the kernel's errno, so callers can retry on a race."""
    error = CgroupError(message)
    error.errno = err
    return error


def write(path: str, value: str | int) -> None:
    """Write one value into a cgroup file. Never creates files: a missing one means a missing controller."""
    value = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:
        raise _kernel_error(
            f"cannot write {value!r} to {path}: the file does not exist, so its controller "
            "is not available in this cgroup (v1: not mounted; v2: not enabled in the "
            "parent's cgroup.subtree_control)", errno.ENOENT) from None
    except OSError as e:
        raise _kernel_error(f"cannot open {path}: {e.strerror}", e.errno) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise _kernel_error(
            f"cannot write {value!r} to {path}: {_why(path, value, e.errno)} ({e.strerror})",
            e.errno) from None
    finally:
        os.close(fd)


def read(path: str) -> str | None:
    """The file's text, or None when it does not exist (controller missing, old kernel)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_int(path: str) -> int | None:
    """An integer file; "max" (v2's unlimited) gives None."""
    text = read(path)
    if text is None:
        return None
    text = text.strip()
    return None if text == "max" else int(text)


def read_keyed(path: str) -> dict[str, int]:
    """A "key value" per line file such as cpu.stat, memory.events or pids.events."""
    text = read(path)
    values = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def times_1000(value: int | None) -> int | None:
    return None if value is None else value * 1000


def read_pids(path: str) -> list[int]:
    text = read(path)
    return [int(line) for line in (text or "").split()]


def check_path(path: str) -> str:
    """Normalise "/teachdock/ID" (a relative path is taken from the root as well)."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidConfig(f"cgroup path {path!r} is empty: give one like /teachdock/ID")
    if ":" in path:
        raise InvalidConfig(
            f"cgroup path {path!r} looks like a systemd slice path (slice:prefix:name); "
            "teachdock manages cgroupfs directly: give a path like /teachdock/ID")
    parts = path.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidConfig(f"cgroup path {path!r} may not contain empty, '.' or '..' parts")
    return "/" + "/".join(parts)


def rmdir_tree(directory: str) -> None:
    """Remove a cgroup directory and any child cgroups, waiting briefly for exiting processes.

    rmdir on a cgroup works although it still shows its interface files; it fails with
    EBUSY while processes are inside, which happens for a moment after a kill.
    """
    try:
        children = [e.path for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for child in children:
        rmdir_tree(child)
    deadline = time.monotonic() + RMDIR_RETRY_SECONDS
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno == errno.EBUSY and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            pids = read_pids(os.path.join(directory, "cgroup.procs"))
            if e.errno == errno.EBUSY:
                why = f"processes are still inside (PIDs {pids}); kill them first (kill_all)"
            elif e.errno == errno.ENOTEMPTY:
                why = "it still holds files or child cgroups that would not go"
            else:
                why = e.strerror
            raise CgroupError(f"cannot remove cgroup {directory}: {why}") from None


def rmdir_empty_parents(directory: str, top: str) -> None:
    """Remove the now-empty parents of a cgroup (like teachdock/), stopping below ``top``.

    A sibling container may still be in a parent (ENOTEMPTY/EBUSY) or another destroy may
    have removed it already (ENOENT): both are fine.
    """
    parent = os.path.dirname(directory)
    while parent != top and is_under(parent, top):
        try:
            os.rmdir(parent)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EBUSY):
                return
            if e.errno not in PARENT_GONE:
                raise CgroupError(f"cannot remove empty parent cgroup {parent}: {e.strerror}") from None
        parent = os.path.dirname(parent)


def mkdirs(directory: str, top: str, after_each=None) -> None:
    """mkdir -p from ``top`` down, calling ``after_each(dir)`` on every parent of the leaf.

    Another container's destroy() may remove an empty shared parent (teachdock/) between two
    of our steps; then the kernel answers ENOENT (or ENODEV while the removal is under way)
    and we simply start again from the top.
    """
    if not os.path.isdir(top):
        raise CgroupError(f"cannot create cgroup {directory}: {top} does not exist (is the hierarchy mounted?)")
    parts = os.path.relpath(directory, top).split("/")
    for attempt in range(20):
        try:
            current = top
            if after_each:
                after_each(current)
            for i, part in enumerate(parts):
                current = os.path.join(current, part)
                try:
                    os.mkdir(current)
                except FileExistsError:
                    pass
                if after_each and i < len(parts) - 1:
                    after_each(current)
            return
        except (OSError, CgroupError) as e:
            if getattr(e, "errno", None) not in PARENT_GONE:
                if isinstance(e, CgroupError):
                    raise
                raise CgroupError(f"cannot create cgroup {directory}: {e.strerror}") from None
            time.sleep(0.001 * attempt)
    raise CgroupError(f"cannot create cgroup {directory}: its parent kept disappearing")


def signal_all(list_pids, sig: int) -> int:
    """Signal every process ``list_pids()`` names; repeat while new ones appear (a forking process)."""
    signalled: set[int] = set()
    for _ in range(10):
        pids = set(list_pids()) - signalled
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        signalled |= pids
    return len(signalled)


def wait_for(condition, what: str, timeout: float | None = None) -> None:
    """Poll ``condition()`` until it holds, e.g. a freezer state file saying FROZEN."""
    timeout = FREEZE_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CgroupError(f"waited {timeout} s for {what}")
        time.sleep(0.001)
