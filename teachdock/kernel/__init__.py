"""Thin wrappers for the Linux system calls a container runtime needs.

Python 3.11's standard library has ``os.fork``, ``os.execve``, ``os.mknod`` and
``os.sethostname``-free everything else, so the calls below go straight to the C
library through :mod:`ctypes`. Each wrapper does one system call, names its man page,
and turns a failure into :class:`teachdock.errors.KernelError` with a message that says
what the errno usually means *for a container*.

Nothing here decides policy: the runtime (``teachdock.runtime``) decides which
namespaces, mounts and capabilities a container gets, and calls these.

This module is also the runtime's *seam* (as youki's ``Syscall`` trait): code that changes
the mount table, the root or the hostname takes a ``kernel=`` argument, this module by
default, and calls ``kernel.<function>``. A unit test hands in a stand-in that records the
calls instead, and checks their exact order without root. ``watch_mounts`` lets a caller
see (and refuse) each mount(2) made through here, without replacing anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import fcntl
import os
import socket
import struct

from teachdock.errors import KernelError

_libc = ctypes.CDLL(None, use_errno=True)

# --- namespaces: clone(2) flags ------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: OCI namespace type -> (clone flag, name of the link in /proc/<pid>/ns/)
NAMESPACES = {
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "mount": (CLONE_NEWNS, "mnt"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "user": (CLONE_NEWUSER, "user"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# --- mount(2) flags ------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_FORCE = 1
MNT_DETACH = 2

# --- prctl(2) options ----------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- capabilities(7), in kernel bit order ----------------------------------------------
CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
CAP_NUMBER = {name: number for number, name in enumerate(CAPABILITIES)}

# pivot_root has no glibc wrapper; its number depends on the CPU architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# What an errno usually means when a container runtime gets it.
_HINTS = {
    _errno.EPERM: "the caller lacks the privilege (root, or CAP_SYS_ADMIN in the owning user namespace)",
    _errno.EACCES: "permission denied by file mode or a security module",
    _errno.EINVAL: "the kernel rejected the arguments",
    _errno.ENOENT: "a path does not exist",
    _errno.EBUSY: "the target is in use",
    _errno.ENOSPC: "a kernel limit on this object type is reached",
    _errno.EUSERS: "too many nested user namespaces",
}


def _fail(call: str, detail: str = "") -> KernelError:
    err = ctypes.get_errno()
    name = _errno.errorcode.get(err, str(err))
    hint = _HINTS.get(err, "")
    text = f"{call}{detail}: {os.strerror(err)} ({name})"
    if hint:
        text += f" - {hint}"
    return KernelError(call, err, text)


def _path(value) -> bytes | None:
    return None if value is None else os.fsencode(value)


# --- namespaces ---------------------------------------------------------------------------
def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (unshare(2)). PID and time namespaces apply to children only."""
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _fail("unshare", f"({namespace_names(flags)})")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` (an open /proc/<pid>/ns/<kind> file) refers to (setns(2))."""
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
        raise _fail("setns", f"({namespace_names(nstype) or 'any'})")


def namespace_names(flags: int) -> str:
    """Readable form of a set of CLONE_NEW* flags, e.g. 'pid|mount'."""
    return "|".join(kind for kind, (flag, _) in NAMESPACES.items() if flags & flag)


# --- mounts ---------------------------------------------------------------------------------
_mount_watchers: list = []


@contextlib.contextmanager
def watch_mounts(callback):
    """While the block runs, call ``callback(source, target, fstype, flags, data)`` before every
    mount(2) made through this module (``mount`` below), with the caller's arguments.

    The callback may refuse a mount by raising: the mount is then not made, and the exception
    reaches whoever called ``mount``. The lab uses this to log a learner's mounts and to refuse
    those that would change the host's mount table.
    """
    _mount_watchers.append(callback)
    try:
        yield callback
    finally:
        _mount_watchers.remove(callback)


def mount(source, target, fstype=None, flags: int = 0, data: str | None = None) -> None:
    """Attach a filesystem, or change a mount's flags or propagation (mount(2))."""
    for watcher in _mount_watchers:
        watcher(source, target, fstype, flags, data)
    data_bytes = None if data is None else data.encode()
    if _libc.mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), data_bytes) != 0:
        what = f"{fstype or 'bind' if flags & MS_BIND else fstype} {os.fsdecode(source) if source else ''}"
        raise _fail("mount", f"({what.strip()} -> {os.fsdecode(target)})")


def umount2(target, flags: int = 0) -> None:
    """Detach a mount; MNT_DETACH does it lazily once no one uses it (umount2(2))."""
    if _libc.umount2(_path(target), ctypes.c_int(flags)) != 0:
        raise _fail("umount2", f"({os.fsdecode(target)})")


def pivot_root(new_root, put_old) -> None:
    """Make ``new_root`` the root of this mount namespace; the old root moves to ``put_old`` (pivot_root(2))."""
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise KernelError("pivot_root", _errno.ENOSYS, f"pivot_root: unknown syscall number on {os.uname().machine}")
    if _libc.syscall(ctypes.c_long(number), _path(new_root), _path(put_old)) != 0:
        err = ctypes.get_errno()
        hint = {_errno.EBUSY: "the new root is on the same mount as the current root: bind-mount it onto itself first",
                _errno.EINVAL: "the new root is not a mount point, or a mount involved has shared propagation "
                               "(make the mount namespace private first)"}.get(err, _HINTS.get(err, ""))
        raise KernelError("pivot_root", err, f"pivot_root({os.fsdecode(new_root)}): {os.strerror(err)} "
                                             f"({_errno.errorcode.get(err, err)}) - {hint}")


# --- eBPF ------------------------------------------------------------------------------------
# bpf has no glibc wrapper either.
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}


def bpf(command: int, attr, call: str = "bpf") -> int:
    """One bpf(2) command; ``attr`` is a ctypes buffer holding the command's ``union bpf_attr``
    (the kernel may write answers into it). Returns the call's result: a new fd for a load."""
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise KernelError(call, _errno.ENOSYS, f"{call}: unknown bpf syscall number on {os.uname().machine}")
    result = _libc.syscall(ctypes.c_long(number), ctypes.c_int(command), ctypes.byref(attr),
                           ctypes.c_uint(ctypes.sizeof(attr)))
    if result < 0:
        raise _fail(call)
    return result


# --- the filesystem, for code that goes through the seam ---------------------------------------
# The os module has these calls already; they are named here so that the runtime's code that
# builds a container's root reaches the kernel through one object (see the module's docstring).
# Failures raise OSError, as the os module does.
def chdir(path) -> None:
    """Change the working directory (chdir(2)); pivot_root acts on the directory we stand in."""
    os.chdir(path)


def mkdir(path, mode: int = 0o777) -> None:
    """Create a directory (mkdir(2))."""
    os.mkdir(path, mode)


def mknod(path, mode: int, device: int) -> None:
    """Create a device node (mknod(2)); needs CAP_MKNOD outside a user namespace. Honours the umask."""
    os.mknod(path, mode, device)


def chmod(path, mode: int) -> None:
    """Set a file's permission bits (chmod(2))."""
    os.chmod(path, mode)


def chown(path, uid: int, gid: int) -> None:
    """Set a file's owner and group (chown(2))."""
    os.chown(path, uid, gid)


def symlink(target, path) -> None:
    """Create the symbolic link ``path`` pointing to ``target`` (symlink(2))."""
    os.symlink(target, path)


def lstat(path) -> os.stat_result:
    """What ``path`` is, without following a final symlink (lstat(2)); FileNotFoundError if nothing."""
    return os.lstat(path)


def statvfs(path) -> os.statvfs_result:
    """The filesystem that holds ``path``; its ``f_flag`` ST_* bits are the mount's MS_* flags (statvfs(3))."""
    return os.statvfs(path)


# --- identity ---------------------------------------------------------------------------------
def sethostname(name: str) -> None:
    """Set the hostname of the current UTS namespace (sethostname(2))."""
    raw = name.encode()
    if _libc.sethostname(raw, ctypes.c_size_t(len(raw))) != 0:
        raise _fail("sethostname", f"({name!r})")


def setdomainname(name: str) -> None:
    """Set the NIS domain name of the current UTS namespace (setdomainname(2))."""
    raw = name.encode()
    if _libc.setdomainname(raw, ctypes.c_size_t(len(raw))) != 0:
        raise _fail("setdomainname", f"({name!r})")


# --- prctl ------------------------------------------------------------------------------------
def _prctl(option: int, arg2: int = 0, arg3: int = 0, call: str = "prctl") -> int:
    result = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                         ctypes.c_ulong(0), ctypes.c_ulong(0))
    if result < 0:
        raise _fail(call)
    return result


def set_no_new_privs() -> None:
    """Forbid gaining privileges through setuid binaries or file capabilities from now on (prctl(2) PR_SET_NO_NEW_PRIVS)."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1, call="prctl(PR_SET_NO_NEW_PRIVS)")


def get_no_new_privs() -> bool:
    """Whether no_new_privs is set for this process (prctl(2) PR_GET_NO_NEW_PRIVS)."""
    return bool(_prctl(PR_GET_NO_NEW_PRIVS, call="prctl(PR_GET_NO_NEW_PRIVS)"))


def set_pdeathsig(signal_number: int) -> None:
    """Ask the kernel to send us ``signal_number`` when our parent dies (prctl(2) PR_SET_PDEATHSIG)."""
    _prctl(PR_SET_PDEATHSIG, signal_number, call="prctl(PR_SET_PDEATHSIG)")


def set_child_subreaper() -> None:
    """Adopt orphaned descendants instead of letting them go to init (prctl(2) PR_SET_CHILD_SUBREAPER)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1, call="prctl(PR_SET_CHILD_SUBREAPER)")


def set_keepcaps(keep: bool = True) -> None:
    """Keep permitted capabilities across a setuid() away from root (prctl(2) PR_SET_KEEPCAPS)."""
    _prctl(PR_SET_KEEPCAPS, int(keep), call="prctl(PR_SET_KEEPCAPS)")


def set_process_name(name: str) -> None:
    """Set the name shown in /proc/<pid>/comm, 15 bytes at most (prctl(2) PR_SET_NAME)."""
    buffer = ctypes.create_string_buffer(name.encode()[:15])
    if _libc.prctl(ctypes.c_int(PR_SET_NAME), buffer, 0, 0, 0) < 0:
        raise _fail("prctl(PR_SET_NAME)")


# --- seccomp ----------------------------------------------------------------------------------------
# seccomp(2) has no glibc wrapper; its number depends on the CPU architecture.
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "ppc64le": 358, "s390x": 348}
SECCOMP_SET_MODE_FILTER = 1


class SeccompProgram(ctypes.Structure):
    """struct sock_fprog: a classic BPF program for seccomp(2), made before the fork so that
    loading it afterwards is one system call and nothing else."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    def __init__(self, bpf: bytes):
        self._instructions = ctypes.create_string_buffer(bpf, len(bpf))  # kept alive with the program
        super().__init__(len(bpf) // 8, ctypes.addressof(self._instructions))  # struct sock_filter: 8 bytes


def set_seccomp_filter(program: SeccompProgram, flags: int = 0) -> None:
    """Install a seccomp filter on the calling thread for good (seccomp(2) SECCOMP_SET_MODE_FILTER).

    Needs no_new_privs or CAP_SYS_ADMIN; the filter outlives execve and is inherited by children.
    """
    number = _SYS_SECCOMP.get(os.uname().machine)
    if number is None:
        raise KernelError("seccomp", _errno.ENOSYS, f"seccomp: unknown syscall number on {os.uname().machine}")
    if _libc.syscall(ctypes.c_long(number), ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                     ctypes.byref(program)) != 0:
        raise _fail("seccomp(SECCOMP_SET_MODE_FILTER)")


# --- capabilities ---------------------------------------------------------------------------------
def last_capability() -> int:
    """Highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap, see capabilities(7))."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def capability_bits(names) -> int:
    """Turn capability names such as 'CAP_KILL' into a bit mask; unknown names raise ValueError."""
    mask = 0
    for name in names:
        if name not in CAP_NUMBER:
            raise ValueError(f"unknown capability {name!r}")
        mask |= 1 << CAP_NUMBER[name]
    return mask


def capability_names(mask: int) -> list[str]:
    """The names of the capabilities set in ``mask``."""
    return [name for number, name in enumerate(CAPABILITIES) if mask >> number & 1]


def drop_bounding_capability(number: int) -> None:
    """Remove one capability from the bounding set for good (prctl(2) PR_CAPBSET_DROP)."""
    _prctl(PR_CAPBSET_DROP, number, call=f"prctl(PR_CAPBSET_DROP, {number})")


def in_bounding_set(number: int) -> bool:
    """Whether capability ``number`` is still in the bounding set (prctl(2) PR_CAPBSET_READ)."""
    return bool(_prctl(PR_CAPBSET_READ, number, call="prctl(PR_CAPBSET_READ)"))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_VERSION_3 = 0x20080522


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Read (effective, permitted, inheritable) capability masks of a process (capget(2))."""
    header = _CapHeader(_CAP_VERSION_3, pid)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise _fail("capget")
    join = lambda field: getattr(data[0], field) | getattr(data[1], field) << 32  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's effective, permitted and inheritable capability masks (capset(2))."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for index in range(2):
        shift = 32 * index
        data[index].effective = effective >> shift & 0xFFFFFFFF
        data[index].permitted = permitted >> shift & 0xFFFFFFFF
        data[index].inheritable = inheritable >> shift & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise _fail("capset")


def clear_ambient_capabilities() -> None:
    """Empty the ambient set (prctl(2) PR_CAP_AMBIENT_CLEAR_ALL)."""
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, call="prctl(PR_CAP_AMBIENT_CLEAR_ALL)")


def raise_ambient_capability(number: int) -> None:
    """Add one capability to the ambient set, kept across execve for non-root users (prctl(2) PR_CAP_AMBIENT)."""
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number, call=f"prctl(PR_CAP_AMBIENT_RAISE, {number})")


# --- network -------------------------------------------------------------------------------------
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def set_link_up(name: str = "lo") -> None:
    """Bring a network interface up with the SIOCSIFFLAGS ioctl (netdevice(7)).

    A new network namespace starts with ``lo`` down; this is the one thing every
    container needs from the network stack before the network driver takes over.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", name.encode(), 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | _IFF_UP))
        except OSError as error:
            raise KernelError("ioctl", error.errno, f"ioctl(SIOCSIFFLAGS, {name} up): {error.strerror}") from None


# --- ids and limits of the calling process (added for the runtime's syscall seam: the container's init and
# identity code call these through a `kernel` object, so unit tests can record the order) ---
def setgroups(groups: list[int]) -> None:
    """Set the supplementary groups (setgroups(2)); needs CAP_SETGID."""
    os.setgroups(groups)


def setresgid(gid: int) -> None:
    """Set real, effective and saved gid to ``gid`` (setresgid(2)); needs CAP_SETGID to change it."""
    os.setresgid(gid, gid, gid)


def setresuid(uid: int) -> None:
    """Set real, effective and saved uid to ``uid`` (setresuid(2)); needs CAP_SETUID to change it."""
    os.setresuid(uid, uid, uid)


def setrlimit(name: str, soft: int, hard: int) -> None:
    """Set the resource limit ``name``, e.g. "RLIMIT_NOFILE" (setrlimit(2)); raising it needs CAP_SYS_RESOURCE."""
    import resource  # noqa: PLC0415 - kept inside this added block, so the edit stays one block

    resource.setrlimit(getattr(resource, name), (soft, hard))
