"""Oracle test: the same OCI bundle, run by the real runc and by teachdock, gives the same answers.

Each probe writes one bundle with teachdock's own ``make_spec`` + ``write_bundle`` and runs it
twice, ``runc run --bundle B ID`` and ``teachdock runtime run --bundle B ID``, each with its own
temporary ``--root`` so neither touches /run/runc or /run/teachdock. A small shell script inside
prints what the container sees; the two outputs are normalised (mount ids, pids that differ by
nature) and compared. Where the right answer is known independently (PID 1, only ``lo``, the
capability bits of Docker's defaults) runc's answer is checked against it too, so two runtimes
that both fail cannot agree silently.

Differences that are deliberate are excluded from the comparison, and each exclusion says why.
Differences that are teachdock bugs are kept as ``xfail(strict=True)`` cases: they fail
today, and the day the bug is fixed ``strict`` turns them into a failure that asks for the
mark to be removed.
"""

from __future__ import annotations

import difflib
import glob
import json
import os
import pprint
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from teachdock import kernel
from teachdock.errors import TeachdockError
from teachdock.image import busybox
from teachdock.runtime.spec import (DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, make_spec,
                                    write_bundle)

RUNC = shutil.which("runc")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc): it is the oracle"),
]

HOSTNAME = "oracle"


def teachdock_cli() -> list[str]:
    """The `teachdock` console script of this interpreter's environment, else the module."""
    script = Path(sys.executable).parent / "teachdock"
    return [str(script)] if script.exists() else [sys.executable, "-m", "teachdock.cli"]


@pytest.fixture(scope="session")
def workspace():
    """A world-searchable scratch directory for rootfs, bundles and state roots.

    Not pytest's tmp_path: that sits under a 0700 directory, which root *inside a user
    namespace* (host uid 100000) cannot traverse, so runc could not bind the rootfs there.
    """
    directory = Path(tempfile.mkdtemp(prefix="teachdock-oracle-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture(scope="session")
def rootfs(workspace):
    """One busybox tree for every probe; the bundles keep it read-only, so no run can change it."""
    try:
        static = busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox to build the rootfs: {error}")
    return busybox.build_busybox_rootfs(workspace / "rootfs", static)


class Runtimes:
    """Runs bundles under both runtimes, each with a private state root, and cleans up after them."""

    def __init__(self, workdir: Path, rootfs: Path):
        self.workdir = workdir
        self.rootfs = rootfs
        self.roots = {"runc": workdir / "runc-state", "teachdock": workdir / "teachdock-state"}
        self.counter = 0

    def command(self, runtime: str, *verb: str) -> list[str]:
        if runtime == "runc":
            return [RUNC, "--root", str(self.roots["runc"]), *verb]
        return [*teachdock_cli(), "runtime", "--root", str(self.roots["teachdock"]), *verb]

    def bundle(self, config: dict) -> Path:
        self.counter += 1
        directory = self.workdir / f"bundle{self.counter}"
        write_bundle(directory, config)
        return directory

    def run(self, runtime: str, bundle: Path, container_id: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.command(runtime, "run", "--bundle", str(bundle), container_id),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        finally:
            self.force_delete(runtime, container_id)

    def force_delete(self, runtime: str, container_id: str) -> None:
        """`delete --force` that tolerates an already deleted container (run deletes on exit)."""
        subprocess.run(self.command(runtime, "delete", "--force", container_id),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)

    def run_both(self, args: list[str], **spec_options) -> dict[str, subprocess.CompletedProcess]:
        """One bundle, both runtimes, in turn."""
        spec_options.setdefault("hostname", HOSTNAME)
        bundle = self.bundle(make_spec(args, self.rootfs, **spec_options))
        container_id = f"oracle-{os.getpid()}-{self.counter}"
        return {runtime: self.run(runtime, bundle, container_id) for runtime in ("runc", "teachdock")}


@pytest.fixture
def runtimes(workspace, rootfs, request):
    workdir = workspace / request.node.name.replace("/", "_")
    workdir.mkdir()
    return Runtimes(workdir, rootfs)


def differences(runc_answer, teachdock_answer) -> str:
    """A readable unified diff of the two normalised answers."""
    diff = difflib.unified_diff(pprint.pformat(runc_answer, width=100).splitlines(),
                                pprint.pformat(teachdock_answer, width=100).splitlines(),
                                "runc", "teachdock", lineterm="")
    return "\n".join(diff)


# --- normalisers ------------------------------------------------------------------------------
def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def processes(text: str) -> list[tuple[str, str]]:
    """`ps -o pid,comm` without the header and without ps itself (its pid differs: runc's
    set-up uses a few pids in the new namespace before the program starts)."""
    rows = [tuple(line.split(None, 1)) for line in lines(text)[1:]]
    return [row for row in rows if row[1] != "ps"]


def status_fields(text: str) -> dict[str, str]:
    """'CapEff:\\t000...' lines of /proc/self/status -> {'CapEff': '000...'}; other lines with spaces collapsed."""
    answer = {}
    for line in lines(text):
        key, colon, value = line.partition(":")
        if colon and key.startswith(("Cap", "NoNewPrivs")):
            answer[key] = value.strip()
        else:
            answer.setdefault("other", []).append(" ".join(line.split()))
    return answer


def mountinfo(text: str) -> dict[str, tuple[str, str, str, str]]:
    """/proc/self/mountinfo -> {mount point: (root, per-mount options, fs type, super options)}.

    Mount ids, parent ids and device numbers are left out: they are numbered by the kernel
    in the order mounts were made, which differs between runtimes for no observable reason.
    When a point is mounted twice the last (visible) mount wins.
    """
    table = {}
    for line in lines(text):
        fields = line.split()
        separator = fields.index("-")
        table[fields[4]] = (fields[3], fields[5], fields[separator + 1], fields[separator + 3])
    return table


#: Where a container's standard filesystems are; their options (ro, nosuid, ...) must match.
STANDARD_MOUNTS = ("/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/tmp")


def standard_mounts(text: str) -> dict:
    table = mountinfo(text)
    return {point: table.get(point, "not mounted") for point in STANDARD_MOUNTS}


def readonly_flags(text: str) -> dict[str, bool]:
    """Which of the standard mounts carry the per-mount "ro" flag (field 6 of mountinfo)."""
    table = mountinfo(text)
    return {point: "ro" in table[point][1].split(",") if point in table else None for point in STANDARD_MOUNTS}


def mount_points_by_design(point: str) -> bool:
    """Mount points only one runtime makes, on purpose.

    - /sys/fs/cgroup/<controller>: runc shows every v1 hierarchy (cpuset, devices, freezer,
      blkio, name=systemd, ...) because it puts the container in all of them; teachdock
      shows only the hierarchies it manages and limits (cpu, cpuacct, memory, pids). The
      /sys/fs/cgroup tmpfs itself is also read-only in teachdock, as the spec's "ro" asks,
      while runc 1.1 leaves the tmpfs writable.
    """
    return point.startswith("/sys/fs/cgroup/")


def mount_points(text: str) -> list[str]:
    return sorted(point for point in mountinfo(text) if not mount_points_by_design(point))


def protected_path_mounts(text: str) -> dict:
    """How the masked and read-only paths are mounted (only those that exist on this kernel)."""
    table = mountinfo(text)
    return {point: table[point] for point in DEFAULT_MASKED_PATHS + DEFAULT_READONLY_PATHS if point in table}


def environment(text: str) -> list[str]:
    return sorted(line for line in lines(text) if not line.startswith(("PWD=", "SHLVL=", "_=")))


# --- expected answers, known without asking either runtime ----------------------------------------
def capability_mask(names) -> str:
    return f"{kernel.capability_bits(names):016x}"


DOCKER_CAPS = capability_mask(DEFAULT_CAPABILITIES)
CAPABILITIES_AS_ROOT = {"CapInh": "0" * 16, "CapPrm": DOCKER_CAPS, "CapEff": DOCKER_CAPS,
                        "CapBnd": DOCKER_CAPS, "CapAmb": "0" * 16, "NoNewPrivs": "1"}
CAPABILITIES_AS_NOBODY = {  # execve as a non-root user clears permitted and effective (capabilities(7))
    "other": ["uid=65534(nobody) gid=65534(nogroup)"], **CAPABILITIES_AS_ROOT, "CapPrm": "0" * 16, "CapEff": "0" * 16}
USER_NAMESPACE = {"other": ["uid=0(root) gid=0(root)"] + ["0 100000 65536"] * 2, **CAPABILITIES_AS_ROOT}
CAPS_SCRIPT = "grep -E '^(Cap(Bnd|Eff|Prm|Inh|Amb)|NoNewPrivs):' /proc/self/status"


def masked_expectation() -> list[str]:
    """Every masked path that exists on the host reads as empty inside; the others are absent."""
    expected = []
    for path in DEFAULT_MASKED_PATHS:
        if os.path.isdir(path):
            expected.append(f"{path} dir 0")
        elif os.path.exists(path):
            expected.append(f"{path} file 0")
        else:
            expected.append(f"{path} absent")
    return expected


MASKED_SCRIPT = " ".join(["for p in", *DEFAULT_MASKED_PATHS, """; do
  if [ -d $p ]; then echo "$p dir $(ls -A $p | wc -l)";
  elif [ -e $p ]; then echo "$p file $(cat $p | wc -c)";
  else echo "$p absent"; fi; done"""])

# Writes that must fail: the read-only /proc/sys (the per-namespace ip_forward would be
# writable without it), a new file in /proc/sys, the read-only root and /sys. /tmp is the
# container's own tmpfs and must stay writable.
READONLY_SCRIPT = """exec 2>&1
echo 1 > /proc/sys/net/ipv4/ip_forward; echo "ip_forward rc=$?"
touch /proc/sys/x; echo "proc/sys/x rc=$?"
touch /x; echo "/x rc=$?"
touch /sys/x; echo "/sys/x rc=$?"
touch /tmp/x; echo "/tmp/x rc=$?"
"""
READONLY_EXPECTED = [
    "sh: can't create /proc/sys/net/ipv4/ip_forward: Read-only file system", "ip_forward rc=1",
    "touch: /proc/sys/x: No such file or directory", "proc/sys/x rc=1",
    "touch: /x: Read-only file system", "/x rc=1",
    "touch: /sys/x: Read-only file system", "/sys/x rc=1",
    "/tmp/x rc=0",
]

# Character devices a container may create (CAP_MKNOD is a default) but must not open:
# runc's devices cgroup allows only null, zero, full, random, urandom, tty, console, pts.
# Opening without reading or ioctls changes nothing on the host.
DEVICES = [("mem", 1, 1), ("kvm", 10, 232), ("loop-control", 10, 237)]
DEVICES_SCRIPT = "\n".join(
    f"mknod /dev/probe-{name} c {major} {minor} || echo '{name}: mknod failed'\n"
    f"if (exec 3</dev/probe-{name}) 2>/dev/null; then echo '{name}: opened'; "
    f"else echo \"{name}: $( (exec 3</dev/probe-{name}) 2>&1 | sed 's/.*: //')\"; fi"
    for name, major, minor in DEVICES)


@dataclass
class Probe:
    name: str
    script: str
    normalise: Callable[[str], object] = lines
    expect: object = None  # the right answer, when known independently of both runtimes
    spec: dict = field(default_factory=dict)  # extra make_spec keywords
    bug: str | None = None  # a teachdock bug this probe exposes: the case is xfail(strict=True)


PROBES = [
    Probe("pid", "echo $$", expect=["1"]),
    Probe("processes", "ps -o pid,comm; exit 0", processes, expect=[("1", "sh")]),
    Probe("hostname", "hostname; cat /proc/sys/kernel/hostname", expect=[HOSTNAME, HOSTNAME]),
    Probe("id", "id", expect=["uid=0(root) gid=0(root)"]),
    Probe("capabilities", CAPS_SCRIPT, status_fields, expect=CAPABILITIES_AS_ROOT),
    Probe("capabilities-as-nobody", f"id; {CAPS_SCRIPT}", status_fields, expect=CAPABILITIES_AS_NOBODY,
          spec={"user": "65534:65534"}),
    Probe("user-namespace", f"id; cat /proc/self/uid_map /proc/self/gid_map; {CAPS_SCRIPT}",
          status_fields, expect=USER_NAMESPACE, spec={"namespaces": ("pid", "mount", "uts", "ipc", "network", "user")}),
    Probe("mount-refused", "mount -t tmpfs none /mnt 2>&1; echo rc=$?",
          expect=["mount: permission denied (are you root?)", "rc=1"]),
    Probe("network", "ls /sys/class/net; cat /sys/class/net/lo/flags", expect=["lo", "0x9"]),
    Probe("standard-mounts", "cat /proc/self/mountinfo", standard_mounts),
    Probe("read-only-flags", "cat /proc/self/mountinfo", readonly_flags,
          expect={point: point in ("/", "/sys") for point in STANDARD_MOUNTS}),
    Probe("mount-points", "cat /proc/self/mountinfo", mount_points),
    Probe("masked-paths", MASKED_SCRIPT, expect=masked_expectation()),
    Probe("readonly-paths", READONLY_SCRIPT, expect=READONLY_EXPECTED),
    Probe("protected-path-mount-options", "cat /proc/self/mountinfo", protected_path_mounts),
    Probe("environment", "env", environment),
    Probe("devices", DEVICES_SCRIPT, expect=[f"{name}: Operation not permitted" for name, _, _ in DEVICES]),
]


def _case(probe: Probe):
    marks = [pytest.mark.xfail(strict=True, reason=f"teachdock bug: {probe.bug}")] if probe.bug else []
    return pytest.param(probe, id=probe.name, marks=marks)


@pytest.mark.parametrize("probe", [_case(p) for p in PROBES])
def test_probe_gives_the_same_answer(runtimes, probe):
    results = runtimes.run_both(["sh", "-c", probe.script], **probe.spec)
    for runtime, result in results.items():
        assert result.returncode == 0, (
            f"{runtime} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}")
        assert result.stdout.strip(), f"{runtime} printed nothing; stderr: {result.stderr}"
    runc_answer = probe.normalise(results["runc"].stdout)
    teachdock_answer = probe.normalise(results["teachdock"].stdout)
    assert teachdock_answer == runc_answer, (
        f"probe {probe.name!r}: teachdock and runc disagree\n{differences(runc_answer, teachdock_answer)}")
    if probe.expect is not None:
        assert runc_answer == probe.expect, f"probe {probe.name!r}: both runtimes say {runc_answer!r}"


ETC_SCRIPT = "cat /etc/hostname /etc/hosts /etc/resolv.conf; grep ' /etc/' /proc/self/mountinfo | cut -d' ' -f5"


@pytest.mark.parametrize("own_files", [False, True], ids=["rootfs-files", "bundle-files"])
def test_etc_files_are_what_config_json_says(runtimes, own_files):
    """Neither runtime adds /etc/hostname, hosts or resolv.conf of its own: without mounts for
    them both show the rootfs's files; with make_spec(etc_directory=bundle), the bundle's."""
    runtimes.counter += 1
    directory = runtimes.workdir / f"bundle{runtimes.counter}"
    config = make_spec(["sh", "-c", ETC_SCRIPT], runtimes.rootfs, hostname=HOSTNAME,
                       etc_directory=directory if own_files else None)
    write_bundle(directory, config)
    results = {runtime: runtimes.run(runtime, directory, f"oracle-{os.getpid()}-{runtimes.counter}")
               for runtime in ("runc", "teachdock")}
    for runtime, result in results.items():
        assert result.returncode == 0, f"{runtime}: {result.stderr}"
    assert lines(results["teachdock"].stdout) == lines(results["runc"].stdout)
    rootfs_files = "".join((runtimes.rootfs / "etc" / name).read_text()
                           for name in ("hostname", "hosts", "resolv.conf"))
    if own_files:
        assert lines(results["runc"].stdout)[0] == HOSTNAME
        assert lines(results["runc"].stdout)[-3:] == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    else:
        assert lines(results["runc"].stdout) == lines(rootfs_files)


def test_exit_code_is_propagated(runtimes):
    results = runtimes.run_both(["sh", "-c", "echo going; exit 7"])
    codes = {runtime: result.returncode for runtime, result in results.items()}
    assert codes == {"runc": 7, "teachdock": 7}, {r: (p.returncode, p.stderr) for r, p in results.items()}
    assert results["runc"].stdout == results["teachdock"].stdout == "going\n"


# --- limits: read the host-side cgroup files each runtime wrote --------------------------------------
LIMIT_FILES = {  # what `memory="64m", pids_limit=20, cpus=0.5` must become
    "v1": {("memory", "memory.limit_in_bytes"): str(64 << 20), ("pids", "pids.max"): "20",
           ("cpu", "cpu.cfs_quota_us"): "50000", ("cpu", "cpu.cfs_period_us"): "100000"},
    "v2": {("", "memory.max"): str(64 << 20), ("", "pids.max"): "20", ("", "cpu.max"): "50000 100000"},
}


def container_pid(runtimes: Runtimes, runtime: str, container_id: str) -> int:
    state = subprocess.run(runtimes.command(runtime, "state", container_id), capture_output=True,
                           text=True, timeout=30, check=True).stdout
    return json.loads(state)["pid"]


def cgroup_limits(pid: int) -> dict:
    """The limit files of the cgroups ``pid`` is in, read from the host (not through either runtime)."""
    membership = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                membership[controller] = (controllers, path)
    version = "v2" if set(membership) == {""} else "v1"
    answers = {}
    for controller, file_name in LIMIT_FILES[version]:
        hierarchy, path = membership[controller]
        directory = Path("/sys/fs/cgroup", hierarchy, path.lstrip("/"))
        answers[file_name] = (directory / file_name).read_text().strip()
    return answers


def test_limits_land_in_the_same_cgroup_files(runtimes):
    """create + start a sleeping container under each runtime, then read both cgroups from the host.

    runc gets an explicit cgroupsPath (/oracle-runc-<rand>) so its cgroup is easy to find and
    to remove; teachdock uses its own default, /teachdock/<id>.
    """
    suffix = os.urandom(4).hex()
    runc_cgroup = f"/oracle-runc-{suffix}"
    container_id = f"oracle-limits-{suffix}"
    options = {"memory": "64m", "pids_limit": 20, "cpus": 0.5, "hostname": HOSTNAME}
    bundles = {"runc": runtimes.bundle(make_spec(["sleep", "60"], runtimes.rootfs, cgroups_path=runc_cgroup, **options)),
               "teachdock": runtimes.bundle(make_spec(["sleep", "60"], runtimes.rootfs, **options))}
    try:
        limits = {}
        for runtime, bundle in bundles.items():
            for verb in (["create", "--bundle", str(bundle), container_id], ["start", container_id]):
                # The sleeping program inherits the runtime's stdio: no pipes, or run() waits for it.
                with open(runtimes.workdir / f"{runtime}-{verb[0]}.err", "w+") as errors:
                    done = subprocess.run(runtimes.command(runtime, *verb), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=errors, timeout=60)
                    errors.seek(0)
                    assert done.returncode == 0, f"{runtime} {verb[0]} failed: {errors.read()}"
            limits[runtime] = cgroup_limits(container_pid(runtimes, runtime, container_id))
        assert limits["teachdock"] == limits["runc"], differences(limits["runc"], limits["teachdock"])
        version = "v2" if "cpu.max" in limits["runc"] else "v1"
        assert limits["runc"] == {name: value for (_, name), value in LIMIT_FILES[version].items()}
    finally:
        for runtime in bundles:
            runtimes.force_delete(runtime, container_id)
        leftovers = glob.glob(f"/sys/fs/cgroup/*{runc_cgroup}") + glob.glob(f"/sys/fs/cgroup/*/teachdock/{container_id}")
        leftovers += glob.glob(f"/sys/fs/cgroup{runc_cgroup}") + glob.glob(f"/sys/fs/cgroup/teachdock/{container_id}")
        for directory in leftovers:
            os.rmdir(directory)
    assert leftovers == [], f"delete --force left cgroups behind (removed now): {leftovers}"
