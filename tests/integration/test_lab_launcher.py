"""The container launcher on the real kernel: each click is one container, created and deleted."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import teachdock
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


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed to become nobody")
def test_without_root_the_memory_hog_meets_an_address_space_limit(rootfs, state_root):
    nobody = 65534
    os.chown(state_root, nobody, nobody)
    code = f"""
        from teachdock.lab.start_here.launcher import ContainerLauncher
        launcher = ContainerLauncher("{rootfs}", state_root="{state_root}")
        launcher.preset.value = "x=a; while true; do x=$x$x; done"
        launcher.run_button.click()
        print(launcher.memory.value, launcher.result.exit_code, launcher.result.metrics, launcher.result.stderr.strip())
        print(launcher.report.value)
    """
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.dirname(os.path.dirname(teachdock.__file__))}
    done = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", sys.executable,
                           "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    first, report = done.stdout.split("\n", 1)
    assert first == "32 1 None sh: out of memory"  # stopped by the rlimit well before the 10 s timeout
    assert "RLIMIT_AS = 32 MiB" in report
    assert os.listdir(state_root) == []
