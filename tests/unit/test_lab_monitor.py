"""teachdock.lab.cgroups (monitor, samples, checks) without root.

The monitor's maths (samples -> curves -> final figures) and its plot are pure functions.
Its widget logic runs here against a fake Container that replays scripted cgroup figures,
so Start, Stop, an OOM kill, an error in the sampler and closing the widget are all
exercised without a kernel. The checks' judges get every likely mistake; the checks'
readers get fake v1 and v2 cgroup trees made of ordinary files.
"""

import asyncio
import math
import os
import signal
import types

import pytest

from teachdock.errors import Conflict, InvalidConfig
from teachdock.lab.cgroups import checks as cgroup_checks
from teachdock.lab.cgroups import monitor
from teachdock.lab.cgroups.checks import (
    check_cpu_seconds,
    check_cpu_update,
    check_docker_memory,
    check_memory_limit,
    check_pids_limit,
    judge_cpu_seconds,
    judge_cpu_update,
    judge_docker_memory,
    judge_memory_limit,
    judge_pids_limit,
    limit_files,
    read_cpu_quota,
    read_memory_limit,
)
from teachdock.lab.cgroups.monitor import CgroupMonitor, MonitorError, describe_settings, hog_chunk_bytes, load_command
from teachdock.lab.cgroups.samples import MonitorPlot, Sample, cpu_rate, plot_samples, series, summarize
from teachdock.runtime.cgroups import Metrics

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def checks_run_as_root(monkeypatch):
    """The checks' logic is tested as root sees it, whoever runs the tests; the root gate has its own test."""
    monkeypatch.setattr(cgroup_checks, "is_root", lambda: True)


def metrics(**values) -> Metrics:
    return Metrics(**values)


# ---- the loads --------------------------------------------------------------------------------


def test_memory_hog_reaches_any_limit_in_about_80_steps_of_whole_pages():
    assert hog_chunk_bytes(32 * MIB) == 32 * MIB // 80 // 4096 * 4096 == 417792
    assert hog_chunk_bytes(256 * MIB) % 4096 == 0 and 78 <= 256 * MIB / hog_chunk_bytes(256 * MIB) <= 81
    assert hog_chunk_bytes(4 * MIB) == 64 * 1024  # a floor, so tiny limits still take steps of some size


def test_memory_hog_adds_a_chunk_per_step_and_keeps_the_old_ones():
    args = load_command("memory", 32 * MIB)
    assert args[:2] == ["sh", "-c"]
    assert f"head -c {hog_chunk_bytes(32 * MIB)} /dev/zero" in args[2]
    assert 'eval "v$i=\\$c"' in args[2] and "sleep 0.05" in args[2]  # one new variable per step


def test_memory_hog_refuses_to_run_without_a_limit():
    with pytest.raises(InvalidConfig, match="needs a memory limit"):
        load_command("memory", None)


def test_cpu_burner_and_fork_bomb_commands():
    assert load_command("cpu") == ["sh", "-c", "while :; do :; done"]
    bomb = load_command("forkbomb")[2]
    assert "f &" in bomb and bomb.endswith("exec sleep 3600")  # the shell stays, quietly, until Stop


def test_unknown_load_names_the_choices():
    with pytest.raises(InvalidConfig, match="memory, cpu, forkbomb"):
        load_command("disk")


def test_describe_settings():
    assert describe_settings("memory", 32 * MIB, 0.5, 30) == "memory hog · 32 MiB · 0.5 CPU · pids ≤ 30"
    assert describe_settings("cpu", None, None, None) == "CPU burner · no memory limit · no CPU quota · no pids limit"


# ---- samples -> curves ------------------------------------------------------------------------


def test_cpu_rate_of_half_a_core():
    times = [i * 0.1 for i in range(11)]
    usage = [int(t * 0.5e9) for t in times]  # 0.5 CPU seconds per second
    rate_t, rate = cpu_rate(times, usage, window=0.3)
    assert rate_t == times[1:]
    assert all(r == pytest.approx(0.5) for r in rate)


def test_cpu_rate_uses_the_window_to_smooth_bursts():
    # Runs 50 ms, then is throttled 50 ms: per 50 ms it alternates 1 core and 0 cores.
    times = [i * 0.05 for i in range(21)]
    usage, used = [], 0
    for i in range(21):
        usage.append(used)
        used += 50_000_000 if i % 2 == 0 else 0
    _, raw = cpu_rate(times, usage, window=0.0)
    _, smooth = cpu_rate(times, usage, window=0.5)
    assert max(raw) == pytest.approx(1.0) and min(raw) == pytest.approx(0.0)
    assert all(0.4 <= r <= 0.6 for r in smooth[10:])  # once a full window is available


def test_cpu_rate_skips_missing_values():
    rate_t, rate = cpu_rate([0.0, 0.1, 0.2, 0.3], [None, 0, None, 100_000_000], window=0.05)
    assert rate_t == [0.3] and rate == [pytest.approx(0.5)]


def oom_run() -> list[Sample]:
    """A memory hog at 32 MiB: grows 8 MiB a sample, OOM-killed at the fifth."""
    samples = []
    for i in range(5):
        samples.append(Sample(i * 0.5, metrics(memory_bytes=i * 8 * MIB, memory_peak_bytes=i * 8 * MIB,
                                               memory_limit_bytes=32 * MIB, oom_kills=0, cpu_usage_ns=i * 10_000_000,
                                               cpu_periods=i * 5, cpu_throttled_periods=0, cpu_throttled_ns=0,
                                               pids_current=2, pids_limit=30, pids_max_events=0)))
    samples.append(Sample(2.6, metrics(memory_bytes=0, memory_peak_bytes=32 * MIB, memory_limit_bytes=32 * MIB,
                                       oom_kills=1, cpu_usage_ns=52_000_000, cpu_periods=26,
                                       cpu_throttled_periods=0, cpu_throttled_ns=0, pids_current=0, pids_limit=30,
                                       pids_max_events=0)))
    return samples


def test_series_marks_the_oom_kill_where_the_counter_goes_up():
    s = series(oom_run())
    assert s.memory_mib == [0, 8, 16, 24, 32, 0]
    assert s.memory_limit_mib == 32
    assert s.oom_at == 2.6
    assert s.oom_memory_mib == 32  # the most in use before the kill: where the marker sits
    assert s.pids_limit == 30


def test_series_counts_throttling_and_fork_failures_from_the_first_sample():
    samples = [Sample(i * 0.1, metrics(cpu_throttled_periods=100 + 3 * i, pids_max_events=7 + i, pids_current=5))
               for i in range(4)]
    s = series(samples)
    assert s.throttled_periods == [0, 3, 6, 9]
    assert s.fork_failures == [0, 1, 2, 3]
    assert s.oom_at is None and s.memory_limit_mib is None and s.pids_limit is None


def test_series_turns_unknown_values_into_gaps():
    s = series([Sample(0.0, metrics()), Sample(0.1, metrics(memory_bytes=MIB))])
    assert math.isnan(s.memory_mib[0]) and s.memory_mib[1] == 1
    assert all(math.isnan(v) for v in s.throttled_periods)


def test_summarize_an_oom_kill():
    r = summarize("memory", "cgmon-1", oom_run(), exit_code=137, oom_killed=True, stopped=False, cpu_limit=0.5)
    assert (r.exit_code, r.oom_killed, r.stopped, r.duration) == (137, True, False, 2.6)
    assert r.peak_memory_bytes == 32 * MIB and r.memory_limit_bytes == 32 * MIB
    assert r.cpu_seconds == pytest.approx(0.052)
    assert (r.periods, r.throttled_periods, r.fork_failures, r.pids_peak) == (26, 0, 0, 2)
    rows = dict(r.rows())
    assert rows["exit code"] == "137 = 128 + 9 (SIGKILL)"
    assert rows["OOM kill"] == "yes: the kernel killed it"
    assert rows["ended"] == "OOM-killed by the kernel after 2.6 s"
    assert rows["peak memory"] == "32.0 MiB (limit 32 MiB)"
    assert "OOM kill" in repr(r) and "<table>" in r._repr_html_()


def test_summarize_a_stopped_cpu_burner():
    samples = [Sample(i * 1.0, metrics(cpu_usage_ns=i * 500_000_000, cpu_periods=10 * i, cpu_throttled_periods=10 * i,
                                       cpu_throttled_ns=i * 500_000_000)) for i in range(3)]
    r = summarize("cpu", "cgmon-2", samples, exit_code=137, oom_killed=False, stopped=True, cpu_limit=0.5)
    rows = dict(r.rows())
    assert rows["ended"] == "stopped by you (SIGKILL) after 2.0 s"
    assert rows["CPU time"] == "1.00 s = 0.50 cores on average (quota 0.5 CPU)"
    assert rows["throttled"] == "20 of 20 periods, 1.00 s in all"
    assert rows["OOM kill"] == "no OOM kill"


def test_summarize_keeps_the_last_error_line():
    r = summarize("forkbomb", "x", [Sample(1.0, metrics(pids_current=20, pids_limit=20, pids_max_events=5))],
                  exit_code=137, oom_killed=False, stopped=True, cpu_limit=None,
                  stderr_tail="sh: can't fork: Resource temporarily unavailable")
    rows = dict(r.rows())
    assert rows["last error line"].startswith("sh: can't fork")
    assert rows["processes"] == "at most 20 at once (limit 20)"


# ---- the plot ---------------------------------------------------------------------------------


def test_plot_has_three_panels_and_the_oom_marker():
    fig = plot_samples(oom_run(), cpu_limit=0.5, title="memory hog")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[:3] == ["memory", "CPU", "processes"]
    assert fig._suptitle.get_text() == "memory hog"
    memory_ax = fig.axes[0]
    labels = [line.get_label() for line in memory_ax.get_lines() if line.get_visible()]
    assert "limit 32 MiB" in labels and "OOM kill" in labels
    assert memory_ax.get_ylim()[1] >= 32  # the limit line is always in view


def test_plot_hides_the_marker_and_the_limits_that_are_not_there():
    plot = MonitorPlot()
    plot.update(series([Sample(0.0, metrics(memory_bytes=MIB)), Sample(0.1, metrics(memory_bytes=2 * MIB))]))
    assert not plot.oom_mark.get_visible() and not plot.memory_limit.get_visible()
    assert not plot.cpu_limit.get_visible() and not plot.pids_limit.get_visible()


def test_plot_renders_to_png():
    plot = MonitorPlot()
    plot.update(series(oom_run()), cpu_limit=0.5, title="t")
    data = plot.png()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# ---- the widget, against a fake container ------------------------------------------------------


class FakeCgroup:
    def __init__(self, container):
        self.container = container

    def metrics(self):
        c = self.container
        c.reads += 1
        if c.plan == "error" and c.reads == 3:
            raise OSError(5, "Input/output error")
        ended = c.exit_code is not None
        oom = c.plan == "oom" and c.reads >= 4
        if c.plan == "oom" and c.reads == 4:
            c.exit_code, c.oom = 137, True  # the kernel kills it now
        return Metrics(memory_bytes=0 if ended else c.reads * MIB, memory_peak_bytes=c.reads * MIB,
                       memory_limit_bytes=c.options.get("memory"), cpu_usage_ns=c.reads * 50_000_000,
                       cpu_periods=c.reads, cpu_throttled_periods=c.reads, cpu_throttled_ns=0,
                       pids_current=0 if ended else 1, pids_limit=c.options.get("pids_limit"),
                       oom_kills=1 if oom else 0, pids_max_events=0)


class FakeContainer:
    """Container's API as the monitor uses it; ``plan`` says how the run goes."""

    made: list = []
    plan = "runs"

    def __init__(self, container_id, options):
        self.id, self.options, self.plan = container_id, options, FakeContainer.plan
        self.reads, self.exit_code, self.oom, self.deleted, self.started = 0, None, False, False, False
        read_end, self._write_end = os.pipe()
        self.stderr = read_end
        os.write(self._write_end, b"first line\nsh: can't fork\n")
        self.cgroup = FakeCgroup(self)

    @classmethod
    def create(cls, container_id, **options):
        if cls.plan == "create-fails":
            raise Conflict("cgroup exists")
        container = cls(container_id, options)
        cls.made.append(container)
        return container

    def start(self):
        self.started = True

    @property
    def status(self):
        return "stopped" if self.exit_code is not None else "running"

    def kill(self, sig):
        if self.exit_code is not None:
            raise Conflict("stopped")
        assert sig == signal.SIGKILL
        self.exit_code = 137

    def wait(self, timeout=None):
        if self.exit_code is None:
            raise TimeoutError("still running")
        return self.exit_code

    @property
    def oom_killed(self):
        return self.oom

    def delete(self, force=False):
        assert force
        self.deleted = True
        for fd in (self.stderr, self._write_end):
            if fd is not None:
                os.close(fd)
        self.stderr = self._write_end = None


@pytest.fixture
def fake(monkeypatch):
    FakeContainer.made = []
    FakeContainer.plan = "runs"
    monkeypatch.setattr(monitor, "Container", FakeContainer)
    yield FakeContainer
    for container in FakeContainer.made:  # no pipe left open, whatever the test did
        if not container.deleted:
            container.delete(force=True)


def new_monitor(**options):
    return CgroupMonitor(rootfs="/not/used", interval=0.02, **options)


def test_start_button_creates_a_limited_container_and_samples_it(fake):
    async def scenario():
        m = new_monitor()
        m.memory_slider.value, m.cpus_slider.value, m.pids_slider.value = 48, 0.3, 12
        m.start_button.click()
        assert m.running and m.start_button.disabled and not m.stop_button.disabled
        await asyncio.sleep(0.15)
        return m

    m = asyncio.run(scenario())
    container = fake.made[0]
    assert container.options["memory"] == 48 * MIB and container.options["cpus"] == 0.3
    assert container.options["pids_limit"] == 12 and container.options["stderr"] == monitor.PIPE
    assert container.options["args"] == load_command("memory", 48 * MIB)
    assert container.started and len(m.samples) >= 3
    assert [s.t for s in m.samples] == sorted(s.t for s in m.samples)
    assert bytes(m.image.value).startswith(b"\x89PNG")


def test_stop_button_kills_reports_and_deletes(fake):
    async def scenario():
        m = new_monitor()
        m.start(load="cpu", cpus=0.5)
        await asyncio.sleep(0.1)
        m.stop_button.click()
        result = await m.task
        return m, result

    m, result = asyncio.run(scenario())
    container = fake.made[0]
    assert container.deleted and container.exit_code == 137
    assert result is m.result and result.stopped and not result.oom_killed and result.exit_code == 137
    assert result.stderr_tail == "sh: can't fork"
    assert "stopped" in m.status.value and "deleted" in m.status.value
    assert not m.start_button.disabled and m.stop_button.disabled
    assert "137 = 128 + 9 (SIGKILL)" in m.figures.value
    assert m.cpus_slider.value == 0.5 and m.load_choice.value == "cpu"  # the sliders show what ran


def test_an_oom_kill_ends_the_run_by_itself(fake):
    fake.plan = "oom"

    async def scenario():
        m = new_monitor()
        m.start(load="memory", memory="32m")
        return m, await asyncio.wait_for(m.task, 5)

    m, result = asyncio.run(scenario())
    assert result.oom_killed and result.exit_code == 137 and not result.stopped
    assert series(m.samples).oom_at is not None
    assert fake.made[0].deleted
    assert "OOM-killed" in m.status.value


def test_the_time_limit_stops_a_forgotten_run(fake):
    async def scenario():
        m = new_monitor(max_seconds=0.1)
        m.start(load="cpu")
        return await asyncio.wait_for(m.task, 5)

    result = asyncio.run(scenario())
    assert result.stopped and fake.made[0].deleted


def test_an_error_while_sampling_is_shown_and_the_container_still_deleted(fake):
    fake.plan = "error"

    async def scenario():
        m = new_monitor()
        m.start(load="cpu")
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(m.task, 5)
        await asyncio.sleep(0)  # let the done-callback run
        return m

    m = asyncio.run(scenario())
    assert fake.made[0].deleted
    assert m.status.value.startswith("The monitor stopped on an error: OSError")
    assert not m.start_button.disabled


def test_a_failed_start_says_why_in_the_label(fake):
    fake.plan = "create-fails"

    async def scenario():
        m = new_monitor()
        m.start_button.click()
        return m

    m = asyncio.run(scenario())
    assert m.status.value == "Could not start: cgroup exists"
    assert not m.running and m.task is None


def test_start_twice_is_refused(fake):
    async def scenario():
        m = new_monitor()
        m.start(load="cpu")
        with pytest.raises(Conflict, match="already running"):
            m.start(load="cpu")
        m.stop()
        await m.task

    asyncio.run(scenario())
    assert len(fake.made) == 1 and fake.made[0].deleted


def test_start_needs_an_event_loop(fake):
    with pytest.raises(MonitorError, match="running asyncio event loop"):
        new_monitor().start(load="cpu")
    assert fake.made == []


def test_closing_the_widget_deletes_the_container(fake):
    async def scenario():
        m = new_monitor()
        m.start(load="forkbomb", pids=20)
        await asyncio.sleep(0.05)
        m.widget.close()
        await asyncio.sleep(0.1)
        return m

    m = asyncio.run(scenario())
    container = fake.made[0]
    assert container.options["init"] is True  # the fork bomb runs under an init that reaps orphans
    assert container.deleted and not m.running


def test_the_cpu_burner_has_a_cpu_time_backstop(fake):
    async def scenario():
        m = new_monitor()
        m.start(load="cpu")
        m.stop()
        await m.task

    asyncio.run(scenario())
    assert fake.made[0].options["rlimits"] == {"RLIMIT_CPU": (300, 300)}


def test_api_values_move_the_sliders_even_beyond_their_range(fake):
    async def scenario():
        m = new_monitor()
        m.start(load="memory", memory="512m", pids=500)
        m.stop()
        await m.task
        return m

    m = asyncio.run(scenario())
    assert m.memory_slider.value == 512 and m.pids_slider.value == 500
    assert fake.made[0].options["memory"] == 512 * MIB


# ---- reading the cgroup files -----------------------------------------------------------------


def fake_v1(tmp_path, **files):
    dirs = {}
    for controller in ("memory", "cpu", "pids"):
        directory = tmp_path / controller / "teachdock" / "x"
        directory.mkdir(parents=True)
        dirs[controller] = str(directory)
    for name, value in files.items():
        controller = name.split(".")[0]
        (tmp_path / controller / "teachdock" / "x" / name).write_text(f"{value}\n")
    return types.SimpleNamespace(version="v1", dirs=dirs)


def fake_v2(tmp_path, **files):
    for name, value in files.items():
        (tmp_path / name).write_text(f"{value}\n")
    return types.SimpleNamespace(version="v2", dir=str(tmp_path))


def test_readers_on_v1(tmp_path):
    cgroup = fake_v1(tmp_path, **{"memory.limit_in_bytes": 50331648, "cpu.cfs_quota_us": 50000,
                                  "cpu.cfs_period_us": 100000, "pids.max": "max"})
    assert read_memory_limit(cgroup) == 48 * MIB
    assert read_cpu_quota(cgroup) == (50000, 100000)
    assert [(os.path.basename(p), v) for p, v, _ in limit_files(cgroup)] == [
        ("memory.limit_in_bytes", "50331648"), ("cpu.cfs_quota_us", "50000"), ("cpu.cfs_period_us", "100000"),
        ("pids.max", "max")]  # no memsw file: no swap accounting, skipped


def test_readers_on_v1_unlimited(tmp_path):
    cgroup = fake_v1(tmp_path, **{"memory.limit_in_bytes": 9223372036854771712, "cpu.cfs_quota_us": -1,
                                  "cpu.cfs_period_us": 100000})
    assert read_memory_limit(cgroup) is None and read_cpu_quota(cgroup) == (None, 100000)


def test_readers_on_v2(tmp_path):
    cgroup = fake_v2(tmp_path, **{"memory.max": "max", "cpu.max": "20000 100000", "pids.max": 10})
    assert read_memory_limit(cgroup) is None
    assert read_cpu_quota(cgroup) == (20000, 100000)
    (tmp_path / "memory.max").write_text("33554432\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert read_memory_limit(cgroup) == 32 * MIB and read_cpu_quota(cgroup) == (None, 100000)


# ---- exercise 1: 48 MiB ---------------------------------------------------------------------------


def test_memory_limit_right():
    result = judge_memory_limit(48 * MIB)
    assert result.passed and result.message.startswith("Right: memory.limit_in_bytes holds 50331648 bytes")


@pytest.mark.parametrize("limit, hint", [
    (None, "no memory limit"),
    (47_996_928, "48 MB (decimal megabytes"),  # 48_000_000 rounded down to pages, as v1 stores it
    (48_000_000, "48 MB (decimal megabytes"),
    (48 * 1000 * 1024, "mixed 1000 and 1024"),
    (48 * 1024 * MIB, "48 GiB, not 48 MiB"),
    (64 * MIB, "= 64.0 MiB"),
])
def test_memory_limit_mistakes(limit, hint):
    result = judge_memory_limit(limit)
    assert not result.passed and result.answered and hint in result.message


def test_memory_limit_right_but_not_started():
    result = judge_memory_limit(48 * MIB, status="created")
    assert not result.passed and "call its start() method" in result.message


def test_memory_limit_names_the_v2_file():
    assert "memory.max holds" in judge_memory_limit(48_000_000, file="/sys/fs/cgroup/teachdock/x/memory.max").message


def fake_container_with(monkeypatch, cgroup, status="running"):
    container = types.SimpleNamespace(cgroup=cgroup, status=status)

    def load(container_id, state_root=None):
        if container_id != "ex":
            raise cgroup_checks.NotFound(container_id)
        return container

    monkeypatch.setattr("teachdock.runtime.Container.load", load)
    return container


def test_check_memory_limit_reads_the_learners_container(monkeypatch, tmp_path):
    fake_container_with(monkeypatch, fake_v1(tmp_path, **{"memory.limit_in_bytes": 47_996_928}))
    assert "decimal megabytes" in check_memory_limit("ex").message
    missing = check_memory_limit("not-created")
    assert not missing.answered and "no container 'not-created' yet" in missing.message


# ---- exercise 2: CPU seconds ------------------------------------------------------------------------


def test_cpu_seconds_right_within_tolerance():
    assert judge_cpu_seconds(1.0, truth=1.03).passed
    assert judge_cpu_seconds("1", truth=0.95).passed
    assert "20 periods × 50 ms = 1 s" in judge_cpu_seconds(1, truth=1.0).message


@pytest.mark.parametrize("answer, hint", [
    (2, "a whole core for the whole 2 s"),
    (0.5, "is the rate"),
    (50000, "sounds like the quota or the period"),
    (100000, "sounds like the quota or the period"),
    (1000, "milliseconds"),
    (4, "This machine has 2 cores"),
    (7, "How many periods are there in 2 s?"),
    ("one", "Answer with a number of seconds"),
])
def test_cpu_seconds_mistakes(answer, hint):
    result = judge_cpu_seconds(answer, truth=1.0, cores=2)
    assert not result.passed and hint in result.message


def test_check_cpu_seconds_measures(monkeypatch):
    asked = {}

    def measure(rootfs, *, cpus, seconds, state_root=None):
        asked.update(cpus=cpus, seconds=seconds)
        return 0.98

    monkeypatch.setattr(cgroup_checks, "measure_cpu_seconds", measure)
    assert check_cpu_seconds(1.0).passed and asked == {"cpus": 0.5, "seconds": 2.0}
    assert not check_cpu_seconds(2.0).passed
    assert not check_cpu_seconds(...).answered
    monkeypatch.setattr(cgroup_checks, "measure_cpu_seconds", lambda *a, **k: pytest.fail("measured for a non-number"))
    assert "number of seconds" in check_cpu_seconds("a lot").message


# ---- exercise 3: pids for ten sleeps ---------------------------------------------------------------


def test_pids_right():
    result = judge_pids_limit(11, starts=True, starts_with_one_less=False)
    assert result.passed and "ten sleeps + the shell" in result.message


@pytest.mark.parametrize("answer, starts, below, hint", [
    (10, False, False, "the shell that starts the sleeps is one of them"),
    (5, False, False, "Count every process in the container"),
    (12, True, True, "Did you count an init process?"),
    (20, True, True, "not the smallest: 19 works too"),
    (0, None, None, "at least 1"),
    (10.5, None, None, "whole number"),
])
def test_pids_mistakes(answer, starts, below, hint):
    result = judge_pids_limit(answer, starts=starts, starts_with_one_less=below)
    assert not result.passed and hint in result.message


def test_check_pids_limit_runs_the_answer_and_one_less(monkeypatch):
    tried = []

    def all_start(limit, rootfs=None):
        tried.append(limit)
        return limit >= 11  # what the kernel does: ten sleeps + the shell

    monkeypatch.setattr(cgroup_checks, "all_sleeps_start", all_start)
    assert check_pids_limit(11).passed and tried == [11, 10]
    tried.clear()
    assert "one of them" in check_pids_limit(10).message and tried == [10]
    assert not check_pids_limit(...).answered


# ---- exercise 4: docker update by hand --------------------------------------------------------------


def test_cpu_update_right():
    result = judge_cpu_update(20000, 100000, measured=0.21)
    assert result.passed and "docker update --cpus 0.2" in result.message


def test_cpu_update_changing_the_period_also_counts():
    result = judge_cpu_update(50000, 250000, measured=0.2)
    assert result.passed and "You changed the period" in result.message


@pytest.mark.parametrize("quota, period, measured, hint", [
    (2000, 100000, 0.02, "ten times too little"),
    (None, 100000, 1.0, "no quota at all"),
    (50000, 20000, 1.0, "You changed the period (cpu.cfs_period_us, now 20000 µs) instead of the quota"),
    (200000, 100000, 1.0, "= 2 CPU"),
    (20000, 100000, 0.5, "Is the container still running"),
])
def test_cpu_update_mistakes(quota, period, measured, hint):
    result = judge_cpu_update(quota, period, measured)
    assert not result.passed and result.answered and hint in result.message


def test_cpu_update_untouched_is_not_answered_yet():
    result = judge_cpu_update(50000, 100000, measured=0.5, version="v2")
    assert not result.answered and "cpu.max holds 50000" in result.message


def test_check_cpu_update_reads_the_files_and_measures(monkeypatch, tmp_path):
    cgroup = fake_v2(tmp_path, **{"cpu.max": "20000 100000"})
    fake_container_with(monkeypatch, cgroup)
    monkeypatch.setattr(cgroup_checks, "measure_cpu_rate", lambda cg, seconds: 0.2)
    assert check_cpu_update("ex").passed
    (tmp_path / "cpu.max").write_text("2000 100000\n")
    assert "ten times too little" in check_cpu_update("ex").message


@pytest.mark.parametrize("when", ["before its first step", "while it samples"])
def test_a_cancelled_task_still_deletes_the_container(fake, when):
    async def scenario():
        m = new_monitor()
        m.start(load="cpu")
        if when == "while it samples":
            await asyncio.sleep(0.05)
        m.task.cancel()
        await asyncio.sleep(0.05)
        return m

    m = asyncio.run(scenario())
    assert fake.made[0].deleted and not m.running and not m.start_button.disabled


def test_before_a_run_the_plot_previews_the_slider_limits(fake):
    m = new_monitor()
    assert m._plot.memory_limit.get_label() == "limit 32 MiB"
    m.memory_slider.value = 64
    m.pids_slider.value = 12
    assert m._plot.memory_limit.get_label() == "limit 64 MiB" and m._plot.pids_limit.get_label() == "pids.max 12"
    assert "press Start" in m._plot.figure._suptitle.get_text()


def test_checks_without_root_say_why(monkeypatch):
    def load(container_id, state_root=None):
        raise PermissionError(13, "Permission denied", "/run/teachdock/runtime/x/state.json")

    monkeypatch.setattr("teachdock.runtime.Container.load", load)
    for result in (check_memory_limit("x"), check_cpu_update("x")):
        assert not result.passed and "needs root" in result.message and "PermissionError" in result.message
    assert cgroup_checks.delete_containers(["x"]) == []


def test_delete_containers_deletes_those_that_exist(monkeypatch):
    deleted = []

    def load(container_id, state_root=None):
        if container_id != "ex":
            raise cgroup_checks.NotFound(container_id)
        return types.SimpleNamespace(delete=lambda force: deleted.append((container_id, force)))

    monkeypatch.setattr("teachdock.runtime.Container.load", load)
    assert cgroup_checks.delete_containers(["ex", "gone"]) == ["ex"] and deleted == [("ex", True)]


def test_without_root_every_check_says_it_needs_root(monkeypatch):
    monkeypatch.setattr(cgroup_checks, "is_root", lambda: False)
    monkeypatch.setattr("teachdock.runtime.Container.load", lambda *a, **k: pytest.fail("looked for a container"))
    monkeypatch.setattr(cgroup_checks, "measure_cpu_seconds", lambda *a, **k: pytest.fail("measured"))
    monkeypatch.setattr(cgroup_checks, "all_sleeps_start", lambda *a, **k: pytest.fail("ran the sleeps"))
    for result in (check_memory_limit("x"), check_cpu_seconds(1.0), check_pids_limit(11), check_cpu_update("x"),
                   check_docker_memory("x")):
        assert not result.passed and not result.answered
        assert "This check needs root" in result.message and "cgroups belong to root" in result.message


# ---- exercise 5: docker run --memory 64m, swap included ---------------------------------------------


def test_docker_memory_right():
    result = judge_docker_memory(64 * MIB, 64 * MIB)
    assert result.passed and "memory + swap = 128 MiB" in result.message


@pytest.mark.parametrize("limit, swap, status, hint", [
    (64 * MIB, 0, "running", "No swap at all: that is teachdock's default"),
    (64 * MIB, 128 * MIB, "running", "twice too much"),
    (64 * MIB, None, "running", "--memory-swap -1"),
    (48 * MIB, 48 * MIB, "running", "The memory limit is 48.0 MiB"),
    (None, None, "running", "no memory limit"),
    (64 * MIB, 32 * MIB, "running", "how much swap is that?"),
    (64 * MIB, 64 * MIB, "created", "call its start() method"),
])
def test_docker_memory_mistakes(limit, swap, status, hint):
    result = judge_docker_memory(limit, swap, status=status)
    assert not result.passed and hint in result.message


def test_swap_allowance_on_v1_is_memsw_minus_the_limit(tmp_path):
    cgroup = fake_v1(tmp_path, **{"memory.limit_in_bytes": 64 * MIB, "memory.memsw.limit_in_bytes": 128 * MIB})
    assert cgroup_checks.read_swap_allowance(cgroup) == 64 * MIB


def test_check_docker_memory_reads_the_learners_container(monkeypatch, tmp_path):
    cgroup = fake_v2(tmp_path, **{"memory.max": 64 * MIB, "memory.swap.max": 0})
    fake_container_with(monkeypatch, cgroup)
    assert "No swap at all" in check_docker_memory("ex").message
    (tmp_path / "memory.swap.max").write_text(f"{64 * MIB}\n")
    assert check_docker_memory("ex").passed
    (tmp_path / "memory.swap.max").unlink()  # a kernel that does not account swap
    unchecked = check_docker_memory("ex")
    assert not unchecked.answered and "does not account swap" in unchecked.message
