"""Build the filesystem a container sees, then make it the root.

This runs inside the container's new mount namespace, in the process that will become
the container's PID 1, before it executes the user's program. In order:

1. make every mount private, so nothing done here leaks back to the host;
2. bind-mount the rootfs onto itself: pivot_root needs the new root to be a mount point;
3. mount what config.json lists (/proc, a tmpfs /dev, /dev/pts, /sys read-only, ...),
   each destination resolved *inside* the rootfs so a symlink in an image cannot point
   a mount at the host;
4. fill /dev with the standard device nodes, then those ``linux.devices`` lists;
5. pivot_root into the rootfs and detach the old root: the host's files are now
   unreachable, not merely hidden as with chroot;
6. mask and write-protect the sensitive /proc and /sys paths; make / read-only if asked.

Every call that needs privilege or changes the mount table, the root or the container's
files after pivot_root goes through ``kernel``: the ``teachdock.kernel`` module by default,
a recording stand-in in the unit tests (tests/unit/test_rootfs_recording.py), which then
check the exact sequence of system calls without root.
"""

from __future__ import annotations

import errno
import os
import stat

import teachdock.kernel
from teachdock.errors import KernelError
from teachdock.kernel import (
    MNT_DETACH, MS_BIND, MS_DIRSYNC, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID,
    MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)
from teachdock.runtime.securejoin import secure_join

# mount option -> (flag, set it?) ; anything else is passed to the filesystem as data.
_FLAG_OPTIONS = {
    "ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True), "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
    "sync": (MS_SYNCHRONOUS, True), "async": (MS_SYNCHRONOUS, False),
    "dirsync": (MS_DIRSYNC, True), "remount": (MS_REMOUNT, True),
    "mand": (MS_MANDLOCK, True), "nomand": (MS_MANDLOCK, False),
    "atime": (MS_NOATIME, False), "noatime": (MS_NOATIME, True),
    "diratime": (MS_NODIRATIME, False), "nodiratime": (MS_NODIRATIME, True),
    "relatime": (MS_RELATIME, True), "norelatime": (MS_RELATIME, False),
    "strictatime": (MS_STRICTATIME, True), "nostrictatime": (MS_STRICTATIME, False),
    "bind": (MS_BIND, True), "rbind": (MS_BIND | MS_REC, True),
}
_PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

#: The device nodes every container gets: (name, major, minor), all character devices, mode 0666.
DEFAULT_DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
_DEV_SYMLINKS = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                 ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")]


def parse_options(options) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, filesystem data string)."""
    flags, propagation, data = 0, 0, []
    for option in options:
        if option in _FLAG_OPTIONS:
            flag, on = _FLAG_OPTIONS[option]
            flags = flags | flag if on else flags & ~flag
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def _make_mount_point(target: str, source: str | None, is_bind: bool) -> None:
    """Create the destination: a file when a file is bind-mounted onto it, else a directory."""
    if os.path.lexists(target):
        return
    if is_bind and source and os.path.exists(source) and not os.path.isdir(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    else:
        os.makedirs(target, exist_ok=True)


def mount_one(rootfs: str, entry: dict, cgroup_dirs: dict[str, str] | None = None, *,
              kernel=teachdock.kernel) -> None:
    """Make one mount from config.json inside ``rootfs`` (before pivot_root)."""
    destination = secure_join(rootfs, entry["destination"])
    kind = entry.get("type") or "bind"
    options = entry.get("options", [])
    flags, propagation, data = parse_options(options)
    source = entry.get("source")
    is_bind = kind == "bind" or bool(flags & MS_BIND)
    _make_mount_point(destination, source, is_bind)
    if kind == "cgroup":
        _mount_cgroup(destination, flags, cgroup_dirs or {}, kernel)
    elif is_bind:
        kernel.mount(source, destination, None, MS_BIND | (flags & MS_REC))
        if flags & ~(MS_BIND | MS_REC):
            # Bind mounts ignore every flag but MS_BIND/MS_REC the first time: remount to apply ro, nosuid, ...
            kernel.mount(None, destination, None, flags | MS_REMOUNT | MS_BIND)
    else:
        try:
            kernel.mount(source, destination, kind, flags, data or None)
        except KernelError as error:
            if kind == "sysfs" and error.errno == errno.EPERM:
                # No network namespace of our own (e.g. host network in a user namespace):
                # the kernel refuses a fresh sysfs, so reuse the host's, read-only.
                kernel.mount("/sys", destination, None, MS_BIND | MS_REC)
                kernel.mount(None, destination, None, flags | MS_REMOUNT | MS_BIND | MS_RDONLY)
            elif kind == "mqueue" and error.errno == errno.EPERM:
                return  # mqueue needs our own IPC namespace; without one the mount is skipped, as runc does
            else:
                raise
    if propagation:
        kernel.mount(None, destination, None, propagation)


def _mount_cgroup(destination: str, flags: int, cgroup_dirs: dict[str, str], kernel) -> None:
    """Show the container its own cgroup, read-only unless the mount says ``rw`` (``--privileged``).

    On cgroup v2 with a cgroup namespace a fresh cgroup2 mount shows exactly the
    container's subtree. Otherwise (v1, or no cgroup namespace) a tmpfs holds one
    read-only bind per controller of the container's own cgroup directories.
    """
    if "unified" in cgroup_dirs:
        kernel.mount(cgroup_dirs["unified"], destination, None, MS_BIND)
        kernel.mount(None, destination, None, flags | MS_REMOUNT | MS_BIND)
        return
    kernel.mount("tmpfs", destination, "tmpfs", flags & ~MS_RDONLY, "mode=755")
    for controller, host_dir in sorted(cgroup_dirs.items()):
        target = os.path.join(destination, controller)
        kernel.mkdir(target)  # in the tmpfs just mounted
        kernel.mount(host_dir, target, None, MS_BIND)
        kernel.mount(None, target, None, MS_REMOUNT | MS_BIND | (flags & MS_RDONLY)
                     | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if flags & MS_RDONLY:
        kernel.mount(None, destination, None, MS_REMOUNT | MS_RDONLY | (flags & ~MS_RDONLY))


def create_devices(rootfs: str, bind_from_host: bool, *, kernel=teachdock.kernel) -> None:
    """Fill a fresh /dev with null, zero, full, random, urandom, tty and the /proc/self/fd links.

    In a user namespace mknod is not allowed, so the host's nodes are bind-mounted instead
    (what runc does too).
    """
    dev = secure_join(rootfs, "/dev")
    for name, major, minor in DEFAULT_DEVICES:
        path = os.path.join(dev, name)
        if os.path.lexists(path):
            continue
        if bind_from_host:
            with open(path, "a"):
                pass
            kernel.mount(f"/dev/{name}", path, None, MS_BIND)
        else:
            kernel.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            kernel.chmod(path, 0o666)  # mknod honours the umask
    for name, target in _DEV_SYMLINKS:
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            kernel.symlink(target, path)


def create_listed_devices(rootfs: str, devices: list[dict], bind_from_host: bool, *,
                          kernel=teachdock.kernel) -> None:
    """Make the nodes config.json lists in ``linux.devices`` (``--device``, ``--privileged``), with
    their type, numbers, mode and owner; one that exists already (a default one) is kept.

    In a user namespace mknod is refused, so the node of the same path on the host is
    bind-mounted instead, as runc does.
    """
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for device in devices:
        path = secure_join(rootfs, device["path"])
        if os.path.lexists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)  # e.g. /dev/net for /dev/net/tun, in the fresh /dev
        if bind_from_host:
            with open(path, "a"):
                pass
            kernel.mount(device["path"], path, None, MS_BIND)
            continue
        mode = device.get("fileMode", 0o666)
        kernel.mknod(path, mode | kinds[device["type"]], os.makedev(device.get("major", 0), device.get("minor", 0)))
        kernel.chmod(path, mode)  # mknod honours the umask
        kernel.chown(path, device.get("uid", 0), device.get("gid", 0))


def enter_rootfs(rootfs: str, *, kernel=teachdock.kernel) -> None:
    """pivot_root into ``rootfs`` and drop the old root entirely.

    ``pivot_root(".", ".")`` stacks the old root on top of the new one at "/"; detaching
    it then leaves only the container's tree. No directory for the old root is needed.
    """
    kernel.chdir(rootfs)
    kernel.pivot_root(".", ".")
    kernel.mount(None, ".", None, MS_SLAVE | MS_REC)  # nothing we unmount may reach the host
    kernel.umount2(".", MNT_DETACH)
    kernel.chdir("/")


def mask_paths(paths, *, kernel=teachdock.kernel) -> None:
    """Hide files with /dev/null and directories with an empty read-only tmpfs (after pivot_root)."""
    for path in paths:
        try:
            kind = kernel.lstat(path).st_mode
        except OSError:  # not there (this kernel has no such file): nothing to hide
            continue
        try:
            if stat.S_ISDIR(kind):
                kernel.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
            else:
                kernel.mount("/dev/null", path, None, MS_BIND)
        except KernelError as error:
            if error.errno != errno.ENOENT:
                raise


def readonly_paths(paths, *, kernel=teachdock.kernel) -> None:
    """Bind each path onto itself and remount it read-only (after pivot_root)."""
    for path in paths:
        try:
            kernel.lstat(path)
        except OSError:
            continue
        kernel.mount(path, path, None, MS_BIND | MS_REC)
        # A remount replaces every flag: keep the ones the mount has (nosuid, nodev, noexec...).
        # statvfs's ST_* flag values are the kernel's MS_* values.
        kept = kernel.statvfs(path).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC
                                              | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)
        kernel.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | kept)


def prepare(config: dict, rootfs: str, *, cgroup_dirs: dict[str, str],
            in_user_namespace: bool, kernel=teachdock.kernel) -> None:
    """Everything above, in order. Called once, in the container's mount namespace."""
    linux = config.get("linux", {})
    propagation = _PROPAGATION.get(linux.get("rootfsPropagation", "rprivate"), MS_PRIVATE | MS_REC)
    kernel.mount(None, "/", None, MS_REC | MS_PRIVATE)
    kernel.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    destinations = set()
    for entry in config.get("mounts", []):
        mount_one(rootfs, entry, cgroup_dirs, kernel=kernel)
        destinations.add(os.path.normpath(entry["destination"]))
    if "/dev" in destinations:
        create_devices(rootfs, bind_from_host=in_user_namespace, kernel=kernel)
    create_listed_devices(rootfs, linux.get("devices") or [], bind_from_host=in_user_namespace, kernel=kernel)
    if propagation != MS_PRIVATE | MS_REC:
        kernel.mount(None, rootfs, None, propagation)
    enter_rootfs(rootfs, kernel=kernel)
    mask_paths(linux.get("maskedPaths", []), kernel=kernel)
    readonly_paths(linux.get("readonlyPaths", []), kernel=kernel)
    if config["root"].get("readonly"):
        kernel.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
