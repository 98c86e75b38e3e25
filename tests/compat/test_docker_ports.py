"""The real docker CLI and the docker SDK against teachdockd: published ports.

`docker run -p 127.0.0.1::80` and `-P` with an image's EXPOSE, `docker port`, the PORTS column
of `docker ps`, a page fetched from 127.0.0.1 with urllib, a port already allocated (dockerd's
words, the container left not running), and the SDK's `ports=` and `container.ports`.

Traffic only to 127.0.0.1 (the published ports of the test's own containers). The daemon's
nftables table must be gone once it has stopped."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest

from teachdock.daemon.firewall import table_name
from tests.support.daemons import DOCKER, docker_cli, running_daemon

pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI")]

PAGE = "hello from a published port"
# busybox httpd serving one page (made in the command), in the foreground
HTTPD = ["sh", "-c", f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www"]


def nft_table_exists(name: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def daemon():
    with running_daemon() as process:
        yield process
        table = table_name(process.bridge)
    assert not nft_table_exists(table), f"the daemon's nftables table {table} is left"


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()


def fetch(port: int, timeout: float = 10) -> str:
    """GET / on 127.0.0.1:port, retried while httpd starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_publish_on_loopback_port_and_ps(docker):
    result = docker("run", "-d", "--name", "web", "-p", "127.0.0.1::80", "busybox", *HTTPD)
    assert result.returncode == 0, result.stderr
    result = docker("port", "web")
    assert result.returncode == 0, result.stderr
    mapping, = result.stdout.splitlines()
    assert mapping.startswith("80/tcp -> 127.0.0.1:"), mapping
    port = int(mapping.rsplit(":", 1)[1])
    assert docker("port", "web", "80").stdout.strip() == f"127.0.0.1:{port}"
    result = docker("ps", "--filter", "name=web", "--format", "{{.Names}} {{.Ports}}")
    assert result.stdout.strip() == f"web 127.0.0.1:{port}->80/tcp", result.stdout + result.stderr
    assert fetch(port).strip() == PAGE


def test_publish_all_with_the_images_expose(docker, tmp_path):
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "Dockerfile").write_text("FROM busybox\nEXPOSE 80\n")
    result = docker("build", "-q", "-t", "ports-expose:test", str(tmp_path / "context"))  # DOCKER_BUILDKIT=0
    assert result.returncode == 0, result.stderr
    try:
        result = docker("run", "-d", "--name", "every", "-P", "ports-expose:test", *HTTPD)
        assert result.returncode == 0, result.stderr
        mappings = docker("port", "every", "80/tcp").stdout.split()
        assert mappings and all(m.rsplit(":", 1)[0] in ("0.0.0.0", "[::]") for m in mappings), mappings
        port = int(mappings[0].rsplit(":", 1)[1])
        assert fetch(port).strip() == PAGE
    finally:
        docker("rm", "-f", "every")
        docker("rmi", "ports-expose:test")


def test_a_port_already_allocated(docker):
    assert docker("run", "-d", "--name", "first", "-p", "127.0.0.1::80", "busybox", "sleep", "60").returncode == 0
    port = int(docker("port", "first", "80").stdout.strip().rsplit(":", 1)[1])
    result = docker("run", "-d", "--name", "second", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60")
    assert result.returncode != 0
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in result.stderr, result.stderr
    result = docker("inspect", "-f", "{{.State.Running}} {{.State.Status}}", "second")
    assert result.stdout.split()[0] == "false", result.stdout + result.stderr  # created, as dockerd leaves it
    assert docker("inspect", "-f", "{{.State.Running}}", "first").stdout.strip() == "true"
    assert docker("rm", "-f", "second").returncode == 0
    # the port still belongs to the first container, and is free again once it has gone
    assert docker("port", "first", "80").stdout.strip() == f"127.0.0.1:{port}"
    assert docker("rm", "-f", "first").returncode == 0
    result = docker("run", "-d", "--name", "third", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60")
    assert result.returncode == 0, result.stderr


def test_the_sdk_publishes_and_reads_ports(daemon):
    docker_sdk = pytest.importorskip("docker")
    client = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket_path}", timeout=60)
    container = None
    try:
        container = client.containers.run("busybox", HTTPD, ports={"80/tcp": ("127.0.0.1", None)}, detach=True)
        container.reload()
        bindings = container.ports["80/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"], container.ports
        assert fetch(int(bindings[0]["HostPort"])).strip() == PAGE
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()
