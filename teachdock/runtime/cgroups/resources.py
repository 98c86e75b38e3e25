"""What to limit: OCI ``linux.resources``, checked, and the values the cgroup files take.

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
    devices[]             devices           devices/devices.allow|deny      no file: an eBPF program
      (allow, type,                           one line per rule, in order,   attached to the directory
       major, minor, access)                  e.g. "c 1:3 rwm"               (devices_bpf.py)

    -1 means "unlimited" for memory.limit, memory.swap, cpu.quota and pids.limit.

"""

from __future__ import annotations

from teachdock.errors import InvalidConfig

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


class Resources:
    """The limits to apply. ``None`` leaves a limit alone; ``-1`` means unlimited (OCI's meaning).

    Units follow OCI: bytes for memory, microseconds for the CPU quota and period.
    ``memory_swap`` is memory *plus* swap, like OCI and Docker's ``--memory-swap``: equal to
    ``memory_limit`` means "no swap". Left unset with a memory limit, the container gets no swap
    either, so an out-of-memory demo ends in an OOM kill instead of a slow crawl through swap.
    Creating a Resources checks the values (raises ``InvalidConfig``).

    A plain class rather than a dataclass: importing dataclasses costs ~11 ms (inspect, ast,
    dis), paid on every `teachdock runtime run`.
    """

    __slots__ = ("memory_limit", "memory_swap", "cpu_quota", "cpu_period", "cpu_shares", "pids_limit",
                 "devices")

    def __init__(self, memory_limit: int | None = None, memory_swap: int | None = None,
                 cpu_quota: int | None = None, cpu_period: int | None = None, cpu_shares: int | None = None,
                 pids_limit: int | None = None, devices: list[dict] | None = None):
        self.memory_limit = memory_limit
        self.memory_swap = memory_swap
        self.cpu_quota = cpu_quota
        self.cpu_period = cpu_period
        self.cpu_shares = cpu_shares
        self.pids_limit = pids_limit
        self.devices = devices  # OCI device rules, applied in order
        self._validate()

    def __eq__(self, other) -> bool:
        if type(other) is not Resources:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return "Resources(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"

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
