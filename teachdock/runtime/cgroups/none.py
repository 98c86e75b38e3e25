"""No cgroup at all: the driver a container gets without root (rootless)."""

from __future__ import annotations

from teachdock.errors import CgroupError
from teachdock.runtime.cgroups.driver import Cgroup, Metrics
from teachdock.runtime.cgroups.resources import Resources


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
