"""The driver interface every cgroup version implements, and what it measures (``Metrics``).

Where each ``Metrics`` figure is read from::

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
"""

from __future__ import annotations

import signal

from teachdock.errors import NotFound
from teachdock.runtime.cgroups import files
from teachdock.runtime.cgroups.resources import Resources


class Metrics:
    """Usage figures of one cgroup. A field is None when unlimited or not available here.

    A plain class with ``__slots__`` rather than a dataclass: importing dataclasses costs
    ~11 ms (inspect, ast, dis), paid on every `teachdock runtime run`.
    """

    __slots__ = (
        "memory_bytes",           # now, page cache included
        "memory_peak_bytes",      # highest since creation
        "memory_limit_bytes",     # None: unlimited
        "cpu_usage_ns",           # CPU time used by all processes, in nanoseconds
        "cpu_periods",            # CFS periods with runnable processes
        "cpu_throttled_periods",  # periods in which the quota ran out
        "cpu_throttled_ns",       # total time spent throttled
        "cpu_quota_us",           # CPU time allowed per period; None: unlimited
        "cpu_period_us",          # length of a period (quota / period = CPUs allowed)
        "pids_current",
        "pids_limit",             # None: unlimited
        "oom_kills",              # processes the OOM killer killed here
        "pids_max_events",        # fork()s refused because pids.max was reached
    )

    def __init__(self, **figures: int | None):
        for name in self.__slots__:
            setattr(self, name, figures.pop(name, None))
        if figures:
            raise TypeError(f"Metrics has no field {', '.join(figures)}")

    def __eq__(self, other) -> bool:
        if type(other) is not Metrics:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return "Metrics(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"


class Cgroup:
    """One container's cgroup. ``CgroupV1`` and ``CgroupV2`` implement the same methods."""

    version = ""

    def __init__(self, path: str):
        self.path = files.check_path(path)

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
        return files.signal_all(self.processes, sig)

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
