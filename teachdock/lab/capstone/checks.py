"""The capstone's judges: the facts of one run -> a CheckResult with a hint for *that* mistake.

``check_level(level, run_container)`` (in ``__init__``) runs the learner's function in the
sandbox on the probe, looks from outside (``outside.look``), and hands everything to
``judge_level(level, facts)`` here. The judges are pure: a unit test gives them facts by hand.
A level's check runs the judges of every level up to it, in order, so the runtime keeps what
it could do before; the first one that finds something wrong speaks.

A judge returns None (right) or a hint. The hints name the mistake the facts show, and the
fix, in the words of the kernel: "unshare(CLONE_NEWPID) affects children: fork after unshare".
"""

from __future__ import annotations

import errno

from teachdock import kernel
from teachdock.lab.common.checks import CheckResult
from teachdock.lab.common.language import SaidWhenRead, say
from teachdock.lab.capstone.sandbox import PROBE_EXIT
from teachdock.runtime.spec import DEFAULT_CAPABILITIES



def level_names() -> dict[int, str]:
    """What each level adds, in the learner's language."""
    return {
        1: say("fork and exec"),
        2: say("a new PID and UTS namespace"),
        3: say("a mount namespace and a private /proc"),
        4: say("pivot_root into the busybox rootfs"),
        5: say("a cgroup with a memory limit"),
        6: say("dropped capabilities"),
        7: say("a veth to a bridge"),
    }


LEVELS = SaidWhenRead(level_names)  # level number -> what it adds
#: Levels that write cgroup files: root only (the cumulative runtime keeps its cgroup from 5 on).
ROOT_LEVELS = (5, 6, 7)


def probe_values(stdout: str) -> dict:
    """The probe's ``key=value`` lines (anything else the learner printed is ignored)."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


# --- errors the learner's code raised ------------------------------------------------------------
def hint_for_error(error: dict, where: str, mounts: list, level: int) -> str:
    """A raised exception -> what it means here (from the failing call and its errno)."""
    call, number, message = error.get("call"), error.get("errno"), error.get("message", "")
    if where == "child":
        said = say("Your code raised {kind} in the child, before exec: {message}", kind=error.get("kind"),
                   message=message)
    else:
        said = say("Your code raised {kind} in run_container: {message}", kind=error.get("kind"), message=message)
    if call == "pivot_root" and number in (errno.EINVAL, errno.EBUSY):
        binds = [m for m in mounts if "MS_BIND" in m["flags"] and m["source"] and m["source"] == m["target"]]
        private = [m for m in mounts if m["target"] == "/" and "MS_PRIVATE" in m["flags"]]
        if not binds:
            return say("{said}. The new root must be a mount point: bind-mount it onto itself first, "
                       "kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC).", said=said)
        if not private:
            return say("{said}. pivot_root refuses shared mounts, and / is shared here (as on most hosts): "
                       "kernel.mount(None, '/', None, kernel.MS_REC | kernel.MS_PRIVATE) first.", said=said)
        return say("{said}. Call it from inside the new root: os.chdir(rootfs); kernel.pivot_root('.', '.').",
                   said=said)
    if number == errno.EPERM and level >= 6 and call in ("sethostname", "mount", "pivot_root", "umount2", "unshare"):
        return say("{said}. Did you drop the capabilities too early? {call} needs CAP_SYS_ADMIN: drop the "
                   "capabilities last, just before exec.", said=said, call=call)
    if call == "sethostname" and number == errno.EPERM:
        return say("{said}. sethostname needs a UTS namespace of your own: kernel.unshare(kernel.CLONE_NEWUTS) "
                   "first.", said=said)
    if call == "mount" and number == errno.EPERM and "proc" in message:
        return say("{said}. The kernel refused a new proc. Mount it in the child (PID 1 of the new PID "
                   "namespace), and, from level 4 on, into the new root before pivot_root "
                   "(os.path.join(rootfs, 'proc')), as runc does: in a user namespace (without root) a proc "
                   "may only be mounted while a whole proc is still visible.", said=said)
    if number == errno.EEXIST and "cgroup" in message:
        return say("{said}. That cgroup is left from an earlier run that did not remove it: os.rmdir its "
                   "directory after waitpid (the check removed it now).", said=said)
    if number == errno.ENOENT and where == "child" and message.endswith("No such file or directory"):  # exec's
        return say("{said}. The program was not found: os.execvp searches PATH for argv[0] (os.execv does "
                   "not), and after pivot_root PATH's directories are the rootfs's (/bin).", said=said)
    if number == errno.ENOENT and "cgroup" in message:
        return say("{said}. If this came after pivot_root: you unshared CLONE_NEWNS in run_container itself, "
                   "and pivot_root moved run_container's root too. Unshare the mount namespace in the child.",
                   said=said)
    return said + "."


# --- one judge per level ---------------------------------------------------------------------------
def judge_fork_exec(f: dict) -> str | None:
    if f.get("timed_out"):
        return say("run_container did not finish within {timeout} s and the check stopped it. Does the "
                   "parent wait for the child it forked (os.waitpid(pid, 0)), and does the child exec?",
                   timeout=f.get("timeout"))
    if f.get("error"):
        return hint_for_error(f["error"], f.get("error_where"), f.get("mounts_called", []), f["level"])
    outside = f.get("outside") or {}
    stderr = f.get("stderr", "")
    if "can't fork" in stderr and "Cannot allocate memory" in stderr:
        return say("The program could not fork (ENOMEM): its first child became PID 1 of a new PID namespace and "
                   "exited, and a PID namespace whose PID 1 has gone takes no new process. You called "
                   "unshare(CLONE_NEWPID) in the process that then exec'd, and unshare(CLONE_NEWPID) affects "
                   "children: fork after unshare - unshare in run_container, fork, and the child is PID 1.")
    if f.get("child_returned"):
        return say("A child you forked came back out of run_container instead of becoming the program: in the "
                   "child, os.execvp(argv[0], argv) - it does not return.")
    if outside.get("program_pid") is None:
        if f.get("returned_early") and "pid" in f.get("inside", {}):
            return say("run_container returned while the program was still running (and ending run_container "
                       "ended it): the parent must os.waitpid(pid, 0) for the child it forked.")
        if "pid" in f.get("inside", {}):
            return say("The program started but ended before the check could look at it (stderr: {stderr}).",
                       stderr=stderr.strip()[:300] or say("empty"))
        if f.get("returned_early"):
            return say("run_container returned before the program had even started: the parent must "
                       "os.waitpid(pid, 0) for the child it forked.")
        return say("The program never ran: in the child, os.execvp(argv[0], argv). (stderr: {stderr})",
                   stderr=f.get("stderr", "").strip()[:200] or say("empty"))
    if outside["program_pid"] == outside.get("runner_pid"):
        return say("exec replaced run_container's own process: nothing was left to wait for the program and "
                   "return its exit status. fork() first; exec in the child; os.waitpid in the parent.")
    if f.get("returned_early"):
        return say("run_container returned while the program was still running: the parent must "
                   "os.waitpid(pid, 0) for the child it forked.")
    returned = f.get("returned")
    if returned == PROBE_EXIT << 8:
        return say("You returned {returned}, waitpid's status word. os.waitstatus_to_exitcode(status) turns it "
                   "into the exit code, {code}.", returned=returned, code=PROBE_EXIT)
    if returned != PROBE_EXIT:
        return say("The program exited with {code}, and run_container returned {returned}: return its exit code.",
                   code=PROBE_EXIT, returned=repr(returned))
    return None


def judge_pid_uts(f: dict) -> str | None:
    outside, inside = f["outside"], f["inside"]
    ns, sandbox = outside["ns"], outside["sandbox_ns"]
    if ns["pid"] == sandbox["pid_for_children"]:
        if ns["pid_for_children"] != ns["pid"]:
            return say("The program is not PID 1 (it sees itself as {pid}): unshare(CLONE_NEWPID) affects "
                       "children, not the caller. You called it in the child, which then exec'd in the old "
                       "namespace: fork after unshare — unshare in run_container, then fork; the child is PID 1.",
                       pid=inside.get("pid"))
        return say("No new PID namespace: the program sees itself as PID {pid}. "
                   "kernel.unshare(kernel.CLONE_NEWPID) in run_container, then fork.", pid=inside.get("pid"))
    if inside.get("pid") != "1":
        return say("The program sees itself as PID {pid}, not 1: exec in the first child you fork.",
                   pid=inside.get("pid"))
    if ns["uts"] == sandbox["uts"]:
        return say("No new UTS namespace: the hostname you set was run_container's own (here the check's "
                   "sandbox; on a real host, the host's name!). kernel.unshare(kernel.CLONE_NEWUTS) in the child.")
    if inside.get("hostname") != f["name"]:
        return say("The hostname inside is {hostname}, not {name}: "
                   "kernel.sethostname(name) in the child, after unsharing CLONE_NEWUTS, before exec.",
                   hostname=repr(inside.get("hostname")), name=repr(f["name"]))
    return None


def judge_mount_proc(f: dict) -> str | None:
    outside, inside = f["outside"], f["inside"]
    if outside["ns"]["mnt"] == outside["sandbox_ns"]["mnt"]:
        return say("No new mount namespace: kernel.unshare(kernel.CLONE_NEWNS) in the child.")
    if f.get("leaked"):
        return say("Your mounts leaked out of the container's mount namespace: {leaked} appeared "
                   "where run_container started. / is shared here, as on most hosts (systemd): make it private "
                   "first, kernel.mount(None, '/', None, kernel.MS_REC | kernel.MS_PRIVATE).",
                   leaked=", ".join(f["leaked"]))
    if inside.get("procself") == "1":
        return None
    host_proc = _device_at(outside["sandbox_mounts"], "/proc")
    own_proc = [m for m in outside["mounts"] if m["fs_type"] == "proc" and m["mount_point"] == "/proc"
                and m["device"] != host_proc]
    if own_proc:
        return say("A new proc is mounted, but it shows another PID namespace (/proc/self is {procself}, not 1): "
                   "a proc shows the PID namespace of the process that mounts it. Mount it in the child, PID 1 "
                   "of the new namespace, not in run_container.", procself=inside.get("procself"))
    if f["level"] >= 4:
        return say("There is no proc of the container at /proc: mount it into the new root before pivot_root, "
                   "kernel.mount('proc', os.path.join(rootfs, 'proc'), 'proc'), in the child. A proc mounted on "
                   "the old root's /proc went away with the old root.")
    return say("/proc shows the host's processes (/proc/self is {procself}): mount a new "
               "proc after entering the PID namespace, kernel.mount('proc', '/proc', 'proc'), in the child.",
               procself=inside.get("procself") or say("missing"))


def judge_pivot_root(f: dict) -> str | None:
    outside = f["outside"]
    if outside.get("runner_root_is_rootfs"):
        return say("pivot_root moved run_container's own root too: you unshared CLONE_NEWNS in run_container, so "
                   "the parent shares the container's mount namespace. Unshare it in the child.")
    host_root = [(m["device"], m["root"]) for m in outside["sandbox_mounts"] if m["mount_point"] == "/"]
    still = [m["mount_point"] for m in outside["mounts"] if (m["device"], m["root"]) in host_root[-1:]]
    if still:
        return say("The host's root is still mounted in the container (at {where}): after pivot_root, "
                   "unmount the old root, kernel.umount2('.', kernel.MNT_DETACH) (or umount2(put_old, MNT_DETACH)).",
                   where=still[0])
    if outside.get("namespace_root_is_rootfs") is False:
        if outside.get("root_is_rootfs"):
            return say("The program's root is the rootfs, but its mount namespace's root is still the host's: "
                       "chroot changes one process's root, and the host's files stay one escape away. "
                       "pivot_root changes the namespace's root: os.chdir(rootfs); kernel.pivot_root('.', '.').")
        return say("The program's root is still the host's /: pivot_root into the rootfs "
                   "(os.chdir(rootfs); kernel.pivot_root('.', '.')).")
    return None


def judge_memory_cgroup(f: dict) -> str | None:
    cgroup, facts = f.get("cgroup"), (f["outside"].get("cgroup") or {})
    if cgroup is None:
        return None
    if not facts.get("exists"):
        return say("There is no cgroup {directory} while the program runs: os.mkdir(cgroup.directory) first.",
                   directory=cgroup.directory)
    if facts.get("limit") != f["memory"]:
        return say("The memory limit file {file} holds {limit}, not {memory}: "
                   "write str(memory) into it before the program starts.",
                   file=cgroup.limit_file, limit=facts.get("limit"), memory=f["memory"])
    if not facts.get("in_cgroup"):
        return say("The program is not in your cgroup (its memory cgroup is {path}): write the "
                   "child's PID into cgroup.procs before it execs (the child waits on a pipe until you have).",
                   path=repr(facts.get("path")))
    if f.get("cgroup_left_behind"):
        return say("The cgroup {directory} was still there after run_container returned: os.rmdir it after "
                   "waitpid (the check removed it now).", directory=cgroup.directory)
    return None


def judge_capabilities(f: dict) -> str | None:
    status = f["outside"]["status"]
    keep = kernel.capability_bits(DEFAULT_CAPABILITIES) & f["available_caps"]  # what this machine grants
    extra = status["cap_effective"] & ~keep
    if extra:
        names = kernel.capability_names(extra)
        shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
        if status["cap_bounding"] & extra:
            return say("CapEff still holds {count} capabilities beyond Docker's {docker} ({shown}). Root gets "
                       "every capability of its bounding set back at execve, so capset() before exec does not "
                       "last: drop the others from the bounding set, kernel.drop_bounding_capability(number), in "
                       "the child, last thing before exec.",
                       count=len(names), docker=len(DEFAULT_CAPABILITIES), shown=shown)
        return say("CapEff still holds {shown}: drop them before exec.", shown=shown)
    missing = keep & ~status["cap_effective"]
    if missing:
        return say("You dropped too many: {missing} are gone. Keep Docker's "
                   "defaults (DEFAULT_CAPABILITIES), so programs can still chown, kill and bind low ports.",
                   missing=", ".join(kernel.capability_names(missing)))
    return None


def judge_veth(f: dict) -> str | None:
    outside = f["outside"]
    if outside["ns"]["net"] == outside["sandbox_ns"]["net"]:
        return say("No new network namespace: kernel.unshare(kernel.CLONE_NEWNET) in the child.")
    links = outside.get("links") or {}
    if "error" in links:
        return say("The check could not list the network interfaces: {error}", error=links["error"])
    inside = [link for link in links.get("container", []) if link["kind"] == "veth"]
    outside_ends = [link for link in links.get("sandbox", []) if link["kind"] == "veth"]
    if not inside:
        if any(link["name"] == "eth0" for link in outside_ends):
            return say("eth0 is still in run_container's network namespace: the parent moved it before the child "
                       "had a network namespace of its own. Let the child unshare first and say so (close a pipe), "
                       "then move it: ip.link('set', index=..., net_ns_pid=pid).")
        return say("The container has no veth: create a pair, ip.link('add', ifname=host_end, kind='veth', "
                   "peer='eth0'), and move eth0 into the child's namespace: ip.link('set', index=..., "
                   "net_ns_pid=pid).")
    ports = [link for link in outside_ends if link["master"] == f["bridge"]]
    if not ports:
        return say("The host end of the veth is not on the bridge {bridge}: "
                   "ip.link('set', index=host_end_index, master=ip.link_lookup(ifname=bridge)[0]).",
                   bridge=f["bridge"])
    if not ports[0]["up"]:
        return say("The host end {name} is down: ip.link('set', index=..., state='up').", name=ports[0]["name"])
    if not inside[0]["up"]:
        return say("{name} is down inside the container: kernel.set_link_up('{name}') in "
                   "the child, after the parent has moved it in.", name=inside[0]["name"])
    return None


JUDGES = {1: judge_fork_exec, 2: judge_pid_uts, 3: judge_mount_proc, 4: judge_pivot_root,
          5: judge_memory_cgroup, 6: judge_capabilities, 7: judge_veth}


def judge_level(level: int, f: dict) -> CheckResult:
    """Every judge up to ``level``, in order; the first hint fails the check."""
    for number in range(1, level + 1):
        hint = JUDGES[number](f)
        if hint and number < level:
            return CheckResult(False, say("Level {level} (its level {number} part, {part}): {hint}", level=level,
                                          number=number, part=LEVELS[number], hint=hint))
        if hint:
            return CheckResult(False, say("Level {level}: {hint}", level=level, hint=hint))
    return CheckResult(True, say("Level {level} passed: {part}. {seen}", level=level, part=LEVELS[level],
                                 seen=seen(level, f)))


def seen(level: int, f: dict) -> str:
    """What the check saw, in one sentence (numbers from this run)."""
    outside, inside = f["outside"], f.get("inside", {})
    host_pid = outside["status"]["nspid"][0]
    if level >= 2:
        parts = [say("the program ran as host PID {host_pid}, PID {pid} inside, and run_container returned "
                     "{returned}", host_pid=host_pid, pid=inside.get("pid"), returned=f.get("returned"))]
        parts.append(say("hostname {hostname}", hostname=inside.get("hostname")))
    else:
        parts = [say("the program ran as host PID {host_pid}, and run_container returned {returned}",
                     host_pid=host_pid, returned=f.get("returned"))]
    if level >= 4:
        parts.append(say("its / is the rootfs ({root})", root=inside.get("root", "").strip()))
    if level >= 5 and outside.get("cgroup"):
        parts.append(say("memory limit {mib} MiB in {file}", mib=f["memory"] >> 20, file=f["cgroup"].limit_file))
    if level >= 6:
        parts.append(f"CapEff {outside['status']['cap_effective']:#x}")
    if level >= 7:
        parts.append(say("interfaces inside: {links}", links=inside.get("links", "").strip()))
    return say("Seen: {facts}.", facts="; ".join(parts))


def _device_at(mounts: list, mount_point: str) -> str | None:
    found = [m["device"] for m in mounts if m["mount_point"] == mount_point]
    return found[-1] if found else None
