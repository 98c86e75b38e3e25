"""The folded solutions: one complete ``run_container`` per level, each the last one grown.

They are real code: the tests check each level with them, and ``solution(level)`` prints one
for a learner who is stuck (the notebook keeps it folded until asked). Each is the function a
learner writes in the notebook, in the same ~60 lines by level 7, on ``teachdock.kernel`` only
(and pyroute2 for the veth). Read them in order: each level adds a few lines.
"""

from __future__ import annotations

import inspect
import os

from teachdock import kernel
from teachdock.lab.capstone.cgroup import memory_cgroup
from teachdock.lab.common.language import say
from teachdock.runtime.spec import DEFAULT_CAPABILITIES


def level_1(name, argv, rootfs, memory, bridge):
    pid = os.fork()
    if pid == 0:                                   # the child becomes the program
        os.execvp(argv[0], argv)
    _, status = os.waitpid(pid, 0)                 # the parent waits for it
    return os.waitstatus_to_exitcode(status)


def level_2(name, argv, rootfs, memory, bridge):
    kernel.unshare(kernel.CLONE_NEWPID)            # for the children we fork next, not for us
    pid = os.fork()
    if pid == 0:                                   # PID 1 of the new PID namespace
        kernel.unshare(kernel.CLONE_NEWUTS)        # every other namespace: the child, for itself
        kernel.sethostname(name)
        os.execvp(argv[0], argv)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def level_3(name, argv, rootfs, memory, bridge):
    kernel.unshare(kernel.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS)
        kernel.sethostname(name)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)  # nothing leaks out
        kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        os.execvp(argv[0], argv)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def level_4(name, argv, rootfs, memory, bridge):
    kernel.unshare(kernel.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS)
        kernel.sethostname(name)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)  # the new root: a mount point
        kernel.mount("proc", os.path.join(rootfs, "proc"), "proc",  # mounted before pivot_root, as runc
                     kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)  # does (rootless: must)
        os.chdir(rootfs)
        kernel.pivot_root(".", ".")                # the old root now sits on top of the new one ...
        kernel.umount2(".", kernel.MNT_DETACH)     # ... so this unmounts the old root (as runc does)
        os.chdir("/")
        os.execvp(argv[0], argv)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def level_5(name, argv, rootfs, memory, bridge):
    kernel.unshare(kernel.CLONE_NEWPID)
    cgroup = memory_cgroup(name)
    os.mkdir(cgroup.directory)
    with open(cgroup.limit_file, "w") as f:
        f.write(str(memory))
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        os.read(go_read, 1)                        # wait until the parent has moved us into the cgroup
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS)
        kernel.sethostname(name)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)
        kernel.mount("proc", os.path.join(rootfs, "proc"), "proc",
                     kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        os.chdir(rootfs)
        kernel.pivot_root(".", ".")
        kernel.umount2(".", kernel.MNT_DETACH)
        os.chdir("/")
        os.execvp(argv[0], argv)
    os.close(go_read)
    with open(cgroup.procs_file, "w") as f:
        f.write(str(pid))
    os.close(go_write)                             # go
    _, status = os.waitpid(pid, 0)
    os.rmdir(cgroup.directory)                     # empty once the program has exited
    return os.waitstatus_to_exitcode(status)


def level_6(name, argv, rootfs, memory, bridge):
    kernel.unshare(kernel.CLONE_NEWPID)
    cgroup = memory_cgroup(name)
    os.mkdir(cgroup.directory)
    with open(cgroup.limit_file, "w") as f:
        f.write(str(memory))
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        os.read(go_read, 1)
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS)
        kernel.sethostname(name)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)
        kernel.mount("proc", os.path.join(rootfs, "proc"), "proc",
                     kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        os.chdir(rootfs)
        kernel.pivot_root(".", ".")
        kernel.umount2(".", kernel.MNT_DETACH)
        os.chdir("/")
        keep = kernel.capability_bits(DEFAULT_CAPABILITIES)
        for number in range(kernel.last_capability() + 1):  # last: mount and sethostname needed them
            if not keep >> number & 1:
                kernel.drop_bounding_capability(number)  # root gets its bounding set back at execve
        os.execvp(argv[0], argv)
    os.close(go_read)
    with open(cgroup.procs_file, "w") as f:
        f.write(str(pid))
    os.close(go_write)
    _, status = os.waitpid(pid, 0)
    os.rmdir(cgroup.directory)
    return os.waitstatus_to_exitcode(status)


def level_7(name, argv, rootfs, memory, bridge):
    from pyroute2 import IPRoute

    kernel.unshare(kernel.CLONE_NEWPID)
    cgroup = memory_cgroup(name)
    os.mkdir(cgroup.directory)
    with open(cgroup.limit_file, "w") as f:
        f.write(str(memory))
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        os.close(go_write)
        kernel.unshare(kernel.CLONE_NEWUTS | kernel.CLONE_NEWNS | kernel.CLONE_NEWNET)
        os.close(ready_write)                      # "my namespaces exist": the parent may wire them
        os.read(go_read, 1)                        # wait for the cgroup and the veth
        kernel.sethostname(name)
        kernel.set_link_up("lo")
        kernel.set_link_up("eth0")
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)
        kernel.mount("proc", os.path.join(rootfs, "proc"), "proc",
                     kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        os.chdir(rootfs)
        kernel.pivot_root(".", ".")
        kernel.umount2(".", kernel.MNT_DETACH)
        os.chdir("/")
        keep = kernel.capability_bits(DEFAULT_CAPABILITIES)
        for number in range(kernel.last_capability() + 1):
            if not keep >> number & 1:
                kernel.drop_bounding_capability(number)
        os.execvp(argv[0], argv)
    os.close(ready_write)
    os.close(go_read)
    os.read(ready_read, 1)                         # end of file: the child has its namespaces
    with open(cgroup.procs_file, "w") as f:
        f.write(str(pid))
    with IPRoute() as ip:                          # run_container's network namespace: the bridge's
        host_end = f"veth{pid}"
        ip.link("add", ifname=host_end, kind="veth", peer="eth0")
        ip.link("set", index=ip.link_lookup(ifname="eth0")[0], net_ns_pid=pid)
        ip.link("set", index=ip.link_lookup(ifname=host_end)[0],
                master=ip.link_lookup(ifname=bridge)[0], state="up")
    os.close(go_write)
    _, status = os.waitpid(pid, 0)
    os.rmdir(cgroup.directory)
    return os.waitstatus_to_exitcode(status)


SOLUTIONS = {1: level_1, 2: level_2, 3: level_3, 4: level_4, 5: level_5, 6: level_6, 7: level_7}


def solution_source(level: int) -> str:
    """The solution of ``level`` as the learner would write it: named run_container."""
    source = inspect.getsource(SOLUTIONS[level])
    return source.replace(f"def level_{level}(", "def run_container(", 1)


def solution(level: int) -> None:
    """Print the solution of one level (for when you are stuck; try first)."""
    if level not in SOLUTIONS:
        raise ValueError(say("the levels are 1 to {last}", last=max(SOLUTIONS)))
    print(solution_source(level))
