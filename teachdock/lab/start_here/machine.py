"""Can this machine run the course? A quick, side-effect-free check of the kernel features we use.

Containers are not one feature but several: namespaces (what a process can see), cgroups
(what it may use), overlayfs (how images stack), plus a static busybox to build a first root
filesystem from. This module looks for each one, says in plain words what its absence would
mean for the course, and how to fix it. ``teachdock.lab.start_here.doctor()`` shows the same report as a
table in a notebook; ``probe().format()`` prints it in a terminal.

Only the standard library (and teachdock's own error classes) is used, and nothing is left
behind: the namespace test forks a short-lived child per namespace that calls unshare(2)
and exits at once.
"""

from __future__ import annotations

import ctypes
import errno as errno_names
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from teachdock.errors import TeachdockError
from teachdock.lab.common.language import SaidWhenRead, say
from teachdock.runtime.cgroups import detect_version, find_v1_mounts

OK, WARN, MISSING = "ok", "warn", "missing"

# The parts of the course a finding can limit (Finding.limits).
ALL = "every chapter"
NAMESPACE_CHAPTER = "02 namespaces"
CGROUP_CHAPTER = "03 cgroups"
FILESYSTEM_CHAPTER = "04 filesystems"
IMAGE_CHAPTER = "images and layers"
ORACLE = "the 'swap the runtime' comparisons with runc"
ROOT_CELLS = "the cells tagged needs-root"

# Flags of unshare(2), from <linux/sched.h>. Keyed by the names in /proc/self/ns.
CLONE_FLAGS = {
    "cgroup": 0x02000000,  # CLONE_NEWCGROUP
    "ipc": 0x08000000,  # CLONE_NEWIPC
    "mnt": 0x00020000,  # CLONE_NEWNS (the first namespace, 2002, hence the vague name)
    "net": 0x40000000,  # CLONE_NEWNET
    "pid": 0x20000000,  # CLONE_NEWPID
    "time": 0x00000080,  # CLONE_NEWTIME
    "user": 0x10000000,  # CLONE_NEWUSER
    "uts": 0x04000000,  # CLONE_NEWUTS
}



def namespace_gives() -> dict[str, str]:
    """What each namespace gives a container, in one sentence (shown when it works)..."""
    return {
        "cgroup": say("The container sees its own cgroup as the root of the cgroup tree."),
        "ipc": say("Shared memory and message queues are private to the container."),
        "mnt": say("The container gets its own mount table, so it can have its own root filesystem."),
        "net": say("The container gets its own network stack: interfaces, routes, ports."),
        "pid": say("The container numbers its processes from 1 and cannot see the host's."),
        "time": say("The container can have its own boot and monotonic clocks."),
        "user": say("Root inside the container can be an ordinary user outside it."),
        "uts": say("The container can have its own hostname."),
    }


def namespace_loss() -> dict[str, str]:
    """...and what goes wrong for the course without it."""
    return {
        "cgroup": say("Containers will see the host's cgroup paths."),
        "ipc": say("Containers will share IPC objects with the host."),
        "mnt": say("Containers cannot start: a private mount table is what makes a root filesystem possible."),
        "net": say("Containers will share the host's network, and the networking chapter cannot run."),
        "pid": say("Containers cannot start: teachdock gives every container its own PID 1."),
        "time": say("Only the time-namespace demo is skipped (it needs Linux 5.6 or newer)."),
        "user": say("The rootless demos (root inside, nobody outside) cannot run."),
        "uts": say("Containers will share the host's hostname."),
    }


NAMESPACE_GIVES = SaidWhenRead(namespace_gives)
NAMESPACE_LOSS = SaidWhenRead(namespace_loss)

# Without these two no container starts at all.
ESSENTIAL_NAMESPACES = ("mnt", "pid")

CGROUP_CONTROLLERS = ("memory", "cpu", "pids")


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class Finding:
    """One thing we looked at, what we saw, and what it means for the course."""

    name: str
    status: str  # OK, WARN or MISSING
    value: str  # what we observed, briefly: "6.1.0", "v1", "yes"
    meaning: str  # one plain sentence for the learner
    fix: str = ""  # how to make it ok; empty when it is ok
    limits: tuple[str, ...] = ()  # chapters that lose something when this is not ok


@dataclass
class NamespaceProbe:
    """Does the kernel offer this namespace, and could we create one just now?"""

    name: str  # as in /proc/self/ns: cgroup ipc mnt net pid time user uts
    offered: bool  # /proc/self/ns/<name> exists
    creatable: bool  # unshare(2) worked, directly or inside a new user namespace
    how: str = ""  # "directly", "inside a user namespace", or "" when not creatable
    error: str = ""  # errno name when unshare failed, e.g. "EPERM"


@dataclass
class HostReport:
    is_root: bool
    kernel: str
    namespaces: dict[str, NamespaceProbe]
    userns_settings: dict[str, int]  # sysctls that govern user namespaces, where present
    cgroup_version: str | None  # "v1", "v2", or None when no cgroup is mounted
    cgroup_controllers: dict[str, bool]  # memory/cpu/pids -> available
    cgroup_writable: bool
    overlayfs: bool
    busybox: str  # "static", "dynamic" or "absent"
    base_rootfs: Path
    base_rootfs_present: bool
    runc: str | None  # path of runc, if installed
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict_level(self) -> str:
        """"ok", "limited" (some chapters lose something) or "blocked" (no container can start)."""
        return verdict_level(self.findings)

    @property
    def verdict(self) -> str:
        return verdict(self.findings)

    def __repr__(self) -> str:
        # Short on purpose: a notebook cell ending in doctor() would otherwise print every field.
        return (f"HostReport(kernel={self.kernel!r}, is_root={self.is_root}, "
                f"findings={len(self.findings)}, verdict_level={self.verdict_level!r})")

    def finding(self, name: str) -> Finding:
        for item in self.findings:
            if item.name == name:
                return item
        raise KeyError(name)

    def format(self) -> str:
        """The report as plain text, for a terminal."""
        return format_report(self)


def verdict_level(findings: list[Finding]) -> str:
    if any(f.status == MISSING and ALL in f.limits for f in findings):
        return "blocked"
    if any(f.limits for f in findings if f.status != OK):
        return "limited"
    return "ok"


def limit_title(limit: str) -> str:
    """The part of the course a finding limits, as the learner reads it (the limits themselves stay
    English: room.py maps them to chapter numbers)."""
    titles = {
        ALL: say("every chapter"),
        NAMESPACE_CHAPTER: say("02 namespaces"),
        CGROUP_CHAPTER: say("03 cgroups"),
        FILESYSTEM_CHAPTER: say("04 filesystems"),
        IMAGE_CHAPTER: say("images and layers"),
        ORACLE: say("the 'swap the runtime' comparisons with runc"),
        ROOT_CELLS: say("the cells tagged needs-root"),
    }
    return titles.get(limit, limit)


def finding_title(name: str) -> str:
    """A finding's name as the table shows it (``Finding.name`` stays English: code looks findings up by it)."""
    if name.endswith(" namespace"):
        return say("{kind} namespace", kind=name.split()[0])
    titles = {
        "root": "root",  # the same in every language
        "kernel": say("kernel"),
        "rootless user namespaces": say("rootless user namespaces"),
        "cgroups": "cgroups",  # the same in every language
        "cgroup version": say("cgroup version"),
        "cgroup controllers": say("cgroup controllers"),
        "cgroup writable": say("cgroup writable"),
        "static busybox": say("static busybox"),
        "base rootfs": say("base rootfs"),
    }
    return titles.get(name, name)


def verdict(findings: list[Finding]) -> str:
    """One paragraph: all good, or which chapters are limited and why."""
    level = verdict_level(findings)
    if level == "ok":
        return say("Everything the course needs is here.")
    if level == "blocked":
        reasons = "; ".join(
            f"{finding_title(f.name)}: {f.value}" for f in findings if f.status == MISSING and ALL in f.limits
        )
        return say("Containers cannot start on this machine ({reasons}). "
                   "You can still read every chapter and run the cells that only look at the host.", reasons=reasons)
    by_chapter: dict[str, list[str]] = {}
    for f in findings:
        if f.status != OK:
            for chapter in f.limits:
                by_chapter.setdefault(chapter, []).append(finding_title(f.name))
    parts = [say("{chapter} (see: {names})", chapter=limit_title(chapter), names=", ".join(names))
             for chapter, names in by_chapter.items()]
    return say("Most of the course works here. Limited: {parts}.", parts="; ".join(parts))


def format_report(report: HostReport) -> str:
    """The report as plain text; the status words stay OK/WARN/MISSING, as in ``--room``'s lines."""
    titles = [finding_title(f.name) for f in report.findings]
    width = max(_display_width(title) for title in titles)
    lines = [say("teachdock doctor: can this machine run the course?"), ""]
    for f, title in zip(report.findings, titles):
        padded = title + " " * (width - _display_width(title))
        lines.append(f"  {f.status.upper():<7}  {padded}  {f.value}")
        lines.append(f"  {'':7}  {'':<{width}}  {f.meaning}")
        if f.fix:
            lines.append(f"  {'':7}  {'':<{width}}  " + say("fix: {fix}", fix=f.fix))
    lines += ["", say("Verdict: {verdict}", verdict=report.verdict)]
    return "\n".join(lines)


def _display_width(text: str) -> int:
    """Columns a terminal gives ``text``: Hangul takes two."""
    return sum(2 if "\uac00" <= ch <= "\ud7a3" else 1 for ch in text)


def report_json(report: HostReport) -> dict:
    """The report as one JSON object (what `teachdock doctor --json` prints; the CLI probes in English
    for it, so the sentences a script reads do not change with the learner's language)."""
    return {
        "verdict_level": report.verdict_level,
        "verdict": report.verdict,
        "kernel": report.kernel,
        "is_root": report.is_root,
        "cgroup_version": report.cgroup_version,
        "findings": [{"name": f.name, "status": f.status, "value": f.value, "meaning": f.meaning, "fix": f.fix,
                      "limits": list(f.limits)} for f in report.findings],
    }


# ---------------------------------------------------------------------------------------------
# Parsers: pure functions on the text of /proc files, so they can be tested with fake input.


def parse_filesystems(text: str) -> set[str]:
    """/proc/filesystems: one per line, optionally prefixed by "nodev"."""
    return {line.split()[-1] for line in text.splitlines() if line.strip()}


def kernel_version(release: str) -> tuple[int, int]:
    """"6.1.0-56-amd64" -> (6, 1)."""
    numbers = []
    for part in release.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit()) or "0"
        numbers.append(int(digits))
    while len(numbers) < 2:
        numbers.append(0)
    return numbers[0], numbers[1]


def elf_is_static(header: bytes) -> bool | None:
    """True if an ELF file has no program interpreter (PT_INTERP): it needs no shared libraries.

    ``header`` is the start of the file, large enough to hold the program headers (4 KiB is).
    None when it is not an ELF file at all.
    """
    if header[:4] != b"\x7fELF":
        return None
    is_64 = header[4] == 2
    order = "<" if header[5] == 1 else ">"
    if is_64:
        phoff, = struct.unpack_from(order + "Q", header, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", header, 0x36)
    else:
        phoff, = struct.unpack_from(order + "I", header, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", header, 0x2A)
    PT_INTERP = 3
    for i in range(phnum):
        offset = phoff + i * phentsize
        if offset + 4 > len(header):
            break
        p_type, = struct.unpack_from(order + "I", header, offset)
        if p_type == PT_INTERP:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Probes: each looks at the live machine.


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _read_int(path: str) -> int | None:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else None


_libc = ctypes.CDLL(None, use_errno=True)
_unshare = _libc.unshare
_unshare.argtypes = [ctypes.c_int]


def try_unshare(flags: int) -> int:
    """Fork a child that calls unshare(flags) and exits; 0 if it worked, else the errno.

    The child does nothing but the one system call, so forking from a threaded process
    (a Jupyter kernel) is safe, and the namespace dies with the child.
    """
    pid = os.fork()
    if pid == 0:
        try:
            result = _unshare(flags)
            os._exit(0 if result == 0 else min(ctypes.get_errno(), 255) or 255)
        except BaseException:
            os._exit(255)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


def _errno_name(code: int) -> str:
    return errno_names.errorcode.get(code, f"error {code}")


def probe_namespaces(is_root: bool) -> dict[str, NamespaceProbe]:
    offered = set(os.listdir("/proc/self/ns")) if os.path.isdir("/proc/self/ns") else set()
    results = {}
    for name, flag in CLONE_FLAGS.items():
        if name not in offered:
            results[name] = NamespaceProbe(name, offered=False, creatable=False, error="not in this kernel")
            continue
        code = try_unshare(flag)
        if code == 0:
            results[name] = NamespaceProbe(name, True, True, how="directly")
            continue
        # Without root, most namespaces can still be created inside a new user namespace
        # (this is how rootless containers work).
        if not is_root and name != "user" and try_unshare(flag | CLONE_FLAGS["user"]) == 0:
            results[name] = NamespaceProbe(name, True, True, how="inside a user namespace")
            continue
        results[name] = NamespaceProbe(name, True, False, error=_errno_name(code))
    return results


def userns_settings() -> dict[str, int]:
    """The sysctls that can forbid user namespaces, where this kernel has them."""
    paths = {
        "user.max_user_namespaces": "/proc/sys/user/max_user_namespaces",
        "kernel.unprivileged_userns_clone": "/proc/sys/kernel/unprivileged_userns_clone",  # Debian, older
        "kernel.apparmor_restrict_unprivileged_userns": "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",  # Ubuntu 23.10+
    }
    settings = {}
    for name, path in paths.items():
        value = _read_int(path)
        if value is not None:
            settings[name] = value
    return settings


def detect_cgroup_version(root: str = "/sys/fs/cgroup") -> str | None:
    """The runtime's answer (read from the mounts themselves); None when no cgroup is mounted at all."""
    try:
        return detect_version(root)
    except TeachdockError:  # no cgroup mounted at all: report it, don't crash the doctor
        return None


def probe_cgroups(version: str | None, root: str = "/sys/fs/cgroup") -> tuple[dict[str, bool], bool]:
    """Which of memory/cpu/pids we can use, and whether we may create cgroups (root writable)."""
    if version == "v2":
        available = set(_read(os.path.join(root, "cgroup.controllers")).split())
        controllers = {c: c in available for c in CGROUP_CONTROLLERS}
        return controllers, os.access(root, os.W_OK)
    if version == "v1":
        where = find_v1_mounts(root)
        controllers = {c: c in where for c in CGROUP_CONTROLLERS}
        mount_points = [where[c] for c in CGROUP_CONTROLLERS if c in where]
        writable = bool(mount_points) and all(os.access(p, os.W_OK) for p in mount_points)
        return controllers, writable
    return {c: False for c in CGROUP_CONTROLLERS}, False


def busybox_kind(path: str = "/bin/busybox") -> str:
    """"static", "dynamic" or "absent"."""
    try:
        with open(path, "rb") as f:
            header = f.read(4096)
    except OSError:
        return "absent"
    static = elf_is_static(header)
    if static is None:
        return "absent"
    return "static" if static else "dynamic"


def default_data_root() -> Path:
    try:
        from teachdock.paths import data_root
    except ImportError:
        return Path(os.environ.get("TEACHDOCK_DATA_ROOT") or "/var/lib/teachdock")
    return data_root()


def probe() -> HostReport:
    """Look at this machine and say what the course can do on it."""
    is_root = os.geteuid() == 0
    version = detect_cgroup_version()
    controllers, writable = probe_cgroups(version)
    base = default_data_root() / "rootfs" / "busybox"
    report = HostReport(
        is_root=is_root,
        kernel=os.uname().release,
        namespaces=probe_namespaces(is_root),
        userns_settings=userns_settings(),
        cgroup_version=version,
        cgroup_controllers=controllers,
        cgroup_writable=writable,
        overlayfs="overlay" in parse_filesystems(_read("/proc/filesystems")),
        busybox=busybox_kind(),
        base_rootfs=base,
        base_rootfs_present=(base / "bin" / "busybox").exists(),
        runc=shutil.which("runc"),
    )
    report.findings = assess(report)
    return report


# ---------------------------------------------------------------------------------------------
# Judging: turn observations into findings. Pure, so every branch is testable.


def assess(r: HostReport) -> list[Finding]:
    findings = [_root_finding(r), _kernel_finding(r)]
    findings += [_namespace_finding(ns, r.is_root) for ns in r.namespaces.values()]
    findings.append(_rootless_finding(r))
    findings += _cgroup_findings(r)
    findings.append(_overlay_finding(r))
    findings += _rootfs_findings(r)
    findings.append(_runc_finding(r))
    return findings


def _root_finding(r: HostReport) -> Finding:
    if r.is_root:
        return Finding("root", OK, say("yes"), say("You can create namespaces, mounts and cgroups: every cell can run."))
    return Finding(
        "root", WARN, say("no"),
        say("Containers still start, rootless: run() adds a user namespace in which root is your own uid. "
            "They get no cgroup, so no limits or figures; cells tagged needs-root say why and skip."),
        fix=say("Start JupyterLab as root (or with sudo), as the README's lab command does."),
        limits=(ROOT_CELLS,),
    )


def _kernel_finding(r: HostReport) -> Finding:
    if kernel_version(r.kernel) >= (5, 6):
        return Finding("kernel", OK, r.kernel,
                       say("Recent enough for every namespace and cgroup feature the course shows."))
    return Finding(
        "kernel", WARN, r.kernel,
        say("Older than 5.6: no time namespace, and some cgroup v2 files are missing."),
        fix=say("Use a machine with Linux 5.6 or newer for the whole course."),
        limits=(NAMESPACE_CHAPTER,),
    )


def _namespace_finding(ns: NamespaceProbe, is_root: bool) -> Finding:
    title = f"{ns.name} namespace"
    if ns.creatable:
        value = say("works") if ns.how == "directly" else say("works inside a user namespace")
        return Finding(title, OK, value, namespace_gives()[ns.name])
    essential = ns.name in ESSENTIAL_NAMESPACES
    if not ns.offered:
        fix = say("This kernel lacks it; use a newer or differently configured kernel.")
        value = say("not in this kernel")
    elif not is_root:
        fix = say("Run as root, or allow unprivileged user namespaces (see 'rootless user namespaces').")
        value = say("refused ({error})", error=ns.error)
    else:
        fix = say("Even root was refused: you are probably inside a container or under a seccomp/LSM policy; "
                  "use a VM or a privileged container.")
        value = say("refused ({error})", error=ns.error)
    limits = (ALL,) if essential else (NAMESPACE_CHAPTER,)
    status = MISSING if essential or ns.name in ("net", "uts", "ipc") else WARN
    return Finding(title, status, value, namespace_loss()[ns.name], fix=fix, limits=limits)


USERNS_FIXES = {
    "user.max_user_namespaces=0": "sysctl -w user.max_user_namespaces=15000",
    "kernel.unprivileged_userns_clone=0": "sysctl -w kernel.unprivileged_userns_clone=1",
    "kernel.apparmor_restrict_unprivileged_userns=1": "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
}


def _rootless_finding(r: HostReport) -> Finding:
    s = r.userns_settings
    blockers = []
    if s.get("user.max_user_namespaces", 1) == 0:
        blockers.append("user.max_user_namespaces=0")
    if s.get("kernel.unprivileged_userns_clone", 1) == 0:
        blockers.append("kernel.unprivileged_userns_clone=0")
    if s.get("kernel.apparmor_restrict_unprivileged_userns", 0) == 1:
        blockers.append("kernel.apparmor_restrict_unprivileged_userns=1")
    name = "rootless user namespaces"
    if not blockers:
        return Finding(name, OK, say("allowed"),
                       say("Learners without root can still create namespaces through a user namespace."))
    fix = say("As root: {commands}", commands="; ".join(USERNS_FIXES[b] for b in blockers))
    restricted = say("restricted: {settings}", settings=", ".join(blockers))
    if r.is_root and "user.max_user_namespaces=0" not in blockers:
        return Finding(
            name, OK, restricted,
            say("Restricted for ordinary users, which does not matter while you run as root."),
            fix=fix,
        )
    return Finding(
        name, WARN, restricted,
        say("Without root, no container can start (rootless ones need a user namespace), "
            "and the namespace and filesystem demos cannot run."),
        fix=fix, limits=(NAMESPACE_CHAPTER, FILESYSTEM_CHAPTER),
    )


def _cgroup_findings(r: HostReport) -> list[Finding]:
    if r.cgroup_version is None:
        return [Finding(
            "cgroups", MISSING, say("not mounted"),
            say("No cgroup filesystem is mounted, so no limits can be set and nothing can be measured."),
            fix=say("mount -t cgroup2 none /sys/fs/cgroup (or boot a distribution that mounts it)."),
            limits=(CGROUP_CHAPTER,),
        )]
    if r.cgroup_version == "v1":
        explained = say("The cgroups chapter explains v1: one hierarchy per controller under "
                        "/sys/fs/cgroup/<controller>.")
    else:
        explained = say("The cgroups chapter explains v2: one unified hierarchy under /sys/fs/cgroup.")
    findings = [Finding("cgroup version", OK, r.cgroup_version, explained)]
    absent = [c for c, usable in r.cgroup_controllers.items() if not usable]
    if absent:
        findings.append(Finding(
            "cgroup controllers", MISSING, say("missing: {controllers}", controllers=", ".join(absent)),
            say("Limits on {controllers} cannot be set or measured.", controllers=", ".join(absent)),
            fix=say("Enable them: on v2 add them to the parent's cgroup.subtree_control; "
                    "on v1 mount the controller under /sys/fs/cgroup."),
            limits=(CGROUP_CHAPTER,),
        ))
    else:
        findings.append(Finding("cgroup controllers", OK, ", ".join(r.cgroup_controllers),
                                say("Memory, CPU and process-count limits can be set and measured.")))
    if r.cgroup_writable:
        findings.append(Finding("cgroup writable", OK, say("yes"), say("teachdock can create a cgroup per container.")))
    else:
        findings.append(Finding(
            "cgroup writable", WARN, say("no"),
            say("Containers run without limits, and the cgroups chapter can only look, not change."),
            fix=say("Run as root; without root, ask systemd for a delegated cgroup "
                    "(systemd-run --user --scope -p Delegate=yes) on a cgroup v2 machine."),
            limits=(CGROUP_CHAPTER,),
        ))
    return findings


def _overlay_finding(r: HostReport) -> Finding:
    if r.overlayfs:
        return Finding("overlayfs", OK, say("yes"), say("Images are stacked from read-only layers, as in Docker."))
    return Finding(
        "overlayfs", WARN, say("no"),
        say("Image layers will be copied instead of stacked, so the copy-on-write demos are skipped."),
        fix=say("modprobe overlay (the module ships with every mainstream kernel)."),
        limits=(IMAGE_CHAPTER,),
    )


def _rootfs_findings(r: HostReport) -> list[Finding]:
    if r.busybox == "static":
        busybox = Finding("static busybox", OK, "/bin/busybox",
                          say("One static binary gives every container a shell and ~300 tools."))
    else:
        busybox = Finding(
            "static busybox", MISSING,
            say("/bin/busybox is not static") if r.busybox == "dynamic" else say("/bin/busybox absent"),
            say("The base root filesystem cannot be built, so no container can start."),
            fix="apt-get install busybox-static",
            limits=(ALL,),
        )
    if r.base_rootfs_present:
        base = Finding("base rootfs", OK, str(r.base_rootfs), say("The busybox root filesystem is ready to use."))
    else:
        base = Finding(
            "base rootfs", WARN, say("{path} not built yet", path=r.base_rootfs),
            say("The first container cell builds it (it takes about a second)."),
            fix=say("teachdock store bootstrap busybox (the README's lab command runs it for you)."),
        )
    return [busybox, base]


def _runc_finding(r: HostReport) -> Finding:
    if r.runc:
        return Finding("runc", OK, r.runc,
                       say("The same container bundle can also run under the real runc, for comparison."))
    return Finding(
        "runc", WARN, say("not installed"),
        say("The comparisons with Docker's own runtime are skipped."),
        fix="apt-get install runc",
        limits=(ORACLE,),
    )


if __name__ == "__main__":
    print(probe().format())
