"""Health checks through the real docker CLI, teachdockd beside dockerd (Debian's 20.10) as the
oracle: the builder's HEALTHCHECK, ``--health-*`` flags, ``State.Health`` in inspect, the STATUS
column and ``--filter health=`` of ``docker ps``, the events, and the refusals.

Both daemons run the same busybox bytes; probes run every 200 ms so the test is quick."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.support.daemons import running_daemon
from tests.support.dockerd import docker_cli, dockerd_missing, running_dockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(dockerd_missing() is not None, reason=f"needs a private dockerd: {dockerd_missing()}"),
]

RUN = ("run", "-d", "--network", "none")
FAST = ("--health-interval", "200ms")


@pytest.fixture(scope="module")
def teachdockd():
    with running_daemon() as process:
        yield process


@pytest.fixture(scope="module")
def clis(teachdockd):
    """{"teachdockd": docker(*args), "dockerd": docker(*args)}: the same CLI, two daemons."""
    config = tempfile.mkdtemp(prefix="health-cli-")
    env = {**os.environ, "DOCKER_HOST": f"unix://{teachdockd.socket_path}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CLI_HINTS": "false", "DOCKER_CONFIG": config}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("DOCKER_API_VERSION", None)

    def ours(*args, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([docker_cli(), *args], env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    with running_dockerd(teachdockd.data_root) as dockerd:
        yield {"teachdockd": ours, "dockerd": lambda *args, timeout=60: dockerd.docker(*args, timeout=timeout)}
    shutil.rmtree(config, ignore_errors=True)


@pytest.fixture
def both(clis):
    def run(*args) -> dict[str, subprocess.CompletedProcess]:
        return {name: docker(*args) for name, docker in clis.items()}

    yield run
    for docker in clis.values():
        ids = docker("ps", "-aq").stdout.split()
        if ids:
            docker("rm", "-f", *ids)


def outputs(results) -> dict[str, tuple[int, str]]:
    return {name: (result.returncode, result.stdout) for name, result in results.items()}


def one(results) -> str:
    """The answer both daemons gave, or a failure showing both."""
    ours, theirs = results["teachdockd"], results["dockerd"]
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), \
        f"teachdockd: {ours.returncode} {ours.stdout!r} {ours.stderr!r}\ndockerd: {theirs.returncode} " \
        f"{theirs.stdout!r} {theirs.stderr!r}"
    return ours.stdout


def wait_health(docker, name: str, wanted: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(docker("inspect", name, "--format", "{{json .State}}").stdout or "{}")
        if (state.get("Health") or {}).get("Status") == wanted:
            return state["Health"]
        time.sleep(0.05)
    raise AssertionError(f"{name} did not become {wanted}: {state}")


def test_the_builder_writes_healthcheck_as_dockerd_s(both):
    context = tempfile.mkdtemp(prefix="health-build-")
    try:
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write('FROM busybox\nHEALTHCHECK --interval=1s --timeout=2s --start-period=3s --retries=2 CMD ["true"]\n'
                    'HEALTHCHECK CMD exit 1\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5m CMD wget -qO- localhost || exit 1\n')
        for name, result in both("build", "-q", "-t", "hc-built", context).items():
            assert result.returncode == 0, (name, result.stderr)
        one(both("image", "inspect", "hc-built", "--format", "{{json .Config.Healthcheck}}"))
        history = one(both("history", "--no-trunc", "--format", "{{.CreatedBy}}", "hc-built"))
        assert """HEALTHCHECK &{["CMD-SHELL" "exit 1"] "0s" "0s" "0s" '\\x00'}""" in history
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write("FROM busybox\nHEALTHCHECK --retries=0 CMD true\n")
        results = both("build", "-q", "-t", "hc-bad", context)
        assert {name: r.returncode for name, r in results.items()} == {"teachdockd": 1, "dockerd": 1}
        for result in results.values():
            assert "--retries must be at least 1 (not 0)" in result.stderr
    finally:
        shutil.rmtree(context)
        both("rmi", "-f", "hc-built")


def test_inspect_ps_and_filters_as_dockerd(both, clis):
    both(*RUN, "--name", "good", "--health-cmd", "echo hi", *FAST, "busybox", "sleep", "300")
    both(*RUN, "--name", "bad", "--health-cmd", "echo no >&2; exit 3", *FAST, "--health-retries", "2",
         "busybox", "sleep", "300")
    both(*RUN, "--name", "slow", "--health-cmd", "sleep 5", *FAST, "--health-timeout", "300ms",
         "--health-retries", "1", "busybox", "sleep", "300")
    both(*RUN, "--name", "late", "--health-cmd", "exit 1", *FAST, "--health-start-period", "5m",
         "--health-retries", "1", "busybox", "sleep", "300")
    both(*RUN, "--name", "none", "--no-healthcheck", "busybox", "sleep", "300")
    for docker in clis.values():
        wait_health(docker, "good", "healthy")
        wait_health(docker, "bad", "unhealthy")
        wait_health(docker, "slow", "unhealthy")
    one(both("inspect", "good", "bad", "slow", "late", "none", "--format", "{{json .Config.Healthcheck}}"))
    last_probe = "{{.State.Health.Status}} {{with $log := .State.Health.Log}}{{range $i, $e := $log}}" \
                 "{{if eq (len (slice $log $i)) 1}}{{$e.ExitCode}}:{{$e.Output}}{{end}}{{end}}{{end}}"
    for name in ("good", "bad", "slow"):  # the streaks and the log's length differ with the timing
        one(both("inspect", name, "--format", last_probe))
    one(both("inspect", "late", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}"))
    one(both("inspect", "none", "--format", "{{json .State.Health}}"))
    statuses = {daemon: re.sub(r"Up (Less than a second|\d+ seconds?)", "Up …", result.stdout)
                for daemon, result in both("ps", "--format", "{{.Names}} {{.Status}}").items()}
    assert statuses["teachdockd"] == statuses["dockerd"] == (
        "none Up …\nlate Up … (health: starting)\nslow Up … (unhealthy)\nbad Up … (unhealthy)\ngood Up … (healthy)\n")
    for value in ("healthy", "unhealthy", "starting", "none"):
        one(both("ps", "--filter", f"health={value}", "--format", "{{.Names}}"))
    results = both("ps", "--filter", "health=bogus")
    assert {n: (r.returncode, r.stderr) for n, r in results.items()} == {
        n: (1, "Error response from daemon: Unrecognised filter value for health: bogus\n") for n in results}


def test_stop_makes_it_unhealthy_and_start_begins_at_starting(both, clis):
    both(*RUN, "--name", "cycle", "--health-cmd", "true", "--health-interval", "2s", "busybox", "sleep", "300")
    for docker in clis.values():
        wait_health(docker, "cycle", "healthy")
    both("stop", "-t", "1", "cycle")
    one(both("inspect", "cycle", "--format", "{{.State.Status}} {{.State.Health.Status}}"))
    one(both("ps", "-a", "--filter", "health=unhealthy", "--format", "{{.Names}}"))
    both("start", "cycle")
    one(both("inspect", "cycle", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}"))


def test_the_image_check_merges_with_the_flags(both):
    context = tempfile.mkdtemp(prefix="health-merge-")
    try:
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write("FROM busybox\nHEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD exit 0\n")
        both("build", "-q", "-t", "hc-merge", context)
        both("create", "--name", "merged", "--network", "none", "--health-retries", "7", "hc-merge")
        both("create", "--name", "off", "--network", "none", "--no-healthcheck", "hc-merge")
        assert '"Retries":7' in one(both("inspect", "merged", "off", "--format", "{{json .Config.Healthcheck}}"))
    finally:
        shutil.rmtree(context)
        both("rm", "-f", "merged", "off")
        both("rmi", "-f", "hc-merge")


@pytest.mark.parametrize("flags", [("--health-interval", "500us"), ("--health-timeout", "10ns"),
                                   ("--health-start-period", "1us")])
def test_the_daemon_refuses_durations_below_a_millisecond(both, flags):
    results = both("create", "--network", "none", "--health-cmd", "true", *flags, "busybox")
    assert outputs(results)["teachdockd"] == outputs(results)["dockerd"] == (1, "")
    assert results["teachdockd"].stderr == results["dockerd"].stderr
    one(both("ps", "-aq"))  # nothing made


def test_events_of_a_probe_as_dockerd_s(both, clis):
    since = str(time.time())
    both(*RUN, "--name", "watched", "--health-cmd", "exit 0", *FAST, "busybox", "sleep", "300")
    for docker in clis.values():
        wait_health(docker, "watched", "healthy")
    time.sleep(0.3)
    until = str(time.time())
    actions = {}
    for name, docker in clis.items():
        text = docker("events", "--since", since, "--until", until, "--filter", "container=watched",
                      "--format", "{{.Action}}").stdout.split("\n")
        probes = text.index("exec_create: /bin/sh -c exit 0")
        actions[name] = text[probes:probes + 4]
        assert text.count("health_status: healthy") == 1
    assert actions["teachdockd"] == actions["dockerd"] == [
        "exec_create: /bin/sh -c exit 0", "exec_start: /bin/sh -c exit 0", "exec_die", "health_status: healthy"]


def test_pause_stops_the_probes_and_unpause_resumes_them(both, clis):
    both(*RUN, "--name", "frozen", "--health-cmd", "exit 0", *FAST, "busybox", "sleep", "300")
    for docker in clis.values():
        wait_health(docker, "frozen", "healthy")
    both("pause", "frozen")
    one(both("inspect", "frozen", "--format", "{{.State.Health.Status}}"))  # unhealthy, as dockerd says
    statuses = {n: re.sub(r"Up [^(]*", "Up … ", r.stdout) for n, r in both("ps", "--format", "{{.Status}}").items()}
    assert statuses["teachdockd"] == statuses["dockerd"] == "Up … (Paused)\n"
    probes = {name: docker("inspect", "frozen", "--format", "{{json .State.Health.Log}}").stdout
              for name, docker in clis.items()}
    time.sleep(0.6)
    assert probes == {name: docker("inspect", "frozen", "--format", "{{json .State.Health.Log}}").stdout
                      for name, docker in clis.items()}  # no probe while paused
    both("unpause", "frozen")
    for docker in clis.values():
        wait_health(docker, "frozen", "healthy")


def test_start_interval_reaches_teachdockd(clis):
    """``--health-start-interval`` (API 1.44, Docker 25) is newer than the oracle; teachdockd
    (API 1.45) keeps it and probes at that pace while starting."""
    docker = clis["teachdockd"]
    created = docker("create", "--name", "paced", "--network", "none", "--health-cmd", "exit 1",
                     "--health-interval", "1h", "--health-start-period", "1h", "--health-start-interval", "200ms",
                     "busybox", "sleep", "300")
    assert created.returncode == 0, created.stderr
    try:
        check = json.loads(docker("inspect", "paced", "--format", "{{json .Config.Healthcheck}}").stdout)
        assert check["StartInterval"] == 200_000_000 and check["Interval"] == 3_600_000_000_000
        docker("start", "paced")
        time.sleep(1.5)
        health = json.loads(docker("inspect", "paced", "--format", "{{json .State.Health}}").stdout)
        assert health["Status"] == "starting" and len(health["Log"]) >= 3  # every 200 ms, not every hour
    finally:
        docker("rm", "-f", "paced")
