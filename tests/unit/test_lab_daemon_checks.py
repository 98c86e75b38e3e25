"""The judges of teachdock.lab.client_and_daemon.checks: right answers pass, each likely mistake gets its
own hint, placeholders stay grey. Pure functions: no daemon, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachdock.lab.client_and_daemon.checks import (check_create_call, check_log_file, judge_call_count, judge_create_call,
                                         judge_docker_host, judge_log_file)

RUN_CALLS = [("HEAD", "/_ping", 200), ("POST", "/containers/create", 201), ("POST", "/containers/{id}/attach", 101),
             ("POST", "/containers/{id}/wait", 200), ("POST", "/containers/{id}/start", 204)]
RUN = ["HEAD /_ping", "POST /containers/create", "POST /containers/{id}/attach", "POST /containers/{id}/wait",
       "POST /containers/{id}/start"]
DETACHED = ["HEAD /_ping", "POST /containers/create", "POST /containers/{id}/wait", "POST /containers/{id}/start"]
ID = "a" * 64
OTHER = "b" * 64


# ---- exercise 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [("POST", "/containers/create"), "POST /containers/create",
                                    "post /v1.45/containers/create?name=x", ["POST", "/v1.50/containers/create/"],
                                    "POST containers/create"])
def test_create_call_right_in_any_spelling(answer):
    result = judge_create_call(answer, RUN_CALLS)
    assert result.passed and "201" in result.message


@pytest.mark.parametrize("answer, hint", [
    (("PUT", "/containers/create"), "uses POST for every action"),
    (("POST", "/containers/{id}/start"), "already exists"),
    (("POST", "/images/create"), "pulls an image"),
    (("GET", "/containers/json"), "lists containers"),
    ("/containers/create", "Which method"),
    ("POST", "Now the path"),
    (42, "Answer with a method and a path"),
    (("DELETE", "/containers/x"), "answered 201 Created"),
])
def test_create_call_mistakes_get_their_hint(answer, hint):
    result = judge_create_call(answer, RUN_CALLS)
    assert not result.passed and result.answered and hint in result.message


def test_create_call_placeholder_and_empty_trace():
    assert not judge_create_call(..., RUN_CALLS).answered
    assert "run the traced" in judge_create_call("POST /containers/create", []).message


def test_check_create_call_reads_tracer_entries():
    class Entry:
        def __init__(self, method, endpoint, status):
            self.method, self.endpoint, self.status = method, endpoint, status

    entries = [Entry(*call) for call in RUN_CALLS]
    assert check_create_call(("POST", "/containers/create"), entries).passed
    assert not check_create_call(("POST", "/containers/{id}/start"), entries).passed


# ---- exercise 2 ---------------------------------------------------------------------------------

def test_call_count_right():
    result = judge_call_count(4, DETACHED, "docker run -d busybox sleep 1")
    assert result.passed and "POST /containers/{id}/wait" in result.message
    assert judge_call_count("5", RUN).passed


@pytest.mark.parametrize("answer, calls, command, hint", [
    (1, DETACHED, "docker run -d busybox sleep 1", "not one call"),
    (8, DETACHED, "docker run -d busybox sleep 1", "each answer as a call"),
    (3, DETACHED, "docker run -d busybox sleep 1", "HEAD /_ping"),
    (5, DETACHED, "docker run -d busybox sleep 1", "does not attach"),
    (6, RUN, "docker run --rm busybox echo hi", "no DELETE"),
    (9, DETACHED, "docker run -d busybox sleep 1", "Too many"),
    (2, RUN, "docker run --rm busybox echo hi", "Too few"),
    ("five", RUN, "docker run", "whole number"),
    (True, RUN, "docker run", "whole number"),
])
def test_call_count_mistakes_get_their_hint(answer, calls, command, hint):
    result = judge_call_count(answer, calls, command)
    assert not result.passed and hint in result.message


def test_call_count_placeholder():
    assert not judge_call_count(..., RUN).answered


# ---- exercise 3 ---------------------------------------------------------------------------------

B = "/tmp/td07-x/b/teachdock.sock"
A = "/tmp/td07-x/a/teachdock.sock"


def judge_host(answer):
    return judge_docker_host(answer, B, A, data_root="/tmp/td07-x/b/data", exec_root="/tmp/td07-x/b/exec")


def test_docker_host_right():
    assert judge_host(f"unix://{B}").passed
    assert judge_host(f"  unix://{B}\n").passed


@pytest.mark.parametrize("answer, hint", [
    (B, "put unix:// in front"),
    (Path(B), "put unix:// in front"),
    ("unix://tmp/td07-x/b/teachdock.sock", "three slashes"),
    ("tcp://127.0.0.1:2375", "TCP port"),
    (f"unix://{A}", "*first* daemon"),
    ("unix:///run/teachdock/teachdock.sock", "is the default"),
    ("unix:///tmp/td07-x/b/data", "data root"),
    ("unix:///tmp/td07-x/b/exec/", "exec root"),
    ("ssh:///tmp/td07-x/b/teachdock.sock", "not a scheme"),
    ("unix:///tmp/elsewhere.sock", "is not daemon b's socket"),
    (2375, "Answer with a string"),
])
def test_docker_host_mistakes_get_their_hint(answer, hint):
    result = judge_host(answer)
    assert not result.passed and hint in result.message


# ---- exercise 4 ---------------------------------------------------------------------------------

ROOT = "/tmp/td07-x/b/data"
LOG = f"{ROOT}/daemon/containers/{ID}/{ID}-json.log"


def judge_log(answer):
    return judge_log_file(answer, ID, ROOT, "/tmp/td07-x/b/exec", [ID, OTHER])


def test_log_file_right():
    assert judge_log(LOG).passed
    assert judge_log(Path(LOG)).passed


@pytest.mark.parametrize("answer, hint", [
    (f"daemon/containers/{ID}/{ID}-json.log", "whole path"),
    (f"/var/lib/docker/containers/{ID}/{ID}-json.log", "Docker's dockerd"),
    (f"{ROOT}/daemon/containers/{ID}", "one of the files in it"),
    (f"{ROOT}/daemon/containers/{ID}/container.json", "record of the container"),
    (f"{ROOT}/daemon/containers/{ID}/log.txt", "Right directory, wrong file"),
    (f"{ROOT}/daemon/containers/{OTHER}/{OTHER}-json.log", "another container"),
    (f"/tmp/td07-x/b/exec/runtime/{ID}/state.json", "exec root"),
    (f"{ROOT}/daemon/containers/{ID[:12]}/{ID[:12]}-json.log", "full 64-digit id"),
    (f"{ROOT}/containers/{ID}/upper", "root filesystems"),
    ("/etc/passwd", "Start from the daemon's data root"),
    ("", "Answer with a path"),
])
def test_log_file_mistakes_get_their_hint(answer, hint):
    result = judge_log(answer)
    assert not result.passed and hint in result.message


def test_check_log_file_reads_the_file(tmp_path):
    class Daemon:
        data_root, exec_root = tmp_path / "data", tmp_path / "exec"

    directory = Daemon.data_root / "daemon" / "containers" / ID
    directory.mkdir(parents=True)
    log = directory / f"{ID}-json.log"
    assert "not there" in check_log_file(str(log), ID, Daemon()).message
    log.write_text('{"log": "hello from b\\n", "stream": "stdout", "time": "2026-01-01T00:00:00Z"}\n')
    result = check_log_file(str(log), ID, Daemon(), expected_text="hello from b")
    assert result.passed and "hello from b" in result.message
    assert not check_log_file(str(log), ID, Daemon(), expected_text="something else").passed
    assert not check_log_file(..., ID, Daemon()).answered
