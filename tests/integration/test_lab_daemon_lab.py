"""teachdock.lab.client_and_daemon.daemon_lab.LabDaemons with real teachdockd processes: two daemons side by side,
each with its own objects, and close() leaves no process, mount, cgroup, bridge or file."""

from __future__ import annotations

import os

import pytest

from teachdock.client import Client
from teachdock.errors import TeachdockError
from teachdock.lab.client_and_daemon.checks import check_docker_host, check_log_file, check_name_conflict
from teachdock.lab.client_and_daemon.daemon_lab import LabDaemons, object_files, raw_request, socket_info

pytestmark = [
    pytest.mark.root,
]


@pytest.fixture
def daemons(tmp_path):
    from teachdock.image import busybox

    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    lab = LabDaemons(tmp_path / "daemons")
    yield lab
    lab.close()


def test_two_daemons_their_objects_and_a_clean_close(daemons):
    a, b = daemons.start("a"), daemons.start("b")
    assert daemons.start("a") is a and a.socket_path != b.socket_path
    assert [pid for pid, _ in socket_info(a.host).listeners] == [a.pid]
    with Client(a.host, autostart=False) as on_a, Client(b.host, autostart=False) as on_b:
        sleeper = on_a.run("busybox", ["sleep", "60"], name="only-on-a", detach=True)
        said = on_b.run("busybox", ["echo", "from b"])
        on_a.create_network("lab-net")
        bridge = "td-" + next(n for n in on_a.networks() if n["Name"] == "lab-net")["Id"][:12]
        assert [c["Names"] for c in on_a.containers()] == [["/only-on-a"]]
        assert on_b.containers() == []
    assert os.path.exists(f"/sys/class/net/{bridge}")
    assert check_docker_host(f"unix://{b.socket_path}", b, a).passed
    log = b.data_root / "daemon" / "containers" / said.id / f"{said.id}-json.log"
    assert check_log_file(str(log), said.id, b, expected_text="from b").passed
    rows = {row["path"] for row in object_files(a.data_root, a.exec_root, a.socket_path)}
    assert str(a.data_root / "daemon" / "containers" / sleeper.id / "container.json") in rows
    assert raw_request(a.socket_path, "GET", "/_ping").body == b"OK"

    pids = [a.pid, b.pid]
    daemons.close()
    assert daemons.leftovers() == []
    assert not os.path.exists(f"/sys/class/net/{bridge}"), "the network's bridge outlived the daemon"
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_the_name_conflict_check_asks_the_daemon_and_leaves_one_container(daemons):
    a = daemons.start("a")
    with Client(a.host, autostart=False) as client:
        assert not check_name_conflict(409, a, "taken").answered      # no container of that name yet
        client.create("busybox", ["true"], name="taken")
        right = check_name_conflict(409, a, "taken")
        assert right.passed and "already in use" in right.message, right.message
        wrong = check_name_conflict(404, a, "taken")
        assert not wrong.passed and "the opposite" in wrong.message
        assert [c["Names"] for c in client.containers(all=True)] == [["/taken"]]


def test_volume_and_network_used_by_containers(daemons):
    """What chapter 07 section 9 shows: a volume written by one container is served by another,
    found by name on a user network through the daemon's DNS."""
    a = daemons.start("a")
    with Client(a.host, autostart=False) as client:
        client.create_volume("notes")
        client.create_network("backend")
        wrote = client.run("busybox", ["sh", "-c", "echo from the writer > /data/index.html"],
                           volumes=["notes:/data"], remove=True)
        client.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/srv"], name="web", network="backend",
                   volumes=["notes:/srv"], detach=True)
        read = client.run("busybox", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n'"
                                      " | nc web 80 && break; sleep 0.3; done"], network="backend", remove=True)
        assert wrote.exit_code == 0 and "from the writer" in read.stdout, read
        mount = next(m for m in client.request("GET", "/containers/web/json").json()["Mounts"] if m["Name"] == "notes")
        volume = client.request("GET", "/volumes/notes").json()
        assert mount["Destination"] == "/srv" and mount["Source"] == volume["Mountpoint"]
        assert volume["Mountpoint"].startswith(str(a.data_root))
