"""teachdock.lab.start_here.room (`teachdock doctor --room`) and `teachdock doctor`'s flags: the JSON
shapes, the one-line-per-requirement text and the exit status, judged on made-up machines."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from teachdock.cli import main
from teachdock.cli import doctor as doctor_cli
from teachdock.lab.start_here import machine, room
from teachdock.lab.start_here.machine import MISSING, OK, WARN, HostReport, NamespaceProbe


def _machine(**changes) -> HostReport:
    report = HostReport(
        is_root=True, kernel="6.1.0-56-amd64",
        namespaces={name: NamespaceProbe(name, True, True, how="directly") for name in machine.CLONE_FLAGS},
        userns_settings={}, cgroup_version="v2", cgroup_controllers={"memory": True, "cpu": True, "pids": True},
        cgroup_writable=True, overlayfs=True, busybox="static", base_rootfs=Path("/var/lib/teachdock/rootfs/busybox"),
        base_rootfs_present=True, runc="/usr/sbin/runc")
    report = replace(report, **changes)
    report.findings = machine.assess(report)
    return report


def _facts(**changes) -> room.RoomFacts:
    facts = room.RoomFacts(
        python=(3, 11, 2), tools={executable: f"/usr/bin/{executable}" for _, executable, *_ in room.TOOLS},
        libraries={soname: True for _, soname, *_ in room.LIBRARIES}, vm_kernel="/boot/vmlinuz-6.1.0-56-amd64",
        vm_kernel_problem="", kvm_problem=None, compose_v2="/usr/local/lib/docker/cli-plugins/docker-compose",
        data_root="/var/lib/teachdock", free_bytes=50 * room.GIB, socket_group=True)
    return replace(facts, **changes)


def _room(host=None, facts=None) -> room.RoomReport:
    host = host or _machine()
    facts = facts or _facts()
    return room.RoomReport(host, facts, room.assess_room(host, facts))


def test_a_machine_with_everything_runs_every_chapter():
    report = _room()
    assert {r.status for r in report.requirements} == {OK}
    assert report.exit_status == 0 and report.blocked == []
    assert set(report.chapters) == set(room.CHAPTERS)
    assert format_lines(report)[-1] == "every chapter can run (12 chapters)"


def format_lines(report):
    return room.format_room(report).splitlines()


def test_every_requirement_is_one_line_of_status_name_value():
    report = _room(facts=_facts(tools={**_facts().tools, "criu": None}))
    lines = format_lines(report)[:len(report.requirements)]
    for line, requirement in zip(lines, report.requirements, strict=True):
        status, name, value = line.split(None, 2)
        assert (status, name, value) == (requirement.status.upper(), requirement.name, requirement.value)
    assert "WARN    criu not installed" in lines


def test_a_missing_tool_blocks_only_its_chapters_and_sets_exit_1():
    report = _room(facts=_facts(tools={**_facts().tools, "docker-registry": None}))
    assert report.blocked == ["06"] and report.exit_status == 1
    assert report.chapters["06"]["missing"] == ["docker-registry"]
    assert report.chapters["05"]["status"] == "ok"
    assert format_lines(report)[-1] == "cannot run: 06 registries (docker-registry)"


def test_a_warning_limits_a_chapter_but_the_exit_status_stays_0():
    report = _room(facts=_facts(kvm_problem="/dev/kvm does not exist"))
    assert report.exit_status == 0
    assert report.chapters["01"] == {"title": "virtualization", "status": "limited", "missing": [],
                                     "limited_by": ["kvm"]}
    assert "limited: 01 virtualization (kvm)" in format_lines(report)


def test_no_static_busybox_blocks_every_chapter():
    report = _room(host=_machine(busybox="dynamic"))
    assert report.blocked == list(room.CHAPTERS)
    assert report.requirements[[r.name for r in report.requirements].index("static-busybox")].status == MISSING


def test_not_root_is_missing_in_the_room_check_though_only_a_warning_for_the_doctor():
    host = _machine(is_root=False)
    assert host.finding("root").status == WARN
    root = next(r for r in _room(host=host).requirements if r.name == "root")
    assert root.status == MISSING and "as root" in root.value
    assert _room(host=host).exit_status == 1


@pytest.mark.parametrize("free, status", [(10 * room.GIB, OK), (room.GIB, WARN), (100 * 1024 ** 2, MISSING),
                                          (None, MISSING)])
def test_free_disk_thresholds(free, status):
    disk = next(r for r in _room(facts=_facts(free_bytes=free)).requirements if r.name == "free-disk")
    assert disk.status == status


def test_old_python_and_unloadable_libseccomp_block_everything():
    assert _room(facts=_facts(python=(3, 9, 2))).blocked == list(room.CHAPTERS)
    libraries = {**_facts().libraries, "libseccomp.so.2": False}
    assert _room(facts=_facts(libraries=libraries)).blocked == list(room.CHAPTERS)
    libraries = {**_facts().libraries, "libnftables.so.1": False}
    assert _room(facts=_facts(libraries=libraries)).blocked == list(room.DAEMON_CHAPTERS)


def test_a_missing_socket_group_warns_without_limiting_a_chapter():
    report = _room(facts=_facts(socket_group=False))
    group = next(r for r in report.requirements if r.name == "socket-group")
    assert group.status == WARN and group.chapters == ()
    assert all(v["status"] == "ok" for v in report.chapters.values())


def test_machine_limits_become_chapter_numbers():
    assert room.chapters_of([machine.CGROUP_CHAPTER]) == ("03", "11")
    assert room.chapters_of([machine.ORACLE, machine.NAMESPACE_CHAPTER]) == ("00", "02", "03", "04", "11")
    assert room.chapters_of(["08 networks"]) == ("08",)
    assert room.chapters_of(["something new"]) == tuple(room.CHAPTERS)


def test_room_json_shape():
    report = _room(facts=_facts(tools={**_facts().tools, "qemu-system-x86_64": None}))
    data = json.loads(json.dumps(room.room_json(report)))
    assert set(data) == {"ok", "kernel", "is_root", "cgroup_version", "requirements", "chapters", "cannot_run"}
    assert data["ok"] is False and data["cannot_run"] == ["01"]
    qemu = next(r for r in data["requirements"] if r["name"] == "qemu")
    assert qemu == {"name": "qemu", "status": MISSING, "value": "not installed", "chapters": ["01"],
                    "fix": "apt-get install qemu-system-x86"}
    assert data["chapters"]["01"]["status"] == "blocked"


def test_doctor_json_shape():
    host = _machine(overlayfs=False)
    data = json.loads(json.dumps(machine.report_json(host)))
    assert set(data) == {"verdict_level", "verdict", "kernel", "is_root", "cgroup_version", "findings"}
    assert data["verdict_level"] == "limited"
    overlay = next(f for f in data["findings"] if f["name"] == "overlayfs")
    assert overlay["status"] == WARN and overlay["limits"] == [machine.IMAGE_CHAPTER] and overlay["fix"]


def test_doctor_help_teaches_and_runs_nothing(capsys, monkeypatch):
    monkeypatch.setattr(machine, "probe", lambda: pytest.fail("--help must not probe the machine"))
    assert main(["doctor", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--room" in out and "exit" in out.lower() and "--json" in out


def test_doctor_refuses_an_unknown_flag(capsys):
    assert main(["doctor", "--rooom"]) == 2
    assert "unrecognized arguments: --rooom" in capsys.readouterr().err


def test_doctor_room_exit_status_is_the_reports(capsys, monkeypatch):
    blocked = _room(facts=_facts(tools={**_facts().tools, "docker": None}))
    monkeypatch.setattr(room, "probe_room", lambda: blocked)
    assert doctor_cli.main(["--room"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "cannot run: 07 client and daemon (docker-cli); " \
        "09 applications (docker-cli); 10 security (docker-cli)"
    assert doctor_cli.main(["--room", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["cannot_run"] == ["07", "09", "10"]


def test_the_room_check_knows_every_chapter_of_the_course():
    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    numbers = sorted(path.name[:2] for path in notebooks.glob("[0-9][0-9]_*.ipynb"))
    assert numbers == sorted(room.CHAPTERS), "a chapter was added or removed: update room.CHAPTERS and TOOLS"
