"""Chapter 09's lab against real teachdockd processes, driven by the real compose clients:
the traced ``up``, compose's labels, ``ps`` from an empty directory, scaling, the health watch,
and the exercises' checks with a right and a wrong answer each. Nothing may be left after
``down -v`` (the daemon fixture's leak check, and the daemon's own lists)."""

from __future__ import annotations

import tempfile
import time

import pytest

from teachdock.client import Client
from teachdock.lab.applications import (HEALTHY_SHOP, SHOP, HealthWatch, check_moved_with_data, check_reach_by_name,
                                        check_scale_prediction, check_waits_until_healthy, compose, compose_clients, created_labels, start_notes, trace_compose,
                                        write_project)
from teachdock.lab.applications.exercises import SERVER_COMMAND, SLOW_SERVER_COMMAND

from tests.support.daemons import running_daemon

pytestmark = [pytest.mark.root, pytest.mark.slow]
CLIENTS = compose_clients()


def objects(daemon) -> dict:
    """What the daemon holds besides its built-in networks and busybox."""
    return {"containers": [c["Names"] for c in daemon.json("GET", "/v1.45/containers/json?all=1")],
            "networks": [n["Name"] for n in daemon.json("GET", "/v1.45/networks")
                         if n["Name"] not in ("bridge", "host", "none")],
            "volumes": [v["Name"] for v in daemon.json("GET", "/v1.45/volumes")["Volumes"] or []]}


NOTHING = {"containers": [], "networks": [], "volumes": []}


@pytest.fixture
def project(daemon, scratch_dir):
    """The chapter's application in a project directory; taken down (both clients) at the end."""
    directory = write_project(tempfile.mkdtemp(dir=scratch_dir), SHOP)
    yield directory
    for client in CLIENTS:
        compose(f"unix://{daemon.socket_path}", directory, "down", "-v", "-t", "1", client=client, project="td09")


@pytest.mark.parametrize("client", ["v2", "v1"])
def test_up_is_a_list_of_api_calls(daemon, project, scratch_dir, client):
    if client not in CLIENTS:
        pytest.skip(f"compose {client} is not installed here")
    up = trace_compose(daemon.socket_path, project, "up", "-d", client=client, project="td09", directory=scratch_dir)
    assert up.returncode == 0, up.output
    assert up.count("POST /containers/create") == 3
    assert up.count("POST /containers/{id}/start") == 3
    assert up.count("POST /networks/create") == 1 and up.count("POST /volumes/create") == 1
    calls = up.calls()
    assert calls.index("POST /networks/create") < calls.index("POST /containers/create")
    services = {labels["com.docker.compose.service"] for _, labels in created_labels(up.entries)}
    assert services == {"job", "web", "client"}
    assert all(labels["com.docker.compose.project"] == "td09" for _, labels in created_labels(up.entries))
    assert "POST /containers/create" in str(up.counts()) and up.plot().axes and up.sequence().axes
    host = f"unix://{daemon.socket_path}"
    for _ in range(20):                        # the client retries for a few seconds at most
        logs = compose(host, project, "logs", "--no-log-prefix", "client", client=client, project="td09").stdout
        if "hello from the job" in logs:
            break
        time.sleep(0.5)
    assert "hello from the job" in logs
    down = trace_compose(daemon.socket_path, project, "down", "-v", "-t", "1", client=client, project="td09",
                         directory=scratch_dir)
    assert down.returncode == 0, down.output
    assert down.count("DELETE /containers/{id}") == 3
    assert objects(daemon) == NOTHING


def test_ps_needs_no_file_only_labels(daemon, project, scratch_dir):
    if "v2" not in CLIENTS:
        pytest.skip("compose v2 is not installed here")
    assert compose(f"unix://{daemon.socket_path}", project, "up", "-d", project="td09").returncode == 0
    empty = tempfile.mkdtemp(dir=scratch_dir)
    ps = trace_compose(daemon.socket_path, empty, "ps", "-a", project="td09", directory=scratch_dir)
    assert ps.returncode == 0, ps.output
    assert {"td09-job-1", "td09-web-1", "td09-client-1"} <= set(ps.output.split())
    other = trace_compose(daemon.socket_path, empty, "ps", "-a", project="someone-else", directory=scratch_dir)
    assert "td09-web-1" not in other.output


def test_scale_down_is_judged_on_the_real_trace(daemon, project, scratch_dir):
    if "v2" not in CLIENTS:
        pytest.skip("compose v2 is not installed here")
    host = f"unix://{daemon.socket_path}"
    assert compose(host, project, "up", "-d", "--scale", "web=3", project="td09").returncode == 0
    wrong = check_scale_prediction((0, 3), daemon.socket_path, project, "td09", directory=scratch_dir)
    assert not wrong.passed and "One too many" in wrong.message
    assert compose(host, project, "up", "-d", "--scale", "web=3", project="td09").returncode == 0
    right = check_scale_prediction((0, 2), daemon.socket_path, project, "td09", directory=scratch_dir)
    assert right.passed, right.message
    assert len(compose(host, project, "ps", "-q", "web", project="td09").stdout.split()) == 1


SERVER = f"""\
services:
  server:
    image: busybox
    command: {SERVER_COMMAND!r}
    init: true
""".replace("'", '"')


def test_reach_by_name_checked_with_real_compose(daemon):
    if "v2" not in CLIENTS:
        pytest.skip("compose v2 is not installed here")
    host = f"unix://{daemon.socket_path}"
    loop = "for i in 1 2 3 4 5; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 2 {} 8080 && exit 0; sleep 1; done"
    right = SERVER + f'  client:\n    image: busybox\n    command: ["sh", "-c", "{loop.format("server")}"]\n'
    result = check_reach_by_name(right, host)
    assert result.passed, result.message
    wrong_name = SERVER + f'  client:\n    image: busybox\n    command: ["sh", "-c", "{loop.format("svr")}"]\n'
    assert "never names 'server'" in check_reach_by_name(wrong_name, host).message
    typo = SERVER + '  client:\n    image: busybox\n    command: ["sh", "-c", "nc server 8080"\n'
    assert "compose cannot read the file" in check_reach_by_name(typo, host).message
    assert objects(daemon) == NOTHING          # each check took its project down


def test_health_is_watched_until_the_client_may_start(daemon, scratch_dir):
    if "v2" not in CLIENTS:
        pytest.skip("compose v2 is not installed here")
    host = f"unix://{daemon.socket_path}"
    directory = write_project(tempfile.mkdtemp(dir=scratch_dir), HEALTHY_SHOP)
    try:
        with Client(host, autostart=False) as client:
            watch = HealthWatch(client, project="td09h", interval=0.3)
            up = compose(host, directory, "up", "-d", project="td09h")
            watch.record(1)
            assert up.returncode == 0, up.stdout + up.stderr
            assert watch.latest("td09h-web-1").status == "healthy", watch.story()
            client.exec("td09h-web-1", ["rm", "/site/index.html"])
            watch.record(15, until=lambda: watch.latest("td09h-web-1").status == "unhealthy")
            assert watch.latest("td09h-web-1").status == "unhealthy", watch.story()
            assert watch.latest("td09h-web-1").failing_streak >= 3
    finally:
        compose(host, directory, "down", "-v", "-t", "1", project="td09h")
    assert objects(daemon) == NOTHING


def test_moved_with_data_between_two_daemons(daemon, scratch_dir):
    with running_daemon(str(scratch_dir)) as second, Client(f"unix://{daemon.socket_path}", autostart=False) as a, \
            Client(f"unix://{second.socket_path}", autostart=False) as b:
        line = start_notes(a)
        assert "no new image" in check_moved_with_data(a, b, line).message
        b.run("busybox", ["sleep", "3600"], name="notes", detach=True)          # the image, not the container
        assert "writable layer" in check_moved_with_data(a, b, line).message
        b.remove("notes", force=True)
        a.commit("notes", "notes-moved")
        with tempfile.TemporaryFile() as archive:
            a.save(["notes-moved"], archive)
            archive.seek(0)
            b.load(archive)
        b.run("notes-moved", ["sleep", "3600"], name="notes", detach=True)
        result = check_moved_with_data(a, b, line)
        assert result.passed, result.message
        for client in (a, b):
            client.remove("notes", force=True)


SLOW_SERVER = f"""\
services:
  server:
    image: busybox
    command: {SLOW_SERVER_COMMAND!r}
    init: true
""".replace("'", '"')
ASK_ONCE = '  client:\n    image: busybox\n    command: ["sh", "-c", "printf \'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n\' | nc -w 2 server 8080"]\n'
PROBE = "printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 1 127.0.0.1 8080 | grep -q '200 OK'"
HEALTHCHECK = f'    healthcheck:\n      test: ["CMD-SHELL", "{PROBE}"]\n      interval: 1s\n      retries: 10\n'


def test_waits_until_healthy_checked_with_real_compose(daemon):
    if "v2" not in CLIENTS:
        pytest.skip("compose v2 is not installed here")
    host = f"unix://{daemon.socket_path}"
    right = SLOW_SERVER + HEALTHCHECK + ASK_ONCE + "    depends_on:\n      server:\n        condition: service_healthy\n"
    result = check_waits_until_healthy(right, host)
    assert result.passed, result.message
    started_only = SLOW_SERVER + HEALTHCHECK + ASK_ONCE + "    depends_on: [server]\n"
    assert "'service_started'" in check_waits_until_healthy(started_only, host).message
    never_healthy = (SLOW_SERVER + HEALTHCHECK.replace("200 OK", "500 Oops").replace("retries: 10", "retries: 2")
                     + ASK_ONCE
                     + "    depends_on:\n      server:\n        condition: service_healthy\n")
    failed = check_waits_until_healthy(never_healthy, host)
    assert not failed.passed and "became unhealthy" in failed.message, failed.message
    assert objects(daemon) == NOTHING
