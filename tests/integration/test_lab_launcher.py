"""The container launcher on the real kernel: each click is one container, created and deleted."""

import os

import pytest

from teachdock.lab.start_here.launcher import ContainerLauncher

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]


def test_run_shows_pid_1_and_deletes_the_container(rootfs, state_root):
    launcher = ContainerLauncher(rootfs, state_root=state_root)
    launcher.command.value = "echo $$; hostname"
    launcher.run_button.click()
    assert launcher.error is None, launcher.error
    assert launcher.result.stdout == "1\nlauncher\n"
    assert "0: success" in launcher.report.value
    assert os.listdir(state_root) == []


def test_unticking_pid_shows_the_hosts_processes(rootfs, state_root):
    launcher = ContainerLauncher(rootfs, state_root=state_root)
    launcher.namespaces["pid"].value = False
    launcher.command.value = "echo $$"
    launcher.run_button.click()
    assert int(launcher.result.stdout) > 1  # a host PID: the container shares the host's PID namespace


def test_the_memory_hog_is_stopped_by_the_limit(rootfs, state_root):
    launcher = ContainerLauncher(rootfs, state_root=state_root)
    launcher.preset.value = "x=a; while true; do x=$x$x; done"
    assert launcher.memory.value == 32
    launcher.run_button.click()
    assert launcher.result.exit_code == 137 and launcher.result.oom_killed
    assert "OOM killer" in launcher.report.value
