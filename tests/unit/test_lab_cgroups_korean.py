"""Chapter 03's lab in Korean (TEACHDOCK_LANG=ko): the checks' answers and hints, the live monitor's
widget, plot and final figures, and the cgroup v2 VM views read as Korean (tests/support/korean.py)."""

from __future__ import annotations

import asyncio

import pytest

from teachdock.lab.cgroups import checks as cgroup_checks
from teachdock.lab.cgroups import v2_vm
from teachdock.lab.cgroups.checks import (
    MIB,
    judge_cpu_seconds,
    judge_cpu_update,
    judge_docker_memory,
    judge_memory_limit,
    judge_pids_limit,
)
from teachdock.lab.cgroups.samples import plot_samples, summarize
from tests.support.korean import reads_korean
from tests.unit.test_lab_monitor import fake, new_monitor, oom_run  # noqa: F401 - fake is a fixture


@pytest.mark.parametrize("limit, passed", [
    (48 * MIB, True),
    (48 * 1000 * 1000 // 4096 * 4096, False),  # decimal megabytes
    (48 * 1024 * MIB, False),                  # GiB, not MiB
])
def test_memory_limit_in_korean(korean, limit, passed):
    result = judge_memory_limit(limit)
    assert result.passed == passed and reads_korean(result.message), result.message


@pytest.mark.parametrize("answer, passed", [(1.0, True), (2.0, False), (1000, False), ("lots", False)])
def test_cpu_seconds_in_korean(korean, answer, passed):
    result = judge_cpu_seconds(answer, 1.0)
    assert result.passed == passed and reads_korean(result.message), result.message


@pytest.mark.parametrize("answer, starts, below, passed", [
    (11, True, False, True), (10, False, None, False), (12, True, True, False)])
def test_pids_limit_in_korean(korean, answer, starts, below, passed):
    result = judge_pids_limit(answer, starts=starts, starts_with_one_less=below)
    assert result.passed == passed and reads_korean(result.message), result.message


def test_cpu_update_and_docker_memory_in_korean(korean):
    for result, passed in ((judge_cpu_update(20_000, 100_000, 0.2), True),
                           (judge_cpu_update(2_000, 100_000, 0.02), False),
                           (judge_cpu_update(50_000, 100_000, 0.5), False),
                           (judge_docker_memory(64 * MIB, 64 * MIB), True),
                           (judge_docker_memory(64 * MIB, 0), False),
                           (judge_docker_memory(64 * MIB, 128 * MIB), False)):
        assert result.passed == passed and reads_korean(result.message), result.message


def test_without_root_every_check_says_so_in_korean(korean, monkeypatch):
    monkeypatch.setattr(cgroup_checks, "is_root", lambda: False)
    for result in (cgroup_checks.check_memory_limit("x"), cgroup_checks.check_cpu_seconds(1.0),
                   cgroup_checks.check_pids_limit(11), cgroup_checks.check_cpu_update("x"),
                   cgroup_checks.check_docker_memory("x")):
        assert not result.answered and reads_korean(result.message) and "sudo scripts/lab" in result.message


def test_the_final_figures_and_the_plot_read_korean(korean):
    result = summarize("memory", "cgmon-1", oom_run(), exit_code=137, oom_killed=True, stopped=False, cpu_limit=0.5)
    assert all(reads_korean(name) for name, _ in result.rows())
    assert dict(result.rows())["끝난 방식"] == "2.6초 만에 커널이 OOM으로 죽임"
    assert reads_korean(result._repr_html_()) and "137 = 128 + 9 (SIGKILL)" in repr(result)
    figure = plot_samples(oom_run(), cpu_limit=0.5, title="메모리 호그")
    assert [ax.get_title(loc="left") for ax in figure.axes][:3] == ["메모리", "CPU", "프로세스"]
    assert figure.axes[2].get_xlabel() == "시작 후 경과 시간(초)"
    labels = [line.get_label() for line in figure.axes[0].get_lines() if line.get_visible()]
    assert "제한 32 MiB" in labels and "OOM 킬" in labels


def test_the_monitor_widget_speaks_korean(korean, fake):  # noqa: F811 - the fixture
    async def scenario():
        m = new_monitor()
        labels = (m.start_button.description, m.stop_button.description, m.memory_slider.description)
        waiting, options = m.status.value, m.load_choice.options
        m.start(load="cpu", cpus=0.5)
        await asyncio.sleep(0.1)
        m.stop_button.click()
        await m.task
        return m, labels, waiting, options

    m, labels, waiting, options = asyncio.run(scenario())
    assert labels == ("시작", "중지", "메모리 제한 (MiB)")
    assert reads_korean(waiting) and [label for label, _ in options] == ["메모리 호그", "CPU 버너", "포크 폭탄"]
    assert reads_korean(m.status.value) and "137" in m.status.value and reads_korean(m.figures.value)


def test_the_v2_views_read_korean(korean, tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert reads_korean(v2_vm.host_cgroup_sentence(str(tmp_path)))
    rows = v2_vm.parse_demo_output('TEACHDOCK-V2 [["/sys/fs/cgroup/demo/memory.events", "max 3\\noom_kill 1", '
                                   '"events-after", {"code": 137}]]\n')
    assert reads_korean(rows[0][2]) and "137" in rows[0][2]
    table = v2_vm.V2Demo(rows, kernel="6.1", seconds=14.2).table()
    assert reads_korean(table.html) and "VM 안의 cgroup v2 (커널 6.1, 14초)" in table.text
