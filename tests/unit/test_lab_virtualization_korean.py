"""Chapter 01 in Korean (#18): the exercise checks' hints, the isolation table, the measurements'
summary and the figures' titles read Korean; the names a learner answers with stay visible."""

import pytest

from teachdock.lab.virtualization import checks, figures, history, isolation, measurements, stacks, syscalls
from teachdock.runtime import RunResult
from teachdock.runtime.cgroups import Metrics
from tests.support.korean import reads_korean
from tests.unit.test_lab_virtualization import CONTAINER, HOST, VENV  # the three views the English tests judge

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _run_result(limit, exit_code=0, oom=False):
    return RunResult(id="x", exit_code=exit_code, stdout=f"{limit}\n", stderr="", oom_killed=oom,
                     metrics=Metrics(memory_limit_bytes=limit), duration=0.02)


def _said_korean(result, passed):
    assert result.passed is passed and reads_korean(result.message), result.message


def test_the_judges_speak_korean(korean):
    _said_korean(checks.judge_makes_directory("mkdir /x", {"mkdir", "execve"}), True)
    _said_korean(checks.judge_makes_directory("echo mkdir", {"write", "execve"}), False)
    _said_korean(checks.judge_makes_directory("ls", {"getdents64"}), False)
    _said_korean(checks.judge_virtualenv_isolates(["packages"], HOST, VENV), True)
    _said_korean(checks.judge_virtualenv_isolates(["packages", "hostname"], HOST, VENV), False)
    _said_korean(checks.judge_virtualenv_isolates(["packages", "files", "hostname"], HOST, VENV, CONTAINER), False)
    _said_korean(checks.judge_memory_limit(_run_result(48 * 2**20)), True)
    _said_korean(checks.judge_memory_limit(_run_result(47_996_928)), False)
    _said_korean(checks.judge_memory_limit(_run_result(4096, exit_code=137, oom=True)), False)
    _said_korean(checks.judge_break_even(0.98, container_startup=0.02), True)
    _said_korean(checks.judge_break_even(980, container_startup=0.02), False)
    _said_korean(checks.judge_break_even(0.02, container_startup=0.02), False)
    _said_korean(checks.judge_cpu_limit(50, truth_percent=52.0), True)
    _said_korean(checks.judge_cpu_limit(98, truth_percent=52.0), False)
    _said_korean(checks.judge_cpu_limit(0.5, truth_percent=52.0), False)


def test_the_isolation_table_reads_korean_and_keeps_the_names_to_answer_with(korean):
    table = isolation.isolation_table(HOST, VENV, CONTAINER)
    html = table._repr_html_()
    assert "새 virtualenv" in html and "호스트 이름" in html and "<code>hostname</code>" in html
    assert "64 MiB" in html and "파이썬이 아예 없음" in html and "제한 없음" in html
    assert reads_korean(repr(table))


def test_the_summary_and_the_figures_read_korean(korean):
    m = measurements.Measurements(iterations=1000)
    m.add("process", startup=0.001, compute=0.1, memory=1_700_000)
    m.missing["container"] = "root가 필요합니다"
    m.add("VM", startup=1.8, memory=230 * 2**20, compute=1.5)
    summary = m.summary()
    assert "이 머신에서 잰 값" in summary and "컨테이너" in summary and reads_korean(summary)
    assert reads_korean(figures.plot_measurements(m).get_suptitle())
    (ax,) = figures.plot_apparent_speed(m).get_axes()
    assert all(reads_korean(text) for text in (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()))
    assert reads_korean(figures.speed_sentence(m, 1.0))
    assert [axis.get_title() for axis in stacks.plot_stacks().get_axes()][0] == "베어메탈"
    timeline = history.plot_timeline().get_axes()[0]
    assert reads_korean(timeline.get_title()) and "마운트 네임스페이스\n2002" in [t.get_text() for t in timeline.texts]
    assert all(reads_korean(what) for _, _, what in history.timeline_rows())
    trace = syscalls.Trace("host", [syscalls.Call(1, "read", "1 read(0, ...) = 1", "1")], "")
    assert reads_korean(syscalls.plot_syscall_counts(trace, trace).get_axes()[0].get_title())
