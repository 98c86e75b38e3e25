"""dockerd's checkpoint API on teachdockd, and what the teachdock CLI and Client make of it.

On this host criu check fails: every checkpoint and restore says so in criu's own words (501)
and leaves nothing behind. The refusals that come before criu (a stopped container, a
terminal, a bad name, a missing checkpoint) are dockerd's and are checked everywhere. The
real move of a counter runs in the VM (tests/vm/test_criu_vm.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from teachdock.client import APIError, Client
from teachdock.runtime.checkpoint import why_criu_cannot_run

pytestmark = [pytest.mark.root]

V = "/v1.45"
REASON = why_criu_cannot_run()
needs_a_host_criu_rejects = pytest.mark.skipif(
    REASON is None, reason="criu check passes here: the refusal cannot be shown (the VM test covers the move)")


def checkpoints_dir(daemon, container_id: str):
    return daemon.data_root / "daemon" / "containers" / container_id / "checkpoints"


def post_checkpoint(daemon, container: str, body: dict):
    status, _, answer = daemon.request("POST", f"{V}/containers/{container}/checkpoints", body=body)
    return status, json.loads(answer or b"{}").get("message", "")


def test_a_stopped_container_cannot_be_checkpointed(daemon):
    container = daemon.create(["true"], name="stopped-one")
    status, message = post_checkpoint(daemon, container, {"CheckpointID": "cp1"})
    assert (status, message) == (409, "Container stopped-one not running")
    assert not checkpoints_dir(daemon, container).exists()
    daemon.request("DELETE", f"{V}/containers/{container}")


@needs_a_host_criu_rejects
def test_a_running_container_is_refused_with_criu_checks_words_and_keeps_running(daemon):
    container = daemon.create(["sleep", "300"], name="sleeper", HostConfig={"NetworkMode": "none"})
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    status, message = post_checkpoint(daemon, container, {"CheckpointID": "cp1"})
    assert status == 501
    assert message == f"Cannot checkpoint container sleeper: {REASON}"
    assert not checkpoints_dir(daemon, container).exists()
    assert daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Running"] is True
    assert daemon.json("GET", f"{V}/containers/{container}/checkpoints") == []
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_bad_names_terminals_and_unknown_fields_are_refused_before_criu(daemon):
    container = daemon.create(["sleep", "300"], name="named")
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    status, message = post_checkpoint(daemon, container, {"CheckpointID": "../escape"})
    assert (status, message) == (400, "Invalid checkpoint ID (../escape), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    status, message = post_checkpoint(daemon, container, {"CheckpointID": "cp", "Leave": True})
    assert status == 400 and "Leave" in message
    status, message = post_checkpoint(daemon, container, {"CheckpointID": "cp", "CheckpointDir": "relative/dir"})
    assert status == 400 and "absolute path" in message
    terminal = daemon.create(["sleep", "300"], Tty=True)
    assert daemon.request("POST", f"{V}/containers/{terminal}/start")[0] == 204
    status, message = post_checkpoint(daemon, terminal, {"CheckpointID": "cp"})
    assert (status, message) == (400, "checkpoint not support on containers with tty")
    for made in (container, terminal):
        assert not checkpoints_dir(daemon, made).exists()
        daemon.request("DELETE", f"{V}/containers/{made}?force=1")


def test_a_missing_checkpoint_is_404_for_rm_and_for_start(daemon):
    container = daemon.create(["true"], name="fresh")
    status, _, body = daemon.request("DELETE", f"{V}/containers/{container}/checkpoints/nope")
    assert status == 404 and json.loads(body)["message"] == "checkpoint nope does not exist for container fresh"
    status, _, body = daemon.request("POST", f"{V}/containers/{container}/start?checkpoint=nope")
    assert status == 404 and json.loads(body)["message"] == "checkpoint nope does not exist for container fresh"
    assert daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Status"] == "created"
    daemon.request("DELETE", f"{V}/containers/{container}")


def test_the_client_and_the_cli_pass_the_refusals_on(daemon):
    client = Client(f"unix://{daemon.socket_path}")
    container = client.create("busybox", ["true"], name="cli-stopped")
    with pytest.raises(APIError, match="Container cli-stopped not running"):
        client.checkpoint_create(container, "cp1")
    assert client.checkpoints(container) == []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "teachdock.cli", "-H", f"unix://{daemon.socket_path}",
                           "checkpoint", "create", "cli-stopped", "cp1"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode != 0 and "Container cli-stopped not running" in done.stderr
    done = subprocess.run([sys.executable, "-m", "teachdock.cli", "-H", f"unix://{daemon.socket_path}",
                           "checkpoint", "ls", "cli-stopped"], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "CHECKPOINT NAME\n")
    done = subprocess.run([sys.executable, "-m", "teachdock.cli", "-H", f"unix://{daemon.socket_path}",
                           "start", "--checkpoint", "gone", "cli-stopped"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode != 0 and "checkpoint gone does not exist for container cli-stopped" in done.stderr
    client.remove(container)


def test_nothing_is_left_behind(daemon):
    assert daemon.leaks() == []
