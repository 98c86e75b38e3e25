"""Exercise checks for the filesystems chapter (04): each one looks at real kernel state.

- ``check_hidden_cpuinfo``: the learner's run() options must hide /proc/cpuinfo (Docker leaves
  it visible) and keep every mask Docker sets (the check reads the file and the mount table
  in a real container; rootless without root);
- ``check_readonly_root``: the learner's Container.create options must give a read-only
  root with a writable /data (the check starts that container, reads its mountinfo and
  tries to write in it);
- ``check_private_tmpfs``: the learner's function, run in a forked child, must mount a
  tmpfs that the host does not see, although the directory is a *shared* mount;
- ``check_escape``: the learner writes a chroot escape from a read-only jail.

As in teachdock.lab.common.checks, a ``judge_*`` function holds the verdict and the hints. It is
pure, so the unit tests feed it every likely mistake without root. A check never raises for
a wrong answer: it returns a CheckResult (green, red, or grey while the cell still holds ...).

The learner's own code (exercises 3 and 4) runs only in a forked child, never in the
notebook's process; what it prints is captured there and shown in the result.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import shutil
import sys

from teachdock import kernel
from teachdock.errors import TeachdockError
from teachdock.lab.common.checks import not_answered_yet, CheckResult, not_answered
from teachdock.lab.common.language import say
from teachdock.lab.filesystems.child import Child, become_root_in_user_namespace
from teachdock.lab.filesystems.experiments import (
    Mount,
    make_jail,
    mounts_under,
    read_mounts,
    scratch_directory,
    shared_mount,
    try_writes,
)


def _cannot_check(error: Exception) -> CheckResult:
    return CheckResult(False, say("Could not check your answer ({kind}: {error}). This check starts containers "
                                  "or makes mounts, which needs root: see the note at the top.",
                                  kind=type(error).__name__, error=error))


def _placeholder(): ...


def _is_placeholder(function) -> bool:
    """True for a function whose whole body is ``...`` (the exercise cell before it is answered)."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_code == _placeholder.__code__.co_code and \
        code.co_consts == _placeholder.__code__.co_consts


def _rootfs(rootfs):
    if rootfs is None:
        from teachdock.lab.common.views import busybox_rootfs  # noqa: PLC0415 - built once, on first use

        return busybox_rootfs()
    return rootfs


# --------------------------------------------------------------------------------------------
# Exercise 1: hide /proc/cpuinfo, and keep every mask Docker sets
# --------------------------------------------------------------------------------------------

#: The file the exercise hides: Docker leaves it visible, and it shows the host's CPUs.
HIDE_TARGET = "/proc/cpuinfo"

def why_masked(path: str) -> str:
    """Why Docker masks ``path``: the end of a hint, in the learner's language."""
    reasons = {
        "/proc/kcore": say("it is the host's physical memory, shaped as a core file"),
        "/proc/keys": say("the kernel's keyrings are not namespaced: it would list the host's keys"),
        "/proc/timer_list": say("it lists every timer on the host, with the PIDs and names of host processes"),
        "/sys/firmware": say("it holds the host's firmware tables (ACPI, DMI): hardware details and more"),
        "/proc/interrupts": say("it shows the host's interrupt counters per CPU and device"),
        "/proc/acpi": say("it exposes the host's ACPI interfaces"),
        "/proc/sched_debug": say("it lists the host's run queues, with every process on them"),
        "/proc/scsi": say("it exposes the host's SCSI devices"),
        "/proc/asound": say("it exposes the host's sound cards"),
        "/proc/latency_stats": say("it collects latency data across the whole host"),
        "/proc/timer_stats": say("it collects timer data across the whole host"),
        "/sys/devices/virtual/powercap": say("energy counters there have leaked secrets (the PLATYPUS attack)"),
    }
    return reasons.get(path) or say("it leaks host information")


def masked_in(mounts: list[Mount]) -> set[str]:
    """The paths a mount table masks: files with /dev/null bound over them, directories
    covered by an empty read-only tmpfs (below /proc or /sys). The device nodes a container
    without root gets bound from the host's /dev are not masks."""
    found = set()
    for m in mounts:
        if m.root == "/null" and not m.mount_point.startswith("/dev/"):
            found.add(m.mount_point)
        elif (m.fs_type == "tmpfs" and m.read_only and m.mount_point.startswith(("/proc/", "/sys/"))
              and m.mount_point != "/sys/fs/cgroup"):
            found.add(m.mount_point)
    return found


def judge_hidden_file(options: dict, *, bytes_read: int | None, masked: set[str], docker_masked: set[str],
                      target: str = HIDE_TARGET) -> CheckResult:
    """``bytes_read``: what ``wc -c < target`` printed in the learner's container (None: it could
    not be read at all); ``masked``: what its mount table masks; ``docker_masked``: what a default
    container masks on this machine (Docker's list, less the paths this kernel lacks)."""
    if target not in masked or bytes_read:
        if target in (options.get("readonly_paths") or []):
            return CheckResult(False, say("{target} is in readonly_paths, so the container may still read it "
                                          "({bytes_read} bytes here): read-only only forbids writing. Masking "
                                          "hides a path: the `masked_paths` option.",
                                          target=target, bytes_read=bytes_read))
        if bytes_read is None:
            return CheckResult(False, say("The container could not read {target} at all: nothing is bound over "
                                          "it, it is gone. A masked file is still there, and reads 0 bytes.",
                                          target=target))
        return CheckResult(False, say("The container still reads {bytes_read} bytes of {target}, the host's CPUs: "
                                      "nothing is bound over it. Give the `masked_paths` option (make_spec's "
                                      "signature lists it), a list of paths.", bytes_read=bytes_read, target=target))
    lost = sorted(docker_masked - masked)
    if len(lost) > 1:
        return CheckResult(False, say("{target} is hidden, but {path} (and {more} more) is visible again, and "
                                      "Docker masks it because {reason}. Your list *replaced* Docker's: start "
                                      "from DEFAULT_MASKED_PATHS and add to it.",
                                      target=target, path=lost[0], more=len(lost) - 1, reason=why_masked(lost[0])))
    if lost:
        return CheckResult(False, say("{target} is hidden, but {path} is visible again, and Docker masks it "
                                      "because {reason}. Your list *replaced* Docker's: start from "
                                      "DEFAULT_MASKED_PATHS and add to it.",
                                      target=target, path=lost[0], reason=why_masked(lost[0])))
    return CheckResult(True, say("Right: {target} reads 0 bytes (/dev/null is bound over it), and all {count} of "
                                 "Docker's masks are still there. Docker has no flag for this; lxcfs goes further "
                                 "and shows a cpuinfo made from the container's own cgroup limits.",
                                 target=target, count=len(docker_masked)))



def options_problem(options, call: str, leave_out) -> CheckResult | None:
    """The answer is not a dict of keyword arguments for ``call``, or names what the check supplies
    (``leave_out(names)`` says so, a whole sentence per check)."""
    if not isinstance(options, dict):
        return CheckResult(False, say("Answer with a dict of keyword arguments for {call}, such as "
                                      "dict(hostname='box') (you gave {kind}).", call=call, kind=type(options).__name__))
    clashes = sorted({"args", "rootfs", "bundle", "config", "container_id"} & options.keys())
    if clashes:
        return CheckResult(False, leave_out(", ".join(clashes)))
    return None

def check_hidden_cpuinfo(options, rootfs=None) -> CheckResult:
    """Exercise: options for run()/Container.create that hide /proc/cpuinfo and keep Docker's masks.

    The check runs two containers, one with the learner's options and one with none, reads
    ``wc -c`` of the file and both mount tables. It works without root too: run() then makes
    a rootless container, whose masks are the same."""
    if not_answered(options):
        return not_answered_yet()
    problem = options_problem(options, "run()", lambda names: say(
        "Leave out {names}: the check supplies the rootfs and the program itself.", names=names))
    if problem is not None:
        return problem
    from teachdock.kernel.mountinfo import parse_mountinfo  # noqa: PLC0415
    from teachdock.runtime import run  # noqa: PLC0415 - lab sits on top of the runtime

    script = f"wc -c < {HIDE_TARGET} || echo none; cat /proc/self/mountinfo"
    try:
        rootfs = str(_rootfs(rootfs))
        default = run(["cat", "/proc/self/mountinfo"], rootfs=rootfs, timeout=30)
        theirs = run(["sh", "-c", script], rootfs=rootfs, timeout=30, **options)
    except TypeError as error:
        return CheckResult(False, say("run() does not take these options: {error}.", error=error))
    except TeachdockError as error:
        return CheckResult(False, say("The runtime refused these options: {error}", error=error))
    except Exception as error:  # noqa: BLE001
        return _cannot_check(error)
    first, _, table = theirs.stdout.partition("\n")
    bytes_read = int(first) if first.strip().isdigit() else None
    return judge_hidden_file(options, bytes_read=bytes_read, masked=masked_in(parse_mountinfo(table)),
                             docker_masked=masked_in(parse_mountinfo(default.stdout)))


# --------------------------------------------------------------------------------------------
# Exercise 2: a container whose root is read-only, with a writable /data
# --------------------------------------------------------------------------------------------


def judge_readonly_root(*, root: Mount | None, data: Mount | None, writes: dict[str, str]) -> CheckResult:
    """``root``/``data``: the container's mounts at / and /data (None: no mount there);
    ``writes``: what a write test in the container got ("ok" or an errno name)."""
    if root is None:
        return CheckResult(False, say("The container has no root mount: did it start?"))
    if writes.get("/") == "ok" or not root.read_only:
        return CheckResult(False, say("The container's / accepts writes: its root is not read-only. Ask for a "
                                      "read-only root when you create it (the `readonly` option, like "
                                      "`docker run --read-only`)."))
    data_write = writes.get("/data")
    if data is None:
        if data_write == "ENOENT":
            return CheckResult(False, say("There is no /data in the container: the image has no such directory "
                                          "and nothing is mounted there. Add an entry for /data to the `mounts` "
                                          "option (a tmpfs, or a bind mount of a host directory); the runtime "
                                          "creates the mount point."))
        return CheckResult(False, say("/data is a plain directory of the read-only root, not a mount of its own, "
                                      "so it is read-only too. Mount something on /data."))
    if data.read_only or data_write == "EROFS":
        return CheckResult(False, say("/data is a mount ({fs_type}), but a read-only one: its options say 'ro'. "
                                      "Leave 'ro' out of that mount's options.", fs_type=data.fs_type))
    if data_write != "ok":
        return CheckResult(False, say("/data is a {fs_type} mount, but writing there failed with {error}.",
                                      fs_type=data.fs_type, error=data_write))
    return CheckResult(True, say("Right: / is read-only ({root_type}, ro) and /data is a writable {fs_type} mount. "
                                 "Docker spells it `docker run --read-only --tmpfs /data` (or `-v VOLUME:/data`). "
                                 "The program can keep state in /data and nowhere else.",
                                 root_type=root.fs_type, fs_type=data.fs_type))


def _mount_at(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that is visible at ``path`` (the last one mounted there)."""
    found = [m for m in mounts if m.mount_point == path]
    return found[-1] if found else None


def check_readonly_root(options, rootfs=None, state_root=None) -> CheckResult:
    """Exercise: the keyword arguments for Container.create that give a read-only root and a writable /data.

    The check creates that container (running ``sleep``), reads its mount table from the
    host, tries to write to / and to /data inside it, and deletes it again.
    """
    if not_answered(options):
        return not_answered_yet()
    problem = options_problem(options, "Container.create", lambda names: say(
        "Leave out {names}: the check supplies the rootfs and a `sleep` program itself. Give only the options "
        "that shape the filesystem.", names=names))
    if problem is not None:
        return problem
    if os.geteuid() != 0:
        return CheckResult(False, say("This check needs root: it reads the container's mount table from the host "
                                      "and enters its mount namespace to try the writes. Start the lab as root "
                                      "(sudo scripts/lab) to check your answer."))
    try:
        with scratch_directory("readonly-root") as scratch:
            # A private copy: the runtime creates missing mount points (/data) inside the rootfs,
            # and the shared busybox rootfs must stay as it is.
            copy = os.path.join(scratch, "rootfs")
            shutil.copytree(_rootfs(rootfs), copy, symlinks=True)
            return _judge_container(copy, options, state_root)
    except Exception as error:  # noqa: BLE001
        return _cannot_check(error)


def _judge_container(rootfs: str, options: dict, state_root) -> CheckResult:
    from teachdock.runtime import DEVNULL, Container  # noqa: PLC0415

    try:
        container = Container.create(f"fs-check-{secrets.token_hex(4)}", rootfs=rootfs, args=["sleep", "30"],
                                     state_root=state_root, stdout=DEVNULL, stderr=DEVNULL, **options)
    except TypeError as error:
        return CheckResult(False, say("Container.create does not take these options: {error}.", error=error))
    except TeachdockError as error:
        return CheckResult(False, say("The runtime refused these options: {error}", error=error))
    try:
        container.start()
        mounts = read_mounts(container.pid)
        writes = try_writes(container.pid, ["/", "/data"])
    finally:
        container.delete(force=True)
    return judge_readonly_root(root=_mount_at(mounts, "/"), data=_mount_at(mounts, "/data"), writes=writes)


# --------------------------------------------------------------------------------------------
# Learner code in a child: capture its output, record its system calls
# --------------------------------------------------------------------------------------------


class RefusedInHostNamespace(TeachdockError):
    """The learner's code tried to mount in the host's mount namespace; the check refused."""


@contextlib.contextmanager
def _captured_output():
    """A forked child must not write to the notebook's stdout: keep what it prints for the result."""
    buffer = io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buffer
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = saved


def _mount_recorder(calls: list, host_namespace: str | None):
    """In the child only: a kernel.watch_mounts callback that logs every mount(2) the learner
    makes through teachdock.kernel, and refuses those in the host's mount namespace (they
    would change the host for everyone)."""

    def record(source, target, fstype, flags, data):
        target_text = os.fsdecode(target) if target else ""
        calls.append({"target": target_text, "flags": int(flags), "fstype": os.fsdecode(fstype) if fstype else None})
        if host_namespace is not None and os.readlink("/proc/self/ns/mnt") == host_namespace:
            raise RefusedInHostNamespace(f"mount on {target_text} refused: this process is still in the host's "
                                         "mount namespace")

    return record


def _error_text(error: BaseException) -> str:
    name = errno.errorcode.get(getattr(error, "errno", None) or 0, "")
    return f"{type(error).__name__}: {error}" + (f" [{name}]" if name and name not in str(error) else "")


# --------------------------------------------------------------------------------------------
# Exercise 3: a tmpfs in a private mount namespace, invisible to the host
# --------------------------------------------------------------------------------------------


def judge_private_tmpfs(*, refused: bool, error: str | None, own_namespace: bool, inside: Mount | None,
                        host_sees: bool, calls: list[dict]) -> CheckResult:
    """``calls``: the mount(2) calls the learner's code made, as {"target", "flags", "fstype"}."""
    if refused:
        return CheckResult(False, say("Your function tried to mount while still in the host's mount namespace, "
                                      "and the check refused: that mount would have changed the host for every "
                                      "process. Give the child a mount namespace of its own (unshare with "
                                      "CLONE_NEWNS) first."))
    if error and "EPERM" in error:
        return CheckResult(False, say("Your function raised {error}. Mounting and unsharing need CAP_SYS_ADMIN: "
                                      "run the notebook as root.", error=error))
    if error and "EINVAL" in error:
        return CheckResult(False, say("Your function raised {error}. EINVAL from mount(2) usually means a flag "
                                      "combination it cannot take: propagation flags (MS_PRIVATE, MS_REC) go in "
                                      "a call of their own, with no source and no type.", error=error))
    if error:
        return CheckResult(False, say("Your function raised {error}.", error=error))
    if not own_namespace:
        return CheckResult(False, say("Your child never left the host's mount namespace, so anything it mounts is "
                                      "the host's. Call unshare with CLONE_NEWNS first."))
    if host_sees:
        private_calls = [c for c in calls if c["flags"] & (kernel.MS_PRIVATE | kernel.MS_SLAVE)]
        if any(not c["flags"] & kernel.MS_REC for c in private_calls):
            return CheckResult(False, say("The host sees your tmpfs. You changed propagation, but without MS_REC: "
                                          "only that one mount became private. The scratch directory is a mount "
                                          "of its own below it, and it stayed shared."))
        return CheckResult(False, say("The host sees your tmpfs: it propagated. The scratch directory is a "
                                      "*shared* mount (as / is on most systemd machines), and a new mount "
                                      "namespace starts with copies that are peers of the host's. Make your "
                                      "copies private (or slave), recursively, before you mount."))
    if inside is None:
        return CheckResult(False, say("Nothing is mounted on the target directory in your child's namespace. "
                                      "Mount a tmpfs on the path your function is given."))
    if inside.fs_type != "tmpfs":
        return CheckResult(False, say("On the target there is a mount of type {fs_type}, not a tmpfs. A bind "
                                      "mount shows a directory that exists already; a tmpfs is a new, empty "
                                      "filesystem.", fs_type=inside.fs_type))
    return CheckResult(True, say("Right: the tmpfs exists in your child's mount namespace only, and the host saw "
                                 "nothing, although the directory is a shared mount. The runtime's first step "
                                 "inside a new container does the same (rootfs.prepare: MS_REC | MS_PRIVATE on /)."))


def _private_tmpfs_work(channel, setup, target: str, host_namespace: str) -> dict:
    calls: list[dict] = []
    outcome = {"refused": False, "error": None, "printed": ""}
    with _captured_output() as printed:
        try:
            with kernel.watch_mounts(_mount_recorder(calls, host_namespace)):
                setup(target)
        except RefusedInHostNamespace:
            outcome["refused"] = True
        except BaseException as error:  # noqa: BLE001 - the learner's mistake, reported to them
            outcome["error"] = _error_text(error)
    outcome.update(calls=calls, printed=printed.getvalue()[-2000:], namespace=os.readlink("/proc/self/ns/mnt"))
    channel.send(**outcome)
    channel.receive()  # stay alive while the parent looks at both mount tables
    return outcome


def check_private_tmpfs(setup) -> CheckResult:
    """Exercise: ``setup(target)`` runs in a forked child and must mount a tmpfs on ``target``
    that the host does not see. ``target`` lies in a scratch directory that is a shared mount."""
    if not_answered(setup) or _is_placeholder(setup):
        return not_answered_yet()
    if not callable(setup):
        return CheckResult(False, say("Answer with a function that takes the target path (you gave {kind}).",
                                      kind=type(setup).__name__))
    if os.geteuid() != 0:
        return CheckResult(False, say("This check makes a shared mount on the host, which needs root: run the "
                                      "notebook as root. (Your function itself could work rootless, in a user "
                                      "namespace.)"))
    host_namespace = os.readlink("/proc/self/ns/mnt")
    try:
        with scratch_directory("exercise") as scratch, shared_mount(scratch):
            target = os.path.join(scratch, "mine")
            os.mkdir(target)
            with Child(_private_tmpfs_work, setup, target, host_namespace) as child:
                outcome = child.receive()
                inside = mounts_under(target, read_mounts(child.pid))
                host_sees = bool(mounts_under(target))
                child.send(done=True)
    except Exception as error:  # noqa: BLE001
        return _cannot_check(error)
    result = judge_private_tmpfs(refused=outcome["refused"], error=outcome["error"],
                                 own_namespace=outcome["namespace"] != host_namespace,
                                 inside=inside[-1] if inside else None, host_sees=host_sees, calls=outcome["calls"])
    return _with_printed(result, outcome["printed"])


def _with_printed(result: CheckResult, printed: str) -> CheckResult:
    """What the learner's function printed in the child, after the verdict."""
    if printed:
        result.message = say("{verdict} (Your function printed: {printed})", verdict=result.message,
                             printed=printed.strip()[:300])
    return result


# --------------------------------------------------------------------------------------------
# Exercise 4: escape a read-only chroot jail
# --------------------------------------------------------------------------------------------


def judge_escape(*, escaped: bool, error: str | None, calls: list[tuple[str, str]], jail_depth: int) -> CheckResult:
    """``calls``: ("chroot" | "chdir" | "fchdir", argument) in the order the learner's code made them."""
    if escaped:
        return CheckResult(True, say("Right: your process's root is the host's / again. chroot moved where path "
                                     "lookups start, nothing more. Containers use pivot_root in a mount namespace "
                                     "of their own instead, and then there is no host tree left to climb to."))
    if error and "EROFS" in error:
        return CheckResult(False, say("The jail is read-only, so you cannot create a directory in it. You do not "
                                      "need a new one: any directory that already exists below you can be the "
                                      "hatch."))
    if error:
        return CheckResult(False, say("Your function raised {error}.", error=error))
    chroots = [argument for call, argument in calls if call == "chroot"]
    if not chroots:
        return CheckResult(False, say("You never called os.chroot, so your root is still the jail's. The trick "
                                      "needs two chroot calls: one that leaves your working directory outside "
                                      "your root, and one at the end."))
    first = next(i for i, (call, _) in enumerate(calls) if call == "chroot")
    if any(call == "chdir" and argument in ("/", chroots[0]) for call, argument in calls[first + 1:first + 2]):
        return CheckResult(False, say("Right after your first chroot you changed into the new root, as chroot(1) "
                                      "does. That closes the door: the trick is to keep your working directory "
                                      "*outside* your new root."))
    climbs = sum(argument.count("..") for call, argument in calls if call == "chdir")
    if climbs < jail_depth:
        return CheckResult(False, say("You climbed {climbs} level(s) with '..', but this jail sits {depth} levels "
                                      "below the real root. '..' at the very top stays where it is, so climbing "
                                      "too often does no harm.", climbs=climbs, depth=jail_depth))
    if len(chroots) < 2:
        return CheckResult(False, say("You climbed out, but your root is still the directory of your first "
                                      "chroot, and absolute paths start there. Finish with a chroot to where you "
                                      "are now."))
    return CheckResult(False, say("Still inside the jail. Compare your steps with the four steps of the escape "
                                  "shown in section 1, and write them your way."))


def _escape_exercise_work(channel, escape, jail: str, user_namespace: bool) -> dict:
    calls: list[tuple[str, str]] = []
    outcome = {"error": None, "printed": ""}
    if user_namespace:
        become_root_in_user_namespace()
    kernel.unshare(kernel.CLONE_NEWNS)  # our own namespace, for the read-only bind of the jail
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount(jail, jail, None, kernel.MS_BIND)
    kernel.mount(None, jail, None, kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY)
    os.chroot(jail)
    os.chdir("/")
    real = {"chroot": os.chroot, "chdir": os.chdir, "fchdir": os.fchdir}

    def recorder(name):
        def call(argument, *rest, **options):
            calls.append((name, os.fsdecode(argument) if isinstance(argument, (str, bytes)) else str(argument)))
            return real[name](argument, *rest, **options)
        return call

    for name in real:
        setattr(os, name, recorder(name))
    with _captured_output() as printed:
        try:
            escape()
        except BaseException as error:  # noqa: BLE001 - the learner's mistake, reported to them
            outcome["error"] = _error_text(error)
    for name, function in real.items():
        setattr(os, name, function)
    info = os.stat("/")
    outcome.update(calls=calls, printed=printed.getvalue()[-2000:], root=[info.st_dev, info.st_ino])
    return outcome


def check_escape(escape, *, user_namespace: bool | None = None) -> CheckResult:
    """Exercise: ``escape()`` runs in a forked child chrooted into a read-only jail; afterwards
    the child's root must be the host's "/"."""
    if not_answered(escape) or _is_placeholder(escape):
        return not_answered_yet()
    if not callable(escape):
        return CheckResult(False, say("Answer with a function that takes no arguments (you gave {kind}).",
                                      kind=type(escape).__name__))
    use_userns = os.geteuid() != 0 if user_namespace is None else user_namespace
    host_root = os.stat("/")
    try:
        with scratch_directory("escape") as scratch:
            jail = make_jail(scratch)  # bind-mounted read-only in the child
            with Child(_escape_exercise_work, escape, jail, use_userns) as child:
                outcome = child.result()
    except Exception as error:  # noqa: BLE001
        return _cannot_check(error)
    escaped = tuple(outcome["root"]) == (host_root.st_dev, host_root.st_ino)
    depth = len([part for part in jail.split("/") if part])
    result = judge_escape(escaped=escaped, error=outcome["error"],
                          calls=[tuple(call) for call in outcome["calls"]], jail_depth=depth)
    return _with_printed(result, outcome["printed"])
