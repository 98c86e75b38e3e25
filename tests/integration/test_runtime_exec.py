"""exec_in (runc exec): a second program joins a running container's namespaces and cgroup."""

import os
import signal
import subprocess
import sys

import pytest

from teachdock.errors import Conflict, ContainerStartError, InvalidConfig
from teachdock.runtime import PIPE, Container, exec_in

from tests.support.host import finish, proc_stat, read_rest, wait_until

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WAIT_FOR_INPUT = "echo ready; read x"


def run_exec(container, args, **options) -> tuple[int, str, str]:
    execution = exec_in(container, args, stdout=PIPE, stderr=PIPE, **options)
    try:
        out, err = read_rest(execution.stdout), read_rest(execution.stderr)
        return execution.wait(timeout=10), out, err
    finally:
        execution.close()


def test_exec_sees_the_containers_hostname_processes_and_files(running):
    with running(WAIT_FOR_INPUT, hostname="inside") as container:
        code, out, err = run_exec(container, ["sh", "-c", "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                                          "test -e /linuxrc && echo busybox-root"])
        assert (code, err) == (0, "")
        assert out.splitlines() == ["inside", "2", "sh -c echo ready; read x ", "busybox-root"]
        finish(container)


def test_exec_joins_the_containers_cgroup_so_its_limits_apply(running):
    with running(WAIT_FOR_INPUT, pids_limit=3) as container:
        execution = exec_in(container, ["sleep", "30"])
        try:
            assert execution.pid in container.cgroup.processes()
            # PID 1, sleep: a third process fits, a fork bomb does not
            code, _, err = run_exec(container, ["sh", "-c", "sleep 1 & sleep 1 & wait"])
            assert code != 0 and ("fork" in err.lower() or "resource" in err.lower()), err
        finally:
            execution.kill(signal.SIGKILL)
            assert execution.wait(timeout=10) == 128 + signal.SIGKILL
        finish(container)


def test_exec_takes_the_containers_environment_plus_its_own(running):
    with running(WAIT_FOR_INPUT, env={"FROM_CONTAINER": "c", "BOTH": "container"}) as container:
        code, out, _ = run_exec(container, ["sh", "-c", "echo $FROM_CONTAINER $BOTH $ONLY_EXEC $HOME; pwd"],
                                env={"BOTH": "exec", "ONLY_EXEC": "e"}, cwd="/tmp")
        assert (code, out) == (0, "c exec e /root\n/tmp\n")
        finish(container)


def test_exec_as_another_user_and_the_exit_code_comes_back(running):
    with running(WAIT_FOR_INPUT) as container:
        assert run_exec(container, ["sh", "-c", "id -u; id -g; exit 7"], user="1000:1001")[:2] == (7, "1000\n1001\n")
        finish(container)


def test_exec_in_a_user_namespace_container_is_root_inside_only(running):
    with running(WAIT_FOR_INPUT, namespaces=("pid", "mount", "uts", "ipc", "network", "user")) as container:
        execution = exec_in(container, ["sleep", "30"])
        try:
            status = open(f"/proc/{execution.pid}/status").read()
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uid_line.split()[1] == "100000", uid_line  # root inside = host 100000
        finally:
            execution.kill(signal.SIGKILL)
            execution.wait(timeout=10)
        finish(container)


def test_a_missing_program_is_a_clear_error_and_leaves_no_process(running):
    with running(WAIT_FOR_INPUT) as container:
        before = set(container.cgroup.processes())
        with pytest.raises(ContainerStartError, match='exec: "no-such-program": executable file not found'):
            exec_in(container, ["no-such-program"])
        assert set(container.cgroup.processes()) == before
        finish(container)


def test_exec_needs_a_running_container_and_a_list(rootfs, state_root, new_id):
    with Container.create(new_id(), rootfs=rootfs, args=["true"], state_root=state_root) as created:
        with pytest.raises(Conflict, match="is created: exec needs a running container"):
            exec_in(created, ["true"])
        with pytest.raises(InvalidConfig, match="as a list"):
            exec_in(created, "echo hi")


def test_exec_processes_die_with_the_container(running):
    with running(WAIT_FOR_INPUT) as container:
        execution = exec_in(container, ["sleep", "300"])
        container.kill(signal.SIGKILL)  # PID 1 gone: the kernel kills the rest of its PID namespace
        assert execution.wait(timeout=10) == 128 + signal.SIGKILL
        assert wait_until(lambda: proc_stat(execution.pid) is None)


def test_the_runtime_cli_exec_verb(running, state_root):
    with running(WAIT_FOR_INPUT, hostname="viacli") as container:
        result = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", str(state_root), "exec",
                                 "-e", "A=1", container.id, "sh", "-c", "echo $A $(hostname); exit 3"],
                                capture_output=True, text=True, timeout=30)
        assert (result.returncode, result.stdout) == (3, "1 viacli\n"), result.stderr
        finish(container)


def test_a_terminal_comes_from_the_containers_own_devpts_over_the_console_socket(running):
    import socket  # noqa: PLC0415

    from teachdock.runtime.terminal import receive_terminal  # noqa: PLC0415

    with running(WAIT_FOR_INPUT) as container:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            execution = exec_in(container, ["sh", "-c", "tty; stty size"], console_socket=theirs.fileno(),
                                console_size=(33, 111))
            master = receive_terminal(ours)
        output = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the program has closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        assert execution.wait(timeout=10) == 0
        assert output.replace(b"\r\n", b"\n") == b"/dev/pts/0\n33 111\n"
        finish(container)


def test_terminal_and_console_socket_go_together(rootfs, state_root, new_id):
    with pytest.raises(InvalidConfig, match="needs a console_socket"):
        Container.create(new_id(), rootfs=rootfs, args=["true"], state_root=state_root, terminal=True)
