"""The real docker CLI against teachdockd: docker network create/ls/inspect/connect/disconnect/rm/prune
and docker run --network (bridge by default, NAME, container:NAME), with dockerd's words for mistakes.

Traffic only between the test's own containers."""

from __future__ import annotations

import pytest

from tests.support.daemons import DOCKER, docker_cli, running_daemon

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI")]


@pytest.fixture(scope="module")
def daemon():
    with running_daemon() as process:
        yield process


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()
    for network in daemon.json("GET", "/v1.45/networks"):
        if network["Name"] not in ("bridge", "none", "host"):
            daemon.request("DELETE", f"/v1.45/networks/{network['Id']}")


def test_default_bridge_and_network_ls(docker, daemon):
    result = docker("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert sorted(result.stdout.split("\n")[:-1]) == ["bridge bridge", "host host", "none null"], result.stderr
    result = docker("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")
    assert result.returncode == 0 and f"inet {daemon.bip[:-4]}2/24" in result.stdout, result.stderr
    result = docker("network", "inspect", "--format", "{{index .Options \"com.docker.network.bridge.name\"}}", "bridge")
    assert result.stdout.strip() == daemon.bridge


def test_create_connect_disconnect_inspect_rm(docker):
    assert docker("network", "create", "--subnet", "172.30.210.0/24", "--label", "lab=08", "cli-a").returncode == 0
    assert docker("network", "create", "cli-b").returncode == 0
    result = docker("run", "-d", "--name", "srv", "--network", "cli-a", "--network-alias", "web", "busybox",
                    "sleep", "60")
    assert result.returncode == 0, result.stderr
    assert docker("inspect", "-f", "{{.NetworkSettings.Networks.cli_a}}", "srv").returncode in (0, 1)
    ip = docker("inspect", "-f", "{{(index .NetworkSettings.Networks \"cli-a\").IPAddress}}", "srv").stdout.strip()
    assert ip == "172.30.210.2"
    result = docker("network", "connect", "--alias", "api", "--ip", "172.30.1.77", "cli-b", "srv")
    if result.returncode != 0:  # cli-b's subnet is the first free /24 of the pool
        subnet = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "cli-b").stdout.strip()
        pytest.fail(f"connect failed ({subnet}): {result.stderr}")
    result = docker("exec", "srv", "ip", "-o", "-4", "addr", "show", "eth1")
    assert "172.30.1.77/24" in result.stdout, result.stdout + result.stderr
    result = docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "cli-b")
    assert result.stdout.strip() == "srv 172.30.1.77/24"
    result = docker("network", "connect", "cli-b", "srv")
    assert result.returncode == 1 and "endpoint with name srv already exists in network cli-b" in result.stderr
    result = docker("network", "rm", "cli-b")
    assert result.returncode == 1 and "has active endpoints" in result.stderr
    assert docker("network", "disconnect", "cli-b", "srv").returncode == 0
    assert "eth1" not in docker("exec", "srv", "ls", "/sys/class/net").stdout
    result = docker("run", "--rm", "--network", "container:srv", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")
    assert "172.30.210.2/24" in result.stdout, result.stderr
    result = docker("run", "--rm", "--network", "cli-a", "busybox", "ping", "-c1", "-W1", ip)
    assert result.returncode == 0, result.stdout + result.stderr
    assert docker("rm", "-f", "srv").returncode == 0
    result = docker("network", "prune", "-f", "--filter", "label=lab=08")
    assert result.returncode == 0 and "cli-a" in result.stdout and "cli-b" not in result.stdout, result.stderr
    result = docker("network", "rm", "cli-b")
    assert (result.returncode, result.stdout) == (0, "cli-b\n"), result.stderr


def test_dockerds_words_for_mistakes(docker):
    assert docker("network", "create", "--subnet", "172.30.220.0/24", "taken").returncode == 0
    for args, words in [
            (("network", "create", "--subnet", "172.30.220.0/25", "overlap"),
             "Pool overlaps with other one on this address space"),
            (("network", "create", "--subnet", "172.30.999.0/24", "bad"),
             "Invalid subnet 172.30.999.0/24 : invalid CIDR address: 172.30.999.0/24"),
            (("network", "create", "taken"), "network with name taken already exists"),
            (("run", "--rm", "--network", "nosuch", "busybox", "true"), "network nosuch not found"),
            (("run", "--rm", "--network", "container:nosuch", "-p", "8080:80", "busybox", "true"),
             "conflicting options: port publishing and the container type network mode")]:
        result = docker(*args)
        assert result.returncode != 0 and words in result.stderr, (args, result.stderr)
    names = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "overlap" not in names and "bad" not in names
    result = docker("run", "--rm", "--network", "host", "-p", "8080:80", "busybox", "true")  # dockerd: a warning
    assert result.returncode == 0 and "Published ports are discarded when using host network mode" in result.stderr
