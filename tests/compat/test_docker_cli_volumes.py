"""The real docker CLI and the docker SDK against teachdockd: volumes and networks.

``docker volume create``, ``docker run -v NAME:/data`` writing a file that a second
container reads, ``volume rm`` of a volume in use, a read-only bind mount, ``docker network
ls/create/rm``, ``--network host``, and two containers on a user network pinging each other.
Assertions are on what the user sees: output and exit codes.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.daemons import DOCKER, docker_cli, running_daemon


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed (/usr/local/bin/docker or /usr/bin/docker): "
                                              "it is the client under test"),
]


BRIDGES_SEEN: set[str] = set()  # the Linux bridges of the networks the tests made (other daemons run beside)


def our_links() -> list[str]:
    """What is left of this module's networks: their bridges (a veth on the daemon's default
    bridge is one of running_daemon's leak checks)."""
    return sorted(name for name in os.listdir("/sys/class/net") if name in BRIDGES_SEEN)


@pytest.fixture(scope="module")
def daemon():
    with running_daemon() as process:
        yield process
    deadline = time.monotonic() + 10
    while our_links() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_links() == [], "a bridge was left behind"


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()
    for volume in daemon.json("GET", "/v1.45/volumes")["Volumes"]:
        daemon.request("DELETE", f"/v1.45/volumes/{volume['Name']}")
    for network in daemon.json("GET", "/v1.45/networks"):
        if network["Name"] not in ("bridge", "none", "host"):
            BRIDGES_SEEN.add("td-" + network["Id"][:12])
            daemon.request("DELETE", f"/v1.45/networks/{network['Id']}")


def test_volume_create_ls_inspect_rm(docker):
    result = docker("volume", "create", "cli-vol")
    assert (result.returncode, result.stdout) == (0, "cli-vol\n"), result.stderr
    result = docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}")
    assert result.stdout.splitlines() == ["local cli-vol"], result.stderr
    result = docker("volume", "inspect", "--format", "{{.Mountpoint}}", "cli-vol")
    assert result.returncode == 0 and result.stdout.strip().endswith("/daemon/volumes/cli-vol/_data")
    result = docker("volume", "rm", "cli-vol")
    assert (result.returncode, result.stdout) == (0, "cli-vol\n"), result.stderr
    result = docker("volume", "inspect", "cli-vol")
    assert result.returncode == 1 and "no such volume" in result.stderr


def test_run_with_a_volume_shares_files_between_containers(docker):
    result = docker("run", "--name", "writer", "-v", "cli-data:/data", "busybox", "sh", "-c",
                    "echo from-the-first > /data/note")
    assert result.returncode == 0, result.stderr
    result = docker("run", "--rm", "-v", "cli-data:/data", "busybox", "cat", "/data/note")
    assert (result.returncode, result.stdout) == (0, "from-the-first\n"), result.stderr
    result = docker("volume", "rm", "cli-data")  # the stopped writer still uses it
    assert result.returncode == 1
    assert "volume is in use" in result.stderr
    result = docker("inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}", "writer")
    assert result.stdout.strip() == "volume cli-data /data", result.stderr
    assert docker("rm", "writer").returncode == 0
    result = docker("volume", "rm", "cli-data")
    assert result.returncode == 0, result.stderr


def test_read_only_bind_mount_refuses_writes(docker, tmp_path):
    (tmp_path / "hello").write_text("host file\n")
    result = docker("run", "--rm", "-v", f"{tmp_path}:/host:ro", "busybox", "sh", "-c",
                    "cat /host/hello; echo x > /host/new")
    assert result.returncode != 0
    assert result.stdout == "host file\n"
    assert "Read-only file system" in result.stderr
    assert not (tmp_path / "new").exists()


def test_bad_volume_spec_is_refused_by_the_daemon(docker):
    result = docker("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", "busybox", "true")
    assert result.returncode == 125
    assert "bind source path does not exist" in result.stderr
    assert docker("ps", "-aq").stdout == ""


def test_network_ls_create_inspect_rm(docker):
    result = docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert sorted(result.stdout.splitlines()) == ["bridge bridge local", "host host local", "none null local"], \
        result.stderr
    result = docker("network", "create", "cli-net")
    assert result.returncode == 0 and len(result.stdout.strip()) == 64, result.stderr
    network_id = result.stdout.strip()
    assert f"td-{network_id[:12]}" in os.listdir("/sys/class/net")
    result = docker("network", "ls", "--format", "{{.ID}} {{.Name}}")
    assert f"{network_id[:12]} cli-net" in result.stdout.splitlines()
    result = docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", "cli-net")
    assert result.stdout.startswith("172.30."), result.stderr
    result = docker("network", "create", "cli-net")
    assert result.returncode == 1 and "already exists" in result.stderr
    result = docker("network", "rm", "cli-net")
    assert (result.returncode, result.stdout) == (0, "cli-net\n"), result.stderr
    assert f"td-{network_id[:12]}" not in os.listdir("/sys/class/net")


def test_run_network_host_sees_the_host_interfaces(docker):
    result = docker("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == set(os.listdir("/sys/class/net"))
    result = docker("run", "--rm", "busybox", "ls", "/sys/class/net")
    assert result.stdout.split() == ["eth0", "lo"]  # the default bridge, as with dockerd
    result = docker("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert result.stdout.split() == ["lo"]


def test_two_containers_on_a_user_network_ping_each_other(docker):
    assert docker("network", "create", "talk").returncode == 0
    result = docker("run", "-d", "--name", "listener", "--network", "talk", "busybox", "sleep", "60")
    assert result.returncode == 0, result.stderr
    address = docker("inspect", "--format", "{{.NetworkSettings.Networks.talk.IPAddress}}", "listener").stdout.strip()
    assert address.startswith("172.30.")
    result = docker("run", "--rm", "--network", "talk", "busybox", "ping", "-c1", "-W2", address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 packets received" in result.stdout
    result = docker("run", "--rm", "--network", "none", "busybox", "ping", "-c1", "-W1", address)  # no route
    assert result.returncode != 0
    # (from another network the Firewall's isolation stops it: tests/integration/test_daemon_networks.py)
    result = docker("network", "rm", "talk")
    assert result.returncode == 1 and "active endpoints" in result.stderr
    assert docker("rm", "-f", "listener").returncode == 0
    result = docker("network", "rm", "talk")
    assert result.returncode == 0, result.stderr


def test_docker_sdk_volumes_and_networks(daemon, tmp_path):
    docker_sdk = pytest.importorskip("docker", reason="the docker SDK is in the test extra")
    client = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket_path}")
    try:
        volume = client.volumes.create("sdk-vol")
        assert client.volumes.get("sdk-vol").attrs["Mountpoint"] == volume.attrs["Mountpoint"]
        out = client.containers.run("busybox", ["sh", "-c", "echo sdk > /v/f; cat /v/f"],
                                    volumes={"sdk-vol": {"bind": "/v", "mode": "rw"}}, remove=True)
        assert out == b"sdk\n"
        network = client.networks.create("sdk-net", driver="bridge")
        assert client.networks.get(network.id).name == "sdk-net"
        assert {n.name for n in client.networks.list()} == {"bridge", "none", "host", "sdk-net"}
        out = client.containers.run("busybox", ["ip", "-o", "-4", "addr", "show", "eth0"], network="sdk-net",
                                    remove=True)
        assert b"172.30." in out
        network.remove()
        volume.remove()
        assert [v.name for v in client.volumes.list()] == []
        with pytest.raises(docker_sdk.errors.NotFound):
            client.networks.get("sdk-net")
    finally:
        client.close()


def test_image_volume_gets_an_anonymous_volume_with_the_image_content(docker, tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nRUN mkdir /seeded && echo seed > /seeded/s\n"
                                                 "VOLUME /seeded\n")
    result = docker("build", "-q", "-t", "withvolume", str(tmp_path / "ctx"))
    assert result.returncode == 0, result.stderr
    try:
        result = docker("run", "--name", "imgvol", "withvolume", "sh", "-c", "echo more >> /seeded/s")
        assert result.returncode == 0, result.stderr
        [name] = docker("volume", "ls", "-q").stdout.split()
        assert len(name) == 64
        mountpoint = docker("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip()
        assert open(os.path.join(mountpoint, "s")).read() == "seed\nmore\n"  # copied up, then written
        assert docker("volume", "prune", "-f").stdout.strip() == "Total reclaimed space: 0B"  # still in use
        assert docker("volume", "ls", "-q").stdout.split() == [name]
        assert docker("rm", "imgvol").returncode == 0
        result = docker("volume", "prune", "-f")
        assert result.returncode == 0 and name in result.stdout
        assert docker("volume", "ls", "-q").stdout == ""
    finally:
        docker("rm", "-f", "imgvol")
        docker("rmi", "withvolume")
