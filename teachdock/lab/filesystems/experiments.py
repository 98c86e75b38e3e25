"""The experiments of chapter 04 (filesystems), each run in a forked child process.

Why a child every time: the notebook's own process must never chroot, unshare or setns.
A chroot would trap every later cell in the jail; a new mount namespace would hide the
host's mounts from the rest of the notebook (DESIGN.md, "Process model"). So each
experiment forks a child, the child changes *its* root or namespaces, and it reports what
it saw over a socket. When the child exits, its mount namespace and every mount in it die
with it.

A forked child of a Jupyter kernel must stay small: no printing (stdout belongs to the
kernel's messaging), no imports, no logging. The child code below only makes system calls,
lists directories and sends JSON.

What is here:

- mount tables: ``read_mounts`` (a process's table, parsed by ``teachdock.kernel.mountinfo``:
  all the fields of proc(5)'s mountinfo, including the propagation tags), ``mount_table`` to
  show one;
- ``Child`` (teachdock.lab.filesystems.child): fork, talk over a socket pair, always reap;
- the chroot escape: ``classic_escape`` (the five famous lines), ``escape_from_chroot`` and
  ``escape_from_container``;
- mount namespaces: ``scratch_directory``, ``shared_mount``, ``mount_in_new_namespace``,
  ``propagation_experiment`` and a small widget to play with it;
- ``pivot_root_in_child``: pivot_root with and without a mount point;
- ``plot_mounts``: the host's and a container's mount tables, side by side.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from html import escape

from teachdock import kernel
from teachdock.kernel.mountinfo import Mount, read_mountinfo
from teachdock.errors import KernelError, TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML
from teachdock.lab.filesystems.child import (
    Child,
    become_root_in_user_namespace,
    root_identity,
    run_in_child,
    user_namespace_wanted,
)

#: Every scratch directory of the chapter starts with this, so a leftover is easy to find.
SCRATCH_PREFIX = "teachdock-fs-"
_scratch_made: list[str] = []  # every scratch directory this process made, for the final check


# ---------------------------------------------------------------------------------------------
# Mount tables: /proc/<pid>/mountinfo, one line per mount (proc(5))
# ---------------------------------------------------------------------------------------------


def read_mounts(pid: int | str = "self") -> list[Mount]:
    """The mount table of a process, as that process sees it (paths relative to its root)."""
    return read_mountinfo(f"/proc/{pid}/mountinfo")


def mounts_under(path: str, mounts: list[Mount] | None = None) -> list[Mount]:
    """The mounts at ``path`` or below it (this process's table unless one is given)."""
    path = os.path.normpath(path)
    table = read_mounts() if mounts is None else mounts
    return [m for m in table if m.mount_point == path or m.mount_point.startswith(path + "/")]


def count_by_type(mounts: list[Mount]) -> Counter:
    """How many mounts of each filesystem type (proc, tmpfs, cgroup, ...)."""
    return Counter(m.fs_type for m in mounts)


def describe_mount(mount: Mount, masked_paths=(), readonly_paths=()) -> str:
    """What a container mount is for, in a few words (for the table and the tree)."""
    if mount.mount_point.startswith("/dev/") and mount.fs_type == "devtmpfs":
        return say("the host's node, bound in (no mknod in a user namespace)")
    if is_masked(mount, masked_paths):
        return say("masked: /dev/null bound over it") if mount.root == "/null" else \
            say("masked: an empty read-only tmpfs")
    if mount.mount_point in readonly_paths:
        return say("read-only bind of itself")
    notes = {"/": say("the rootfs, after pivot_root"), "/proc": say("this container's processes only"),
             "/dev": say("a small tmpfs, filled with 6 device nodes"), "/sys": say("read-only"),
             "/dev/pts": say("its own pseudo-terminals (newinstance)"), "/dev/shm": say("its own shared memory"),
             "/dev/mqueue": say("its own POSIX message queues"),
             "/tmp": say("scratch space (the root is read-only)"),
             "/sys/fs/cgroup": say("its own cgroup, read-only (empty without root)")}
    if mount.mount_point in notes:
        return notes[mount.mount_point]
    if mount.mount_point.startswith("/etc/"):
        return say("per-container file from the runtime")
    if mount.fs_type in ("cgroup", "cgroup2"):
        return say("its own cgroup directory")
    return ""


def is_masked(mount: Mount, masked_paths=()) -> bool:
    """/dev/null bound over a file, or an empty read-only tmpfs over a masked directory (a device
    node a container without root gets bound from the host's /dev is no mask)."""
    if mount.mount_point.startswith("/dev/") and mount.fs_type == "devtmpfs":
        return False
    return mount.root == "/null" or (mount.mount_point in masked_paths and mount.fs_type == "tmpfs"
                                     and mount.read_only)


def mount_table(mounts: list[Mount], masked_paths=(), readonly_paths=()) -> TextAndHTML:
    """A readable table of a mount list: mount point, type, ro/rw, propagation, what it is for."""
    rows, lines = [], []
    for m in mounts:
        note = describe_mount(m, masked_paths, readonly_paths)
        mode = "ro" if m.read_only else "rw"
        style = ' style="background:#fff1cc"' if is_masked(m, masked_paths) else ""
        rows.append(f"<tr{style}>" + "".join(f"<td style='text-align:left'>{escape(cell)}</td>" for cell in
                                               (m.mount_point, m.fs_type, mode, m.propagation_type, note)) + "</tr>")
        lines.append(f"{m.mount_point:<28} {m.fs_type:<8} {mode}  {m.propagation_type:<8} {note}")
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in
                   (say("mount point"), say("type"), "ro/rw", say("propagation"), say("what it is")))
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return TextAndHTML(html, "\n".join(lines))


# ---------------------------------------------------------------------------------------------
# chroot, and the classic escape
# ---------------------------------------------------------------------------------------------


def classic_escape(hatch: str = "escape-hatch", climbs: int = 64) -> list[str]:
    """The classic chroot escape. Needs CAP_SYS_CHROOT and nothing inside the jail.

    chroot(2) changes where path lookups *start*; it does not move the working directory.
    And ".." stops only when it reaches the root: a directory *above* the root never
    meets it on the way up.
    """
    os.makedirs(hatch, exist_ok=True)  # 1. any directory below where we stand
    os.chroot(hatch)                   # 2. make it our root, but do NOT chdir into it:
    #                                        our working directory is now outside our root
    for _ in range(climbs):            # 3. climb: ".." never meets our root, so we climb
        os.chdir("..")                 #    until we reach the top of the mount namespace
    os.chroot(".")                     # 4. make the top our root again
    return sorted(os.listdir("/"))


@dataclass
class EscapeAttempt:
    """What a process saw as "/" before and after the classic escape."""

    where: str
    before: list[str]
    after: list[str]
    reached_host_root: bool  # "/" after the escape is the host's very own "/" (same device and inode)

    def _repr_html_(self) -> str:
        return escape_table(self)._repr_html_()

    def __repr__(self) -> str:
        return repr(escape_table(self))


def _escape_work(channel, jail: str | None, container_pid: int | None, user_namespace: bool) -> dict:
    if user_namespace:
        become_root_in_user_namespace()
    if container_pid is not None:
        # Join the container's mount namespace. setns(2) moves our root and working directory
        # to that namespace's root: the container's rootfs (after its pivot_root).
        fd = os.open(f"/proc/{container_pid}/ns/mnt", os.O_RDONLY)
        kernel.setns(fd, kernel.CLONE_NEWNS)
        os.close(fd)
        os.chroot("/")  # we are in the container's filesystem: chroot to its "/" like a jailer would
    else:
        os.chroot(jail)
    os.chdir("/")
    before = sorted(os.listdir("/"))
    os.chdir("/tmp")  # somewhere writable for the hatch (a container's root is read-only)
    tmp = os.open(".", os.O_RDONLY)  # only to remove the hatch afterwards, wherever we end up
    after = classic_escape()
    os.rmdir("escape-hatch", dir_fd=tmp)
    os.close(tmp)
    return {"before": before, "after": after, "root": root_identity("/")}


def escape_from_chroot(jail: str, *, user_namespace: bool | None = None) -> EscapeAttempt:
    """chroot into ``jail`` in a forked child, then try the classic escape.

    ``jail`` needs a ``tmp`` directory. Without root the child first makes a user namespace
    of its own (where it holds CAP_SYS_CHROOT), so this works for everyone.
    """
    if not os.path.isdir(os.path.join(jail, "tmp")):
        raise TeachdockError(say("the jail {jail} needs a tmp directory for the escape hatch", jail=jail))
    seen = run_in_child(_escape_work, str(jail), None, user_namespace_wanted(user_namespace))
    return EscapeAttempt("plain chroot", seen["before"], seen["after"], tuple(seen["root"]) == root_identity("/"))


def escape_from_container(container_pid: int) -> EscapeAttempt:
    """Join a running container's mount namespace in a forked child, then try the classic escape.

    The child is host root with every capability, more than the container's own processes
    have. It stays in the host's PID namespace: joining the container's would change only
    the PID namespace of children it forks, and the escape needs none.
    """
    seen = run_in_child(_escape_work, None, int(container_pid), False)
    return EscapeAttempt("teachdock container", seen["before"], seen["after"],
                         tuple(seen["root"]) == root_identity("/"))


def _short(names: list[str], limit: int = 12) -> str:
    shown = " ".join(names[:limit])
    return shown + (f" … (+{len(names) - limit})" if len(names) > limit else "")


def _where(attempt: EscapeAttempt) -> str:
    """The column title of an attempt (``where`` stays English: it is data)."""
    titles = {"plain chroot": say("plain chroot"), "teachdock container": say("teachdock container")}
    return titles.get(attempt.where, attempt.where)


def escape_table(*attempts: EscapeAttempt) -> TextAndHTML:
    """The attempts side by side: "/" before, "/" after, and whether the host's root was reached."""
    escaped_style = ";background:#fbdada;color:#8f1d1d;font-weight:600"
    inside_style = ";background:#d9f2e6;color:#00603f;font-weight:600"
    rows = [(say("/ before the escape"), [(_short(a.before), "") for a in attempts]),
            (say("/ after the escape"), [(_short(a.after), "") for a in attempts]),
            (say("reached the host's / ?"), [(say("YES: escaped"), escaped_style) if a.reached_host_root
                                             else (say("no: still inside"), inside_style) for a in attempts])]
    head = "".join(f"<th style='text-align:left'>{escape(_where(a))}</th>" for a in attempts)
    body = []
    for title, cells in rows:
        tds = []
        for cell, marked in cells:
            tds.append(f"<td style='text-align:left{marked}'><code>{escape(cell)}</code></td>")
        body.append(f"<tr><td style='text-align:left'>{escape(title)}</td>{''.join(tds)}</tr>")
    html = f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    text = "\n".join(f"{title:<24}" + " | ".join(cell for cell, _ in cells) for title, cells in rows)
    return TextAndHTML(html, text)


def make_jail(directory: str, rootfs: str | None = None) -> str:
    """A directory to chroot into, at ``directory``/jail.

    By default a tiny handmade tree (bin, etc, home, tmp and a note), which needs no image and
    no root. With ``rootfs``, a private copy of it instead (the escape writes into the jail's
    /tmp, and the shared busybox rootfs must stay untouched).
    """
    jail = os.path.join(directory, "jail")
    if rootfs is not None:
        shutil.copytree(rootfs, jail, symlinks=True)
    for name in ("bin", "etc", "home", "tmp"):
        os.makedirs(os.path.join(jail, name), exist_ok=True)
    if rootfs is None:
        with open(os.path.join(jail, "YOU-ARE-IN-THE-JAIL"), "w") as f:
            f.write("Everything a chrooted process sees starts here.\n")
    return jail


# ---------------------------------------------------------------------------------------------
# Scratch directories and shared mounts on the host (always removed)
# ---------------------------------------------------------------------------------------------


def detach_mounts_under(path: str) -> list[str]:
    """Lazily detach every mount at or below ``path`` in this process's mount namespace."""
    detached = []
    for mount in sorted(mounts_under(path), key=lambda m: -len(m.mount_point)):
        try:
            kernel.umount2(mount.mount_point, kernel.MNT_DETACH)
            detached.append(mount.mount_point)
        except KernelError as error:
            if error.errno not in (errno.EINVAL, errno.ENOENT):  # already gone with its parent
                raise
    return detached


@contextlib.contextmanager
def scratch_directory(name: str = "scratch"):
    """A fresh directory under the system's temp dir; on exit every mount below it is
    detached and the directory removed, whatever happened inside."""
    path = os.path.realpath(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{name}-"))
    _scratch_made.append(path)
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        if os.geteuid() == 0:
            detach_mounts_under(path)
        shutil.rmtree(path, ignore_errors=True)


def scratch_directories_made() -> list[str]:
    """Every scratch directory this process made (the chapter's last cell counts them)."""
    return list(_scratch_made)


def leftovers() -> tuple[list[str], list[str]]:
    """(scratch directories that still exist, host mounts still below one of them), among
    those this process made. Both lists are empty after a clean run."""
    directories = [path for path in _scratch_made if os.path.exists(path)]
    table = read_mounts()
    mounts = [m.mount_point for path in _scratch_made for m in mounts_under(path, table)]
    return directories, mounts


@contextlib.contextmanager
def shared_mount(path: str):
    """Make ``path`` a mount point of its own, with *shared* propagation, in a new peer group.

    Many hosts (every systemd one) mount "/" shared; this makes the same situation in a
    scratch directory, so the experiments never touch the host's own root. Bind it onto
    itself (a mount point), make it private (leave any peer group it inherited), then
    shared (a new peer group). Undone on exit.
    """
    kernel.mount(path, path, None, kernel.MS_BIND)
    try:
        kernel.mount(None, path, None, kernel.MS_PRIVATE)
        kernel.mount(None, path, None, kernel.MS_SHARED)
        yield path
    finally:
        detach_mounts_under(path)


# ---------------------------------------------------------------------------------------------
# Mount namespaces and propagation
# ---------------------------------------------------------------------------------------------


@dataclass
class NamespaceMount:
    """A tmpfs mounted by a child in a new mount namespace, seen from both sides."""

    target: str
    inside: list[Mount]  # the child's mounts at the target
    inside_files: list[str]
    on_host: list[Mount]  # the host's mounts at the target (while the child was alive)
    host_files: list[str]


def _mount_in_new_namespace_work(channel, target: str, user_namespace: bool) -> None:
    if user_namespace:
        become_root_in_user_namespace()
    kernel.unshare(kernel.CLONE_NEWNS)  # copies of all the host's mounts, ours to change
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)  # nothing we do goes back
    kernel.mount("tmpfs", target, "tmpfs", 0, "size=1m")
    with open(os.path.join(target, "hello.txt"), "w") as f:
        f.write("written inside the new mount namespace\n")
    channel.send(files=sorted(os.listdir(target)))
    channel.receive()  # stay alive (and keep the namespace) until the host has looked


def mount_in_new_namespace(target: str, *, user_namespace: bool | None = None) -> NamespaceMount:
    """A child unshares its mount namespace and mounts a tmpfs on ``target``; then both
    sides look at ``target`` while the child is still alive."""
    with Child(_mount_in_new_namespace_work, str(target), user_namespace_wanted(user_namespace)) as child:
        files = child.receive()["files"]
        inside = mounts_under(target, read_mounts(child.pid))
        on_host = mounts_under(target)
        host_files = sorted(os.listdir(target))
        child.send(done=True)
    return NamespaceMount(str(target), inside, files, on_host, host_files)


#: What the child does to its copy of the shared scratch mount.
PROPAGATION_FLAGS = {"shared": 0, "slave": kernel.MS_SLAVE, "private": kernel.MS_PRIVATE}


@dataclass
class PropagationResult:
    """One run of the propagation experiment."""

    mode: str  # what the child made of its copy: shared, slave or private
    child_sees_host_mount: bool  # host -> child
    host_sees_child_mount: bool  # child -> host
    host_tags: tuple[str, ...]  # mountinfo optional fields of the host's scratch mount
    child_tags: tuple[str, ...]  # ... and of the child's copy


def _propagation_work(channel, scratch: str, flag: int) -> None:
    kernel.unshare(kernel.CLONE_NEWNS)  # our copy of the scratch mount starts as a peer of the host's
    if flag:
        kernel.mount(None, scratch, None, flag)
    channel.send(ready=True)
    channel.receive()  # the host has mounted from-host
    sees_host = bool(mounts_under(os.path.join(scratch, "from-host")))
    kernel.mount("tmpfs", os.path.join(scratch, "from-child"), "tmpfs", 0, "size=1m")
    mine = [m for m in read_mounts() if m.mount_point == scratch]
    channel.send(sees_host=sees_host, tags=list(mine[-1].propagation) if mine else [])
    channel.receive()  # the host has looked


def propagation_experiment(scratch: str, mode: str) -> PropagationResult:
    """Mount on each side of a new mount namespace and see what crosses over.

    ``scratch`` must be a shared mount (``shared_mount``). A child unshares its mount
    namespace and makes its copy of ``scratch`` ``mode`` (shared: left as it is; slave;
    private). Then the host mounts a tmpfs on ``scratch/from-host`` and the child one on
    ``scratch/from-child``. Every mount made here is gone when this returns.
    """
    if mode not in PROPAGATION_FLAGS:
        raise TeachdockError(say("mode {mode}: choose one of {modes}", mode=repr(mode),
                                 modes=", ".join(PROPAGATION_FLAGS)))
    scratch = os.path.realpath(scratch)
    own = [m for m in read_mounts() if m.mount_point == scratch]
    host_tags = own[-1].propagation if own else ()
    if not any(tag.startswith("shared:") for tag in host_tags):
        raise TeachdockError(say("{scratch} is not a shared mount: wrap the experiment in "
                                 "`with shared_mount(...)`", scratch=scratch))
    from_host, from_child = os.path.join(scratch, "from-host"), os.path.join(scratch, "from-child")
    os.makedirs(from_host, exist_ok=True)
    os.makedirs(from_child, exist_ok=True)
    try:
        with Child(_propagation_work, scratch, PROPAGATION_FLAGS[mode]) as child:
            child.receive()
            kernel.mount("tmpfs", from_host, "tmpfs", 0, "size=1m")
            child.send(go=True)
            seen = child.receive()
            host_sees = bool(mounts_under(from_child))
            child.send(done=True)
    finally:
        detach_mounts_under(from_host)
        detach_mounts_under(from_child)
    return PropagationResult(mode, seen["sees_host"], host_sees, host_tags, tuple(seen["tags"]))


def propagation_table(results: list[PropagationResult]) -> TextAndHTML:
    """One row per mode: what crossed from the host to the child, and from the child to the host."""
    def mark(flag: bool) -> tuple[str, str]:
        return (say("✔ yes"), "background:#fff1cc") if flag else (say("✘ no"), "")

    rows, lines = [], []
    for r in results:
        down, down_style = mark(r.child_sees_host_mount)
        up, up_style = mark(r.host_sees_child_mount)
        tags = " ".join(r.child_tags) or say("(none)")
        rows.append(f"<tr><td style='text-align:left'><b>{r.mode}</b></td>"
                    f"<td style='text-align:left'><code>{escape(tags)}</code></td>"
                    f"<td style='text-align:left;{down_style}'>{down}</td>"
                    f"<td style='text-align:left;{up_style}'>{up}</td></tr>")
        lines.append(f"{r.mode:<8} {tags:<12} host->child: {down:<6} child->host: {up}")
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in
                   (say("child's copy"), say("its mountinfo tag"), say("host's mount reaches the child?"),
                    say("child's mount reaches the host?")))
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return TextAndHTML(html, "\n".join(lines))


def propagation_explorer():
    """A widget: pick what the child makes of its copy, run the experiment, read the result."""
    import ipywidgets as widgets

    mode = widgets.ToggleButtons(options=list(PROPAGATION_FLAGS), value="shared",
                                 description=say("child's copy:"), style={"description_width": "initial"})
    button = widgets.Button(description=say("Run the experiment"), button_style="primary", icon="play",
                            layout=widgets.Layout(width="auto"))
    result = widgets.HTML(f"<i>{escape(say('Pick a propagation type and press the button.'))}</i>")
    box = widgets.VBox([mode, button, result])
    box.history = []  # every PropagationResult, for the curious (and the tests)

    def on_click(_button):
        try:
            with scratch_directory("explorer") as scratch, shared_mount(scratch):
                outcome = propagation_experiment(scratch, mode.value)
            box.history.append(outcome)
            result.value = propagation_table([outcome])._repr_html_()
        except Exception as error:  # noqa: BLE001 - show it in the widget, never lose it
            result.value = say("<b>The experiment failed:</b> {error}", error=escape(str(error)))

    button.on_click(on_click)
    box.mode, box.button, box.result = mode, button, result
    return box


# ---------------------------------------------------------------------------------------------
# pivot_root
# ---------------------------------------------------------------------------------------------


@dataclass
class PivotResult:
    """What a child saw after pivot_root into ``new_root`` (and detaching the old root)."""

    new_root: str
    listing: list[str]  # "/" after pivot_root
    mounts: list[Mount]  # the child's whole mount table, read from the host while it waited
    steps: list[str] = field(default_factory=list)


def _pivot_work(channel, new_root: str, bind_mount: str | None, user_namespace: bool) -> None:
    steps = []  # what was done, by name: the parent writes the sentences (a forked child stays small)
    if user_namespace:
        become_root_in_user_namespace()
        steps.append("user")
    kernel.unshare(kernel.CLONE_NEWNS)
    steps.append("mount-namespace")
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    steps.append("rprivate")
    if bind_mount:
        kernel.mount(bind_mount, bind_mount, None, kernel.MS_BIND | kernel.MS_REC)
        steps.append("rbind")
    os.chdir(new_root)
    kernel.pivot_root(".", ".")
    steps.append("pivot_root")
    kernel.umount2(".", kernel.MNT_DETACH)
    steps.append("detach")
    os.chdir("/")
    channel.send(listing=sorted(os.listdir("/")), steps=steps)
    channel.receive()  # wait while the parent reads our mount table


def _pivot_step(step: str, bind_mount: str | None) -> str:
    """One step the pivot_root child made, as a line for the learner: the call, then what it did."""
    sentences = {
        "user": say("unshare(CLONE_NEWUSER): root in a user namespace of our own"),
        "mount-namespace": say("unshare(CLONE_NEWNS): a mount namespace of our own"),
        "rprivate": say("mount --make-rprivate /: nothing we do reaches the host"),
        "rbind": say("mount --rbind {path} {path}: now a mount point", path=bind_mount),
        "pivot_root": say('pivot_root(".", "."): the new root is "/", the old root stacked on top of it'),
        "detach": say('umount2(".", MNT_DETACH): the old root, with the host\'s whole tree, is detached'),
    }
    return sentences[step]


def pivot_root_in_child(new_root: str, *, bind_mount: str | None,
                        user_namespace: bool | None = None) -> PivotResult:
    """In a forked child with a new, private mount namespace: pivot_root into ``new_root``.

    ``bind_mount`` names a directory to bind-mount onto itself first (``new_root`` itself,
    as the runtime does, or None for no mount). When the kernel refuses, its KernelError is
    raised here, in the notebook; the child and its namespace are gone either way.
    """
    with Child(_pivot_work, str(new_root), bind_mount and str(bind_mount),
               user_namespace_wanted(user_namespace)) as child:
        seen = child.receive()
        mounts = read_mounts(child.pid)
        child.send(done=True)
    return PivotResult(str(new_root), seen["listing"], mounts,
                       [_pivot_step(step, bind_mount) for step in seen["steps"]])


def explain_pivot_root_error(error: KernelError) -> str:
    """Why pivot_root(2) said no, in one sentence per errno it gives."""
    if error.errno == errno.EBUSY:
        return say("EBUSY: the new root is on the same mount as the current root. pivot_root swaps two mounts; "
                   "inside one mount there is nothing to swap.")
    if error.errno == errno.EINVAL:
        return say("EINVAL: the new root is not a mount point (or a mount involved has shared propagation). "
                   "pivot_root swaps whole mounts, and a plain directory is not one.")
    if error.errno == errno.EPERM:
        return say("EPERM: no CAP_SYS_ADMIN in the user namespace that owns this mount namespace.")
    return say("{error}: see pivot_root(2).", error=errno.errorcode.get(error.errno, error.errno))


# ---------------------------------------------------------------------------------------------
# A container's /proc, /dev, /sys, and writes inside it
# ---------------------------------------------------------------------------------------------


def _write_probe_work(channel, container_pid: int, paths: list[str]) -> dict:
    fd = os.open(f"/proc/{container_pid}/ns/mnt", os.O_RDONLY)
    kernel.setns(fd, kernel.CLONE_NEWNS)
    os.close(fd)
    outcome = {}
    for directory in paths:
        probe = os.path.join(directory, f".teachdock-write-probe-{os.getpid()}")
        try:
            with open(probe, "w") as f:
                f.write("x")
            os.unlink(probe)
            outcome[directory] = "ok"
        except OSError as error:
            outcome[directory] = errno.errorcode.get(error.errno, str(error.errno))
    return outcome


def try_writes(container_pid: int, directories) -> dict[str, str]:
    """Create (and remove) a file in each directory inside a running container's mount
    namespace: "ok", or the errno name (EROFS: read-only file system; ENOENT: no such directory)."""
    return run_in_child(_write_probe_work, int(container_pid), list(directories))


def masked_example(masked_paths) -> str | None:
    """A masked *file* this kernel has, for the demo (/proc/kcore is not built into every kernel)."""
    preferred = ["/proc/kcore", "/proc/interrupts", "/proc/timer_list", "/proc/keys", "/proc/sched_debug"]
    for path in preferred + list(masked_paths):
        if path in masked_paths and os.path.isfile(path):
            return path
    return None


# ---------------------------------------------------------------------------------------------
# The picture: the host's and a container's mount tables
# ---------------------------------------------------------------------------------------------

_TYPE_COLOURS = {  # Okabe-Ito, colour-blind safe; grey for the rest
    "tmpfs": "#E69F00", "proc": "#56B4E9", "sysfs": "#009E73", "cgroup": "#CC79A7", "cgroup2": "#CC79A7",
    "devpts": "#0072B2", "mqueue": "#D55E00", "devtmpfs": "#F0E442", "ext4": "#000000", "overlay": "#000000",
    "xfs": "#000000", "btrfs": "#000000",
}


def _colour(fs_type: str) -> str:
    return _TYPE_COLOURS.get(fs_type, "#999999")


def mount_tree_rows(mounts: list[Mount]) -> list[tuple[int, Mount]]:
    """(depth, mount) in depth-first order, children sorted by mount point: a `findmnt` tree."""
    ids = {m.mount_id for m in mounts}
    children: dict[int, list[Mount]] = {}
    roots = []
    for m in mounts:
        if m.parent_id in ids and m.parent_id != m.mount_id:
            children.setdefault(m.parent_id, []).append(m)
        else:
            roots.append(m)
    rows: list[tuple[int, Mount]] = []

    def visit(mount: Mount, depth: int) -> None:
        rows.append((depth, mount))
        for child in sorted(children.get(mount.mount_id, []), key=lambda c: c.mount_point):
            visit(child, depth + 1)

    for root in sorted(roots, key=lambda r: r.mount_point):
        visit(root, 0)
    return rows


def plot_mounts(host: list[Mount], container: list[Mount], masked_paths=(), readonly_paths=()):
    """Left: mounts per filesystem type, host vs container. Right: the container's mount tree.

    matplotlib's object API (no pyplot): returning the figure from a cell shows it once.
    """
    from matplotlib.figure import Figure

    rows = mount_tree_rows(container)
    fig = Figure(figsize=(11, max(4.5, 0.28 * len(rows) + 1.2)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.5])
    fig.suptitle(say("Same kernel, two mount tables: the host's and a container's"))

    host_counts, box_counts = count_by_type(host), count_by_type(container)
    types = sorted(set(host_counts) | set(box_counts), key=lambda t: (-(host_counts[t] + box_counts[t]), t))
    y = list(range(len(types)))
    height = 0.38
    bars_host = left.barh([v - height / 2 for v in y], [host_counts[t] for t in types], height,
                          color="#0072B2", label=say("host ({count} mounts)", count=len(host)))
    bars_box = left.barh([v + height / 2 for v in y], [box_counts[t] for t in types], height,
                         color="#E69F00", label=say("container ({count} mounts)", count=len(container)))
    left.bar_label(bars_host, padding=2, fontsize=8)
    left.bar_label(bars_box, padding=2, fontsize=8)
    left.set_yticks(y, types)
    left.invert_yaxis()
    left.set_xlabel(say("number of mounts"))
    left.set_title(say("mounts by filesystem type"))
    left.legend(loc="lower right", frameon=False)
    left.margins(x=0.15)
    for spine in ("top", "right"):
        left.spines[spine].set_visible(False)

    right.set_title(say("the container's mount tree (from its mountinfo)"))
    right.set_axis_off()
    step = 0.9
    count = len(rows)
    right.set_xlim(0, 10)
    right.set_ylim(-count + 0.3, 1)
    positions: dict[int, tuple[float, float]] = {}
    by_id = {m.mount_id: m for m in container}
    for index, (depth, mount) in enumerate(rows):
        x, row_y = 0.2 + depth * step, -index
        positions[mount.mount_id] = (x, row_y)
        if mount.parent_id in positions:
            px, py = positions[mount.parent_id]
            right.plot([px + 0.15, px + 0.15, x - 0.05], [py - 0.3, row_y, row_y], color="#bbbbbb", lw=0.8)
        parent = by_id.get(mount.parent_id)
        label = os.path.relpath(mount.mount_point, parent.mount_point) if depth and parent else mount.mount_point
        right.text(x, row_y, label, va="center", fontsize=8.5, fontfamily="monospace")
        note = describe_mount(mount, masked_paths, readonly_paths)
        right.text(5.6, row_y, f"{mount.fs_type}{' ro' if mount.read_only else ''}", va="center", fontsize=8,
                   color=_colour(mount.fs_type) if mount.fs_type not in ("devtmpfs",) else "#8a7d00",
                   fontweight="bold")
        right.text(7.0, row_y, note, va="center", fontsize=7.5, color="#555555")
    return fig
