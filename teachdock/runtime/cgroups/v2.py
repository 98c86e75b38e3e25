"""cgroup v2: one unified tree; a container gets one directory, and every parent hands
the controllers down to its children in ``cgroup.subtree_control``. Device rules are an eBPF
program attached to that directory (``devices_bpf``): v2 has no devices.allow file."""

from __future__ import annotations

import os

from teachdock.errors import CgroupError
from teachdock.runtime.cgroups import devices_bpf, files
from teachdock.runtime.cgroups.driver import Cgroup, Metrics
from teachdock.runtime.cgroups.files import CGROUP_ROOT
from teachdock.runtime.cgroups.resources import DEFAULT_CPU_PERIOD_US, Resources, cpu_weight_from_shares

#: The v2 controllers teachdock switches on in every parent's cgroup.subtree_control.
V2_CONTROLLERS = ("memory", "pids", "cpu")


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
        available = (files.read(os.path.join(parent, "cgroup.controllers")) or "").split()
        enabled = (files.read(os.path.join(parent, "cgroup.subtree_control")) or "").split()
        missing = [c for c in V2_CONTROLLERS if c in available and c not in enabled]
        if missing:
            files.write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in missing))

    def create(self) -> None:
        files.mkdirs(self.dir, self.root, after_each=self._enable_controllers)

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.memory_limit is not None:
            files.write(self._f("memory.max"), "max" if r.memory_limit == -1 else r.memory_limit)
        swap_file = self._f("memory.swap.max")
        if r.memory_swap == -1:
            files.write(swap_file, "max")
        elif r.memory_swap is not None:
            # OCI's swap is memory+swap; v2's memory.swap.max is the swap alone.
            if r.memory_limit is None:
                raise CgroupError("cannot convert memory+swap to memory.swap.max without a memory limit")
            files.write(swap_file, r.memory_swap - r.memory_limit)
        elif r.memory_limit is not None and os.path.exists(swap_file):
            files.write(swap_file, 0)  # no swap given: none at all, so an OOM demo never swaps
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota = "max" if r.cpu_quota in (None, -1) else str(r.cpu_quota)
            period = r.cpu_period if r.cpu_period is not None else DEFAULT_CPU_PERIOD_US
            files.write(self._f("cpu.max"), f"{quota} {period}")
        if r.cpu_shares is not None:
            files.write(self._f("cpu.weight"), cpu_weight_from_shares(r.cpu_shares))
        if r.pids_limit is not None:
            files.write(self._f("pids.max"), "max" if r.pids_limit == -1 else r.pids_limit)
        if r.devices is not None:  # last: a DeviceFilterError leaves the other limits applied
            devices_bpf.apply_device_rules(self.dir, r.devices)

    def add_process(self, pid: int) -> None:
        self._require()
        files.write(self._f("cgroup.procs"), pid)

    def join_self(self) -> None:
        self._require()
        files.write(self._f("cgroup.procs"), 0)  # "0" means the writing process

    def processes(self) -> list[int]:
        return files.read_pids(self._f("cgroup.procs"))

    def metrics(self) -> Metrics:
        self._require()
        cpu = files.read_keyed(self._f("cpu.stat"))
        cpu_max = (files.read(self._f("cpu.max")) or "max").split()  # "QUOTA PERIOD" or "max PERIOD"
        return Metrics(
            memory_bytes=files.read_int(self._f("memory.current")),
            memory_peak_bytes=files.read_int(self._f("memory.peak")),
            memory_limit_bytes=files.read_int(self._f("memory.max")),
            oom_kills=files.read_keyed(self._f("memory.events")).get("oom_kill"),
            cpu_usage_ns=files.times_1000(cpu.get("usage_usec")),
            cpu_periods=cpu.get("nr_periods"),
            cpu_throttled_periods=cpu.get("nr_throttled"),
            cpu_throttled_ns=files.times_1000(cpu.get("throttled_usec")),
            cpu_quota_us=None if cpu_max[0] == "max" else int(cpu_max[0]),
            cpu_period_us=int(cpu_max[1]) if len(cpu_max) > 1 else None,
            pids_current=files.read_int(self._f("pids.current")),
            pids_limit=files.read_int(self._f("pids.max")),
            pids_max_events=files.read_keyed(self._f("pids.events")).get("max"),
        )

    def destroy(self) -> None:
        files.rmdir_tree(self.dir)
        files.rmdir_empty_parents(self.dir, self.root)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def freeze(self) -> None:
        files.write(self._f("cgroup.freeze"), 1)
        events = self._f("cgroup.events")
        files.wait_for(lambda: files.read_keyed(events).get("frozen") == 1, f"{events} to say frozen 1")

    def thaw(self) -> None:
        files.write(self._f("cgroup.freeze"), 0)

    def frozen(self) -> bool:
        return (files.read(self._f("cgroup.freeze")) or "0").strip() == "1"
