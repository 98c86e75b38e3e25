"""cgroup drivers: put a container's processes in a control group and limit them.

A cgroup is a directory in a special filesystem. Writing a number into one of its files sets
a limit; writing a PID into ``cgroup.procs`` moves a process in; reading files gives usage.
Linux has two versions of this filesystem, and a runtime must speak both:

* **cgroup v1**: one tree per controller (``/sys/fs/cgroup/memory``, ``.../cpu``, ``.../pids``).
  A container gets one directory in *each* tree, all with the same relative path.
* **cgroup v2**: one unified tree (``/sys/fs/cgroup``). A container gets one directory; its
  parents must switch the controllers on for their children in ``cgroup.subtree_control``.

``detect_version()`` tells which one a machine uses, ``open_cgroup()`` returns the matching
driver (``CgroupV1`` or ``CgroupV2``); both have the same methods.

Which file each OCI ``linux.resources`` field ends up in (values in the units written)::

    OCI field             Resources field   cgroup v1 file                  cgroup v2 file
    --------------------  ----------------  ------------------------------  ----------------------------
    memory.limit  (bytes) memory_limit      memory/memory.limit_in_bytes    memory.max
    memory.swap   (bytes) memory_swap       memory/memory.memsw.limit_in_   memory.swap.max
      OCI counts memory+swap;                 bytes (memory+swap, as OCI)     (swap alone = swap - limit)
      unset -> no swap at all                 = limit                         0
    cpu.quota (µs)  +     cpu_quota         cpu/cpu.cfs_quota_us            cpu.max  "QUOTA PERIOD"
    cpu.period (µs)       cpu_period        cpu/cpu.cfs_period_us             ("max PERIOD" = unlimited)
    cpu.shares            cpu_shares        cpu/cpu.shares                  cpu.weight
                                                                              1 + (shares-2)*9999//262142
    pids.limit            pids_limit        pids/pids.max                   pids.max
    devices[]             devices           devices/devices.allow|deny      (an eBPF program; not
      (allow, type,                           one line per rule, in order,   loaded by teachdock yet:
       major, minor, access)                  e.g. "c 1:3 rwm"               the rules are ignored)

    -1 means "unlimited" for memory.limit, memory.swap, cpu.quota and pids.limit.

And where each ``Metrics`` figure is read from::

    Metrics field           cgroup v1                          cgroup v2
    ----------------------  ---------------------------------  ------------------------------
    memory_bytes            memory.usage_in_bytes              memory.current
    memory_peak_bytes       memory.max_usage_in_bytes          memory.peak (kernel >= 5.19)
    memory_limit_bytes      memory.limit_in_bytes              memory.max
    oom_kills               memory.oom_control "oom_kill"      memory.events "oom_kill"
    cpu_usage_ns            cpuacct.usage                      cpu.stat usage_usec * 1000
    cpu_periods             cpu.stat nr_periods                cpu.stat nr_periods
    cpu_throttled_periods   cpu.stat nr_throttled              cpu.stat nr_throttled
    cpu_throttled_ns        cpu.stat throttled_time            cpu.stat throttled_usec * 1000
    cpu_quota_us            cpu.cfs_quota_us (-1: None)        cpu.max first field ("max": None)
    cpu_period_us           cpu.cfs_period_us                  cpu.max second field
    pids_current            pids.current                       pids.current
    pids_limit              pids.max                           pids.max
    pids_max_events         pids.events "max"                  pids.events "max"

teachdock never nests a container under the cgroup of the process that starts it: the path
``/teachdock/ID`` is always taken from the root of each hierarchy.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from dataclasses import dataclass

from teachdock.errors import CgroupError, InvalidConfig, NotFound

CGROUP_ROOT = "/sys/fs/cgroup"
MOUNTINFO = "/proc/self/mountinfo"

#: The v1 controllers teachdock uses (cpuacct gives the CPU time used; devices decides
#: which device nodes a container may open, whatever nodes it manages to create; freezer
#: stops every process in place, for ``docker pause``).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices", "freezer")
#: How long freeze() waits for the kernel to stop every task (FREEZING -> FROZEN).
FREEZE_TIMEOUT = 10.0
#: The v2 controllers teachdock switches on in every parent's cgroup.subtree_control.
V2_CONTROLLERS = ("memory", "pids", "cpu")

MIB = 1024 * 1024
#: Below this a process cannot even start: the kernel would OOM-kill it at once.
MIN_MEMORY_LIMIT = 4 * MIB
#: The kernel's bounds for CFS bandwidth control (kernel/sched/core.c).
MIN_CPU_QUOTA_US = 1000
MIN_CPU_PERIOD_US = 1000
MAX_CPU_PERIOD_US = 1_000_000
DEFAULT_CPU_PERIOD_US = 100_000
#: cpu.shares range of cgroup v1.
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144
#: v1 shows "no memory limit" as a huge number (9223372036854771712); anything this big is unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 62
#: How long destroy() waits for exiting processes to leave a cgroup before giving up.
RMDIR_RETRY_SECONDS = 1.0
#: errnos that mean "a parent cgroup is gone, or going": removed (ENOENT) or being removed
#: by another container's destroy() right now (v2 answers ENODEV then).
PARENT_GONE = (errno.ENOENT, errno.ENODEV)


# --------------------------------------------------------------------------------------------
# Resources: what to limit
# --------------------------------------------------------------------------------------------


@dataclass
class Resources:
    """The limits to apply. ``None`` leaves a limit alone; ``-1`` means unlimited (OCI's meaning).

    Units follow OCI: bytes for memory, microseconds for the CPU quota and period.
    ``memory_swap`` is memory *plus* swap, like OCI and Docker's ``--memory-swap``: equal to
    ``memory_limit`` means "no swap". Left unset with a memory limit, the container gets no swap
    either, so an out-of-memory demo ends in an OOM kill instead of a slow crawl through swap.
    Creating a Resources checks the values (raises ``InvalidConfig``).
    """

    memory_limit: int | None = None
    memory_swap: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    devices: list[dict] | None = None  # OCI device rules, applied in order

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def from_oci(cls, resources: dict | None) -> "Resources":
        """Read an OCI ``linux.resources`` object (memory, cpu, pids and devices are used)."""
        resources = resources or {}
        if not isinstance(resources, dict):
            raise InvalidConfig(f"linux.resources must be a JSON object, got {resources!r}")
        memory = _oci_section(resources, "memory")
        cpu = _oci_section(resources, "cpu")
        pids = _oci_section(resources, "pids")
        shares = _oci_int(cpu, "cpu.shares")
        return cls(
            memory_limit=_oci_int(memory, "memory.limit"),
            memory_swap=_oci_int(memory, "memory.swap"),
            cpu_quota=_oci_int(cpu, "cpu.quota"),
            cpu_period=_oci_int(cpu, "cpu.period"),
            # Docker sends shares 0 to mean "the default"; runc treats it the same way.
            cpu_shares=None if shares == 0 else shares,
            pids_limit=_oci_int(pids, "pids.limit"),
            devices=resources.get("devices"),
        )

    def _validate(self) -> None:
        for index, rule in enumerate(self.devices or []):
            try:
                device_rule(rule)
            except (TypeError, KeyError, ValueError):
                raise InvalidConfig(
                    f"linux.resources.devices[{index}] = {rule!r}: needs allow (true/false), type a, c "
                    "or b, major and minor numbers (or none for any) and access made of r, w, m") from None
        for name in ("memory_limit", "memory_swap", "cpu_quota", "cpu_period", "cpu_shares", "pids_limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidConfig(f"{name} must be an integer, got {value!r}")

        limit, swap = self.memory_limit, self.memory_swap
        if limit is not None and limit != -1:
            if limit < 0:
                raise InvalidConfig(
                    f"memory limit {limit} is negative (linux.resources.memory.limit); "
                    "give a number of bytes, or -1 for unlimited")
            if limit < MIN_MEMORY_LIMIT:
                raise InvalidConfig(
                    f"memory limit {limit} bytes is below the 4 MiB minimum "
                    "(linux.resources.memory.limit): too small for any process; "
                    "the kernel would OOM-kill it at once")
        if swap is not None and swap != -1:
            if swap < 0:
                raise InvalidConfig(
                    f"memory+swap limit {swap} is negative (linux.resources.memory.swap); "
                    "give a number of bytes, or -1 for unlimited swap")
            if limit is None or limit == -1:
                raise InvalidConfig(
                    f"memory+swap limit {swap} needs a memory limit as well "
                    "(set linux.resources.memory.limit, or drop memory.swap)")
            if swap < limit:
                raise InvalidConfig(
                    f"memory+swap limit {swap} is smaller than the memory limit {limit} "
                    "(linux.resources.memory.swap counts memory plus swap, so it must be >= "
                    "memory.limit; equal means no swap)")

        quota, period = self.cpu_quota, self.cpu_period
        if quota is not None and quota != -1 and quota < MIN_CPU_QUOTA_US:
            raise InvalidConfig(
                f"cpu quota {quota}µs is below the kernel's minimum of {MIN_CPU_QUOTA_US}µs (1 ms) "
                "(linux.resources.cpu.quota); use -1 for unlimited")
        if period is not None and not MIN_CPU_PERIOD_US <= period <= MAX_CPU_PERIOD_US:
            raise InvalidConfig(
                f"cpu period {period}µs is outside the kernel's range "
                f"{MIN_CPU_PERIOD_US}..{MAX_CPU_PERIOD_US}µs (1 ms to 1 s) "
                "(linux.resources.cpu.period); 100000 is the usual value")

        shares = self.cpu_shares
        if shares is not None and not MIN_CPU_SHARES <= shares <= MAX_CPU_SHARES:
            raise InvalidConfig(
                f"cpu shares {shares} is outside {MIN_CPU_SHARES}..{MAX_CPU_SHARES} "
                "(linux.resources.cpu.shares); 1024 is the default weight")

        pids = self.pids_limit
        if pids is not None:
            if pids == 0:
                raise InvalidConfig(
                    "pids limit 0 would forbid even the container's first process "
                    "(linux.resources.pids.limit); use -1 for unlimited")
            if pids < -1:
                raise InvalidConfig(
                    f"pids limit {pids} is negative (linux.resources.pids.limit); "
                    "give a positive number, or -1 for unlimited")


def device_rule(rule: dict) -> str:
    """One OCI device rule as the v1 devices controller reads it, e.g. "c 1:3 rwm"."""
    kind = rule.get("type", "a")
    access = rule.get("access", "rwm")
    if not isinstance(rule["allow"], bool) or kind not in ("a", "c", "b") or not access or set(access) - set("rwm"):
        raise ValueError(rule)
    numbers = []
    for key in ("major", "minor"):
        value = rule.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(rule)
        numbers.append("*" if value is None or value < 0 else str(value))
    return f"{kind} {numbers[0]}:{numbers[1]} {access}"


def _oci_section(resources: dict, key: str) -> dict:
    section = resources.get(key) or {}
    if not isinstance(section, dict):
        raise InvalidConfig(f"linux.resources.{key} must be a JSON object, got {section!r}")
    return section


def _oci_int(section: dict, dotted: str) -> int | None:
    value = section.get(dotted.split(".", 1)[1])
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidConfig(f"linux.resources.{dotted} must be an integer, got {value!r}")
    return value


def cpu_weight_from_shares(shares: int) -> int:
    """v1 cpu.shares (2..262144, default 1024) -> v2 cpu.weight (1..10000, default 100).

    The same formula runc uses, so the same bundle gets the same weight under both runtimes.
    """
    return 1 + ((shares - 2) * 9999) // 262142


# --------------------------------------------------------------------------------------------
# Metrics: what the cgroup has used
# --------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    """Usage figures of one cgroup. A field is None when unlimited or not available here."""

    memory_bytes: int | None = None           # now, page cache included
    memory_peak_bytes: int | None = None      # highest since creation
    memory_limit_bytes: int | None = None     # None: unlimited
    cpu_usage_ns: int | None = None           # CPU time used by all processes, in nanoseconds
    cpu_periods: int | None = None            # CFS periods with runnable processes
    cpu_throttled_periods: int | None = None  # periods in which the quota ran out
    cpu_throttled_ns: int | None = None       # total time spent throttled
    cpu_quota_us: int | None = None           # CPU time allowed per period; None: unlimited
    cpu_period_us: int | None = None          # length of a period (quota / period = CPUs allowed)
    pids_current: int | None = None
    pids_limit: int | None = None             # None: unlimited
    oom_kills: int | None = None              # processes the OOM killer killed here
    pids_max_events: int | None = None        # fork()s refused because pids.max was reached


# --------------------------------------------------------------------------------------------
# Finding the hierarchies
# --------------------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    """mountinfo writes spaces and some other characters as octal escapes (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mountinfo(mountinfo: str = MOUNTINFO) -> list[tuple[str, str, list[str]]]:
    """(mount point, filesystem type, super options) for each line of /proc/self/mountinfo."""
    mounts = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            if "-" not in fields:
                continue
            dash = fields.index("-")
            mount_point = _unescape(fields[4])
            fstype = fields[dash + 1]
            super_options = fields[dash + 3].split(",") if len(fields) > dash + 3 else []
            mounts.append((mount_point, fstype, super_options))
    return mounts


def _is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def find_v1_mounts(root: str = CGROUP_ROOT, *, mountinfo: str = MOUNTINFO) -> dict[str, str]:
    """{controller: mount point} for the v1 hierarchies of memory, cpu, cpuacct and pids.

    The super options of a v1 mount list its controllers, e.g. ``rw,cpu,cpuacct`` when cpu
    and cpuacct share one hierarchy (co-mounted, as on Fedora or Ubuntu): both then map to
    the same directory.
    """
    root = os.path.realpath(root)
    mounts: dict[str, str] = {}
    for mount_point, fstype, options in read_mountinfo(mountinfo):
        if fstype != "cgroup" or not _is_under(mount_point, root):
            continue
        for controller in V1_CONTROLLERS:
            if controller in options:
                mounts.setdefault(controller, mount_point)
    return mounts


def detect_version(root: str = CGROUP_ROOT, *, mountinfo: str = MOUNTINFO) -> str:
    """"v2" when ``root`` is a cgroup2 filesystem, "v1" when v1 hierarchies are mounted under it.

    Decided from the mounts themselves, never from the distribution's name. A "hybrid" host
    (tmpfs at /sys/fs/cgroup with v1 controllers, plus a cgroup2 mount at .../unified) is v1:
    its limits live in the v1 trees. A directory with a ``cgroup.controllers`` file counts as
    v2 too: every real v2 root has one, and a fake tree in a test can make one.
    """
    real_root = os.path.realpath(root)
    mounts = read_mountinfo(mountinfo)
    # The filesystem that holds root: the last mount (later ones hide earlier ones) with the
    # longest mount point that is root itself or one of its parents.
    holding = None
    for mount_point, fstype, _options in mounts:
        if _is_under(real_root, mount_point):
            if holding is None or len(mount_point) >= len(holding[0]):
                holding = (mount_point, fstype)
    if holding is not None and holding[1] == "cgroup2":
        return "v2"
    if os.path.isfile(os.path.join(real_root, "cgroup.controllers")):
        return "v2"
    if holding is not None and holding[1] == "cgroup":
        return "v1"
    if find_v1_mounts(real_root, mountinfo=mountinfo):
        return "v1"
    # A fake v1 tree in a test: <root>/<controller>/cgroup.procs
    if any(os.path.isfile(os.path.join(real_root, c, "cgroup.procs")) for c in V1_CONTROLLERS):
        return "v1"
    raise CgroupError(f"no cgroup filesystem found at {root}: neither cgroup2 nor v1 hierarchies are mounted there")


def open_cgroup(path: str, *, version: str | None = None, root: str = CGROUP_ROOT,
                mounts: dict[str, str] | None = None) -> "Cgroup":
    """The driver for cgroup ``path`` (like "/teachdock/ID") on this machine's cgroup version.

    Nothing is created yet: call ``create()``. ``mounts`` ({controller: dir}) replaces the
    v1 mount points found in /proc/self/mountinfo, for fake trees in tests.
    """
    version = version or detect_version(root)
    if version == "v2":
        return CgroupV2(path, root=root)
    if version == "v1":
        return CgroupV1(path, root=root, mounts=mounts)
    if version == "none":
        return NoCgroup(path)
    raise InvalidConfig(f"unknown cgroup version {version!r}: use 'v1', 'v2' or 'none'")


# --------------------------------------------------------------------------------------------
# Small file helpers: every kernel refusal becomes a CgroupError that says why
# --------------------------------------------------------------------------------------------


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


def _write(path: str, value: str | int) -> None:
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


def _read(path: str) -> str | None:
    """The file's text, or None when it does not exist (controller missing, old kernel)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _read_int(path: str) -> int | None:
    """An integer file; "max" (v2's unlimited) gives None."""
    text = _read(path)
    if text is None:
        return None
    text = text.strip()
    return None if text == "max" else int(text)


def _read_keyed(path: str) -> dict[str, int]:
    """A "key value" per line file such as cpu.stat, memory.events or pids.events."""
    text = _read(path)
    values = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def _times_1000(value: int | None) -> int | None:
    return None if value is None else value * 1000


def _read_pids(path: str) -> list[int]:
    text = _read(path)
    return [int(line) for line in (text or "").split()]


def _check_path(path: str) -> str:
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


def _rmdir_tree(directory: str) -> None:
    """Remove a cgroup directory and any child cgroups, waiting briefly for exiting processes.

    rmdir on a cgroup works although it still shows its interface files; it fails with
    EBUSY while processes are inside, which happens for a moment after a kill.
    """
    try:
        children = [e.path for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for child in children:
        _rmdir_tree(child)
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
            pids = _read_pids(os.path.join(directory, "cgroup.procs"))
            if e.errno == errno.EBUSY:
                why = f"processes are still inside (PIDs {pids}); kill them first (kill_all)"
            elif e.errno == errno.ENOTEMPTY:
                why = "it still holds files or child cgroups that would not go"
            else:
                why = e.strerror
            raise CgroupError(f"cannot remove cgroup {directory}: {why}") from None


def _rmdir_empty_parents(directory: str, top: str) -> None:
    """Remove the now-empty parents of a cgroup (like teachdock/), stopping below ``top``.

    A sibling container may still be in a parent (ENOTEMPTY/EBUSY) or another destroy may
    have removed it already (ENOENT): both are fine.
    """
    parent = os.path.dirname(directory)
    while parent != top and _is_under(parent, top):
        try:
            os.rmdir(parent)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EBUSY):
                return
            if e.errno not in PARENT_GONE:
                raise CgroupError(f"cannot remove empty parent cgroup {parent}: {e.strerror}") from None
        parent = os.path.dirname(parent)


def _mkdirs(directory: str, top: str, after_each=None) -> None:
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


def _signal_all(read_pids, sig: int) -> int:
    """Signal every process in the cgroup; repeat while new ones appear (a forking process)."""
    signalled: set[int] = set()
    for _ in range(10):
        pids = set(read_pids()) - signalled
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        signalled |= pids
    return len(signalled)


# --------------------------------------------------------------------------------------------
# The drivers
# --------------------------------------------------------------------------------------------


class Cgroup:
    """One container's cgroup. ``CgroupV1`` and ``CgroupV2`` implement the same methods."""

    version = ""

    def __init__(self, path: str):
        self.path = _check_path(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    def create(self) -> None:
        """Make the directories (and parents); fine if they exist already."""
        raise NotImplementedError

    def apply(self, resources: Resources) -> None:
        """Write the limits that are set in ``resources``; others stay as they are."""
        raise NotImplementedError

    def add_process(self, pid: int) -> None:
        """Move process ``pid`` (and later its children) into this cgroup."""
        raise NotImplementedError

    def join_self(self) -> None:
        """Move the calling process itself in; it must be single-threaded (a freshly forked child).

        Faster than add_process: on v1, a thread moving itself through the ``tasks``
        file skips the kernel's global cgroup_threadgroup_rwsem, whose write side waits
        for an RCU grace period (milliseconds) on every container start.
        """
        raise NotImplementedError

    def processes(self) -> list[int]:
        """PIDs of the processes in this cgroup."""
        raise NotImplementedError

    def metrics(self) -> Metrics:
        """Current usage; cheap enough to sample many times a second (a few small reads)."""
        raise NotImplementedError

    def kill_all(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to every process in the cgroup; returns how many were signalled."""
        return _signal_all(self.processes, sig)

    def destroy(self) -> None:
        """Remove the cgroup and its empty parents. Processes must have exited (see kill_all)."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Stop every process in the cgroup where it stands (``docker pause``): no signal is
        sent, the processes cannot notice; they simply get no more CPU until thawed."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Let frozen processes run on from where they stood (``docker unpause``)."""
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def _require(self) -> None:
        if not self.exists():
            raise NotFound(f"cgroup {self.path} does not exist (never created, or destroyed)")


class CgroupV1(Cgroup):
    """cgroup v1: the same relative path in the memory, cpu, cpuacct and pids hierarchies."""

    version = "v1"

    def __init__(self, path: str, *, root: str = CGROUP_ROOT, mounts: dict[str, str] | None = None):
        super().__init__(path)
        self.mounts = dict(mounts) if mounts is not None else find_v1_mounts(root)
        if not self.mounts:
            raise CgroupError(
                f"no cgroup v1 hierarchy for {', '.join(V1_CONTROLLERS)} is mounted under {root}")
        relative = self.path.lstrip("/")
        #: {controller: this cgroup's directory in that controller's hierarchy}
        self.dirs = {c: os.path.join(m, relative) for c, m in self.mounts.items()}

    def _unique_dirs(self) -> list[tuple[str, str]]:
        """(directory, mount) once per hierarchy: co-mounted cpu,cpuacct share one directory."""
        seen, result = set(), []
        for controller, directory in self.dirs.items():
            if directory not in seen:
                seen.add(directory)
                result.append((directory, self.mounts[controller]))
        return result

    def _file(self, controller: str, name: str) -> str | None:
        directory = self.dirs.get(controller)
        return os.path.join(directory, name) if directory else None

    def _needed_file(self, controller: str, name: str) -> str:
        path = self._file(controller, name)
        if path is None:
            raise CgroupError(
                f"cannot set {name}: the {controller} controller is not mounted on this host "
                f"(no cgroup v1 hierarchy with '{controller}' in /proc/self/mountinfo)")
        return path

    def create(self) -> None:
        for directory, mount in self._unique_dirs():
            _mkdirs(directory, mount)

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.memory_limit is not None or r.memory_swap is not None:
            self._apply_memory(r)
        if r.cpu_period is not None:
            _write(self._needed_file("cpu", "cpu.cfs_period_us"), r.cpu_period)
        if r.cpu_quota is not None:
            _write(self._needed_file("cpu", "cpu.cfs_quota_us"), r.cpu_quota)
        if r.cpu_shares is not None:
            _write(self._needed_file("cpu", "cpu.shares"), r.cpu_shares)
        if r.pids_limit is not None:
            _write(self._needed_file("pids", "pids.max"), "max" if r.pids_limit == -1 else r.pids_limit)
        if r.devices is not None:
            # Rules apply in order: Docker's list starts by denying everything ("a *:* rwm").
            for rule in r.devices:
                name = "devices.allow" if rule["allow"] else "devices.deny"
                _write(self._needed_file("devices", name), device_rule(rule))

    def _apply_memory(self, r: Resources) -> None:
        """memory.limit_in_bytes and memory.memsw.limit_in_bytes, in an order the kernel accepts.

        v1 insists that memsw (memory+swap) >= limit at every moment, so when the new limit
        would be above the current memsw, memsw is raised first; otherwise limit goes first.
        """
        limit_file = self._needed_file("memory", "memory.limit_in_bytes")
        memsw_file = self._needed_file("memory", "memory.memsw.limit_in_bytes")
        has_memsw = os.path.exists(memsw_file)
        swap = r.memory_swap
        if swap is None and r.memory_limit is not None:
            swap = r.memory_limit  # no swap for the container
        if not has_memsw:
            if r.memory_swap is not None and r.memory_swap != -1:
                raise CgroupError(
                    f"cannot limit memory+swap to {r.memory_swap}: {memsw_file} does not exist "
                    "(the kernel runs without swap accounting, swapaccount=0)")
            swap = None
        if r.memory_limit is None:
            if swap is not None:
                _write(memsw_file, swap)
            return
        if swap is None:
            _write(limit_file, r.memory_limit)
            return

        def size(value: int) -> float:
            return float("inf") if value == -1 else value

        current_memsw = _read_int(memsw_file)
        if current_memsw is not None and size(r.memory_limit) <= current_memsw:
            _write(limit_file, r.memory_limit)
            _write(memsw_file, swap)
        else:
            _write(memsw_file, swap)
            _write(limit_file, r.memory_limit)

    def add_process(self, pid: int) -> None:
        self._require()
        for directory, _mount in self._unique_dirs():
            _write(os.path.join(directory, "cgroup.procs"), pid)

    def join_self(self) -> None:
        self._require()
        for directory, _mount in self._unique_dirs():
            _write(os.path.join(directory, "tasks"), 0)  # "0" means the writing thread

    def processes(self) -> list[int]:
        procs = self._file("memory", "cgroup.procs") or self._file("pids", "cgroup.procs")
        if procs is None:
            procs = os.path.join(self._unique_dirs()[0][0], "cgroup.procs")
        return _read_pids(procs)

    def metrics(self) -> Metrics:
        self._require()
        m = Metrics()
        if "memory" in self.dirs:
            m.memory_bytes = _read_int(self._file("memory", "memory.usage_in_bytes"))
            m.memory_peak_bytes = _read_int(self._file("memory", "memory.max_usage_in_bytes"))
            limit = _read_int(self._file("memory", "memory.limit_in_bytes"))
            m.memory_limit_bytes = None if limit is None or limit >= V1_UNLIMITED_THRESHOLD else limit
            m.oom_kills = _read_keyed(self._file("memory", "memory.oom_control")).get("oom_kill")
        if "cpuacct" in self.dirs:
            m.cpu_usage_ns = _read_int(self._file("cpuacct", "cpuacct.usage"))
        if "cpu" in self.dirs:
            stat = _read_keyed(self._file("cpu", "cpu.stat"))
            m.cpu_periods = stat.get("nr_periods")
            m.cpu_throttled_periods = stat.get("nr_throttled")
            m.cpu_throttled_ns = stat.get("throttled_time")
            quota = _read_int(self._file("cpu", "cpu.cfs_quota_us"))
            m.cpu_quota_us = None if quota is None or quota < 0 else quota
            m.cpu_period_us = _read_int(self._file("cpu", "cpu.cfs_period_us"))
        if "pids" in self.dirs:
            m.pids_current = _read_int(self._file("pids", "pids.current"))
            m.pids_limit = _read_int(self._file("pids", "pids.max"))
            m.pids_max_events = _read_keyed(self._file("pids", "pids.events")).get("max")
        return m

    def destroy(self) -> None:
        for directory, mount in self._unique_dirs():
            _rmdir_tree(directory)
            _rmdir_empty_parents(directory, mount)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d, _m in self._unique_dirs())

    def freeze(self) -> None:
        state_file = self._needed_file("freezer", "freezer.state")
        _write(state_file, "FROZEN")
        _wait_for(lambda: (_read(state_file) or "").strip() == "FROZEN", f"{state_file} to read FROZEN")

    def thaw(self) -> None:
        _write(self._needed_file("freezer", "freezer.state"), "THAWED")

    def frozen(self) -> bool:
        state_file = self._file("freezer", "freezer.state")
        return state_file is not None and (_read(state_file) or "").strip() in ("FROZEN", "FREEZING")


class CgroupV2(Cgroup):
    """cgroup v2: one directory <root>/<path>; parents hand down memory, pids and cpu."""

    version = "v2"

    def __init__(self, path: str, *, root: str = CGROUP_ROOT):
        super().__init__(path)
        self.root = root
        self.dir = os.path.join(root, self.path.lstrip("/"))

    def _f(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _enable_controllers(self, parent: str) -> None:
        """Write "+memory +pids +cpu" to parent/cgroup.subtree_control (those it has, not yet on)."""
        available = (_read(os.path.join(parent, "cgroup.controllers")) or "").split()
        enabled = (_read(os.path.join(parent, "cgroup.subtree_control")) or "").split()
        missing = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
        if missing:
            _write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in missing))

    def create(self) -> None:
        _mkdirs(self.dir, self.root, after_each=self._enable_controllers)

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.memory_limit is not None:
            _write(self._f("memory.max"), "max" if r.memory_limit == -1 else r.memory_limit)
        swap_file = self._f("memory.swap.max")
        if r.memory_swap == -1:
            _write(swap_file, "max")
        elif r.memory_swap is not None:
            # OCI's swap is memory+swap; v2's memory.swap.max is the swap alone.
            if r.memory_limit is None:
                raise CgroupError("cannot convert memory+swap to memory.swap.max without a memory limit")
            _write(swap_file, r.memory_swap - r.memory_limit)
        elif r.memory_limit is not None and os.path.exists(swap_file):
            _write(swap_file, 0)  # no swap given: none at all, so an OOM demo never swaps
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota = "max" if r.cpu_quota in (None, -1) else str(r.cpu_quota)
            period = r.cpu_period if r.cpu_period is not None else DEFAULT_CPU_PERIOD_US
            _write(self._f("cpu.max"), f"{quota} {period}")
        if r.cpu_shares is not None:
            _write(self._f("cpu.weight"), cpu_weight_from_shares(r.cpu_shares))
        if r.pids_limit is not None:
            _write(self._f("pids.max"), "max" if r.pids_limit == -1 else r.pids_limit)

    def add_process(self, pid: int) -> None:
        self._require()
        _write(self._f("cgroup.procs"), pid)

    def join_self(self) -> None:
        self._require()
        _write(self._f("cgroup.procs"), 0)  # "0" means the writing process

    def processes(self) -> list[int]:
        return _read_pids(self._f("cgroup.procs"))

    def metrics(self) -> Metrics:
        self._require()
        cpu = _read_keyed(self._f("cpu.stat"))
        cpu_max = (_read(self._f("cpu.max")) or "max").split()  # "QUOTA PERIOD" or "max PERIOD"
        return Metrics(
            memory_bytes=_read_int(self._f("memory.current")),
            memory_peak_bytes=_read_int(self._f("memory.peak")),
            memory_limit_bytes=_read_int(self._f("memory.max")),
            oom_kills=_read_keyed(self._f("memory.events")).get("oom_kill"),
            cpu_usage_ns=_times_1000(cpu.get("usage_usec")),
            cpu_periods=cpu.get("nr_periods"),
            cpu_throttled_periods=cpu.get("nr_throttled"),
            cpu_throttled_ns=_times_1000(cpu.get("throttled_usec")),
            cpu_quota_us=None if cpu_max[0] == "max" else int(cpu_max[0]),
            cpu_period_us=int(cpu_max[1]) if len(cpu_max) > 1 else None,
            pids_current=_read_int(self._f("pids.current")),
            pids_limit=_read_int(self._f("pids.max")),
            pids_max_events=_read_keyed(self._f("pids.events")).get("max"),
        )

    def destroy(self) -> None:
        _rmdir_tree(self.dir)
        _rmdir_empty_parents(self.dir, self.root)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def freeze(self) -> None:
        _write(self._f("cgroup.freeze"), 1)
        events = self._f("cgroup.events")
        _wait_for(lambda: _read_keyed(events).get("frozen") == 1, f"{events} to say frozen 1")

    def thaw(self) -> None:
        _write(self._f("cgroup.freeze"), 0)

    def frozen(self) -> bool:
        return (_read(self._f("cgroup.freeze")) or "0").strip() == "1"


def _wait_for(condition, what: str, timeout: float | None = None) -> None:
    timeout = FREEZE_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CgroupError(f"waited {timeout} s for {what}")
        time.sleep(0.001)


__all__ = [
    "Cgroup", "CgroupV1", "CgroupV2", "Metrics", "Resources",
    "detect_version", "open_cgroup", "find_v1_mounts", "read_mountinfo", "cpu_weight_from_shares",
]


class NoCgroup(Cgroup):
    """A container without a cgroup: what a learner without root gets (rootless).

    cgroup directories belong to root, so an ordinary user can neither limit nor measure a
    container; namespaces still work through a user namespace. Everything here is a no-op,
    except asking for a limit or for figures, which says why it cannot be done.
    """

    version = "none"
    dirs: dict[str, str] = {}

    def create(self) -> None:
        pass

    def apply(self, resources: Resources) -> None:
        wanted = [name for name in ("memory_limit", "memory_swap", "cpu_quota", "cpu_shares", "pids_limit")
                  if getattr(resources, name) not in (None, -1)]
        if wanted:
            raise CgroupError(f"{', '.join(wanted)}: limits need a cgroup, and cgroups belong to root. "
                              "Run as root (sudo) to set memory, CPU or pids limits.")
        # Device rules need no cgroup here: the kernel forbids mknod inside a user namespace.

    def add_process(self, pid: int) -> None:
        pass

    def join_self(self) -> None:
        pass

    def processes(self) -> list[int]:
        return []

    def metrics(self) -> Metrics:
        raise CgroupError("this container has no cgroup (it was started without root), "
                          "so there are no memory, CPU or pids figures to read")

    def destroy(self) -> None:
        pass

    def freeze(self) -> None:
        raise CgroupError("this container has no cgroup (it was started without root), so it cannot be "
                          "paused: the freezer is a cgroup feature")

    thaw = freeze

    def frozen(self) -> bool:
        return False

    def exists(self) -> bool:
        return False
