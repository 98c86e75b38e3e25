"""Chapter 01 on a real kernel: one command's system calls are the same in a container as on the
host (strace following run()'s children), and a shipped application runs the same at both ends.
"""

import shutil

import pytest

from teachdock.lab.virtualization import check_makes_directory, shipping, syscalls
from teachdock.runtime import run

pytestmark = [pytest.mark.root]

RUNTIME_CALLS = {"unshare", "pivot_root", "mount", "sethostname", "capset", "seccomp"}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_a_command_makes_the_same_system_calls_in_a_container(rootfs):
    host = syscalls.trace_on_host()
    container = syscalls.trace_in_container(rootfs)
    assert host.output.splitlines()[1:] == container.output.splitlines()[1:]  # all but the hostname
    assert container.output.splitlines()[0] != host.output.splitlines()[0]  # the UTS namespace's own
    core = {"execve", "uname", "pipe2", "clone", "wait4", "read", "write", "exit_group"}
    assert core <= host.names() and core <= container.names()
    assert syscalls.overlap(host, container) >= 0.75, syscalls.compare(host, container)
    assert not RUNTIME_CALLS & container.names()  # the runtime's own work came before the execve
    assert abs(len(host.calls) - len(container.calls)) <= 0.2 * len(host.calls)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_exercise_1s_check_sees_mkdir_and_not_the_word(rootfs):
    assert check_makes_directory("mkdir /tmp/made-by-the-exercise", rootfs).passed
    assert check_makes_directory("mkdir /proc/refused/x", rootfs).passed  # a refused call is still a call
    wrong = check_makes_directory("echo mkdir", rootfs)
    assert not wrong.passed and "only writes the word" in wrong.message


def test_a_shipped_application_runs_the_same_at_the_other_end(tmp_path):
    tmp_path.chmod(0o755)
    here, there = tmp_path / "here", tmp_path / "there"
    app = shipping.build_application(here / "app", greeting="hello from far away")
    digest = shipping.pack_application(app, here / "app.tar")
    before = run(shipping.APP_COMMAND, rootfs=str(app), timeout=30)
    there.mkdir()
    moved = shutil.copy(here / "app.tar", there)
    shutil.rmtree(here)
    root = shipping.unpack_application(moved, there / "rootfs", digest)
    after = run(shipping.APP_COMMAND, rootfs=str(root), timeout=30, state_root=str(there / "state"))
    assert before.exit_code == after.exit_code == 0, (before.stderr, after.stderr)
    assert before.stdout == after.stdout
    assert after.stdout.startswith("hello from far away\nBusyBox v")
