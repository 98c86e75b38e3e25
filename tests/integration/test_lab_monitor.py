"""The cgroup live monitor against real containers: the kernel's figures, an OOM kill, CPU
throttling, a contained fork bomb, and nothing left behind. Then the chapter's exercise
checks, right and wrong answers, against real cgroups.

Each test drives the widget the way the notebook does (buttons, or start()/stop()), inside
``asyncio.run`` because the monitor samples on an event loop.
"""

import asyncio
import statistics

import pytest

from teachdock.errors import NotFound
from teachdock.lab.cgroups.checks import (
    check_cpu_seconds,
    check_cpu_update,
    check_docker_memory,
    check_memory_limit,
    check_pids_limit,
    cpu_quota_files,
)
from teachdock.lab.cgroups.monitor import CgroupMonitor
from teachdock.lab.cgroups.samples import series
from teachdock.runtime import DEVNULL, Container

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

MIB = 1024 * 1024


@pytest.fixture
def new_monitor(rootfs, state_root):
    monitors = []

    def make(**options):
        monitor = CgroupMonitor(rootfs, state_root=state_root, **options)
        monitors.append(monitor)
        return monitor

    yield make
    for monitor in monitors:  # a failed assertion must not leave a container running
        if monitor._run is not None:
            monitor._run.finalizer()


def assert_gone(monitor, state_root, host):
    """The monitored container, its cgroup and its state directory no longer exist."""
    container_id = monitor.result.container_id
    with pytest.raises(NotFound):
        Container.load(container_id, state_root)
    assert host.cgroup_dirs_named(container_id) == []
    assert not (state_root / container_id).exists()


def test_memory_hog_climbs_to_the_limit_and_is_oom_killed(new_monitor, state_root, host):
    monitor = new_monitor()

    async def scenario():
        monitor.load_choice.value = "memory"
        monitor.memory_slider.value = 32
        monitor.start_button.click()
        assert monitor.running, monitor.status.value
        return await asyncio.wait_for(monitor.task, 30)

    result = asyncio.run(scenario())
    assert result.oom_killed and result.exit_code == 137 and not result.stopped
    assert result.memory_limit_bytes == 32 * MIB
    assert 24 * MIB < result.peak_memory_bytes <= 32 * MIB
    # It climbed: a ramp of many samples, not one jump (the hog adds 1/80 of the limit per step).
    before_kill = [s.metrics.memory_bytes for s in monitor.samples if s.metrics.oom_kills == 0]
    assert len(before_kill) >= 10
    assert before_kill[len(before_kill) // 2] < before_kill[-1]
    rises = sum(1 for earlier, later in zip(before_kill, before_kill[1:]) if later > earlier)
    assert rises >= len(before_kill) // 2
    oom_at = series(monitor.samples).oom_at
    assert oom_at is not None and monitor.samples[len(before_kill) - 1].t < oom_at <= monitor.samples[-1].t
    assert "OOM-killed" in monitor.status.value and "137" in monitor.figures.value
    assert_gone(monitor, state_root, host)


def test_cpu_quota_holds_a_busy_loop_to_half_a_core(new_monitor, state_root, host):
    monitor = new_monitor()

    async def scenario():
        monitor.start(load="cpu", cpus=0.5)
        await asyncio.sleep(2.0)
        monitor.stop_button.click()
        return await asyncio.wait_for(monitor.task, 10)

    result = asyncio.run(scenario())
    assert result.stopped and result.exit_code == 137 and not result.oom_killed
    average = result.cpu_seconds / result.duration
    assert 0.35 <= average <= 0.6, f"a busy loop under 0.5 CPU used {average:.2f} cores"
    assert result.throttled_periods >= 1 and result.throttled_seconds > 0
    cores = series(monitor.samples).cpu_cores
    assert 0.3 <= statistics.median(cores) <= 0.65
    assert_gone(monitor, state_root, host)


def test_fork_bomb_is_held_at_the_pids_limit(new_monitor, state_root, host):
    monitor = new_monitor()

    async def scenario():
        monitor.start(load="forkbomb", pids=20, cpus=0.5)
        for _ in range(100):  # until the kernel has refused a fork (it takes about a second)
            await asyncio.sleep(0.05)
            events = monitor.samples[-1].metrics.pids_max_events if monitor.samples else 0
            if events:
                break
        await asyncio.sleep(0.5)
        monitor.stop()
        return await asyncio.wait_for(monitor.task, 10)

    result = asyncio.run(scenario())
    assert result.pids_limit == 20
    assert 10 <= result.pids_peak <= 20
    assert result.fork_failures >= 1
    # busybox writes "sh: " and the message in two writes, so two shells failing at once can
    # print "sh: sh: can't fork: ...\ncan't fork: ..." (seen in 1 of 80 lines): the last line is
    # then the message without its prefix.
    assert result.stderr_tail in ("sh: can't fork: Resource temporarily unavailable",
                                  "can't fork: Resource temporarily unavailable")
    assert result.stopped
    assert_gone(monitor, state_root, host)


def test_closing_the_widget_mid_run_deletes_the_container(new_monitor, state_root, host):
    monitor = new_monitor()

    async def scenario():
        monitor.start(load="cpu", cpus=0.2)
        await asyncio.sleep(0.3)
        container_id = monitor.container_id
        assert Container.load(container_id, state_root).status == "running"
        monitor.widget.close()
        await asyncio.wait_for(monitor.task, 10)

    asyncio.run(scenario())
    assert monitor.result.stopped
    assert_gone(monitor, state_root, host)


# ---- the chapter's exercise checks, on real containers -------------------------------------------


@pytest.mark.parametrize("memory, passed, hint", [
    ("48m", True, "Right:"),
    (48_000_000, False, "decimal megabytes"),
])
def test_memory_limit_check_reads_the_real_cgroup(rootfs, state_root, new_id, memory, passed, hint):
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "30"], memory=memory, state_root=state_root,
                          stdout=DEVNULL) as container:
        container.start()
        result = check_memory_limit(container.id, state_root=state_root)
    assert result.passed is passed and hint in result.message


def test_pids_check_runs_the_sleeps_for_real(rootfs):
    assert check_pids_limit(11, rootfs=rootfs).passed
    wrong = check_pids_limit(10, rootfs=rootfs)
    assert not wrong.passed and "the shell that starts the sleeps" in wrong.message


def test_cpu_seconds_check_measures_a_real_quota(rootfs):
    assert check_cpu_seconds(1.0, rootfs=rootfs).passed
    assert "whole core" in check_cpu_seconds(2.0, rootfs=rootfs).message


def test_cpu_update_check_sees_a_quota_written_by_hand(rootfs, state_root, new_id):
    with Container.create(new_id(), rootfs=rootfs, args=["sh", "-c", "while :; do :; done"], cpus=0.5,
                          state_root=state_root, stdout=DEVNULL) as container:
        container.start()
        assert not check_cpu_update(container.id, state_root=state_root).answered
        quota_file = cpu_quota_files(container.cgroup)[0]
        with open(quota_file, "w") as f:
            f.write("2000" if container.cgroup.version == "v1" else "2000 100000")
        assert "ten times too little" in check_cpu_update(container.id, state_root=state_root).message
        with open(quota_file, "w") as f:
            f.write("20000" if container.cgroup.version == "v1" else "20000 100000")
        result = check_cpu_update(container.id, state_root=state_root)
    assert result.passed, result.message


@pytest.mark.parametrize("memory_swap, passed, hint", [
    ("128m", True, "Right:"),
    (None, False, "No swap at all"),
    ("64m", False, "No swap at all"),
    ("192m", False, "twice too much"),
])
def test_docker_memory_check_reads_the_real_cgroup(rootfs, state_root, new_id, memory_swap, passed, hint):
    swap = {} if memory_swap is None else {"memory_swap": memory_swap}
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "30"], memory="64m", state_root=state_root,
                          stdout=DEVNULL, **swap) as container:
        container.start()
        result = check_docker_memory(container.id, state_root=state_root)
    assert result.passed is passed and hint in result.message
