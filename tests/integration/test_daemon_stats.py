"""``GET /containers/{id}/stats``: the figures ``docker stats`` shows, checked against what the
container really does (allocates memory, forks, burns CPU), at the HTTP level."""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = [
    pytest.mark.root,
]

V = "/v1.45"
MiB = 1024 * 1024


@pytest.fixture
def clean(daemon):
    yield daemon
    daemon.remove_all()


def start(daemon, script: str, **config) -> str:
    container_id = daemon.create(["sh", "-c", script], **config)
    status, _, body = daemon.request("POST", f"{V}/containers/{container_id}/start")
    assert status == 204, body
    return container_id


def stats(daemon, container_id: str, query: str = "stream=0") -> dict:
    return daemon.json("GET", f"{V}/containers/{container_id}/stats?{query}")


def wait_for_log(daemon, container_id: str, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, _, body = daemon.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&stderr=1")
        if text.encode() in body:
            return
        time.sleep(0.1)
    raise AssertionError(f"{container_id[:12]} never printed {text!r}")


def test_memory_pids_and_limit_of_a_running_container(clean):
    """20 MiB written to /dev/shm (tmpfs: charged to the container's memory cgroup), three
    background sleeps, -m 64m and --pids-limit 50."""
    container_id = start(clean, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=20 2>/dev/null; "
                                "sleep 60 & sleep 60 & sleep 60 & echo ready; wait",
                         HostConfig={"Memory": 64 * MiB, "PidsLimit": 50})
    wait_for_log(clean, container_id, "ready")
    answer = stats(clean, container_id, "stream=0&one-shot=1")
    assert answer["id"] == container_id and answer["name"].startswith("/")
    memory = answer["memory_stats"]
    assert memory["usage"] >= 20 * MiB, memory
    assert memory["limit"] == 64 * MiB
    assert memory["stats"]["cache"] >= 20 * MiB  # tmpfs pages are page cache in memory.stat
    assert answer["pids_stats"] == {"current": 4, "limit": 50}  # sh and its three sleeps
    assert answer["precpu_stats"]["cpu_usage"]["total_usage"] == 0  # one-shot: no previous sample
    assert answer["preread"] == "0001-01-01T00:00:00Z"
    assert set(answer["networks"]) == {"eth0"}  # the default bridge's interface, as dockerd shows it
    assert answer["networks"]["eth0"]["rx_bytes"] >= 0


def test_without_a_limit_the_limit_is_the_host_memory(clean):
    container_id = start(clean, "echo ready; sleep 60")
    wait_for_log(clean, container_id, "ready")
    answer = stats(clean, container_id, "stream=0&one-shot=1")
    with open("/proc/meminfo") as f:
        host = int(f.readline().split()[1]) * 1024
    assert answer["memory_stats"]["limit"] == host
    assert "limit" not in answer["pids_stats"]


def test_stream0_takes_two_samples_a_second_apart(clean):
    """Without one-shot, dockerd waits for a second sample so that CPU % means something."""
    container_id = start(clean, "while :; do :; done")
    began = time.monotonic()
    answer = stats(clean, container_id)
    assert time.monotonic() - began >= 0.9
    cpu, precpu = answer["cpu_stats"], answer["precpu_stats"]
    assert answer["preread"] < answer["read"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - precpu["cpu_usage"]["total_usage"]
    system_delta = cpu["system_cpu_usage"] - precpu["system_cpu_usage"]
    percent = cpu_delta / system_delta * cpu["online_cpus"] * 100
    assert 30 < percent < 130, percent  # a busy loop is about one CPU: 100 % in docker's terms
    assert cpu["online_cpus"] == os.cpu_count()
    assert sum(cpu["cpu_usage"].get("percpu_usage", [])) == pytest.approx(cpu["cpu_usage"]["total_usage"], rel=0.05)
    assert cpu["cpu_usage"]["usage_in_usermode"] + cpu["cpu_usage"]["usage_in_kernelmode"] > 0


def test_stream_sends_samples_with_growing_cpu_until_the_client_leaves(clean):
    container_id = start(clean, "while :; do :; done")
    connection = clean.connection(timeout=30)
    connection.request("GET", f"{V}/containers/{container_id}/stats?stream=1")
    response = connection.getresponse()
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    samples = []
    while len(samples) < 3:
        line = response.readline()
        assert line, "the stream ended early"
        samples.append(json.loads(line))
    connection.close()  # the client goes away: the daemon must stop streaming
    usages = [s["cpu_stats"]["cpu_usage"]["total_usage"] for s in samples]
    assert usages[0] < usages[1] < usages[2]
    assert samples[0]["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert samples[1]["precpu_stats"] == samples[0]["cpu_stats"]
    assert samples[1]["preread"] == samples[0]["read"]
    # the daemon still answers (the streaming thread ended, it did not wedge anything)
    assert clean.request("GET", "/_ping")[0] == 200


def test_stream_ends_when_the_container_stops(clean):
    container_id = start(clean, "sleep 60")
    connection = clean.connection(timeout=30)
    connection.request("GET", f"{V}/containers/{container_id}/stats")  # stream is the default
    response = connection.getresponse()
    first = json.loads(response.readline())
    assert first["pids_stats"]["current"] == 1
    assert clean.request("POST", f"{V}/containers/{container_id}/kill")[0] == 204
    rest = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    connection.close()
    assert rest and rest[-1]["read"] == "0001-01-01T00:00:00Z"  # a last, empty sample, then the end


def test_stopped_container_gives_zeros(clean):
    container_id = clean.create(["true"])
    answer = stats(clean, container_id)
    assert answer["read"] == "0001-01-01T00:00:00Z"
    assert answer["memory_stats"] == {} and answer["pids_stats"] == {}
    assert answer["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert answer["id"] == container_id


def test_errors(clean):
    status, headers, body = clean.request("GET", f"{V}/containers/nope/stats?stream=0")
    assert status == 404 and b"No such container: nope" in body
    container_id = clean.create(["true"])
    status, _, body = clean.request("GET", f"{V}/containers/{container_id}/stats?stream=1&one-shot=1")
    assert status == 400 and b"one-shot" in body
