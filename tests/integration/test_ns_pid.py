"""PID namespace: the container's first process is PID 1 and it cannot see the host's processes."""

import secrets
import subprocess

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

LIST_COMMAND_LINES = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done"


def test_the_first_process_is_pid_1(box):
    result = box("echo $$")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "1\n", "")


def test_ps_lists_only_the_containers_processes(box):
    result = box("ps -o pid,comm; echo end")  # "; echo end": the shell must not exec ps
    lines = result.stdout.splitlines()
    assert result.exit_code == 0, result.stderr
    assert lines[0].split() == ["PID", "COMMAND"]
    assert [line.split() for line in lines[1:-1]] == [["1", "sh"], ["2", "ps"]]


@pytest.fixture
def host_process_with_marker():
    """A host process whose command line carries a unique marker, to look for from inside."""
    marker = f"td-host-marker-{secrets.token_hex(4)}"
    process = subprocess.Popen(["sh", "-c", "read x", marker], stdin=subprocess.PIPE)
    yield marker
    process.stdin.close()
    process.wait(timeout=10)


def test_host_processes_are_invisible(box, host_process_with_marker):
    result = box(LIST_COMMAND_LINES)
    assert result.exit_code == 0, result.stderr
    command_lines = [line for line in result.stdout.splitlines() if line.strip()]
    # Only the script's shell and the short-lived `tr` can be there; the host has dozens.
    assert 1 <= len(command_lines) <= 3, command_lines
    assert not any(host_process_with_marker in line for line in command_lines)


def test_without_a_pid_namespace_host_processes_are_visible(box, host_process_with_marker):
    """The control for the test above: the same probe does see the marker without "pid"."""
    result = box(LIST_COMMAND_LINES, namespaces=("mount", "uts", "ipc", "network"))
    assert result.exit_code == 0, result.stderr
    assert any(host_process_with_marker in line for line in result.stdout.splitlines())
    assert result.stdout.count("\n") > 3


def test_the_host_sees_the_container_pid_1_under_another_number(running, finish):
    """/proc/<pid>/status NSpid lists the pid in every namespace, outermost first."""
    with running("echo ready; read x; echo bye") as container:
        with open(f"/proc/{container.pid}/status") as f:
            nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
        assert nspid == [str(container.pid), "1"]
        assert finish(container) == (0, "bye\n")
