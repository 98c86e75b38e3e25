"""Chapter 00 in Korean (#18): the checks' hints, the doctor's table and verdicts, the room check's
lines, the launcher's report, and `teachdock doctor --lang ko`; --json stays English."""

import json
from dataclasses import replace

import pytest

from teachdock.cli import doctor as doctor_cli
from teachdock.lab.common import views
from teachdock.lab.start_here import machine, room
from teachdock.lab.start_here.checks import judge_host_network, judge_pid1_without_pid_namespace, judge_ps_count
from teachdock.lab.start_here.doctor import render_html
from teachdock.lab.start_here.launcher import result_html
from tests.support.korean import reads_korean
from tests.unit.test_room_check import _machine  # the same healthy machine, changed per test

HOST = views.View("host", 4242, "systemd", [(i, "x") for i in range(1, 81)], "vm", 30, ["lo", "eth0"], 0)


def test_the_ps_count_judge_speaks_korean(korean):
    for answer, passed in ((1, True), (2, False), (80, False), ("three", False)):
        result = judge_ps_count(answer, truth=1, host_count=80)
        assert result.passed is passed and reads_korean(result.message), result.message


def test_the_pid1_and_host_network_judges_speak_korean(korean):
    for answer, passed in (("systemd", True), ("sh", False), (1, False)):
        result = judge_pid1_without_pid_namespace(answer, "systemd", 31337)
        assert result.passed is passed and reads_korean(result.message), result.message
    lab = views.View("container", 1, "sh", [(1, "sh")], "lab", 20, ["lo", "eth0"], 0)
    only_lo = replace(lab, interfaces=["lo"])
    for seen, passed in ((lab, True), (only_lo, False), (replace(lab, hostname="vm"), False)):
        result = judge_host_network({"hostname": "lab", "namespaces": ("pid", "mount")}, seen, HOST)
        assert result.passed is passed and reads_korean(result.message), result.message


@pytest.mark.parametrize("changes", [{}, {"runc": None, "is_root": False},
                                     {"busybox": "dynamic", "cgroup_controllers": {"memory": False, "cpu": True,
                                                                                  "pids": True}}])
def test_the_doctor_table_and_verdict_read_korean(korean, changes):
    report = _machine(**changes)
    assert reads_korean(report.verdict), report.verdict
    for finding in report.findings:
        assert reads_korean(finding.meaning), finding.meaning
    html = render_html(report)
    assert "이 머신에서 본 값" in html and "준비" in html.split("<table", 1)[0]
    assert reads_korean(report.format())


def test_teachdock_doctor_lang_ko_prints_korean_and_json_stays_english(monkeypatch, capsys):
    limited = _machine(runc=None)
    monkeypatch.setattr(machine, "probe", lambda: _machine(runc=None))
    monkeypatch.delenv("TEACHDOCK_LANG", raising=False)
    assert doctor_cli.main(["--lang", "ko"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("teachdock doctor: 이 머신에서") and "판정: 이 머신에서 과정 대부분이" in printed
    assert reads_korean(printed) and printed.rstrip().count("\n") == limited.format().count("\n")
    monkeypatch.setenv("TEACHDOCK_LANG", "ko")  # the setting alone speaks Korean too; --json never does
    assert doctor_cli.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"].startswith("Most of the course works here. Limited: the 'swap the runtime'")
    assert next(f for f in data["findings"] if f["name"] == "runc")["value"] == "not installed"
    assert doctor_cli.main(["--lang", "en"]) == 0 and "Verdict: Most of the course" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        doctor_cli.main(["--lang", "fr"])
    assert refused.value.code == 2 and "invalid choice: 'fr'" in capsys.readouterr().err
    monkeypatch.setenv("TEACHDOCK_LANG", "fr")  # the setting is refused too, as scripts/lab refuses it
    with pytest.raises(SystemExit) as refused:
        doctor_cli.main([])
    refusal = capsys.readouterr().err
    assert refused.value.code == 2 and "TEACHDOCK_LANG='fr' is not a language of the course" in refusal
    assert doctor_cli.main(["--lang", "en"]) == 0 and "Verdict:" in capsys.readouterr().out  # --lang decides
    assert doctor_cli.main(["--json"]) == 0 and json.loads(capsys.readouterr().out)  # JSON has no language


def test_the_room_check_keeps_its_english_keys_and_says_the_rest_in_korean(korean):
    facts = room.RoomFacts(
        python=(3, 11, 2), tools={executable: None for _, executable, *_ in room.TOOLS},
        libraries={soname: True for _, soname, *_ in room.LIBRARIES}, vm_kernel="/boot/vmlinuz",
        vm_kernel_problem="", kvm_problem=None, compose_v2=None, data_root="/var/lib/teachdock",
        free_bytes=50 * room.GIB, socket_group=False)
    report = room.RoomReport(_machine(), facts, room.assess_room(_machine(), facts))
    lines = room.format_room(report).splitlines()
    assert "MISSING qemu 설치되지 않음" in lines
    assert lines[-1].startswith("실행할 수 없음: 01 가상화 (qemu)") and reads_korean(lines[-1])
    assert room.room_json(report)["chapters"]["01"]["title"] == "virtualization"


def test_the_launcher_report_reads_korean(korean):
    class Result:
        exit_code, oom_killed, duration, metrics, stdout, stderr = 137, True, 0.05, None, "", ""

    page = result_html("x=a", Result())
    assert "종료 코드" in page and "OOM 킬러" in page and "(출력 없음)" in page
    assert reads_korean(page)
