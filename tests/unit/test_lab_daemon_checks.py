"""The judges of teachdock.lab.client_and_daemon.checks: right answers pass, each likely mistake gets its
own hint, placeholders stay grey. Pure functions: no daemon, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachdock.lab.client_and_daemon.checks import (check_log_file, check_name_conflict, judge_call_count,
                                                    judge_docker_host, judge_log_file, judge_name_conflict)
from tests.support.korean import reads_korean

RUN_CALLS = [("HEAD", "/_ping", 200), ("POST", "/containers/create", 201), ("POST", "/containers/{id}/attach", 101),
             ("POST", "/containers/{id}/wait", 200), ("POST", "/containers/{id}/start", 204)]
RUN = ["HEAD /_ping", "POST /containers/create", "POST /containers/{id}/attach", "POST /containers/{id}/wait",
       "POST /containers/{id}/start"]
DETACHED = ["HEAD /_ping", "POST /containers/create", "POST /containers/{id}/wait", "POST /containers/{id}/start"]
ID = "a" * 64
OTHER = "b" * 64


# ---- exercise 1 ---------------------------------------------------------------------------------

TAKEN = 'Conflict. The container name "/taken" is already in use by container "abc".'


@pytest.mark.parametrize("answer", [409, "409", " 409 "])
def test_name_conflict_right(answer):
    result = judge_name_conflict(answer, 409, TAKEN)
    assert result.passed and "409 Conflict" in result.message and "already in use" in result.message


@pytest.mark.parametrize("answer, hint", [
    (201, "No second container is made"),
    (200, "No second container is made"),
    (404, "the opposite"),
    (400, "well-formed"),
    (500, "client mistakes are 4xx"),
    (403, "The socket's file mode"),
    (422, "Which 4xx"),
    ("conflict", "status code"),
    (42, "status code"),
    (True, "status code"),
])
def test_name_conflict_mistakes_get_their_hint(answer, hint):
    result = judge_name_conflict(answer, 409, TAKEN)
    assert not result.passed and result.answered and hint in result.message


def test_name_conflict_follows_what_the_daemon_said():
    # a daemon that answered otherwise makes the truth, not a fixed 409
    assert judge_name_conflict(201, 201).passed
    result = judge_name_conflict(409, 201)
    assert not result.passed and "answered 201" in result.message
    assert not judge_name_conflict(..., 409).answered


def test_check_name_conflict_without_a_daemon_explains(tmp_path):
    class Gone:
        name, socket_path = "a", str(tmp_path / "nobody.sock")

    result = check_name_conflict(409, Gone(), "taken")
    assert not result.passed and "is it still running?" in result.message
    assert not check_name_conflict(..., Gone(), "taken").answered


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


def test_check_call_count_without_root_says_root_is_needed(monkeypatch):
    from teachdock.lab.client_and_daemon import checks

    monkeypatch.setattr(checks, "is_root", lambda: False)
    result = checks.check_call_count(4, "unix:///nowhere.sock", ["run", "-d", "busybox", "sleep", "1"])
    assert not result.passed and not result.answered and "needs root" in result.message


# ---- in Korean (TEACHDOCK_LANG=ko) ----------------------------------------------------------------

def test_the_judges_speak_korean_right_and_wrong(korean):
    command = "docker run -d busybox sleep 1"
    results = [judge_name_conflict(409, 409, TAKEN), judge_name_conflict(404, 409, TAKEN),
               judge_name_conflict(500, 409, TAKEN),
               judge_call_count(4, DETACHED, command), judge_call_count(1, DETACHED, command),
               judge_call_count(3, DETACHED, command),
               judge_host(f"unix://{B}"), judge_host(B), judge_host(f"unix://{A}"),
               judge_log(LOG), judge_log(f"{ROOT}/daemon/containers/{ID}"),
               judge_log(f"/var/lib/docker/containers/{ID}/{ID}-json.log")]
    assert [result.passed for result in results] == [True, False, False] * 4
    for result in results:
        assert reads_korean(result.message), result.message


def test_check_call_count_without_root_says_so_in_korean(korean, monkeypatch):
    from teachdock.lab.client_and_daemon import checks

    monkeypatch.setattr(checks, "is_root", lambda: False)
    result = checks.check_call_count(4, "unix:///nowhere.sock", ["run", "-d", "busybox", "sleep", "1"])
    assert not result.answered and "root" in result.message and reads_korean(result.message)
