"""``docker exec`` with the real docker CLI against teachdockd: attached, -i, -d, -e/-w/-u, errors."""

from __future__ import annotations


import pytest

from tests.support.daemons import DOCKER, docker_cli


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
]


@pytest.fixture(scope="module")
def docker(daemon, tmp_path_factory):
    return docker_cli(daemon.socket_path, tmp_path_factory.mktemp("docker-config"))


@pytest.fixture
def sleeper(docker, daemon):
    """A running container to exec into; removed afterwards."""
    result = docker("run", "-d", "busybox", "sleep", "300")
    assert result.returncode == 0, result.stderr
    container = result.stdout.strip()
    yield container
    docker("rm", "-f", container)


def test_exec_output_both_streams_and_exit_code(docker, sleeper):
    result = docker("exec", sleeper, "sh", "-c", "echo out; echo err >&2; hostname; exit 4")
    assert result.returncode == 4
    assert result.stdout == f"out\n{sleeper[:12]}\n"
    assert result.stderr == "err\n"


def test_exec_sees_the_containers_processes_not_the_hosts(docker, sleeper):
    result = docker("exec", sleeper, "ps", "-o", "pid,comm")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows == [["1", "sleep"], [rows[1][0], "ps"]] and rows[1][0] != "1"


def test_exec_i_pipes_stdin_and_ends_at_its_end(docker, sleeper):
    result = docker("exec", "-i", sleeper, "sh", "-c", "tr a-z A-Z; echo done", input="piped data\n")
    assert (result.returncode, result.stdout) == (0, "PIPED DATA\ndone\n"), result.stderr


def test_exec_d_runs_in_the_background(docker, sleeper):
    assert docker("exec", "-d", sleeper, "sh", "-c", "sleep 0.2; echo made > /made").returncode == 0
    result = docker("exec", sleeper, "sh", "-c", "for i in $(seq 50); do test -e /made && break; sleep 0.1; done; cat /made")
    assert (result.returncode, result.stdout) == (0, "made\n"), result.stderr


def test_exec_env_workdir_and_user(docker, sleeper):
    result = docker("exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", sleeper, "sh", "-c", "echo $A $(pwd) $(id -un)")
    assert (result.returncode, result.stdout) == (0, "1 /tmp nobody\n"), result.stderr


def test_exec_of_a_missing_program_exits_126_with_the_reason(docker, sleeper):
    result = docker("exec", sleeper, "no-such-program")
    assert result.returncode == 126
    assert 'exec: "no-such-program": executable file not found in $PATH' in result.stdout + result.stderr


def test_exec_in_a_stopped_or_unknown_container_is_refused(docker):
    stopped = docker("run", "-d", "busybox", "true").stdout.strip()
    docker("wait", stopped)
    result = docker("exec", stopped, "true")
    assert result.returncode == 1 and "is not running" in result.stderr
    missing = docker("exec", "no-such-container", "true")
    assert missing.returncode == 1 and "No such container: no-such-container" in missing.stderr
    docker("rm", stopped)
