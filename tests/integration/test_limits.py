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


def cpu_shares_over(containers, seconds: float) -> list[tuple[float, int]]:
    """(CPUs used on average, throttled periods) of each container over one window of ``seconds``."""
    before, started = [c.metrics() for c in containers], time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a wait for some state
    after, ended = [c.metrics() for c in containers], time.monotonic()
    return [((a.cpu_usage_ns - b.cpu_usage_ns) / 1e9 / (ended - started),
             a.cpu_throttled_periods - b.cpu_throttled_periods) for b, a in zip(before, after)]


def test_half_a_cpu_is_half_a_cpu(running):
    """A busy loop under cpus=0.5 next to the same loop without a limit, measured over the same 2 s."""
    with running(BUSY_LOOP, cpus=0.5) as limited, running(BUSY_LOOP) as free:
        (share, throttled), (free_share, free_throttled) = cpu_shares_over([limited, free], 2.0)
        for container in (limited, free):
            container.kill(signal.SIGKILL)
            assert container.wait(10) == 137
    assert 0.4 <= share <= 0.6, f"a busy loop under cpus=0.5 used {share:.2f} CPUs"
    assert throttled >= 10  # 20 periods of 100 ms in 2 s; the loop hits the quota in nearly all of them
    # The control: the loop can use much more than half a CPU, so the 0.5 above is the quota's doing.
    assert free_share > 0.7, f"the unlimited busy loop used only {free_share:.2f} CPUs (is the machine busy?)"
    assert free_throttled == 0


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
