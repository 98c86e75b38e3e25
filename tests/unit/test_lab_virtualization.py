"""teachdock.lab.virtualization (stacks, measurements, figures, isolation, checks): measurement logic, probes, plots and exercise checks, without root.

Containers and the VM are replaced by fixed figures; the probes run as ordinary host
processes (reading /proc changes nothing), which is also how a virtualenv runs them.
"""

import os
import shutil
import socket
import sys

import pytest

from teachdock.lab.common.checks import CheckResult
from teachdock.lab.virtualization import checks, figures, isolation, measurements, stacks
from teachdock.runtime import RunResult
from teachdock.runtime.cgroups import Metrics

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

needs_busybox = pytest.mark.skipif(not os.path.exists(measurements.BUSYBOX), reason=f"{measurements.BUSYBOX} is not installed")


def _measured(container=True, vm=True) -> measurements.Measurements:
    m = measurements.Measurements(iterations=1000)
    for seconds in (0.0008, 0.001, 0.0012):
        m.add("process", startup=seconds)
    for seconds in (0.100, 0.090, 0.120):
        m.add("process", compute=seconds, memory=1_700_000)
    if container:
        for seconds in (0.018, 0.020, 0.025):
            m.add("container", startup=seconds)
        for seconds in (0.095, 0.090):
            m.add("container", compute=seconds, memory=1_500_000)
    else:
        m.missing["container"] = "starting containers needs root"
    if vm:
        m.add("VM", startup=1.8, memory=230 * 2**20, compute=1.5)
    else:
        m.missing["VM"] = "qemu-system-x86_64 is not installed"
    return m


# ---- the workload ------------------------------------------------------------------------


def test_loop_script_counts_the_requested_iterations():
    script = measurements.loop_script(1234)
    assert "-lt 1234 ]" in script
    assert "$EPOCHREALTIME" in script and "VmHWM" in script


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100"])
def test_loop_script_refuses_nonsense(bad):
    with pytest.raises(ValueError, match="positive whole number"):
        measurements.loop_script(bad)


def test_parse_loop_output_reads_its_own_line_among_others():
    text = "noise\nloop start=100.250000 end=100.375500 peak_kib=1644\nmore\n"
    result = measurements.parse_loop_output(text)
    assert result.seconds == pytest.approx(0.1255)
    assert result.peak_rss_bytes == 1644 * 1024


@pytest.mark.parametrize("text", ["", "loop start=1.0 end=\n", "loop start=1 end=2\n"])
def test_parse_loop_output_says_what_it_missed(text):
    with pytest.raises(ValueError, match="no complete 'loop start="):
        measurements.parse_loop_output(text)


@needs_busybox
def test_the_loop_really_runs_in_busybox_sh_and_times_itself():
    seconds, output = measurements.time_host_process([measurements.BUSYBOX, "sh", "-c", measurements.loop_script(2000)])
    loop = measurements.parse_loop_output(output)
    assert 0 < loop.seconds <= seconds  # its own clock sees less than our stopwatch around it
    assert 100 * 1024 < loop.peak_rss_bytes < 64 * 2**20  # a shell, not the Python that spawned it


def test_time_host_process_reports_the_failure():
    with pytest.raises(RuntimeError, match="exited with 3"):
        measurements.time_host_process(["/bin/sh", "-c", "echo oops >&2; exit 3"])


# ---- measurements and their arithmetic ---------------------------------------------------


def test_measurements_median_fastest_and_speed():
    m = _measured()
    assert m.median("startup", "container") == pytest.approx(0.020)
    assert m.fastest("compute", "process") == pytest.approx(0.090)
    assert m.speed_percent("container") == pytest.approx(100.0)  # fastest against fastest
    assert m.speed_percent("VM") == pytest.approx(6.0)
    assert m.median("startup", "nobody") is None and m.speed_percent("nobody") is None


def test_adding_figures_clears_an_earlier_reason_for_missing():
    m = measurements.Measurements()
    m.missing["container"] = "needs root"
    m.add("container", startup=0.02)
    assert "container" not in m.missing


def test_summary_names_the_machine_and_the_missing_reason():
    text = _measured(container=False).summary()
    assert socket.gethostname() in text
    lines = text.splitlines()
    assert "container  not measured: starting containers needs root" in lines
    assert lines[-1].split() == ["VM", "1.80", "s", "(1", "run)", "230.0", "MiB", "1.50", "s", "(1", "run)", "6", "%"]
    process = lines[2]
    assert process.startswith("process    1.0 ms (0.8–1.2 ms, 3 runs)") and process.endswith("100 %")
    assert "90 ms (90–120 ms, 3 runs)" in process  # the fastest loop, then the range


def test_apparent_speed_is_start_up_spread_over_the_job():
    assert figures.apparent_speed(1.0, startup=0.0) == pytest.approx(100.0)
    assert figures.apparent_speed(0.02, startup=0.02) == pytest.approx(50.0)  # half the run is start-up
    assert figures.apparent_speed(1.0, startup=0.0, compute_percent=10.0) == pytest.approx(10.0)
    assert figures.apparent_speed(0.0, startup=0.01, baseline_startup=0.01) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        figures.apparent_speed(1.0, startup=0.01, compute_percent=0)


@pytest.mark.parametrize("startup, baseline", [(0.02, 0.0), (0.02, 0.001), (1.8, 0.001)])
def test_break_even_job_is_where_the_curve_crosses_98_percent(startup, baseline):
    job = figures.break_even_seconds(startup, baseline)
    assert figures.apparent_speed(job, startup, 100.0, baseline) == pytest.approx(98.0)
    assert figures.break_even_seconds(0.02) == pytest.approx(0.98)  # 49 times the start-up


def test_break_even_refuses_an_impossible_target():
    with pytest.raises(ValueError):
        figures.break_even_seconds(0.02, target_percent=100)


def test_speed_sentence_uses_the_measured_figures():
    job = figures.break_even_seconds(0.020, baseline_startup=0.001)  # medians of _measured()
    text = figures.speed_sentence(_measured(), job)
    assert "<b>930 ms</b> as a plain process" in text
    assert "container: 950 ms in all, <b>98.0 %</b>" in text  # 20 ms start-up + the job at host speed
    assert "VM: 17.30 s in all" in text  # 1.8 s to boot, then the job at 6 % of host speed
    assert "container: not measured" in figures.speed_sentence(_measured(container=False), 1.0)


def test_speed_widget_follows_its_slider():
    pytest.importorskip("ipywidgets")
    box = figures.speed_widget(_measured())
    slider, text = box.children
    slider.value = 100.0
    assert "100 s" in text.value or "100.00 s" in text.value
    assert text.value == figures.speed_sentence(_measured(), 100.0)


# ---- figures -----------------------------------------------------------------------------


def test_stacks_draw_one_patch_per_box_and_a_caption_per_architecture():
    fig = stacks.plot_stacks()
    axes = fig.get_axes()
    assert len(axes) == len(stacks.ARCHITECTURES)
    for ax, arch in zip(axes, stacks.ARCHITECTURES):
        assert len(ax.patches) == len(arch.boxes)
        texts = [text.get_text() for text in ax.texts]
        assert arch.kernels in texts and arch.examples in texts


def test_every_architecture_has_hardware_at_the_bottom_and_boxes_inside_the_column():
    for arch in stacks.ARCHITECTURES:
        assert [box.label for box in arch.boxes if box.level == 0] == ["hardware"]
        for box in arch.boxes:
            assert 0 <= box.x and box.x + box.width <= 1.0 + 1e-9 and box.kind in stacks.KIND_STYLE


def test_measurement_plot_has_three_panels_with_log_scales_for_time_and_memory():
    fig = figures.plot_measurements(_measured())
    startup, memory, compute = fig.get_axes()
    assert startup.get_yscale() == "log" and memory.get_yscale() == "log" and compute.get_yscale() == "linear"
    labels = [text.get_text() for text in compute.texts]
    assert labels == ["100 %", "100 %", "6 %"]
    assert [text.get_text() for text in startup.texts] == ["1.0 ms", "20 ms", "1.80 s"]


def test_measurement_plot_leaves_a_missing_contender_empty_with_the_reason():
    fig = figures.plot_measurements(_measured(container=False, vm=False))
    for ax in fig.get_axes():
        texts = [text.get_text() for text in ax.texts]
        assert "not measured\n(needs root)" in texts
        assert "not measured\n(see above)" in texts
        assert len(ax.patches) == 1  # the process's bar only


def test_a_rootless_container_has_no_memory_figure_and_the_plot_says_why():
    m = _measured()
    m.memory.pop("container")
    m.gaps["memory:container"] = "no cgroup (rootless)"
    memory = figures.plot_measurements(m).get_axes()[1]
    assert "not measured\n(no cgroup (rootless))" in [text.get_text() for text in memory.texts]


@pytest.mark.parametrize("low, high, limits", [(1.6, 1.61, (0.1, 10)), (0.0006, 1.8, (0.0001, 10)),
                                                (1.5, 230, (0.1, 1000))])
def test_log_panels_span_whole_decades(low, high, limits):
    assert figures._decades(low, high) == pytest.approx(limits)


def test_apparent_speed_plot_marks_the_break_even_job():
    m = _measured()
    fig = figures.plot_apparent_speed(m)
    (ax,) = fig.get_axes()
    assert len(ax.get_lines()) >= 4  # container, VM, the 98 % line, the break-even line
    even = figures.break_even_seconds(0.020, 0.001)
    assert any(f"for jobs of {measurements.format_seconds(even)} or more" in text.get_text() for text in ax.texts)


# ---- probes: virtualenv and container ----------------------------------------------------


def test_parse_probe_wants_every_key():
    complete = "\n".join(f"{key}=x" for key in isolation.PROBE_KEYS)
    assert isolation.parse_probe(complete + "\nstray line\n")["hostname"] == "x"
    with pytest.raises(ValueError, match="did not report hostname"):
        isolation.parse_probe(complete.replace("hostname=x", ""))


@pytest.mark.parametrize("raw, shown", [("67108864", "64 MiB"), ("9223372036854771712", "unlimited"),
                                        ("max", "unlimited"), ("unknown", "unknown"), ("50331648", "48 MiB")])
def test_describe_memory_limit(raw, shown):
    assert isolation.describe_memory_limit(raw) == shown


def test_a_shell_script_is_not_a_real_interpreter(tmp_path):
    shim = tmp_path / "python3"
    shim.write_text("#!/usr/bin/env bash\nexec pyenv exec python3 \"$@\"\n")
    shim.chmod(0o755)
    assert not isolation.is_real_interpreter(shim)
    assert not isolation.is_real_interpreter(tmp_path / "missing")
    assert isolation.is_real_interpreter(os.path.realpath(isolation.base_python()))


def test_marker_file_exists_only_inside_its_block():
    with isolation.marker_file() as marker:
        assert marker.exists()
    assert not marker.exists()


def test_python_probe_on_the_host_reports_this_machine():
    with isolation.marker_file() as marker:
        answers = isolation.probe_python(sys.executable, marker)
    assert answers["hostname"] == socket.gethostname()
    assert answers["marker"] == "yes" and answers["notebook_pid"] == "yes"
    assert answers["teachdock"] == "yes"  # this interpreter has the package under test
    assert answers["mount_ns"] == os.readlink("/proc/self/ns/mnt")
    assert answers["uid"] == str(os.getuid())


@needs_busybox
def test_both_probes_agree_when_asked_in_the_same_place():
    """The shell probe (for containers) and the Python probe ask the kernel the same questions."""
    import subprocess

    with isolation.marker_file() as marker:
        python = isolation.probe_python(sys.executable, marker)
        env = {"PATH": "/bin:/usr/bin", "MEMORY_LIMIT_COMMAND": isolation.MEMORY_LIMIT_COMMAND}
        shell = isolation.parse_probe(subprocess.run([measurements.BUSYBOX, "sh", "-c", isolation.SH_PROBE, "probe", str(marker),
                                               str(os.getpid())], capture_output=True, text=True, env=env,
                                              check=True).stdout)
    for key in ("marker", "notebook_pid", "hostname", "interfaces", "uid", "mount_ns", "memory_limit"):
        assert shell[key] == python[key], key


def test_a_fresh_virtualenv_isolates_packages_and_nothing_else(monkeypatch):
    # A PYTHONPATH (a worktree's test run) would reach into the fresh virtualenv too.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with isolation.marker_file() as marker, isolation.temporary_virtualenv() as python:
        venv_dir = python.parent.parent
        assert (venv_dir / "pyvenv.cfg").exists()
        before = isolation.probe_python(sys.executable, marker)
        venv = isolation.probe_python(python, marker)
        after = isolation.probe_python(sys.executable, marker)
    assert not venv_dir.exists()  # removed at the end of the block
    assert venv["teachdock"] == "no" and venv["packages"] == "0"
    # The host is probed on both sides: a bridge that another program adds in between is not isolation.
    assert isolation.isolated_facts(before, venv) & isolation.isolated_facts(after, venv) == {"Python packages"}


def test_temporary_virtualenv_is_removed_after_an_error():
    with pytest.raises(RuntimeError, match="boom"), isolation.temporary_virtualenv() as python:
        made = python.parent.parent
        raise RuntimeError("boom")
    assert not made.exists()


HOST = {"python": "/usr", "packages": "40", "teachdock": "yes", "marker": "yes", "processes": "80",
        "notebook_pid": "yes", "hostname": "vm", "interfaces": "eth0 lo", "uid": "0",
        "mount_ns": "mnt:[1]", "mounts": "20", "memory_limit": "9223372036854771712"}
VENV = dict(HOST, python="/tmp/v", packages="0", teachdock="no", processes="81")
CONTAINER = dict(HOST, python="none", packages="none", teachdock="no", marker="no", processes="3",
                 notebook_pid="no", hostname="box", interfaces="lo", mount_ns="mnt:[2]", mounts="26",
                 memory_limit="67108864")


def test_isolated_facts_ignore_counts_that_merely_drift():
    assert isolation.isolated_facts(HOST, VENV) == {"Python packages"}  # 80 vs 81 processes is not isolation
    assert isolation.isolated_facts(HOST, CONTAINER) == {"Python packages", "files", "processes", "hostname",
                                                  "network interfaces", "mounts", "memory limit"}
    assert isolation.isolated_facts(HOST, None) == set()


def test_isolation_table_highlights_differences_only_outside_the_host_column():
    table = isolation.isolation_table(HOST, VENV, CONTAINER)
    html = table._repr_html_()
    assert html.count("background:#fff1cc") == 1 + 7  # venv: packages; container: all but the user id
    assert "64 MiB" in html and "no Python at all" in html
    assert "not measured" in isolation.isolation_table(HOST, VENV, None)._repr_html_()
    assert "*" in repr(table)


# ---- exercise checks ---------------------------------------------------------------------


def _passes(result: CheckResult) -> bool:
    assert isinstance(result, CheckResult)
    return result.passed


def test_exercises_wait_for_an_answer():
    for result in (checks.judge_virtualenv_isolates(..., HOST, VENV), checks.judge_memory_limit(...),
                   checks.judge_break_even(..., 0.02), checks.judge_cpu_limit(..., 50.0),
                   checks.check_virtualenv_isolates(...), checks.check_break_even(...), checks.check_cpu_limit(...)):
        assert not result.passed and not result.answered


@pytest.mark.parametrize("answer", [["packages"], "python packages", {"sys.path"}, ("Python packages",)])
def test_virtualenv_right_answers(answer):
    assert _passes(checks.judge_virtualenv_isolates(answer, HOST, VENV))


def test_virtualenv_hostname_gets_the_virtualenvs_own_answer_back():
    result = checks.judge_virtualenv_isolates(["packages", "hostname"], HOST, VENV)
    assert not result.passed
    assert "hostname: the virtualenv answered 'vm', like this notebook" in result.message


def test_virtualenv_container_list_is_recognised():
    answer = ["packages", "files", "processes", "hostname", "network", "mounts", "memory"]
    result = checks.judge_virtualenv_isolates(answer, HOST, VENV, CONTAINER)
    assert not result.passed and result.message.startswith("That is the container's list.")


def test_virtualenv_other_mistakes():
    assert "I don't know 'gpu'" in checks.judge_virtualenv_isolates(["gpu"], HOST, VENV).message
    assert "One row does differ" in checks.judge_virtualenv_isolates([], HOST, VENV).message
    assert "list of names" in checks.judge_virtualenv_isolates(42, HOST, VENV).message


def test_check_virtualenv_isolates_probes_a_real_virtualenv():
    assert _passes(checks.check_virtualenv_isolates(["packages"]))
    assert not checks.check_virtualenv_isolates(["network"]).passed


def _run_result(limit, stdout=None, exit_code=0, oom=False, metrics=True):
    printed = str(limit) if stdout is None else stdout
    return RunResult(id="x", exit_code=exit_code, stdout=printed + "\n", stderr="", oom_killed=oom,
                     metrics=Metrics(memory_limit_bytes=limit) if metrics else None, duration=0.02)


def test_memory_limit_right():
    assert _passes(checks.judge_memory_limit(_run_result(48 * 2**20)))


@pytest.mark.parametrize("result, hint", [
    (_run_result(47_996_928), "48 MB in powers of ten"),
    (_run_result(4096, stdout="", exit_code=137, oom=True), "A bare number means bytes"),
    (_run_result(None, stdout="9223372036854771712"), "no memory limit at all"),
    (_run_result(48 * 2**30), "That is 48 GiB"),
    (_run_result(48 * 2**20, stdout="hello"), "did not print it"),
    (_run_result(32 * 2**20), "32 MiB"),
    (_run_result(None, metrics=False), "no cgroup"),
    (_run_result(48 * 2**20, exit_code=2), "exited with 2"),
    ("48m", "Put the RunResult in answer"),
])
def test_memory_limit_mistakes(result, hint):
    verdict = checks.judge_memory_limit(result)
    assert not verdict.passed and hint in verdict.message


@pytest.mark.parametrize("answer", [0.98, "0.98", 1.0, 0.75 * 1.2])
def test_break_even_right(answer):
    assert _passes(checks.judge_break_even(answer, container_startup=0.02))


@pytest.mark.parametrize("answer, hint", [
    (980, "milliseconds"),
    (0.02, "half its time starting"),
    (0.0004, "divide where you should multiply"),
    (1.98, "100 times the start-up"),
    (0, "no length"),
    ("soon", "number of seconds"),
    (10, "Not quite"),
])
def test_break_even_mistakes(answer, hint):
    verdict = checks.judge_break_even(answer, container_startup=0.02)
    assert not verdict.passed and hint in verdict.message


def test_check_break_even_uses_the_measured_start_up():
    m = _measured()
    even = figures.break_even_seconds(0.020, 0.001)
    assert _passes(checks.check_break_even(even, m))
    assert "was not measured" in checks.check_break_even(1.0, _measured(container=False)).message


@pytest.mark.parametrize("answer", [50, "55 %", 45.0])
def test_cpu_limit_right(answer):
    assert _passes(checks.judge_cpu_limit(answer, truth_percent=52.0))


@pytest.mark.parametrize("answer, hint", [
    (98, "caps it"), (0.5, "not as a fraction"), (200, "below 100"), (25, "how much of one CPU"),
    ("half", "a percentage"),
])
def test_cpu_limit_mistakes(answer, hint):
    verdict = checks.judge_cpu_limit(answer, truth_percent=52.0)
    assert not verdict.passed and hint in verdict.message


def test_check_cpu_limit_explains_when_it_cannot_measure(monkeypatch):
    def no_container(*args, **kwargs):
        raise PermissionError("not root")

    monkeypatch.setattr(checks, "measure_cpu_limit", no_container)
    verdict = checks.check_cpu_limit(50, rootfs="/nonexistent")
    assert not verdict.passed and "needs root" in verdict.message


def test_check_cpu_limit_judges_against_the_measurement(monkeypatch):
    monkeypatch.setattr(checks, "measure_cpu_limit", lambda rootfs: 53.0)
    assert _passes(checks.check_cpu_limit(50, rootfs="/nonexistent"))
    assert "caps it" in checks.check_cpu_limit(99, rootfs="/nonexistent").message


def test_no_children_left_behind():
    assert measurements.leftover_children() == []
    assert shutil.which("sh")  # leftover_children looks for sh among others: make sure it exists
