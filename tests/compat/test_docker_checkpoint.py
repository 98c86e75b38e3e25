"""The docker CLI's checkpoint verbs against teachdockd, which (like dockerd) offers them only
when started with --experimental: the CLI reads the Docker-Experimental header and hides
`docker checkpoint` from any other daemon.

On this host criu check fails, so a checkpoint of a running container comes back with criu's
own words; a stopped container is refused before criu with dockerd's words. The move itself
runs in the VM (tests/vm/test_criu_vm.py)."""

from __future__ import annotations

import pytest

from teachdock.runtime.checkpoint import why_criu_cannot_run
from tests.support.daemons import DOCKER, docker_cli, running_daemon

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI")]


@pytest.fixture(scope="module")
def experimental(tmp_path_factory):
    with running_daemon() as daemon:
        daemon.stop()
        daemon.extra_args = ["--experimental"]
        daemon.start()
        yield daemon, docker_cli(daemon.socket_path, tmp_path_factory.mktemp("docker-config"))


def test_without_experimental_the_cli_hides_checkpoint(tmp_path):
    with running_daemon() as daemon:
        docker = docker_cli(daemon.socket_path, tmp_path)
        done = docker("checkpoint", "ls", "anything")
        assert done.returncode != 0
        assert "experimental" in done.stderr
        assert docker("info", "--format", "{{.ExperimentalBuild}}").stdout.strip() == "false"


def test_with_experimental_the_cli_speaks_to_the_checkpoint_api(experimental):
    daemon, docker = experimental
    assert docker("info", "--format", "{{.ExperimentalBuild}}").stdout.strip() == "true"
    assert docker("create", "--name", "idle", "busybox", "true").returncode == 0
    done = docker("checkpoint", "create", "idle", "cp1")
    assert done.returncode == 1
    assert "Container idle not running" in done.stderr
    listed = docker("checkpoint", "ls", "idle")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["CHECKPOINT", "NAME"]
    assert docker("rm", "idle").returncode == 0


@pytest.mark.skipif(why_criu_cannot_run() is None, reason="criu check passes here: the VM test covers the move")
def test_a_running_container_gets_criu_checks_own_words(experimental):
    daemon, docker = experimental
    assert docker("run", "-d", "--network", "none", "--name", "busy", "busybox", "sleep", "300").returncode == 0
    done = docker("checkpoint", "create", "busy", "cp1")
    assert done.returncode == 1
    assert why_criu_cannot_run() in done.stderr
    assert docker("inspect", "--format", "{{.State.Running}}", "busy").stdout.strip() == "true"
    assert docker("rm", "-f", "busy").returncode == 0
