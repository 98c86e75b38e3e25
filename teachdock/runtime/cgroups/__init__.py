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

The package, one module per concept (as crun's libcrun/cgroup*.c):

* ``resources.py``: OCI ``linux.resources`` -> ``Resources``, checked; which file each field
  ends up in;
* ``driver.py``: ``Cgroup``, the methods every driver has, and ``Metrics``, what they read;
* ``v1.py``, ``v2.py``: the two drivers; ``none.py``: no cgroup (rootless);
* ``devices_bpf.py``: v2's device rules, an eBPF program assembled, loaded and attached;
* ``files.py``: reading and writing cgroup files, and the races of a live hierarchy.

teachdock never nests a container under the cgroup of the process that starts it: the path
``/teachdock/ID`` is always taken from the root of each hierarchy.
"""

from __future__ import annotations

import os

from teachdock.errors import CgroupError, InvalidConfig
from teachdock.kernel.mountinfo import MOUNTINFO, read_mountinfo
from teachdock.runtime.cgroups.devices_bpf import DeviceFilterError, may_make_device_nodes
from teachdock.runtime.cgroups.driver import Cgroup, Metrics
from teachdock.runtime.cgroups.files import CGROUP_ROOT, is_under
from teachdock.runtime.cgroups.none import NoCgroup
from teachdock.runtime.cgroups.resources import Resources, cpu_weight_from_shares, device_rule
from teachdock.runtime.cgroups.v1 import V1_CONTROLLERS, CgroupV1, find_v1_mounts, host_v1_mounts
from teachdock.runtime.cgroups.v2 import CgroupV2

__all__ = [
    "CGROUP_ROOT", "Cgroup", "CgroupV1", "CgroupV2", "DeviceFilterError", "Metrics", "NoCgroup", "Resources",
    "cpu_weight_from_shares", "detect_version", "device_rule", "find_v1_mounts", "may_make_device_nodes",
    "open_cgroup", "swap_accounting",
]


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
    for mount in mounts:
        if is_under(real_root, mount.mount_point):
            if holding is None or len(mount.mount_point) >= len(holding.mount_point):
                holding = mount
    if holding is not None and holding.fs_type == "cgroup2":
        return "v2"
    if os.path.isfile(os.path.join(real_root, "cgroup.controllers")):
        return "v2"
    if holding is not None and holding.fs_type == "cgroup":
        return "v1"
    if find_v1_mounts(real_root, mountinfo=mountinfo):
        return "v1"
    # A fake v1 tree in a test: <root>/<controller>/cgroup.procs
    if any(os.path.isfile(os.path.join(real_root, c, "cgroup.procs")) for c in V1_CONTROLLERS):
        return "v1"
    raise CgroupError(f"no cgroup filesystem found at {root}: neither cgroup2 nor v1 hierarchies are mounted there")


#: detect_version() of this machine, filled by host_version() on first use.
_host_version: str | None = None


def host_version() -> str:
    """detect_version() for this machine's /sys/fs/cgroup, worked out once per process.

    Why once: a host does not switch cgroup versions under a running runtime, and reading
    /proc/self/mountinfo (twice on a hybrid host) for every container cost ~0.5 ms.
    """
    global _host_version  # noqa: PLW0603 - a per-process cache
    if _host_version is None:
        _host_version = detect_version()
    return _host_version


def swap_accounting(root: str = CGROUP_ROOT) -> bool:
    """Does this kernel count swap per cgroup, so that a memory+swap limit can be set?

    dockerd asks the same (its SwapLimit) and, without it, runs ``--memory`` with unlimited swap
    and a warning. v1: the memory hierarchy has ``memory.memsw.limit_in_bytes`` (absent when the
    kernel boots with swapaccount=0); v2: a child cgroup has ``memory.swap.max`` (the root has none).
    """
    version = host_version() if root == CGROUP_ROOT else detect_version(root)
    if version == "v1":
        mounts = host_v1_mounts() if root == CGROUP_ROOT else find_v1_mounts(root)
        memory = mounts.get("memory") or os.path.join(root, "memory")
        return os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes"))
    with os.scandir(root) as entries:
        return any(entry.is_dir() and os.path.exists(os.path.join(entry.path, "memory.swap.max")) for entry in entries)


def open_cgroup(path: str, *, version: str | None = None, root: str = CGROUP_ROOT,
                mounts: dict[str, str] | None = None) -> "Cgroup":
    """The driver for cgroup ``path`` (like "/teachdock/ID") on this machine's cgroup version.

    Nothing is created yet: call ``create()``. ``mounts`` ({controller: dir}) replaces the
    v1 mount points found in /proc/self/mountinfo, for fake trees in tests.
    """
    version = version or (host_version() if root == CGROUP_ROOT else detect_version(root))
    if version == "v2":
        return CgroupV2(path, root=root)
    if version == "v1":
        return CgroupV1(path, root=root, mounts=mounts)
    if version == "none":
        return NoCgroup(path)
    raise InvalidConfig(f"unknown cgroup version {version!r}: use 'v1', 'v2' or 'none'")
