"""Build the filesystem a container sees, then make it the root.

This runs inside the container's new mount namespace, in the process that will become
the container's PID 1, before it executes the user's program. In order:

1. make every mount private, so nothing done here leaks back to the host;
2. bind-mount the rootfs onto itself: pivot_root needs the new root to be a mount point;
3. mount what config.json lists (/proc, a tmpfs /dev, /dev/pts, /sys read-only, ...),
   each destination resolved *inside* the rootfs so a symlink in an image cannot point
   a mount at the host;
4. fill /dev with the standard device nodes;
5. pivot_root into the rootfs and detach the old root: the host's files are now
   unreachable, not merely hidden as with chroot;
6. mask and write-protect the sensitive /proc and /sys paths; make / read-only if asked.
"""

from __future__ import annotations

import errno
import os
import stat

from teachdock import kernel
from teachdock.errors import KernelError
from teachdock.runtime.securejoin import secure_join

# mount option -> (flag, set it?) ; anything else is passed to the filesystem as data.
_FLAG_OPTIONS = {
    "ro": (kernel.MS_RDONLY, True), "rw": (kernel.MS_RDONLY, False),
    "nosuid": (kernel.MS_NOSUID, True), "suid": (kernel.MS_NOSUID, False),
    "nodev": (kernel.MS_NODEV, True), "dev": (kernel.MS_NODEV, False),
    "noexec": (kernel.MS_NOEXEC, True), "exec": (kernel.MS_NOEXEC, False),
    "sync": (kernel.MS_SYNCHRONOUS, True), "async": (kernel.MS_SYNCHRONOUS, False),
    "dirsync": (kernel.MS_DIRSYNC, True), "remount": (kernel.MS_REMOUNT, True),
    "mand": (kernel.MS_MANDLOCK, True), "nomand": (kernel.MS_MANDLOCK, False),
    "atime": (kernel.MS_NOATIME, False), "noatime": (kernel.MS_NOATIME, True),
    "diratime": (kernel.MS_NODIRATIME, False), "nodiratime": (kernel.MS_NODIRATIME, True),
    "relatime": (kernel.MS_RELATIME, True), "norelatime": (kernel.MS_RELATIME, False),
    "strictatime": (kernel.MS_STRICTATIME, True), "nostrictatime": (kernel.MS_STRICTATIME, False),
    "bind": (kernel.MS_BIND, True), "rbind": (kernel.MS_BIND | kernel.MS_REC, True),
}
_PROPAGATION = {
    "private": kernel.MS_PRIVATE, "rprivate": kernel.MS_PRIVATE | kernel.MS_REC,
    "shared": kernel.MS_SHARED, "rshared": kernel.MS_SHARED | kernel.MS_REC,
    "slave": kernel.MS_SLAVE, "rslave": kernel.MS_SLAVE | kernel.MS_REC,
    "unbindable": kernel.MS_UNBINDABLE, "runbindable": kernel.MS_UNBINDABLE | kernel.MS_REC,
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


def mount_one(rootfs: str, entry: dict, cgroup_dirs: dict[str, str] | None = None) -> None:
    """Make one mount from config.json inside ``rootfs`` (before pivot_root)."""
    destination = secure_join(rootfs, entry["destination"])
    kind = entry.get("type") or "bind"
    options = entry.get("options", [])
    flags, propagation, data = parse_options(options)
    source = entry.get("source")
    is_bind = kind == "bind" or bool(flags & kernel.MS_BIND)
    _make_mount_point(destination, source, is_bind)
    if kind == "cgroup":
        _mount_cgroup(destination, flags, cgroup_dirs or {})
    elif is_bind:
        kernel.mount(source, destination, None, kernel.MS_BIND | (flags & kernel.MS_REC))
        if flags & ~(kernel.MS_BIND | kernel.MS_REC):
            # Bind mounts ignore every flag but MS_BIND/MS_REC the first time: remount to apply ro, nosuid, ...
            kernel.mount(None, destination, None, flags | kernel.MS_REMOUNT | kernel.MS_BIND)
    else:
        try:
            kernel.mount(source, destination, kind, flags, data or None)
        except KernelError as error:
            if kind == "sysfs" and error.errno == errno.EPERM:
                # No network namespace of our own (e.g. host network in a user namespace):
                # the kernel refuses a fresh sysfs, so reuse the host's, read-only.
                kernel.mount("/sys", destination, None, kernel.MS_BIND | kernel.MS_REC)
                kernel.mount(None, destination, None, flags | kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY)
            elif kind == "mqueue" and error.errno == errno.EPERM:
                return  # mqueue needs our own IPC namespace; without one the mount is skipped, as runc does
            else:
                raise
    if propagation:
        kernel.mount(None, destination, None, propagation)


def _mount_cgroup(destination: str, flags: int, cgroup_dirs: dict[str, str]) -> None:
    """Show the container its own cgroup, read-only.

    On cgroup v2 with a cgroup namespace a fresh cgroup2 mount shows exactly the
    container's subtree. Otherwise (v1, or no cgroup namespace) a tmpfs holds one
    read-only bind per controller of the container's own cgroup directories.
    """
    if "unified" in cgroup_dirs:
        kernel.mount(cgroup_dirs["unified"], destination, None, kernel.MS_BIND)
        kernel.mount(None, destination, None, flags | kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY)
        return
    kernel.mount("tmpfs", destination, "tmpfs", flags & ~kernel.MS_RDONLY, "mode=755")
    for controller, host_dir in sorted(cgroup_dirs.items()):
        target = os.path.join(destination, controller)
        os.mkdir(target)
        kernel.mount(host_dir, target, None, kernel.MS_BIND)
        kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | kernel.MS_RDONLY
                     | kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    if flags & kernel.MS_RDONLY:
        kernel.mount(None, destination, None, kernel.MS_REMOUNT | kernel.MS_RDONLY | (flags & ~kernel.MS_RDONLY))


def create_devices(rootfs: str, bind_from_host: bool) -> None:
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
            kernel.mount(f"/dev/{name}", path, None, kernel.MS_BIND)
        else:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)  # mknod honours the umask
    for name, target in _DEV_SYMLINKS:
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            os.symlink(target, path)


def bind_file(rootfs: str, source: str, destination: str) -> None:
    """Bind a host file (e.g. the container's /etc/hosts) over a path inside the rootfs, when that path exists."""
    target = secure_join(rootfs, destination)
    if os.path.isfile(target) and not os.path.islink(target):
        kernel.mount(source, target, None, kernel.MS_BIND)


def enter_rootfs(rootfs: str) -> None:
    """pivot_root into ``rootfs`` and drop the old root entirely.

    ``pivot_root(".", ".")`` stacks the old root on top of the new one at "/"; detaching
    it then leaves only the container's tree. No directory for the old root is needed.
    """
    os.chdir(rootfs)
    kernel.pivot_root(".", ".")
    kernel.mount(None, ".", None, kernel.MS_SLAVE | kernel.MS_REC)  # nothing we unmount may reach the host
    kernel.umount2(".", kernel.MNT_DETACH)
    os.chdir("/")


def mask_paths(paths) -> None:
    """Hide files with /dev/null and directories with an empty read-only tmpfs (after pivot_root)."""
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                kernel.mount("tmpfs", path, "tmpfs", kernel.MS_RDONLY, None)
            elif os.path.lexists(path):
                kernel.mount("/dev/null", path, None, kernel.MS_BIND)
        except KernelError as error:
            if error.errno != errno.ENOENT:
                raise


def readonly_paths(paths) -> None:
    """Bind each path onto itself and remount it read-only (after pivot_root)."""
    for path in paths:
        if not os.path.lexists(path):
            continue
        kernel.mount(path, path, None, kernel.MS_BIND | kernel.MS_REC)
        # A remount replaces every flag: keep the ones the mount has (nosuid, nodev, noexec...).
        # statvfs's ST_* flag values are the kernel's MS_* values.
        kept = os.statvfs(path).f_flag & (kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
                                          | kernel.MS_NOATIME | kernel.MS_NODIRATIME | kernel.MS_RELATIME)
        kernel.mount(None, path, None, kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_REC | kept)


def prepare(config: dict, rootfs: str, *, etc_files: dict[str, str], cgroup_dirs: dict[str, str],
            in_user_namespace: bool) -> None:
    """Everything above, in order. Called once, in the container's mount namespace."""
    linux = config.get("linux", {})
    propagation = _PROPAGATION.get(linux.get("rootfsPropagation", "rprivate"), kernel.MS_PRIVATE | kernel.MS_REC)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)
    destinations = set()
    for entry in config.get("mounts", []):
        mount_one(rootfs, entry, cgroup_dirs)
        destinations.add(os.path.normpath(entry["destination"]))
    if "/dev" in destinations:
        create_devices(rootfs, bind_from_host=in_user_namespace)
    for destination, source in etc_files.items():
        if destination not in destinations:
            bind_file(rootfs, source, destination)
    if propagation != kernel.MS_PRIVATE | kernel.MS_REC:
        kernel.mount(None, rootfs, None, propagation)
    enter_rootfs(rootfs)
    mask_paths(linux.get("maskedPaths", []))
    readonly_paths(linux.get("readonlyPaths", []))
    if config["root"].get("readonly"):
        kernel.mount(None, "/", None, kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY)
