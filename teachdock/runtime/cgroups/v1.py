"""cgroup v1: one tree per controller; a container gets the same relative path in each.

The v1 hierarchies are found in the mount table: a v1 mount's super options list the
controllers it carries (``rw,cpu,cpuacct``).
"""

from __future__ import annotations

import os

from teachdock.errors import CgroupError
from teachdock.kernel.mountinfo import MOUNTINFO, read_mountinfo
from teachdock.runtime.cgroups import files
from teachdock.runtime.cgroups.driver import Cgroup, Metrics
from teachdock.runtime.cgroups.files import CGROUP_ROOT
from teachdock.runtime.cgroups.resources import Resources, device_rule

#: The v1 controllers teachdock uses (cpuacct gives the CPU time used; devices decides
#: which device nodes a container may open, whatever nodes it manages to create; freezer
#: stops every process in place, for ``docker pause``).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices", "freezer")
#: v1 shows "no memory limit" as a huge number (9223372036854771712); anything this big is unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 62


def find_v1_mounts(root: str = CGROUP_ROOT, *, mountinfo: str = MOUNTINFO) -> dict[str, str]:
    """{controller: mount point} for the v1 hierarchies of memory, cpu, cpuacct and pids.

    The super options of a v1 mount list its controllers, e.g. ``rw,cpu,cpuacct`` when cpu
    and cpuacct share one hierarchy (co-mounted, as on Fedora or Ubuntu): both then map to
    the same directory.
    """
    root = os.path.realpath(root)
    mounts: dict[str, str] = {}
    for mount in read_mountinfo(mountinfo):
        if mount.fs_type != "cgroup" or not files.is_under(mount.mount_point, root):
            continue
        for controller in V1_CONTROLLERS:
            if controller in mount.super_options:
                mounts.setdefault(controller, mount.mount_point)
    return mounts


#: find_v1_mounts() of this machine, filled by host_v1_mounts() on first use.
_host_v1_mounts: dict[str, str] | None = None


def host_v1_mounts() -> dict[str, str]:
    """find_v1_mounts() for this machine's /sys/fs/cgroup, read once per process.

    Why once: a host does not mount or unmount its cgroup hierarchies under a running
    runtime, and reading /proc/self/mountinfo for every container cost ~0.3 ms each time.
    """
    global _host_v1_mounts  # noqa: PLW0603 - a per-process cache
    if _host_v1_mounts is None:
        _host_v1_mounts = find_v1_mounts()
    return dict(_host_v1_mounts)


class CgroupV1(Cgroup):
    """cgroup v1: the same relative path in the memory, cpu, cpuacct and pids hierarchies."""

    version = "v1"

    def __init__(self, path: str, *, root: str = CGROUP_ROOT, mounts: dict[str, str] | None = None):
        super().__init__(path)
        if mounts is not None:
            self.mounts = dict(mounts)
        else:
            self.mounts = host_v1_mounts() if root == CGROUP_ROOT else find_v1_mounts(root)
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
            files.mkdirs(directory, mount)

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.memory_limit is not None or r.memory_swap is not None:
            self._apply_memory(r)
        if r.cpu_period is not None:
            files.write(self._needed_file("cpu", "cpu.cfs_period_us"), r.cpu_period)
        if r.cpu_quota is not None:
            files.write(self._needed_file("cpu", "cpu.cfs_quota_us"), r.cpu_quota)
        if r.cpu_shares is not None:
            files.write(self._needed_file("cpu", "cpu.shares"), r.cpu_shares)
        if r.pids_limit is not None:
            files.write(self._needed_file("pids", "pids.max"), "max" if r.pids_limit == -1 else r.pids_limit)
        if r.devices is not None:
            # Rules apply in order: Docker's list starts by denying everything ("a *:* rwm").
            for rule in r.devices:
                name = "devices.allow" if rule["allow"] else "devices.deny"
                files.write(self._needed_file("devices", name), device_rule(rule))

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
                files.write(memsw_file, swap)
            return
        if swap is None:
            files.write(limit_file, r.memory_limit)
            return

        def size(value: int) -> float:
            return float("inf") if value == -1 else value

        current_memsw = files.read_int(memsw_file)
        if current_memsw is not None and size(r.memory_limit) <= current_memsw:
            files.write(limit_file, r.memory_limit)
            files.write(memsw_file, swap)
        else:
            files.write(memsw_file, swap)
            files.write(limit_file, r.memory_limit)

    def add_process(self, pid: int) -> None:
        self._require()
        for directory, _mount in self._unique_dirs():
            files.write(os.path.join(directory, "cgroup.procs"), pid)

    def join_self(self) -> None:
        self._require()
        for directory, _mount in self._unique_dirs():
            files.write(os.path.join(directory, "tasks"), 0)  # "0" means the writing thread

    def processes(self) -> list[int]:
        procs = self._file("memory", "cgroup.procs") or self._file("pids", "cgroup.procs")
        if procs is None:
            procs = os.path.join(self._unique_dirs()[0][0], "cgroup.procs")
        return files.read_pids(procs)

    def metrics(self) -> Metrics:
        self._require()
        m = Metrics()
        if "memory" in self.dirs:
            m.memory_bytes = files.read_int(self._file("memory", "memory.usage_in_bytes"))
            m.memory_peak_bytes = files.read_int(self._file("memory", "memory.max_usage_in_bytes"))
            limit = files.read_int(self._file("memory", "memory.limit_in_bytes"))
            m.memory_limit_bytes = None if limit is None or limit >= V1_UNLIMITED_THRESHOLD else limit
            m.oom_kills = files.read_keyed(self._file("memory", "memory.oom_control")).get("oom_kill")
        if "cpuacct" in self.dirs:
            m.cpu_usage_ns = files.read_int(self._file("cpuacct", "cpuacct.usage"))
        if "cpu" in self.dirs:
            stat = files.read_keyed(self._file("cpu", "cpu.stat"))
            m.cpu_periods = stat.get("nr_periods")
            m.cpu_throttled_periods = stat.get("nr_throttled")
            m.cpu_throttled_ns = stat.get("throttled_time")
            quota = files.read_int(self._file("cpu", "cpu.cfs_quota_us"))
            m.cpu_quota_us = None if quota is None or quota < 0 else quota
            m.cpu_period_us = files.read_int(self._file("cpu", "cpu.cfs_period_us"))
        if "pids" in self.dirs:
            m.pids_current = files.read_int(self._file("pids", "pids.current"))
            m.pids_limit = files.read_int(self._file("pids", "pids.max"))
            m.pids_max_events = files.read_keyed(self._file("pids", "pids.events")).get("max")
        return m

    def destroy(self) -> None:
        for directory, mount in self._unique_dirs():
            files.rmdir_tree(directory)
            files.rmdir_empty_parents(directory, mount)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d, _m in self._unique_dirs())

    def freeze(self) -> None:
        state_file = self._needed_file("freezer", "freezer.state")
        files.write(state_file, "FROZEN")
        files.wait_for(lambda: (files.read(state_file) or "").strip() == "FROZEN", f"{state_file} to read FROZEN")

    def thaw(self) -> None:
        files.write(self._needed_file("freezer", "freezer.state"), "THAWED")

    def frozen(self) -> bool:
        state_file = self._file("freezer", "freezer.state")
        return state_file is not None and (files.read(state_file) or "").strip() in ("FROZEN", "FREEZING")
