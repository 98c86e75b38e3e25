"""cgroup limits on whole containers, through run() and Container: memory, CPU quota, number of processes."""

import signal
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

MIB = 1 << 20
GROW_FOREVER = "x=a; while true; do x=$x$x; done"  # doubles a shell string until something stops it
BUSY_LOOP = "echo ready; while :; do :; done"


def test_memory_limit_ends_in_an_oom_kill(box):
    result = box(GROW_FOREVER, memory="32m")
    assert result.exit_code == 137  # 128 + SIGKILL, as docker reports it
    assert result.oom_killed is True
    assert result.metrics.oom_kills >= 1
    assert result.metrics.memory_limit_bytes == 32 * MIB
    assert 16 * MIB < result.metrics.memory_peak_bytes <= 32 * MIB  # it really grew, up to the limit


def test_memory_below_the_limit_is_fine(box):
    """The control: 4 MB of data in a 32 MB container is no reason to kill anyone."""
    result = box("x=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ${#x}", memory="32m")
    assert (result.exit_code, result.stdout, result.oom_killed) == (0, "4000000\n", False)
    assert result.metrics.oom_kills == 0


def cpu_share_over(container, seconds: float):
    """(CPUs used on average, periods throttled, ns throttled) over a window of ``seconds``, from the cgroup."""
    before, started = container.metrics(), time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a wait for some state
    after, ended = container.metrics(), time.monotonic()
    return ((after.cpu_usage_ns - before.cpu_usage_ns) / 1e9 / (ended - started),
            after.cpu_throttled_periods - before.cpu_throttled_periods,
            after.cpu_throttled_ns - before.cpu_throttled_ns)


def test_half_a_cpu_is_half_a_cpu(running):
    with running(BUSY_LOOP, cpus=0.5) as container:
        share, throttled_periods, throttled_ns = cpu_share_over(container, 2.0)
        container.kill(signal.SIGKILL)
        assert container.wait(10) == 137
    assert 0.4 <= share <= 0.6, f"a busy loop under cpus=0.5 used {share:.2f} CPUs"
    # The loop wanted more and the quota said no: the kernel throttled it. (Not a fixed number
    # of periods: on a busy machine the loop sometimes does not reach its quota in a period.)
    assert throttled_periods >= 1 and throttled_ns > 0


def test_pids_limit_makes_fork_fail(box):
    result = box("for i in 1 2 3 4 5 6 7 8; do sleep 30 & echo started $i; done; echo not-reached", pids_limit=5)
    # The shell is process 1 of 5; four background sleeps fit, the fifth fork fails.
    assert result.stdout.splitlines() == [f"started {i}" for i in (1, 2, 3, 4)]
    assert result.stderr == "sh: can't fork: Resource temporarily unavailable\n"
    assert result.exit_code != 0
    assert result.metrics.pids_limit == 5
    assert result.metrics.pids_max_events >= 1


def test_limits_are_readable_while_the_container_runs(running, finish):
    with running("echo ready; read x; echo bye", memory="48m", cpus=1.5, pids_limit=7) as container:
        metrics = container.metrics()
        assert metrics.memory_limit_bytes == 48 * MIB
        assert metrics.pids_limit == 7
        assert metrics.pids_current == 1
        assert 0 < metrics.memory_bytes < 48 * MIB
        assert finish(container) == (0, "bye\n")
