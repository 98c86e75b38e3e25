"""Nothing accumulates: many containers in a row leave no cgroup, mount, process or state behind."""

import os
import signal

import pytest

from teachdock.runtime import Container, run

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

RUNS = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_200_sequential_runs_leave_nothing_behind(rootfs, state_root, new_id, host):
    """The leak check (mounts, cgroups, processes, state) runs after this test as after every other;
    here the file descriptors and zombies of the calling process are checked as well."""
    mounts_before = len(host.mountinfo())
    fds_before = open_fds()
    for _ in range(RUNS):
        result = run(["/bin/true"], rootfs=rootfs, state_root=state_root, container_id=new_id(), timeout=30)
        assert result.exit_code == 0, result.stderr
    assert os.listdir(state_root) == []
    assert host.cgroup_dirs_named(new_id.prefix) == []
    assert host.processes_in_cgroups_named(new_id.prefix) == []
    assert open_fds() == fds_before, "file descriptors leaked into the calling process"
    assert host.children_of(os.getpid()) == [], "monitors or zombies left as our children"
    # The host's mount table may change under us (other people use this machine), but not by ~RUNS.
    assert len(host.mountinfo()) - mounts_before < 10


def test_delete_after_the_container_died_on_its_own(rootfs, state_root, new_id):
    container = Container.create(new_id(), rootfs=rootfs, args=["sh", "-c", "exit 0"], state_root=state_root)
    container.start()
    assert container.wait(10) == 0
    container.delete()


def test_delete_of_a_created_container_that_never_ran(rootfs, state_root, new_id):
    container = Container.create(new_id(), rootfs=rootfs, args=["true"], state_root=state_root)
    container.delete()


def test_a_running_container_with_children_is_cleaned_up_by_force(rootfs, state_root, new_id, host):
    script = "for i in 1 2 3 4 5; do sleep 30 & done; exec sleep 30"
    container = Container.create(new_id(), rootfs=rootfs, args=["sh", "-c", script], state_root=state_root)
    container.start()
    assert host.wait_until(lambda: len(container.cgroup.processes()) == 6), "the six sleeps never all ran"
    container.delete(force=True)
    assert host.processes_in_cgroups_named(new_id.prefix) == []


def test_delete_cleans_up_after_a_killed_monitor(rootfs, state_root, new_id, host):
    """Without its shim the container runs on; delete(force=True) still removes everything."""
    container = Container.create(new_id(), rootfs=rootfs, args=["sleep", "30"], state_root=state_root)
    container.start()
    monitor = container.state()["monitorPid"]
    os.kill(monitor, signal.SIGKILL)
    assert host.wait_until(lambda: (host.proc_stat(monitor) or ("gone",))[0] in ("Z", "gone"))
    assert container.status == "running"  # the kernel is the source of truth: PID 1 is alive
    container.delete(force=True)
    assert host.processes_in_cgroups_named(new_id.prefix) == []
    assert not container.state_dir.exists()
