"""teachdockd's Engine API over its Unix socket, spoken by hand with http.client.

One daemon per module (a subprocess with its own data root, exec root, socket and cgroup
parent; see tests/support/daemons.py). These tests pin the wire details the real docker CLI depends
on (API digest §1, §9): the Api-Version header, errors as exactly ``application/json``,
``wait`` headers sent before the container even starts, the multiplexed log framing, the
101 hijack of attach, and that a daemon restart neither kills nor forgets a container.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.daemons import demultiplex


pytestmark = [
    pytest.mark.root,
]

V = "/v1.45"


@pytest.fixture
def clean(daemon):
    """Each test starts and ends with no container."""
    yield daemon
    daemon.remove_all()
    assert daemon.json("GET", f"{V}/containers/json?all=1") == []


# --- protocol -------------------------------------------------------------------------------------------
def test_ping_answers_with_the_api_version_headers(daemon):
    status, headers, body = daemon.request("HEAD", "/_ping")
    assert status == 200 and body == b""
    assert headers["Api-Version"] == "1.45"
    assert headers["Ostype"] == "linux"
    status, headers, body = daemon.request("GET", "/_ping")
    assert (status, body) == (200, b"OK")


def test_version_with_and_without_prefix(daemon):
    unversioned = daemon.json("GET", "/version")  # the docker SDK's first call
    versioned = daemon.json("GET", f"{V}/version")
    for answer in (unversioned, versioned):
        assert answer["ApiVersion"] == "1.45"
        assert answer["MinAPIVersion"] == "1.24"
        assert answer["Os"] == "linux"
        assert answer["Components"][0]["Name"] == "Engine"


def test_api_version_outside_the_range_is_400(daemon):
    status, headers, body = daemon.request("GET", "/v1.99/version")
    assert status == 400
    assert "too new" in json.loads(body)["message"]
    status, _, body = daemon.request("GET", "/v1.12/version")
    assert status == 400 and "too old" in json.loads(body)["message"]


def test_unknown_route_is_docker_json_404(daemon):
    status, headers, body = daemon.request("GET", f"{V}/no/such/route")
    assert status == 404
    assert headers["Content-Type"] == "application/json"  # exactly: the CLI matches the string
    assert json.loads(body) == {"message": "page not found"}


def test_unknown_container_and_image_messages(daemon):
    status, headers, body = daemon.request("GET", f"{V}/containers/nosuch/json")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    status, _, body = daemon.request("POST", f"{V}/containers/create", {"Image": "nosuchimage", "Cmd": ["true"]})
    # this exact wording makes the CLI and the SDK pull, then create again
    assert (status, json.loads(body)) == (404, {"message": "No such image: nosuchimage:latest"})


def test_malformed_json_body_is_400(daemon):
    connection = daemon.connection()
    connection.request("POST", f"{V}/containers/create", body=b"{not json",
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400
    assert "invalid JSON" in json.loads(response.read())["message"]
    connection.close()


def test_info_counts_images_and_containers(clean):
    clean.create(["true"])
    info = clean.json("GET", f"{V}/info")
    assert info["Images"] == 1 and info["Containers"] == 1 and info["ContainersStopped"] == 1
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["DockerRootDir"] == str(clean.data_root)


def test_images_list_and_inspect(daemon):
    [image] = daemon.json("GET", f"{V}/images/json")
    assert image["RepoTags"] == ["busybox:latest"] and image["Id"].startswith("sha256:")
    assert daemon.json("GET", f"{V}/images/docker.io/library/busybox:latest/json")["Id"] == image["Id"]


# --- containers -----------------------------------------------------------------------------------------
def test_create_start_wait_logs_delete(clean):
    container_id = clean.create(["sh", "-c", "echo out; echo err >&2; exit 7"], name="lifecycle")
    details = clean.json("GET", f"{V}/containers/lifecycle/json")
    assert details["Id"] == container_id and details["Name"] == "/lifecycle"
    assert details["Config"]["Tty"] is False and details["HostConfig"]["LogConfig"]["Type"] == "json-file"
    assert details["State"]["Status"] == "created"
    [summary] = clean.json("GET", f"{V}/containers/json?all=1")
    assert summary["Names"] == ["/lifecycle"] and summary["State"] == "created"
    assert clean.json("GET", f"{V}/containers/json") == []  # without all=1: running ones only

    waiter = clean.connection()
    waiter.request("POST", f"{V}/containers/{container_id}/wait?condition=next-exit")
    response = waiter.getresponse()  # returns with the headers: the container has not even started
    assert response.status == 200
    assert clean.json("GET", f"{V}/containers/{container_id}/json")["State"]["Status"] == "created"
    status, _, _ = clean.request("POST", f"{V}/containers/{container_id}/start")
    assert status == 204
    assert json.loads(response.read()) == {"StatusCode": 7, "Error": None}
    waiter.close()

    details = clean.json("GET", f"{V}/containers/{container_id}/json")
    assert details["State"]["Status"] == "exited" and details["State"]["ExitCode"] == 7
    status, headers, body = clean.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&stderr=1")
    assert status == 200 and headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert sorted(demultiplex(body)) == [(1, b"out\n"), (2, b"err\n")]
    _, _, body = clean.request("GET", f"{V}/containers/{container_id}/logs?stderr=1")
    assert demultiplex(body) == [(2, b"err\n")]

    status, _, _ = clean.request("DELETE", f"{V}/containers/lifecycle")
    assert status == 204
    assert clean.request("GET", f"{V}/containers/{container_id}/json")[0] == 404
    assert not (clean.data_root / "daemon" / "containers" / container_id).exists()


def test_name_in_use_is_409(clean):
    clean.create(["true"], name="taken")
    status, _, body = clean.request("POST", f"{V}/containers/create?name=taken", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 409 and 'The container name "/taken" is already in use' in json.loads(body)["message"]


def test_logs_tail_and_follow_ends_when_the_container_exits(clean):
    container_id = clean.create(["sh", "-c", "echo one; echo two; sleep 1; echo three"])
    clean.request("POST", f"{V}/containers/{container_id}/start")
    status, _, body = clean.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&follow=1")
    assert status == 200
    assert demultiplex(body) == [(1, b"one\n"), (1, b"two\n"), (1, b"three\n")]
    assert clean.json("GET", f"{V}/containers/{container_id}/json")["State"]["Status"] == "exited"
    _, _, body = clean.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&tail=1")
    assert demultiplex(body) == [(1, b"three\n")]


def test_stop_kill_and_remove_a_running_container(clean):
    container_id = clean.create(["sleep", "100"], name="sleeper")
    assert clean.request("POST", f"{V}/containers/sleeper/start")[0] == 204
    assert clean.request("POST", f"{V}/containers/sleeper/start")[0] == 304  # already running
    details = clean.json("GET", f"{V}/containers/sleeper/json")
    assert details["State"]["Running"] is True and details["State"]["Pid"] > 0
    assert Path(f"/proc/{details['State']['Pid']}").exists()

    status, _, body = clean.request("DELETE", f"{V}/containers/sleeper")
    assert status == 409 and "container is running" in json.loads(body)["message"]
    # As PID 1, sleep has no SIGTERM handler, so the kernel ignores SIGTERM: after the grace
    # period stop sends SIGKILL (128 + 9). Docker behaves the same way.
    assert clean.request("POST", f"{V}/containers/sleeper/stop?t=1")[0] == 204
    state = clean.json("GET", f"{V}/containers/{container_id}/json")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert clean.request("POST", f"{V}/containers/sleeper/stop")[0] == 304
    assert clean.request("POST", f"{V}/containers/sleeper/kill")[0] == 409  # not running

    assert clean.request("POST", f"{V}/containers/sleeper/start")[0] == 204  # an exited container starts again
    assert clean.request("POST", f"{V}/containers/sleeper/kill?signal=KILL")[0] == 204
    assert clean.json("POST", f"{V}/containers/sleeper/wait")["StatusCode"] == 137
    assert clean.request("DELETE", f"{V}/containers/sleeper")[0] == 204


def test_force_remove_kills_a_running_container(clean):
    container_id = clean.create(["sleep", "100"])
    clean.request("POST", f"{V}/containers/{container_id}/start")
    pid = clean.json("GET", f"{V}/containers/{container_id}/json")["State"]["Pid"]
    assert clean.request("DELETE", f"{V}/containers/{container_id}?force=1")[0] == 204
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert clean.leaks() == []


def test_foreground_run_with_attach_hijack_and_auto_remove(clean):
    """``docker run --rm busybox echo hi``: create, attach (101), wait?condition=removed, start."""
    container_id = clean.create(["sh", "-c", "echo hi; echo oops >&2; exit 3"], HostConfig={"AutoRemove": True})
    attach = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    attach.settimeout(30)
    attach.connect(clean.socket_path)
    attach.sendall(f"POST {V}/containers/{container_id}/attach?stderr=1&stdout=1&stream=1 HTTP/1.1\r\n"
                   "Host: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                   "Content-Type: text/plain\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += attach.recv(1)
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n") and b"Upgrade: tcp" in head
    attach.shutdown(socket.SHUT_WR)  # the CLI half-closes at once: that must not end the stream

    waiter = clean.connection()
    waiter.request("POST", f"{V}/containers/{container_id}/wait?condition=removed")
    response = waiter.getresponse()
    assert response.status == 200
    assert clean.request("POST", f"{V}/containers/{container_id}/start")[0] == 204

    stream = b""
    while chunk := attach.recv(65536):  # end-of-file: the daemon closes it after the exit
        stream += chunk
    attach.close()
    assert sorted(demultiplex(stream)) == [(1, b"hi\n"), (2, b"oops\n")]
    assert json.loads(response.read()) == {"StatusCode": 3, "Error": None}
    waiter.close()
    assert clean.request("GET", f"{V}/containers/{container_id}/json")[0] == 404  # removed before the answer


def test_daemon_restart_keeps_containers_running_with_their_logs(clean):
    container_id = clean.create(["sh", "-c", "echo before; trap 'echo bye; exit 0' TERM; "
                                             "while true; do sleep 0.1; done"], name="survivor")
    clean.request("POST", f"{V}/containers/survivor/start")
    pid = clean.json("GET", f"{V}/containers/survivor/json")["State"]["Pid"]
    deadline = time.monotonic() + 10
    while b"before" not in clean.request("GET", f"{V}/containers/survivor/logs?stdout=1")[2]:
        assert time.monotonic() < deadline, "the container printed nothing"
        time.sleep(0.05)

    old_daemon = clean.pid
    clean.restart()
    assert clean.pid != old_daemon
    assert Path(f"/proc/{pid}").exists(), "the daemon's restart killed the container"
    [summary] = clean.json("GET", f"{V}/containers/json")
    assert summary["Id"] == container_id and summary["State"] == "running"
    assert clean.request("POST", f"{V}/containers/survivor/stop?t=10")[0] == 204
    state = clean.json("GET", f"{V}/containers/survivor/json")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    _, _, body = clean.request("GET", f"{V}/containers/survivor/logs?stdout=1")
    assert demultiplex(body) == [(1, b"before\n"), (1, b"bye\n")]  # written across the restart


def test_state_of_a_stopped_container_survives_a_restart(clean):
    container_id = clean.create(["sh", "-c", "echo done; exit 5"], name="finished")
    clean.request("POST", f"{V}/containers/finished/start")
    assert clean.json("POST", f"{V}/containers/finished/wait")["StatusCode"] == 5
    clean.restart()
    details = clean.json("GET", f"{V}/containers/finished/json")
    assert details["Id"] == container_id and details["State"]["ExitCode"] == 5
    assert details["Config"]["Cmd"] == ["sh", "-c", "echo done; exit 5"]
    _, _, body = clean.request("GET", f"{V}/containers/finished/logs?stdout=1")
    assert demultiplex(body) == [(1, b"done\n")]


@pytest.mark.parametrize("body, field", [
    ({"Image": "busybox", "Cmd": 5}, "Cmd"),
    ({"Image": "busybox", "Cmd": ["echo", 1]}, "Cmd"),
    ({"Image": ["busybox"], "Cmd": ["true"]}, "Image"),
    ({"Image": "busybox", "Cmd": ["true"], "Env": "A=b"}, None),  # a string is allowed, like Cmd's shell form
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": "64m"}}, "HostConfig.Memory"),
    ({"Image": "busybox", "Cmd": ["true"], "HostConfig": []}, "HostConfig"),
])
def test_bad_create_bodies_are_400_naming_the_field(clean, body, field):
    status, headers, data = clean.request("POST", f"{V}/containers/create", body)
    if field is None:
        assert status == 201
        return
    assert status == 400, data
    assert headers["Content-Type"] == "application/json"
    assert field in json.loads(data)["message"]


def test_garbage_on_the_socket_does_not_take_the_daemon_down(daemon):
    for garbage in (b"NOT HTTP AT ALL\r\n\r\n", b"POST /containers/create HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    b"\x00\xff" * 100 + b"\r\n\r\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(daemon.socket_path)
            raw.sendall(garbage)
            answer = raw.recv(4096)
            assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    assert daemon.request("GET", "/_ping")[0] == 200
