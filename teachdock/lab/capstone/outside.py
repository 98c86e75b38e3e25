"""What the kernel says about the learner's container, read from outside while it waits.

Everything here reads /proc of the host (or joins a namespace in a forked child, never in the
notebook's own process): the PIDs the program has (``NSpid``), its namespaces beside the
sandbox's, its mount table, its root, its capability sets, its memory cgroup's limit, and the
network interfaces on both ends of its veth. ``look(run, ...)`` returns them as a plain dict,
the *facts* the judges in ``checks.py`` read.
"""

from __future__ import annotations

import os

from teachdock import kernel
from teachdock.kernel.mountinfo import parse_mountinfo
from teachdock.lab.filesystems.child import run_in_child

NAMESPACE_LINKS = ("pid", "pid_for_children", "uts", "mnt", "net", "user")


def look(run: dict, *, argv, rootfs: str, level: int, memory_cgroup=None) -> dict:
    """The facts about the program the sandbox runs (called while it waits for its go)."""
    sandbox, runner = run["sandbox_pid"], run["runner_pid"]
    program = find_program(sandbox, argv)
    facts = {"program_pid": program, "runner_pid": runner, "sandbox_pid": sandbox}
    if program is None:
        return facts
    try:
        _look_at(facts, program, sandbox, runner, rootfs, level, memory_cgroup)
    except OSError as error:  # the program ended while we looked: judged as "ended too early"
        return {"program_pid": None, "runner_pid": runner, "sandbox_pid": sandbox, "look_error": str(error)}
    return facts


def _look_at(facts, program, sandbox, runner, rootfs, level, memory_cgroup) -> None:
    facts["status"] = read_status(program)
    facts["ns"] = namespaces(program)
    facts["sandbox_ns"] = namespaces(sandbox)
    facts["mounts"] = _mounts(program)
    facts["sandbox_mounts"] = _mounts(sandbox)
    facts["root_is_rootfs"] = _same_file(f"/proc/{program}/root", rootfs)
    facts["runner_root_is_rootfs"] = bool(runner) and _same_file(f"/proc/{runner}/root", rootfs)
    if level >= 4:
        facts["namespace_root_is_rootfs"] = _namespace_root_is(program, rootfs)
    if level >= 5 and memory_cgroup is not None:
        facts["cgroup"] = cgroup_facts(program, memory_cgroup)
    if level >= 7:
        facts["links"] = _links(program, sandbox)


def find_program(top: int, argv) -> int | None:
    """The PID of the process running ``argv`` at or below ``top`` (None if there is none)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    wanted = "\0".join(argv) + "\0"
    for pid in sorted(parents):
        if _descends(pid, top, parents):
            try:
                with open(f"/proc/{pid}/cmdline") as f:
                    if f.read() == wanted:
                        return pid
            except OSError:
                continue
    return None


def _descends(pid: int, top: int, parents: dict) -> bool:
    while pid > 1:
        if pid == top:
            return True
        pid = parents.get(pid, 0)
    return False


def read_status(pid: int) -> dict:
    """NSpid (the PID in each namespace, the host's first), CapEff and CapBnd of a process."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return {"nspid": [int(p) for p in fields.get("NSpid", "").split()],
            "cap_effective": int(fields.get("CapEff", "0"), 16), "cap_bounding": int(fields.get("CapBnd", "0"), 16)}


def namespaces(pid: int) -> dict:
    """{kind: "pid:[4026531836]"} from /proc/<pid>/ns/; for the sandbox, "pid" is what its
    children (the runner) got: its pid_for_children."""
    links = {}
    for kind in NAMESPACE_LINKS:
        try:
            links[kind] = os.readlink(f"/proc/{pid}/ns/{kind}")
        except OSError:
            links[kind] = None
    return links


def _mounts(pid: int) -> list[dict]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [{"mount_point": m.mount_point, "fs_type": m.fs_type, "device": m.device, "root": m.root}
                for m in parse_mountinfo(f.read())]


def _same_file(path: str, other: str) -> bool | None:
    try:
        a, b = os.stat(path), os.stat(other)
    except OSError:
        return None
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _namespace_root_is(pid: int, rootfs: str) -> bool | None:
    """Whether the root of the program's *mount namespace* is the rootfs: a forked child joins
    the namespace (setns puts it at the namespace's root) and looks. chroot changes one process's
    root and leaves the namespace's; pivot_root changes the namespace's."""
    wanted = os.stat(rootfs)
    try:
        dev, ino = run_in_child(_stat_namespace_root, pid, timeout=10)
    except Exception:  # noqa: BLE001 - a fact we could not learn stays unknown
        return None
    return (dev, ino) == (wanted.st_dev, wanted.st_ino)


def _join(pid: int, kinds: list[tuple[str, int]]) -> None:
    """setns into the program's namespaces (its user namespace first, when it is not ours)."""
    fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY) for kind, _ in kinds}
    if os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
        kernel.setns(os.open(f"/proc/{pid}/ns/user", os.O_RDONLY), kernel.CLONE_NEWUSER)
    for kind, flag in kinds:
        kernel.setns(fds[kind], flag)


def _stat_namespace_root(_channel, pid: int):
    _join(pid, [("mnt", kernel.CLONE_NEWNS)])
    info = os.stat("/")
    return [info.st_dev, info.st_ino]


def cgroup_facts(pid: int, cgroup) -> dict:
    """Is the program in the capstone cgroup, and what limit does that cgroup's file hold?"""
    line = ""
    with open(f"/proc/{pid}/cgroup") as f:
        for entry in f:
            _, controllers, path = entry.rstrip("\n").split(":", 2)
            if (cgroup.version == "v2" and controllers == "") or "memory" in controllers.split(","):
                line = path
    limit = None
    if os.path.exists(cgroup.limit_file):
        with open(cgroup.limit_file) as f:
            text = f.read().strip()
        limit = None if text == "max" else int(text)
    return {"path": line, "in_cgroup": line.rstrip("/").endswith("/" + os.path.basename(cgroup.directory)),
            "limit": limit, "exists": os.path.isdir(cgroup.directory)}


def _links(program: int, sandbox: int) -> dict:
    """The interfaces of the sandbox's and of the program's network namespace (pyroute2)."""
    from pyroute2 import IPRoute  # noqa: F401 - imported here, before the fork: the child only uses it

    try:
        return run_in_child(_list_links, program, sandbox, timeout=20)
    except Exception as error:  # noqa: BLE001
        return {"error": str(error)}


def _list_links(_channel, program: int, sandbox: int) -> dict:
    from pyroute2 import IPRoute

    found = {}
    for who, pid in (("sandbox", sandbox), ("container", program)):
        _join(pid, [("net", kernel.CLONE_NEWNET)])
        with IPRoute() as ip:
            links = ip.get_links()
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in links}
            found[who] = [{"name": link.get_attr("IFLA_IFNAME"),
                           "kind": (link.get_attr("IFLA_LINKINFO") or {}).get_attr("IFLA_INFO_KIND")
                           if link.get_attr("IFLA_LINKINFO") else None,
                           "up": bool(link["flags"] & 1),
                           "master": names.get(link.get_attr("IFLA_MASTER"))} for link in links]
    return found
