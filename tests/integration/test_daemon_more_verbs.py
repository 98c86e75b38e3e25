"""restart, rename and top at the HTTP level: their answers and refusals."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.root]

V = "/v1.45"


def test_rename_keeps_the_id_and_refuses_taken_or_empty_names(daemon):
    first = daemon.create(["true"], name="first-name")
    daemon.create(["true"], name="taken")
    assert daemon.request("POST", f"{V}/containers/first-name/rename?name=second-name")[0] == 204
    assert daemon.json("GET", f"{V}/containers/second-name/json")["Id"] == first
    assert daemon.request("GET", f"{V}/containers/first-name/json")[0] == 404
    status, _, body = daemon.request("POST", f"{V}/containers/second-name/rename?name=taken")
    assert status == 409 and b"already in use" in body
    assert daemon.request("POST", f"{V}/containers/second-name/rename?name=")[0] == 400
    assert daemon.request("POST", f"{V}/containers/second-name/rename?name=bad/name")[0] == 400
    daemon.remove_all()


def test_top_lists_the_containers_processes_by_host_pid(daemon):
    container = daemon.create(["sh", "-c", "sleep 300 & exec sleep 301"])
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    pid = daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Pid"]
    listing = daemon.json("GET", f"{V}/containers/{container}/top?ps_args=-o%20pid,args")
    assert listing["Titles"] == ["PID", "COMMAND"]
    rows = listing["Processes"]
    assert [pid_text for pid_text, _ in rows][0] == str(pid)
    assert sorted(command for _, command in rows) == ["sleep 300", "sleep 301"]
    assert all(os.path.exists(f"/proc/{pid_text}") for pid_text, _ in rows)  # host PIDs
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_top_of_a_stopped_container_is_409(daemon):
    container = daemon.create(["true"])
    status, _, body = daemon.request("GET", f"{V}/containers/{container}/top")
    assert status == 409 and b"is not running" in body
    daemon.request("DELETE", f"{V}/containers/{container}")


def test_restart_runs_the_program_again(daemon):
    container = daemon.create(["sh", "-c", "echo ran; sleep 300"])
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    first_pid = daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Pid"]
    assert daemon.request("POST", f"{V}/containers/{container}/restart?t=0")[0] == 204
    state = daemon.json("GET", f"{V}/containers/{container}/json")["State"]
    assert state["Running"] is True and state["Pid"] != first_pid
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_pause_and_unpause(daemon):
    container = daemon.create(["sh", "-c", "while true; do :; done"])
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{container}/pause")[0] == 204
    state = daemon.json("GET", f"{V}/containers/{container}/json")["State"]
    assert (state["Status"], state["Paused"], state["Running"]) == ("paused", True, True)
    [summary] = daemon.json("GET", f"{V}/containers/json")
    assert summary["State"] == "paused" and summary["Status"].endswith("(Paused)")
    assert daemon.request("POST", f"{V}/containers/{container}/pause")[0] == 409  # already paused
    status, _, body = daemon.request("POST", f"{V}/containers/{container}/exec", {"Cmd": ["true"]})
    assert status == 409 and b"unpause the container before exec" in body
    assert daemon.request("POST", f"{V}/containers/{container}/unpause")[0] == 204
    assert daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Status"] == "running"
    assert daemon.request("POST", f"{V}/containers/{container}/unpause")[0] == 409  # not paused
    assert daemon.request("POST", f"{V}/containers/{container}/pause")[0] == 204
    assert daemon.request("DELETE", f"{V}/containers/{container}?force=1")[0] == 204  # a paused one goes too


def test_a_paused_container_survives_a_daemon_restart_paused(daemon):
    container = daemon.create(["sleep", "300"])
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{container}/pause")[0] == 204
    daemon.restart()
    state = daemon.json("GET", f"{V}/containers/{container}/json")["State"]
    assert (state["Status"], state["Running"]) == ("paused", True)
    assert daemon.request("POST", f"{V}/containers/{container}/unpause")[0] == 204
    assert daemon.request("POST", f"{V}/containers/{container}/stop?t=0")[0] == 204
    assert daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Status"] == "exited"
    daemon.request("DELETE", f"{V}/containers/{container}")
