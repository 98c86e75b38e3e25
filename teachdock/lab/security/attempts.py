"""Chapter 10: the escape attempts, each a few lines of busybox shell run inside a container.

Every attempt is built to be harmless to the host *even when it gets through*: it reads one
byte of the disk, mounts a tmpfs inside the container's own mount namespace, opens
``/proc/sysrq-trigger`` and ``/proc/sys/kernel/core_pattern`` for appending without writing a
byte, reads one byte of ``/proc/kcore``, mounts a tmpfs inside a new user namespace, hands
the kernel a "module" that is not one, asks to set the clock's tick to 0 (a value the kernel
refuses *after* the permission check, so nothing changes), and, through the daemon's socket,
starts a container that reads a file this chapter wrote on the host.

``probe_script(attempts)`` is one shell script that runs them all and, first, prints what the
container is allowed (its capabilities, its seccomp mode, its mounts under /proc): the facts
``teachdock/lab/security/layers.py`` reads to say which layer stopped each attempt.
``parse_run(stdout)`` turns the script's output back into facts and outcomes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from teachdock.lab.common.language import say

#: Where a socket mounted into a container usually lives (`-v /var/run/docker.sock:...`).
SOCKET_INSIDE = "/var/run/docker.sock"
#: The marker file the socket attempt reads from the host, as the host's path.
MARKER_ENV = "TD_MARKER"


@dataclass(frozen=True)
class Gate:
    """One check the kernel (or the container's set-up) makes on the way, in the order it makes them.

    ``layer`` is a key of ``LAYERS`` in layers.py; ``what`` its argument: a capability name,
    syscall names, a path, a device ``(type, major, minor, access)``.
    """

    layer: str
    what: object = None
    in_user_namespace_too: bool = False   # a capability that also counts in a user namespace of one's own


@dataclass(frozen=True)
class Attempt:
    key: str
    title: str
    shell: str                          # the body of a shell function; its output and status are the answer
    gates: tuple[Gate, ...]
    reached: frozenset[str] = frozenset()   # errno names that mean: it got past every check (and did no harm)
    reads: bool = False                  # an attempt that reads: exit 0 with no bytes means a masked file
    harmless: str = ""
    paths: tuple[str, ...] = field(default_factory=tuple)   # paths whose existence the facts record


def host_disk() -> tuple[str, int, int] | None:
    """The host's first real disk: (name, major, minor) from /sys/block, or None (no disk)."""
    try:
        names = sorted(os.listdir("/sys/block"))
    except OSError:
        return None
    for name in names:
        if name.startswith(("loop", "ram", "zram", "dm-", "md", "sr", "nbd")):
            continue
        try:
            with open(f"/sys/block/{name}/dev") as file:
                major, minor = file.read().strip().split(":")
        except (OSError, ValueError):
            continue
        return name, int(major), int(minor)
    return None


def attempts(disk: tuple[str, int, int] | None = None) -> tuple[Attempt, ...]:
    """The chapter's attempts, with the host's disk for the first (``host_disk()`` by default); their
    titles and notes in the learner's language, their keys and shell the same in every language."""
    disk = disk or host_disk() or ("sda", 8, 0)
    name, major, minor = disk
    return (
        Attempt("disk", say("read the host's disk ({name}) through a node", name=name),
                f"mknod /dev/td-disk b {major} {minor} && od -An -tx1 -N1 /dev/td-disk",
                (Gate("capabilities", "CAP_MKNOD"), Gate("seccomp", ("mknod", "mknodat")),
                 Gate("devices", ("b", major, minor, "r")), Gate("host", f"/dev/{name}")),
                reads=True, harmless=say("reads one byte of the disk; writes nothing")),
        Attempt("mount", say("mount a filesystem"),
                "mkdir -p /tmp/td-mnt && mount -t tmpfs td-tmpfs /tmp/td-mnt && echo mounted",
                (Gate("seccomp", ("mount",)), Gate("capabilities", "CAP_SYS_ADMIN", in_user_namespace_too=True)),
                harmless=say("a tmpfs in the container's own mount namespace: gone with the container")),
        Attempt("sysrq", say("write /proc/sysrq-trigger"),
                "(exec 3>>/proc/sysrq-trigger) && echo opened for writing",
                # the kernel asks for permission (EACCES) before the mount for writability (EROFS)
                (Gate("kernel", "/proc/sysrq-trigger"), Gate("user namespace", "EACCES"),
                 Gate("read-only", "/proc/sysrq-trigger")),
                harmless=say("opened for appending and closed: not one byte written, no sysrq triggered"),
                paths=("/proc/sysrq-trigger",)),
        Attempt("core_pattern", say("change a kernel setting (core_pattern)"),
                "(exec 3>>/proc/sys/kernel/core_pattern) && echo opened for writing",
                (Gate("user namespace", "EACCES"), Gate("read-only", "/proc/sys")),
                harmless=say("opened for appending and closed: the setting is untouched")),
        Attempt("kcore", say("read the kernel's memory (/proc/kcore)"),
                "od -An -tx1 -N1 /proc/kcore",
                (Gate("kernel", "/proc/kcore"), Gate("masked", "/proc/kcore"),
                 Gate("capabilities", "CAP_SYS_RAWIO")),
                reads=True, harmless=say("reads the first byte (the ELF header's 0x7f)"), paths=("/proc/kcore",)),
        Attempt("userns", say("make a user namespace and mount in it"),
                "unshare -Urm sh -c 'mount -t tmpfs td-tmpfs /tmp && echo mounted in a user namespace'",
                (Gate("seccomp", ("unshare",)),),
                harmless=say("the tmpfs lives in a namespace that ends with the command")),
        Attempt("module", say("load a kernel module"),
                "echo td-not-a-module > /tmp/td.ko && insmod /tmp/td.ko",
                (Gate("seccomp", ("init_module", "finit_module")), Gate("kernel", "/proc/modules"),
                 Gate("capabilities", "CAP_SYS_MODULE")),
                reached=frozenset({"ENOEXEC", "EINVAL", "EBADMSG", "EKEYREJECTED", "ENOKEY"}),
                harmless=say("the 'module' is a line of text: the kernel rejects it after the permission check"),
                paths=("/proc/modules",)),
        Attempt("clock", say("set the clock"),
                "adjtimex -t 0",
                (Gate("seccomp", ("adjtimex", "clock_adjtime")), Gate("capabilities", "CAP_SYS_TIME")),
                reached=frozenset({"EINVAL"}),
                harmless=say("asks for a tick of 0, which the kernel refuses as invalid after the permission "
                             "check")),
        Attempt("socket", say("reach the host through the daemon's socket"),
                f"[ -S {SOCKET_INSIDE} ] || {{ echo \"{SOCKET_INSIDE}: No such file or directory\"; exit 2; }}; "
                f"DOCKER_CONFIG=/tmp/.docker docker -H unix://{SOCKET_INSIDE} run --rm --network none "
                f"-v /:/host busybox cat \"/host${MARKER_ENV}\"",
                (Gate("namespaces", SOCKET_INSIDE),),
                harmless=say("the new container only reads a file this chapter wrote on the host"),
                paths=(SOCKET_INSIDE,)),
    )


def probe_script(chosen: tuple[Attempt, ...]) -> str:
    """One busybox shell script: the facts first, then each attempt as ``key<TAB>status<TAB>output``."""
    paths = sorted({path for attempt in chosen for path in attempt.paths})
    lines = [
        "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status | sed 's/^/fact\\t/; s/:[[:space:]]*/\\t/'",
        "printf 'fact\\tuid_map\\t%s\\n' \"$(head -n1 /proc/self/uid_map | tr -s ' ' ' ')\"",
        *(f"[ -e {path} ] && printf 'fact\\texists\\t%s\\n' {path}" for path in paths),
        "grep -E ' /proc| /var/run/docker.sock' /proc/self/mountinfo | sed 's/^/mount\\t/'",
        "td_try() { out=$( (\"$2\") 2>&1 ); status=$?; printf 'attempt\\t%s\\t%s\\t%s\\n' \"$1\" \"$status\" "
        "\"$(echo \"$out\" | tr '\\t\\n' '  ' | cut -c1-300)\"; }",
    ]
    for attempt in chosen:
        lines.append(f"td_{attempt.key}() {{ {attempt.shell}; }}")
        lines.append(f"td_try {attempt.key} td_{attempt.key}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    """What one attempt did: ``errno`` is "OK", "EMPTY" (read nothing: a masked file) or an errno name."""

    key: str
    status: int
    output: str
    errno: str


@dataclass
class Facts:
    """What a container is allowed, read from inside it."""

    capabilities: frozenset[str] = frozenset()      # effective: what the kernel's checks see
    bounding: frozenset[str] | None = None          # the bounding set: what Docker resolves its profile for
    seccomp: int = 0                     # /proc/self/status Seccomp: 0 none, 2 a filter
    uid_map: str = "0 0 4294967295"
    existing: frozenset[str] = frozenset()
    mounts: tuple[tuple[str, str, str, str], ...] = ()   # (mount point, root, options, fs type)
    privileged: bool = False             # all devices allowed (--privileged): told, not seen from inside
    host_refuses: frozenset[str] = frozenset()   # paths this machine refuses even to its own root

    @property
    def user_namespace(self) -> bool:
        """Whether root inside is someone else outside (uid 0 maps to a non-zero host uid)."""
        parts = self.uid_map.split()
        return len(parts) == 3 and not (parts[0] == "0" and parts[1] == "0")


# Linux's capability numbers (capability.h), for reading CapEff
CAPABILITY_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)


def capabilities_from_mask(mask: int) -> frozenset[str]:
    """CapEff's hex mask -> capability names (bits beyond the list are CAP_<number>)."""
    return frozenset(CAPABILITY_NAMES[bit] if bit < len(CAPABILITY_NAMES) else f"CAP_{bit}"
                     for bit in range(64) if mask >> bit & 1)


def _errno_names() -> list[tuple[str, str]]:
    """(message, errno name) for every errno, longest message first, plus busybox's own phrases."""
    import errno

    table = [(os.strerror(number), name) for number, name in errno.errorcode.items()]
    table += [("permission denied (are you root?)", "EPERM"),        # busybox mount, for EPERM and EACCES
              ("kernel does not support requested operation", "ENOSYS"),  # busybox insmod
              ("invalid module format", "ENOEXEC"), ("nonexistent directory", "ENOENT")]
    return sorted(table, key=lambda item: -len(item[0]))


_MESSAGES = _errno_names()


def errno_of(message: str) -> str | None:
    """The errno name a program's error message names ("...: Operation not permitted" -> "EPERM")."""
    for text, name in _MESSAGES:
        if text and text.lower() in message.lower():
            return name
    return None


def outcome(attempt: Attempt, status: int, output: str) -> Outcome:
    """Read an attempt's exit status and output as "OK", "EMPTY" or an errno name."""
    if status == 0:
        empty = attempt.reads and not re.search(r"[0-9a-f]{2}", output)
        return Outcome(attempt.key, status, output, "EMPTY" if empty else "OK")
    return Outcome(attempt.key, status, output, errno_of(output) or f"exit {status}")


def host_refusals(chosen: tuple[Attempt, ...]) -> frozenset[str]:
    """The paths of the host gates that the host refuses to its own root: read one byte of each
    here, outside any container (a sandboxed machine may forbid opening its own disk)."""
    refused = set()
    for attempt in chosen:
        for gate in attempt.gates:
            if gate.layer == "host" and os.path.exists(gate.what):
                try:
                    descriptor = os.open(gate.what, os.O_RDONLY)
                    try:
                        os.read(descriptor, 1)
                    finally:
                        os.close(descriptor)
                except PermissionError:
                    refused.add(gate.what)
                except OSError:
                    pass
    return frozenset(refused)


def parse_run(stdout: str, chosen: tuple[Attempt, ...], *, privileged: bool = False,
              host_refuses: frozenset[str] = frozenset()) -> tuple[Facts, dict[str, Outcome]]:
    """The probe script's output -> the container's facts and each attempt's outcome."""
    by_key = {attempt.key: attempt for attempt in chosen}
    facts = Facts(privileged=privileged, host_refuses=host_refuses)
    existing, mounts, outcomes = set(), [], {}
    for line in stdout.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "fact":
            name, _, value = rest.partition("\t")
            if name == "CapEff":
                facts.capabilities = capabilities_from_mask(int(value.strip(), 16))
            elif name == "CapBnd":
                facts.bounding = capabilities_from_mask(int(value.strip(), 16))
            elif name == "Seccomp":
                facts.seccomp = int(value.strip())
            elif name == "uid_map":
                facts.uid_map = value.strip()
            elif name == "exists":
                existing.add(value.strip())
        elif kind == "mount":
            fields = rest.split()
            if len(fields) >= 9:
                fs_type = fields[fields.index("-") + 1] if "-" in fields else ""
                mounts.append((fields[4], fields[3], fields[5], fs_type))
        elif kind == "attempt":
            key, status, output = (rest.split("\t", 2) + ["", ""])[:3]
            if key in by_key:
                outcomes[key] = outcome(by_key[key], int(status), output.strip())
    facts.existing = frozenset(existing)
    facts.mounts = tuple(mounts)
    return facts, outcomes
