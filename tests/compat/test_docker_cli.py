"""The real docker CLI, unchanged, against teachdockd: ``DOCKER_HOST=unix://<socket> docker ...``.

Each scenario runs the CLI as a user would type it and asserts on what the user sees:
its output and its exit code. The daemon is a subprocess of its own (tests/support/
daemons.py) with busybox bootstrapped into its data root, so no pull is needed.
``DOCKER_BUILDKIT=0`` and ``DOCKER_CLI_HINTS=false`` keep the CLI on the legacy paths and
quiet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from teachdock.image.images import Images
from teachdock.image.registry import push

from tests.support.daemons import DOCKER, docker_cli
from tests.support.registry import REGISTRY_BINARY, local_registry


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed (/usr/local/bin/docker or /usr/bin/docker): "
                                              "it is the client under test"),
]


@pytest.fixture
def docker(daemon, tmp_path):
    """``docker(*args)`` -> CompletedProcess, talking to our daemon only (own config dir, no hints)."""
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()


def test_docker_version_shows_our_engine(docker):
    result = docker("version")
    assert result.returncode == 0, result.stderr
    assert "Server: teachdock Engine" in result.stdout
    assert re.search(r"API version: +1\.45 \(minimum version 1\.24\)", result.stdout)  # the Server block
    assert re.search(r"API version: +1\.45 \(downgraded from", result.stdout)  # the CLI negotiated down


def test_docker_info(docker):
    result = docker("info", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["OSType"] == "linux" and info["LoggingDriver"] == "json-file"
    assert info["Images"] == 1 and info["Swarm"]["LocalNodeState"] == "inactive"


def test_docker_images_lists_busybox(docker):
    result = docker("images")
    assert result.returncode == 0, result.stderr
    [header, row] = result.stdout.splitlines()
    assert header.split()[:2] == ["REPOSITORY", "TAG"]
    assert row.split()[:2] == ["busybox", "latest"]


def test_docker_run_rm_prints_hi_and_leaves_nothing(docker, daemon):
    result = docker("run", "--rm", "busybox", "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")
    assert docker("ps", "-a", "-q").stdout == ""  # --rm removed it
    assert daemon.leaks() == []


def test_docker_run_exit_code_is_the_containers(docker):
    result = docker("run", "--name", "three", "busybox", "sh", "-c", "echo to-stderr >&2; exit 3")
    assert result.returncode == 3
    assert result.stderr == "to-stderr\n"
    listing = docker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("three Exited (3) ")


def test_docker_run_i_pipes_stdin_into_the_container(docker):
    """``echo data | docker run -i busybox cat``: the CLI sends the input on the attach socket
    before it starts the container, then half-closes; that end-of-file closes cat's stdin."""
    result = docker("run", "-i", "--rm", "busybox", "cat", input="data\n")
    assert (result.returncode, result.stdout) == (0, "data\n")
    big = "x" * 300_000 + "\n"  # more than a pipe holds: the daemon must not lose or block on it
    result = docker("run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; exit 4", input=big)
    assert (result.returncode, result.stdout.strip()) == (4, str(len(big)))
    empty = docker("run", "-i", "--rm", "busybox", "cat", input="")
    assert (empty.returncode, empty.stdout) == (0, "")


def test_docker_ps_a_logs_and_rm(docker):
    created = docker("run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo one; echo two")
    assert created.returncode == 0, created.stderr
    container_id = created.stdout.strip()
    assert len(container_id) == 64
    follow = docker("logs", "-f", "bg")  # ends when the container exits
    assert (follow.returncode, follow.stdout) == (0, "one\ntwo\n")
    assert docker("logs", "--tail", "1", "bg").stdout == "two\n"
    listing = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Command}}")
    # dockerd joins Path and Args with spaces, no shell quoting (daemon/list.go)
    assert listing.stdout.splitlines() == [f'{container_id} bg busybox "sh -c \'echo one; echo two\'"']  # quoted as dockerd
    assert docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "bg").stdout == "exited 0\n"
    removed = docker("rm", "bg")
    assert (removed.returncode, removed.stdout) == (0, "bg\n")
    missing = docker("rm", "bg")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error response from daemon: No such container: bg"


def test_docker_stop_and_kill(docker):
    assert docker("run", "-d", "--name", "napper", "busybox", "sleep", "100").returncode == 0
    assert docker("ps", "--format", "{{.Names}}").stdout == "napper\n"
    stopped = docker("stop", "-t", "1", "napper")
    assert (stopped.returncode, stopped.stdout) == (0, "napper\n")
    assert docker("inspect", "-f", "{{.State.ExitCode}}", "napper").stdout == "137\n"
    assert docker("start", "napper").returncode == 0
    killed = docker("kill", "napper")
    assert (killed.returncode, killed.stdout) == (0, "napper\n")
    assert docker("wait", "napper").stdout == "137\n"
    assert docker("rm", "-f", "napper").returncode == 0


def test_unknown_image_makes_the_cli_try_a_pull(docker):
    result = docker("run", "--rm", "nosuchimage-teachdock", "true")
    assert result.returncode == 125
    assert "Unable to find image 'nosuchimage-teachdock:latest' locally" in result.stderr


@pytest.mark.skipif(REGISTRY_BINARY is None,
                    reason="needs Debian's docker-registry (apt-get install docker-registry) as a local registry")
def test_docker_run_pulls_a_missing_image_from_a_registry(docker, daemon, tmp_path):
    """``docker run`` of an image the daemon lacks: create answers 404 "No such image", the
    CLI pulls (``POST /images/create``, a JSON progress stream), then creates again."""
    with local_registry(tmp_path) as registry:
        source = Images(tmp_path / "source")  # another engine's store, the image's origin
        source.bootstrap_busybox()
        name = f"{registry.host}/course/busybox:v1"
        source.tag("busybox:latest", name)
        push(source.store, name)

        result = docker("run", "--rm", name, "echo", "pulled")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "pulled\n"
        assert f"Unable to find image '{name}' locally" in result.stderr
        assert "Status: Downloaded newer image for " + name in result.stderr

        again = docker("pull", name)
        assert again.returncode == 0, again.stderr
        assert f"Status: Image is up to date for {name}" in again.stdout
        tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert sorted(tags) == sorted(["busybox:latest", name])

        # The bootstrap is deterministic: the pulled image *is* busybox:latest (same id), so
        # rmi only takes the name away, as Docker does for an image with two tags.
        assert len(set(docker("images", "-q").stdout.split())) == 1
        removed = docker("rmi", name)
        # Its last tag gone, the repository's digest name goes too: dockerd prints both lines.
        assert removed.returncode == 0
        assert removed.stdout.splitlines()[0] == f"Untagged: {name}"
        assert removed.stdout.splitlines()[1].startswith(f"Untagged: {registry.host}/course/busybox@sha256:")
        assert name not in docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()

        # A repository the registry lacks: an HTTP error before any progress, as dockerd answers
        missing = docker("pull", f"{registry.host}/course/nothing:v1")
        assert missing.returncode == 1
        assert missing.stderr.startswith("Error response from daemon: "), missing.stderr
        assert "Pulling from" not in missing.stdout


def test_docker_tag_and_rmi_refused_while_a_container_uses_it(docker):
    assert docker("tag", "busybox", "course/box:v1").returncode == 0
    assert "course/box:v1" in docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert docker("create", "--name", "holder", "course/box:v1", "true").returncode == 0
    untag = docker("rmi", "course/box:v1")  # busybox:latest still names it: only the tag goes
    assert (untag.returncode, untag.stdout) == (0, "Untagged: course/box:v1\n")
    refused = docker("rmi", "busybox")
    assert refused.returncode == 1
    assert "image" in refused.stderr and "is in use by" in refused.stderr
    assert docker("rm", "holder").returncode == 0


def test_docker_run_flags_reach_the_container(docker):
    """-e, -w, -u, --hostname, --entrypoint: the process sees what the user asked for."""
    result = docker("run", "--rm", "-e", "GREETING=hello", "-w", "/tmp", "-u", "1000:1000", "--hostname", "box1",
                    "busybox", "sh", "-c", 'echo "$GREETING $(pwd) $(id -u):$(id -g) $(hostname)"')
    assert (result.returncode, result.stdout) == (0, "hello /tmp 1000:1000 box1\n"), result.stderr
    entry = docker("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert (entry.returncode, entry.stdout) == (0, "via entrypoint\n"), entry.stderr


def test_docker_run_resource_limits_land_in_the_cgroup(docker, daemon):
    """-m, --cpus, --pids-limit become the container's cgroup limits (read from the host)."""
    result = docker("run", "-d", "--name", "limited", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
                    "busybox", "sleep", "100")
    assert result.returncode == 0, result.stderr
    container_id = result.stdout.strip()
    version = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    base = Path("/sys/fs/cgroup")
    if version == "v1":
        memory = (base / "memory" / daemon.cgroup_parent / container_id / "memory.limit_in_bytes").read_text()
        quota = (base / "cpu" / daemon.cgroup_parent / container_id / "cpu.cfs_quota_us").read_text()
        pids = (base / "pids" / daemon.cgroup_parent / container_id / "pids.max").read_text()
        assert (int(memory), int(quota), pids.strip()) == (64 * 1024 * 1024, 50000, "20")
    else:
        directory = base / daemon.cgroup_parent / container_id
        assert int((directory / "memory.max").read_text()) == 64 * 1024 * 1024
        assert (directory / "cpu.max").read_text().split()[0] == "50000"
        assert (directory / "pids.max").read_text().strip() == "20"
    inspect = docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
                     "limited")
    assert inspect.stdout == "67108864 500000000 20\n"
    assert docker("rm", "-f", "limited").returncode == 0


def test_docker_run_of_a_missing_program(docker, daemon):
    """A failed start: the CLI's exit code 127 (it reads "no such file or directory" or
    "executable file not found" in the message), and --rm still removes the container."""
    result = docker("run", "--rm", "busybox", "no-such-program")
    assert result.returncode == 127, result.stderr
    assert "no-such-program" in result.stderr
    assert docker("ps", "-a", "-q").stdout == ""
    kept = docker("run", "--name", "failed", "busybox", "no-such-program")
    assert kept.returncode == 127
    # as dockerd: a program that never ran leaves the container "created", with the exit code
    assert docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "failed").stdout == "created 127\n"
    assert docker("rm", "failed").returncode == 0
    assert daemon.leaks() == []


def test_docker_events_reports_a_containers_life(docker):
    since = int(time.time()) - 1
    live = subprocess.Popen([DOCKER, "events", "--since", str(since), "--filter", "event=die",
                             "--filter", "container=eventful", "--filter", "container=eventful2",
                             "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}"],
                            env=docker.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, live.kill)  # a missing event must fail the test, not hang it
    watchdog.start()
    try:
        assert docker("run", "--rm", "--name", "eventful", "busybox", "sh", "-c", "exit 2").returncode == 2
        assert live.stdout.readline() == "die 2\n"  # the stream is open now (backlog or live)...
        assert docker("run", "--rm", "--name", "eventful2", "busybox", "sh", "-c", "exit 5").returncode == 5
        assert live.stdout.readline() == "die 5\n"  # ...so this one arrived live
        assert docker("tag", "busybox", "eventful:v1").returncode == 0
        assert docker("rmi", "eventful:v1").returncode == 0
    finally:
        watchdog.cancel()
        live.terminate()
        live.wait(timeout=10)
    until = int(time.time()) + 1
    history = docker("events", "--since", str(since), "--until", str(until),
                     "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert history.returncode == 0, history.stderr
    named = [line for line in history.stdout.splitlines() if line.endswith("eventful") or "eventful:" in line]
    assert named == ["container create eventful", "container start eventful", "container die eventful",
                     "container destroy eventful", "image tag eventful:v1", "image untag eventful:v1"]


def test_twenty_concurrent_docker_runs_all_succeed(docker, daemon):
    """Twenty CLIs at once open some sixty connections (ping, create, attach, wait, start):
    the listen backlog and the daemon's locking must take that."""
    env = docker.env
    runs = [subprocess.Popen([DOCKER, "run", "--rm", "busybox", "echo", f"run{n}"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(20)]
    results = []
    for n, process in enumerate(runs):
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        results.append((n, process.returncode, out, err))
    assert [r for r in results if r[1:3] != (0, f"run{r[0]}\n")] == []
    assert docker("ps", "-a", "-q").stdout == ""
    assert daemon.leaks() == []
