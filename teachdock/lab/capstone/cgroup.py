"""Where a capstone container's memory cgroup lives, on cgroup v1 or v2.

The learner writes the cgroup files by hand (mkdir, the limit, ``cgroup.procs``, rmdir), as
runc's libcontainer/cgroups/fs (v1) and fs2 (v2) do. What differs between the two versions is
only *where*: v1 has a tree per controller (``/sys/fs/cgroup/memory/...``, the limit in
``memory.limit_in_bytes``), v2 one tree (``/sys/fs/cgroup/...``, the limit in ``memory.max``,
and the parent must hand the memory controller down in ``cgroup.subtree_control``).
``memory_cgroup(name)`` answers "where", from teachdock's cgroup layer, and readies the parent.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from teachdock.lab.common.language import say
from teachdock.runtime.cgroups import CGROUP_ROOT, detect_version, find_v1_mounts

#: Every capstone container's cgroup sits under this parent, in each hierarchy's root.
PARENT = "teachdock-capstone"


@dataclass(frozen=True)
class MemoryCgroup:
    """The paths of one container's memory cgroup (nothing here is created by the object itself)."""

    version: str      # "v1" or "v2"
    directory: str    # mkdir it, rmdir it when the container has exited
    limit_file: str   # write the limit in bytes here: memory.limit_in_bytes (v1) or memory.max (v2)
    procs_file: str   # write a PID here to move that process in: cgroup.procs

    def __str__(self) -> str:
        return say("{directory} ({version}: limit in {file})", directory=self.directory, version=self.version,
                   file=os.path.basename(self.limit_file))


def memory_cgroup(name: str, *, root: str = CGROUP_ROOT, prepare: bool = True) -> MemoryCgroup:
    """The memory cgroup of container ``name`` on this machine; with ``prepare`` (and root), the
    parent directory is made and, on v2, told to hand the memory controller down."""
    version = detect_version(root)
    if version == "v2":
        top = root
        limit = "memory.max"
    else:
        top = find_v1_mounts(root).get("memory")
        if top is None and os.path.isfile(os.path.join(root, "memory", "cgroup.procs")):
            top = os.path.join(root, "memory")  # a tree that is not a mount: a test's fake hierarchy
        if top is None:
            raise FileNotFoundError(say("no cgroup v1 memory hierarchy is mounted under {root}", root=root))
        limit = "memory.limit_in_bytes"
    parent = os.path.join(top, PARENT)
    if prepare and os.geteuid() == 0:
        os.makedirs(parent, exist_ok=True)
        if version == "v2":
            for directory in (top, parent):
                _enable_memory(directory)
    directory = os.path.join(parent, name)
    return MemoryCgroup(version, directory, os.path.join(directory, limit), os.path.join(directory, "cgroup.procs"))


def _enable_memory(directory: str) -> None:
    """v2: "+memory" into cgroup.subtree_control, so the children of ``directory`` get memory.max."""
    with open(os.path.join(directory, "cgroup.subtree_control")) as f:
        if "memory" in f.read().split():
            return
    with open(os.path.join(directory, "cgroup.subtree_control"), "w") as f:
        f.write("+memory")


def remove_memory_cgroup(cgroup: MemoryCgroup) -> bool:
    """Remove a cgroup a run left behind (its processes killed first), and the capstone's parent
    once it is empty; True when the run had left its cgroup."""
    left = os.path.isdir(cgroup.directory)
    if left:
        _remove(cgroup)
    try:
        os.rmdir(os.path.dirname(cgroup.directory))
    except OSError:  # absent, or another container's cgroup is still in it
        pass
    return left


def _remove(cgroup: MemoryCgroup) -> None:
    deadline = time.monotonic() + 5
    while True:
        with open(cgroup.procs_file) as f:
            pids = [int(line) for line in f if line.strip()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(cgroup.directory)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
