"""``docker stats`` (the real CLI) and the docker SDK's ``container.stats()`` against teachdockd."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from tests.support.dockerd import docker_cli


DOCKER = docker_cli()

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
]


@pytest.fixture
def docker(daemon, tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.socket_path}", "DOCKER_CLI_HINTS": "false",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("DOCKER_API_VERSION", None)

    def run(*args, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    run.env = env
    yield run
    daemon.remove_all()


def busy_container(docker, name: str) -> None:
    result = docker("run", "-d", "--name", name, "-m", "32m", "busybox", "sh", "-c",
                    "dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; while :; do :; done")
    assert result.returncode == 0, result.stderr
    time.sleep(0.5)  # let dd finish


def test_docker_stats_no_stream(docker):
    busy_container(docker, "statme")
    result = docker("stats", "--no-stream", "statme")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert "statme" in row.split()
    usage = re.search(r"([\d.]+)MiB / 32MiB", row)
    assert usage and float(usage.group(1)) >= 8, row
    cpu = float(re.search(r"([\d.]+)%", row).group(1))
    assert cpu > 20, row  # a busy loop: two samples a second apart make CPU % meaningful
    assert row.split()[-1] == "1"  # PIDS


def test_docker_stats_format_of_a_stopped_container(docker):
    assert docker("create", "--name", "idle", "busybox", "true").returncode == 0
    result = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "idle")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["idle", "0B", "/", "0B", "0"]


def test_docker_stats_streaming_until_killed(daemon, docker):
    """Streams about once a second; when the CLI goes away the daemon's stream ends too.
    (CLI 28.2 keeps redrawing "--" after ^C without a terminal, so it is killed.)"""
    busy_container(docker, "streamme")
    threads_before = len(os.listdir(f"/proc/{daemon.pid}/task"))
    process = subprocess.Popen([DOCKER, "stats", "--format", "{{.Name}} {{.CPUPerc}}", "streamme"], env=docker.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        time.sleep(3.5)
        threads_streaming = len(os.listdir(f"/proc/{daemon.pid}/task"))
    finally:
        process.kill()
        out, err = process.communicate(timeout=10)
    rows = re.findall(r"streamme ([\d.]+)%", out)
    assert len(set(rows)) >= 2, out  # redrawn with new figures about once a second
    assert float(rows[-1]) > 20, out
    assert threads_streaming > threads_before  # a connection thread serves the stream...
    deadline = time.monotonic() + 5
    while len(os.listdir(f"/proc/{daemon.pid}/task")) > threads_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(f"/proc/{daemon.pid}/task")) <= threads_before  # ...and ends with the client
    assert docker("inspect", "-f", "{{.State.Running}}", "streamme").stdout.strip() == "true"


def test_sdk_stats(daemon):
    docker_sdk = pytest.importorskip("docker", reason="the docker SDK (pip install docker) is the client under test")
    client = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket_path}")
    container = client.containers.run("busybox", ["sh", "-c", "while :; do :; done"], detach=True, mem_limit="48m")
    try:
        once = container.stats(stream=False)
        assert once["id"] == container.id and once["memory_stats"]["limit"] == 48 * 1024 * 1024
        assert once["cpu_stats"]["cpu_usage"]["total_usage"] > once["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        stream = container.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        stream.close()
        assert second["cpu_stats"]["cpu_usage"]["total_usage"] > first["cpu_stats"]["cpu_usage"]["total_usage"]
        assert second["pids_stats"]["current"] == 1
    finally:
        container.remove(force=True)
        client.close()
