"""teachdock.lab.start_here.machine (the doctor's probes): parsers fed with fake /proc text, and the verdict logic on made-up machines."""

import os
import struct
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from teachdock.lab.start_here import machine as host
from teachdock.lab.start_here.machine import MISSING, OK, WARN, HostReport, NamespaceProbe

FILESYSTEMS = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\nnodev\tcgroup2\n"


def test_parse_filesystems_with_and_without_nodev():
    names = host.parse_filesystems(FILESYSTEMS)
    assert {"overlay", "ext4", "cgroup2", "tmpfs"} <= names
    assert "nodev" not in names


def test_no_cgroup_filesystem_is_reported_not_raised(tmp_path):
    assert host.detect_cgroup_version(str(tmp_path)) is None


@pytest.mark.parametrize(
    "release, expected",
    [("6.1.0-56-amd64", (6, 1)), ("5.15.0-91-generic", (5, 15)), ("6.18.44-fc-v509", (6, 18)), ("4", (4, 0))],
)
def test_kernel_version(release, expected):
    assert host.kernel_version(release) == expected


def _elf64(program_header_types):
    """A minimal little-endian ELF64 header followed by program headers of the given types."""
    phoff, phentsize = 64, 56
    header = bytearray(phoff + phentsize * len(program_header_types))
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, phentsize, len(program_header_types))
    for i, p_type in enumerate(program_header_types):
        struct.pack_into("<I", header, phoff + i * phentsize, p_type)
    return bytes(header)


def test_elf_with_interpreter_is_dynamic_and_without_is_static():
    PT_LOAD, PT_INTERP, PT_DYNAMIC = 1, 3, 2
    assert host.elf_is_static(_elf64([PT_LOAD, PT_LOAD])) is True
    assert host.elf_is_static(_elf64([PT_INTERP, PT_LOAD, PT_DYNAMIC])) is False
    assert host.elf_is_static(b"#!/bin/sh\necho not elf\n") is None


def test_busybox_kind_on_real_files(tmp_path):
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\n")
    assert host.busybox_kind(str(script)) == "absent"
    assert host.busybox_kind(str(tmp_path / "nothing")) == "absent"
    # The interpreter running this test is dynamically linked (it loads libc.so).
    assert host.busybox_kind(os.path.realpath(sys.executable)) == "dynamic"


def test_try_unshare_reports_the_errno_of_an_invalid_flag():
    # CLONE_PARENT is not a flag unshare(2) accepts: it answers EINVAL, and the child reports it.
    import errno

    assert host.try_unshare(0x00008000) == errno.EINVAL


def test_try_unshare_leaves_our_own_namespace_alone():
    before = os.readlink("/proc/self/ns/uts")
    host.try_unshare(host.CLONE_FLAGS["uts"])
    assert os.readlink("/proc/self/ns/uts") == before


# ---- verdict logic on made-up machines ----------------------------------------------------


def _machine(**changes) -> HostReport:
    """A machine with everything the course needs; tests break one thing at a time."""
    report = HostReport(
        is_root=True,
        kernel="6.1.0-56-amd64",
        namespaces={name: NamespaceProbe(name, True, True, how="directly") for name in host.CLONE_FLAGS},
        userns_settings={"user.max_user_namespaces": 15000},
        cgroup_version="v1",
        cgroup_controllers={"memory": True, "cpu": True, "pids": True},
        cgroup_writable=True,
        overlayfs=True,
        busybox="static",
        base_rootfs=Path("/var/lib/teachdock/rootfs/busybox"),
        base_rootfs_present=True,
        runc="/usr/sbin/runc",
    )
    report = replace(report, **changes)
    report.findings = host.assess(report)
    return report


def test_a_complete_machine_gets_the_all_clear():
    report = _machine()
    assert all(f.status == OK for f in report.findings), report.format()
    assert report.verdict_level == "ok"
    assert report.verdict == "Everything the course needs is here."


def test_every_finding_explains_itself_and_every_problem_has_a_fix():
    broken = _machine(
        is_root=False, cgroup_writable=False, overlayfs=False, runc=None, busybox="dynamic",
        base_rootfs_present=False, kernel="5.4.0",
        userns_settings={"kernel.apparmor_restrict_unprivileged_userns": 1},
    )
    for f in broken.findings:
        assert f.status in (OK, WARN, MISSING)
        assert f.meaning.endswith("."), f
        if f.status != OK:
            assert f.fix, f"{f.name} is {f.status} but offers no fix"


def test_missing_pid_namespace_blocks_everything():
    namespaces = dict(_machine().namespaces, pid=NamespaceProbe("pid", True, False, error="EPERM"))
    report = _machine(namespaces=namespaces)
    finding = report.finding("pid namespace")
    assert finding.status == MISSING and finding.value == "refused (EPERM)"
    assert report.verdict_level == "blocked"
    assert report.verdict.startswith("Containers cannot start")
    assert "pid namespace" in report.verdict


def test_missing_time_namespace_only_limits_the_namespace_chapter():
    namespaces = dict(_machine().namespaces, time=NamespaceProbe("time", False, False, error="not in this kernel"))
    report = _machine(namespaces=namespaces)
    assert report.finding("time namespace").status == WARN
    assert report.verdict_level == "limited"
    assert "02 namespaces" in report.verdict and "time namespace" in report.verdict


def test_not_root_limits_root_cells_and_cgroups():
    report = _machine(is_root=False, cgroup_writable=False)
    assert report.finding("root").status == WARN
    assert report.finding("cgroup writable").status == WARN
    assert report.verdict_level == "limited"
    assert "needs-root" in report.verdict and "03 cgroups" in report.verdict
    assert report.finding("root").meaning.startswith("Containers still start, rootless")


def test_namespace_created_inside_a_user_namespace_counts_as_working():
    namespaces = dict(_machine().namespaces, net=NamespaceProbe("net", True, True, how="inside a user namespace"))
    report = _machine(is_root=False, namespaces=namespaces)
    assert report.finding("net namespace").status == OK
    assert report.finding("net namespace").value == "works inside a user namespace"


def test_missing_cgroup_controller_is_named():
    report = _machine(cgroup_controllers={"memory": True, "cpu": False, "pids": False})
    finding = report.finding("cgroup controllers")
    assert finding.status == MISSING and finding.value == "missing: cpu, pids"
    assert "03 cgroups" in report.verdict


def test_no_cgroups_at_all():
    report = _machine(cgroup_version=None, cgroup_controllers={}, cgroup_writable=False)
    assert report.finding("cgroups").status == MISSING
    assert "03 cgroups" in report.verdict


def test_dynamic_busybox_blocks_because_no_rootfs_can_be_built():
    report = _machine(busybox="dynamic", base_rootfs_present=False)
    assert report.finding("static busybox").status == MISSING
    assert report.finding("static busybox").fix == "apt-get install busybox-static"
    assert report.verdict_level == "blocked"


def test_unbuilt_base_rootfs_is_a_warning_that_limits_nothing():
    report = _machine(base_rootfs_present=False)
    assert report.finding("base rootfs").status == WARN
    assert report.verdict_level == "ok"


def test_apparmor_restriction_matters_only_without_root():
    restricted = {"kernel.apparmor_restrict_unprivileged_userns": 1}
    as_root = _machine(userns_settings=restricted)
    as_user = _machine(userns_settings=restricted, is_root=False)
    assert as_root.finding("rootless user namespaces").status == OK
    assert as_user.finding("rootless user namespaces").status == WARN
    assert "apparmor_restrict_unprivileged_userns=0" in as_user.finding("rootless user namespaces").fix


def test_no_overlayfs_and_no_runc_limit_their_chapters():
    report = _machine(overlayfs=False, runc=None)
    assert report.finding("overlayfs").status == WARN
    assert report.finding("runc").status == WARN
    assert "images and layers" in report.verdict and "runc" in report.verdict


def test_format_lists_every_finding_and_the_verdict():
    report = _machine(runc=None)
    text = report.format()
    for f in report.findings:
        assert f.name in text
    assert "fix: apt-get install runc" in text
    assert text.splitlines()[-1].startswith("Verdict: Most of the course works here.")


def test_probe_on_this_machine_is_consistent():
    """The live probe: whatever this machine is, the report must agree with what /proc says."""
    report = host.probe()
    assert report.is_root == (os.geteuid() == 0)
    assert report.kernel == os.uname().release
    offered = set(os.listdir("/proc/self/ns"))
    for name, ns in report.namespaces.items():
        assert ns.offered == (name in offered)
    assert report.overlayfs == ("overlay" in open("/proc/filesystems").read())
    assert report.cgroup_version in ("v1", "v2", None)
    assert report.verdict_level in ("ok", "limited", "blocked")
