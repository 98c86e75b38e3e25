"""teachdock.lab.client_and_daemon.api_tracer against a real teachdockd, with the real docker CLI going through it.

The tracer must be invisible to the client (the output is still "hi", the exit code still 0,
the attach still works after its 101 upgrade) and must record the calls in the order the
CLI made them, with their answers.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from teachdock.lab.client_and_daemon.api_tracer import ApiTracer, traced_env
from teachdock.lab.client_and_daemon.trace_views import timeline, trace_table

from tests.support.daemons import DOCKER, UnixHTTPConnection


pytestmark = [
    pytest.mark.root,
]


def docker(tracer: ApiTracer, *args, tmp_path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = traced_env(tracer)
    env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI (/usr/local/bin/docker or /usr/bin/docker) to trace")
def test_docker_run_through_the_tracer(daemon, tmp_path):
    with ApiTracer(daemon.socket_path, tmp_path) as tracer:
        result = docker(tracer, "run", "--rm", "busybox", "echo", "hi", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hi\n"
        assert tracer.wait_idle()
        calls = tracer.calls()
        socket_path = tracer.socket_path
    order = [calls.index(call) for call in ("POST /containers/create", "POST /containers/{id}/attach",
                                             "POST /containers/{id}/wait", "POST /containers/{id}/start")]
    assert order == sorted(order), calls
    assert calls[0] == "HEAD /_ping"
    entries = {entry.call: entry for entry in tracer.entries}
    create = entries["POST /containers/create"]
    assert create.status == 201 and json.loads(create.request_body)["Cmd"] == ["echo", "hi"]
    attach = entries["POST /containers/{id}/attach"]
    assert attach.status == 101 and attach.upgraded
    assert attach.response_body == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"   # stdout frame: "hi\n"
    wait = entries["POST /containers/{id}/wait"]
    assert wait.status == 200 and json.loads(wait.response_body)["StatusCode"] == 0
    assert wait.finished > entries["POST /containers/{id}/start"].answered   # held until the exit
    assert entries["POST /containers/{id}/start"].status == 204
    assert attach.streamed >= entries["POST /containers/{id}/start"].sent   # output only once it started
    kinds = [(m["entry"].call, m["kind"]) for m in timeline(tracer.entries)]
    assert ("POST /containers/{id}/attach", "stream") in kinds
    assert kinds.index(("POST /containers/{id}/start", "request")) < kinds.index(("POST /containers/{id}/wait", "end"))
    assert "attach" in repr(trace_table(tracer.entries))
    assert not os.path.exists(socket_path) and not os.path.exists(os.path.dirname(socket_path))
    assert daemon.json("GET", "/v1.45/containers/json?all=1") == []   # --rm removed it


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI (/usr/local/bin/docker or /usr/bin/docker) to trace")
def test_missing_image_shows_the_404_and_the_pull(daemon, tmp_path):
    with ApiTracer(daemon.socket_path, tmp_path) as tracer:
        result = docker(tracer, "run", "--rm", "no-such-image-here", "true", tmp_path=tmp_path)
        assert result.returncode != 0
        assert tracer.wait_idle()
    create, pull = tracer.entries[1], tracer.entries[2]
    assert (create.call, create.status) == ("POST /containers/create", 404)
    assert create.meaning == "create refused: no such image here"
    assert pull.call == "POST /images/create" and "fromImage=" in pull.target


@pytest.mark.skipif(DOCKER is None, reason="no docker CLI (/usr/local/bin/docker or /usr/bin/docker) to trace")
def test_detached_run_drops_its_wait_and_the_trace_still_ends(daemon, tmp_path):
    with ApiTracer(daemon.socket_path, tmp_path) as tracer:
        result = docker(tracer, "run", "-d", "busybox", "sleep", "1", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert tracer.wait_idle(timeout=3)   # the dropped wait ends with its connection
    assert tracer.calls() == ["HEAD /_ping", "POST /containers/create", "POST /containers/{id}/wait",
                              "POST /containers/{id}/start"]
    wait = tracer.entries[2]
    assert "condition=next-exit" in wait.target and wait.finished is not None
    daemon.request("DELETE", f"/v1.45/containers/{result.stdout.strip()}?force=1")


def test_keep_alive_requests_and_chunked_answers(daemon, tmp_path):
    """Two requests on one connection, one of them streamed with chunks (logs of a container)."""
    container = daemon.create(["sh", "-c", "echo one; echo two"])
    daemon.json("POST", f"/v1.45/containers/{container}/start", expect=204)
    daemon.json("POST", f"/v1.45/containers/{container}/wait")
    with ApiTracer(f"unix://{daemon.socket_path}", tmp_path) as tracer:
        connection = UnixHTTPConnection(tracer.socket_path)
        connection.request("GET", "/_ping")
        assert connection.getresponse().read() == b"OK"
        connection.request("GET", f"/v1.45/containers/{container}/logs?stdout=1")
        response = connection.getresponse()
        logs = response.read()
        connection.close()
        assert tracer.wait_idle()
    assert b"one\n" in logs and b"two\n" in logs
    first, second = tracer.entries
    assert first.connection == second.connection
    assert (first.method, first.path, first.status, first.response_body) == ("GET", "/_ping", 200, b"OK")
    assert second.status == 200 and second.response_body == logs and second.finished is not None
    daemon.request("DELETE", f"/v1.45/containers/{container}")


def test_a_missing_daemon_socket_is_a_clear_error(tmp_path):
    from teachdock.errors import NotFound

    with pytest.raises(NotFound, match="no daemon socket"):
        ApiTracer(str(tmp_path / "nothing.sock"))
