"""A daemon crash (SIGKILL) is not a container crash: teachdockd's containers are held by
their own monitor and log-writer processes, so after a restart the daemon finds them
running, or finds the exit code and the complete logs of those that ended meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support.daemons import demultiplex, running_daemon


pytestmark = [
    pytest.mark.root,
]

V = "/v1.45"


@pytest.fixture
def daemon(scratch_dir):
    with running_daemon(str(scratch_dir)) as process:
        yield process


def kill_daemon(daemon) -> None:
    """SIGKILL: no clean-up code of the daemon runs."""
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.process.wait()
    daemon.process = None


def wait_for_log(daemon, container: str, text: bytes) -> None:
    deadline = time.monotonic() + 10
    while text not in daemon.request("GET", f"{V}/containers/{container}/logs?stdout=1")[2]:
        assert time.monotonic() < deadline, f"{container} never printed {text!r}"
        time.sleep(0.05)


def test_sigkilled_daemon_finds_its_running_container_again(daemon):
    container_id = daemon.create(["sh", "-c", "echo up; trap 'echo down; exit 0' TERM; while true; do sleep 0.1; done"],
                                 name="steady", HostConfig={"AutoRemove": True})
    daemon.request("POST", f"{V}/containers/steady/start")
    wait_for_log(daemon, "steady", b"up")
    pid = daemon.json("GET", f"{V}/containers/steady/json")["State"]["Pid"]

    kill_daemon(daemon)
    assert Path(f"/proc/{pid}").exists(), "the container died with its daemon"
    daemon.start()

    [summary] = daemon.json("GET", f"{V}/containers/json")
    assert (summary["Id"], summary["State"]) == (container_id, "running")
    assert daemon.request("POST", f"{V}/containers/steady/stop")[0] == 204
    # AutoRemove still applies: the restarted daemon watches the container as the old one did
    deadline = time.monotonic() + 10
    while daemon.request("GET", f"{V}/containers/{container_id}/json")[0] != 404:
        assert time.monotonic() < deadline, "the --rm container was not removed after its exit"
        time.sleep(0.05)


def test_container_that_exits_while_the_daemon_is_down(daemon):
    daemon.create(["sh", "-c", "echo first; sleep 1; echo second >&2; exit 4"], name="meanwhile")
    daemon.request("POST", f"{V}/containers/meanwhile/start")
    wait_for_log(daemon, "meanwhile", b"first")
    pid = daemon.json("GET", f"{V}/containers/meanwhile/json")["State"]["Pid"]
    kill_daemon(daemon)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "the container did not end"
        time.sleep(0.05)
    daemon.start()

    state = daemon.json("GET", f"{V}/containers/meanwhile/json")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 4)  # recorded by the runtime's monitor
    _, _, body = daemon.request("GET", f"{V}/containers/meanwhile/logs?stdout=1&stderr=1")
    # the log writer went on without the daemon
    assert demultiplex(body) == [(1, b"first\n"), (2, b"second\n")]


def test_sigkill_mid_run_ends_the_clients_stream_and_keeps_state_consistent(daemon):
    """``kill -9`` of the daemon while a foreground ``docker run`` is attached."""
    container_id = daemon.create(["sh", "-c", "echo started; sleep 1; echo finished"])
    attach = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    attach.settimeout(30)
    attach.connect(daemon.socket_path)
    attach.sendall(f"POST {V}/containers/{container_id}/attach?stdout=1&stderr=1&stream=1 HTTP/1.1\r\n"
                   "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += attach.recv(1)
    assert daemon.request("POST", f"{V}/containers/{container_id}/start")[0] == 204
    while b"started" not in received:
        received += attach.recv(4096)

    kill_daemon(daemon)
    while chunk := attach.recv(4096):  # the client sees the stream end, it does not hang
        received += chunk
    attach.close()
    daemon.start()

    exit_code = daemon.json("POST", f"{V}/containers/{container_id}/wait")["StatusCode"]
    assert exit_code == 0
    state = daemon.json("GET", f"{V}/containers/{container_id}/json")["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 0, False)
    _, _, body = daemon.request("GET", f"{V}/containers/{container_id}/logs?stdout=1")
    assert demultiplex(body) == [(1, b"started\n"), (1, b"finished\n")]
    assert daemon.request("DELETE", f"{V}/containers/{container_id}")[0] == 204


def test_records_are_json_files_under_the_data_root(daemon):
    """What a learner finds on disk: one directory per container, as /var/lib/docker/containers."""
    container_id = daemon.create(["echo", "on disk"], name="ondisk")
    daemon.request("POST", f"{V}/containers/ondisk/start")
    daemon.json("POST", f"{V}/containers/ondisk/wait")
    directory = daemon.data_root / "daemon" / "containers" / container_id
    record = json.loads((directory / "container.json").read_text())
    assert record["Name"] == "/ondisk" and record["State"]["ExitCode"] == 0
    [line] = (directory / f"{container_id}-json.log").read_text().splitlines()
    entry = json.loads(line)
    assert (entry["log"], entry["stream"]) == ("on disk\n", "stdout")
    assert entry["time"].endswith("Z")
    assert daemon.request("DELETE", f"{V}/containers/ondisk")[0] == 204
