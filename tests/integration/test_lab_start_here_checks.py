"""Chapter 00's exercise checks on the real kernel: the right answer passes, the typical mistake
fails with its hint, as root and (through setpriv) as nobody, whose containers are rootless."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import teachdock
from teachdock.lab.common.views import host_view
from teachdock.lab.start_here import check_host_network, check_pid1_without_pid_namespace, check_ps_count

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

NOBODY = 65534
RIGHT = {"hostname": "lab", "namespaces": ("pid", "mount", "uts", "ipc")}


@pytest.fixture(autouse=True)
def own_state_root(monkeypatch, state_root):
    monkeypatch.setenv("TEACHDOCK_STATE_ROOT", str(state_root))  # the checks' containers live here


def test_ps_alone_lists_one_process(rootfs):
    assert check_ps_count(1, rootfs=rootfs).passed
    assert "header line" in check_ps_count(2, rootfs=rootfs).message


def test_without_a_pid_namespace_pid_1_is_the_hosts(rootfs):
    result = check_pid1_without_pid_namespace(host_view().pid1, rootfs=rootfs)
    assert result.passed, result.message
    wrong = check_pid1_without_pid_namespace("sh", rootfs=rootfs)
    assert not wrong.passed and "sh is PID 1 only in a PID namespace of its own" in wrong.message


def test_host_network_options_are_checked_by_running_them(rootfs):
    assert check_host_network(dict(RIGHT), rootfs=rootfs).passed
    still_own_network = check_host_network({"hostname": "lab"}, rootfs=rootfs)
    assert not still_own_network.passed and "sees only lo" in still_own_network.message
    no_pid = check_host_network({"hostname": "lab", "namespaces": ("mount", "uts", "ipc")}, rootfs=rootfs)
    assert not no_pid.passed and "a host number" in no_pid.message


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed to become nobody")
def test_without_root_one_check_runs_rootless_and_the_other_says_root_is_needed(rootfs, state_root):
    os.chown(state_root, NOBODY, NOBODY)
    code = f"""
        from teachdock.lab.start_here import check_host_network, check_pid1_without_pid_namespace
        print(check_host_network({RIGHT!r}, rootfs="{rootfs}").passed)
        print(check_host_network({{"hostname": "lab", "namespaces": ("mount", "uts")}}, rootfs="{rootfs}"))
        print(check_pid1_without_pid_namespace("sh", rootfs="{rootfs}"))
    """
    env = {"PATH": "/usr/bin:/bin", "TEACHDOCK_STATE_ROOT": str(state_root),
           "PYTHONPATH": os.path.dirname(os.path.dirname(teachdock.__file__))}
    done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                           "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    passed, no_pid, pid1 = done.stdout.strip().split("\n")
    assert passed == "True"
    assert no_pid.startswith("✘") and 'Keep "pid" in namespaces' in no_pid
    assert pid1.startswith("✎ This check needs root.")
    assert list(state_root.iterdir()) == []
