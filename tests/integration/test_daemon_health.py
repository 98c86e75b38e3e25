"""Health checks in a real teachdockd: probes run as execs in the container, State.Health in
inspect and on disk, the ps column and filter, health_status events, the start period, and
probes that stop with the container. Intervals are short (0.2-0.3 s) so the tests are quick."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest

from tests.support.daemons import running_daemon

pytestmark = [pytest.mark.root]

V = "/v1.45"
MS = 1_000_000


@pytest.fixture(scope="module")
def daemon():
    with running_daemon() as process:
        yield process


def health_of(daemon, container: str) -> dict | None:
    return daemon.json("GET", f"{V}/containers/{container}/json")["State"].get("Health")


def wait_for_status(daemon, container: str, wanted: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = health_of(daemon, container)
        if health and health["Status"] == wanted:
            return health
        time.sleep(0.05)
    raise AssertionError(f"{container} never became {wanted}: {health_of(daemon, container)}")


def started(daemon, check: dict, cmd=("sleep", "300"), **config) -> str:
    container = daemon.create(list(cmd), Healthcheck=check, **config)
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    return container


def test_a_passing_probe_makes_it_healthy_with_its_output_in_the_log(daemon):
    container = started(daemon, {"Test": ["CMD-SHELL", "echo hi; echo there >&2"], "Interval": 200 * MS})
    assert health_of(daemon, container)["Status"] == "starting"
    health = wait_for_status(daemon, container, "healthy")
    entry = health["Log"][0]
    assert health["FailingStreak"] == 0 and entry["ExitCode"] == 0
    assert entry["Output"] in ("hi\nthere\n", "there\nhi\n")
    assert entry["Start"] <= entry["End"] and entry["End"].endswith("Z")
    summary = daemon.json("GET", f"{V}/containers/json?filters=" + urllib.parse.quote(json.dumps({"id": [container[:12]]})))
    shown = [c["Status"] for c in summary if c["Id"] == container]
    assert shown and shown[0].endswith("(healthy)")
    # on disk with the record: the API answers from memory at once, the file follows within a probe
    # interval (the next probe saves the record again), so look for a while
    on_disk = daemon.data_root / "daemon" / "containers" / container / "container.json"
    deadline = time.monotonic() + 5
    while json.loads(on_disk.read_text())["State"]["Health"]["Status"] != "healthy" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(on_disk.read_text())["State"]["Health"]["Status"] == "healthy"
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_a_failing_probe_makes_it_unhealthy_after_the_retries_and_keeps_five_entries(daemon):
    container = started(daemon, {"Test": ["CMD", "sh", "-c", "echo no; exit 3"], "Interval": 200 * MS,
                                 "Retries": 2})
    health = wait_for_status(daemon, container, "unhealthy")
    assert health["FailingStreak"] == 2
    assert [(e["ExitCode"], e["Output"]) for e in health["Log"]] == [(3, "no\n"), (3, "no\n")]
    time.sleep(1.5)
    health = health_of(daemon, container)
    assert len(health["Log"]) == 5 and health["FailingStreak"] >= 6
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_a_probe_past_its_timeout_is_killed_and_fails_with_minus_one(daemon):
    container = started(daemon, {"Test": ["CMD-SHELL", "sleep 30"], "Interval": 200 * MS, "Timeout": 300 * MS,
                                 "Retries": 1})
    health = wait_for_status(daemon, container, "unhealthy")
    assert health["Log"][0]["ExitCode"] == -1
    assert health["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
    top = daemon.json("GET", f"{V}/containers/{container}/top?ps_args=-o%20pid,args")
    assert sum("sleep 30" in row[1] for row in top["Processes"]) <= 1  # killed, not piling up
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_failures_in_the_start_period_do_not_count(daemon):
    container = started(daemon, {"Test": ["CMD-SHELL", "test -e /tmp/ready"], "Interval": 200 * MS,
                                 "Retries": 1, "StartPeriod": 60_000 * MS})
    time.sleep(1.2)
    health = health_of(daemon, container)
    assert health["Status"] == "starting" and health["FailingStreak"] == 0
    assert len(health["Log"]) >= 3 and all(e["ExitCode"] == 1 for e in health["Log"])
    exec_id = daemon.json("POST", f"{V}/containers/{container}/exec", {"Cmd": ["touch", "/tmp/ready"]},
                          expect=201)["Id"]
    daemon.request("POST", f"{V}/exec/{exec_id}/start", {"Detach": True})
    wait_for_status(daemon, container, "healthy")
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_the_image_probe_is_used_and_none_switches_it_off(daemon):
    no_probe = started(daemon, {"Test": ["NONE"]})
    time.sleep(0.5)
    assert health_of(daemon, no_probe) is None
    listed = daemon.json("GET", f"{V}/containers/json?filters=" + urllib.parse.quote('{"health":["none"]}'))
    assert no_probe in [c["Id"] for c in listed]
    status, _, body = daemon.request("GET", f"{V}/containers/json?filters=" + urllib.parse.quote('{"health":["bogus"]}'))
    assert status == 400 and b"Unrecognised filter value for health: bogus" in body
    daemon.request("DELETE", f"{V}/containers/{no_probe}?force=1")


def test_events_say_exec_create_start_die_and_health_status(daemon):
    events, done = [], threading.Event()

    def follow():
        connection = daemon.connection(timeout=30)
        connection.request("GET", f"{V}/events")
        response = connection.getresponse()
        while not done.is_set():
            line = response.fp.readline()
            if line.strip() and not line.strip().isalnum():
                events.append(json.loads(line))
        connection.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.3)
    container = started(daemon, {"Test": ["CMD-SHELL", "exit 0"], "Interval": 200 * MS})
    wait_for_status(daemon, container, "healthy")
    time.sleep(0.5)
    done.set()
    mine = [e["Action"] for e in events if e["Actor"]["ID"] == container]
    first = mine.index("exec_create: /bin/sh -c exit 0")
    assert mine[first:first + 4] == ["exec_create: /bin/sh -c exit 0", "exec_start: /bin/sh -c exit 0",
                                     "exec_die", "health_status: healthy"]
    assert mine.count("health_status: healthy") == 1  # only on a change
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


def test_probes_stop_with_the_container_and_start_again_with_it(daemon):
    container = started(daemon, {"Test": ["CMD-SHELL", "exit 0"], "Interval": 200 * MS})
    wait_for_status(daemon, container, "healthy")
    assert daemon.request("POST", f"{V}/containers/{container}/stop?t=1")[0] == 204
    stopped = health_of(daemon, container)
    assert stopped["Status"] == "unhealthy"  # dockerd's "for compatibility" when the monitor stops
    time.sleep(0.8)
    assert health_of(daemon, container)["Log"] == stopped["Log"]  # no probe ran meanwhile
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    assert health_of(daemon, container)["Status"] == "starting"
    wait_for_status(daemon, container, "healthy")
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")


@pytest.mark.parametrize("check, message", [
    ({"Test": ["CMD-SHELL", "true"], "Interval": 500_000}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Test": ["CMD-SHELL", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": ["PROBE", "true"]}, "Healthcheck.Test must be"),
    ({"Test": ["CMD-SHELL", "true"], "Timeout": "1s"}, "Healthcheck.Timeout must be an integer"),
])
def test_bad_healthchecks_are_400_and_leave_nothing(daemon, check, message):
    before = daemon.json("GET", f"{V}/containers/json?all=1")
    status, _, body = daemon.request("POST", f"{V}/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"], "Healthcheck": check})
    assert status == 400 and message in json.loads(body)["message"]
    assert daemon.json("GET", f"{V}/containers/json?all=1") == before


def test_teachdock_run_health_flags_and_ps_shows_the_health(daemon, tmp_path):
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_CONFIG": str(tmp_path),
           "TEACHDOCK_AUTOSTART": "0"}

    def td(*args):
        return subprocess.run([sys.executable, "-m", "teachdock.cli", *args], capture_output=True, text=True,
                              timeout=60, env=env)

    run = td("run", "-d", "--name", "probed", "--health-cmd", "exit 0", "--health-interval", "200ms",
             "--health-retries", "2", "busybox", "sleep", "300")
    assert run.returncode == 0, run.stderr
    check = daemon.json("GET", f"{V}/containers/probed/json")["Config"]["Healthcheck"]
    assert check == {"Test": ["CMD-SHELL", "exit 0"], "Interval": 200 * MS, "Retries": 2}
    wait_for_status(daemon, "probed", "healthy")
    assert "(healthy)" in td("ps").stdout
    refused = td("run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
    assert refused.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in refused.stderr
    daemon.request("DELETE", f"{V}/containers/probed?force=1")
    assert daemon.json("GET", f"{V}/containers/json?all=1") == []  # the refused run made nothing


def test_a_restarted_daemon_probes_its_running_containers_again(daemon):
    container = started(daemon, {"Test": ["CMD-SHELL", "exit 0"], "Interval": 200 * MS})
    wait_for_status(daemon, container, "healthy")
    daemon.restart()
    assert health_of(daemon, container)["Status"] in ("starting", "healthy")  # dockerd: starting again
    before = health_of(daemon, container)["Log"][-1]["Start"]
    wait_for_status(daemon, container, "healthy")
    time.sleep(0.5)
    assert health_of(daemon, container)["Log"][-1]["Start"] > before  # new probes ran
    daemon.request("DELETE", f"{V}/containers/{container}?force=1")
