"""teachdock.lab.applications.swarm on the real kernel: two Debian dockerd in swarm mode, each
in a network namespace of its own on the lab's bridge; init and join, a service of 4 replicas
over both nodes, the swarm ports seen on the LAN, a drain that moves the tasks, and a close
that leaves nothing on the host.

One swarm serves the whole module (two dockerd take seconds to start); the tests run in file
order and the last one closes it. Every packet stays inside namespaces the lab creates.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from teachdock.lab.applications import swarm

pytestmark = [pytest.mark.root, pytest.mark.slow]

REASON = swarm.why_swarm_cannot_run()
if REASON:
    pytest.skip(REASON, allow_module_level=True)


def host_state() -> dict[str, set[str]]:
    """What dockerd would make if it escaped its namespace: links, nft tables, iptables chains."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    chains = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return {
        "links": {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()},
        "tables": set(tables.splitlines()),
        "chains": {line.split()[0] for line in chains.splitlines() if line.startswith(":")},
    }


PROGRESS: list[str] = []   # what start() said, step by step


def alive(pid: int) -> bool:
    """Running, or stopped: anything but gone or a zombie (an orphan's zombie waits for PID 1)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def host_before():
    return host_state()


@pytest.fixture(scope="module")
def lab(host_before):
    the_swarm = swarm.Swarm()
    try:
        the_swarm.start(progress=PROGRESS.append)
        yield the_swarm
    finally:
        the_swarm.close()


def test_start_says_each_step_and_times_it(lab):
    assert list(lab.timings) == ["the LAN: 3 namespaces, a bridge, 2 veth pairs", "dockerd on node1",
                                 "dockerd on node2", "busybox:latest loaded into both",
                                 "docker swarm init on node1", "docker swarm join from node2"]
    assert all(seconds > 0 for seconds in lab.timings.values())
    assert PROGRESS == [f"{what}: {seconds:.2f} s" for what, seconds in lab.timings.items()]


def test_two_nodes_one_manager_one_worker(lab):
    nodes = {node["Hostname"]: node for node in lab.node_list()}
    assert set(nodes) == {"node1", "node2"}                 # each dockerd has a hostname of its own
    assert all(node["Status"] == "Ready" and node["Availability"] == "Active" for node in nodes.values())
    assert nodes["node1"]["ManagerStatus"] == "Leader" and nodes["node2"]["ManagerStatus"] == ""
    worker = lab.nodes["node2"].docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.NodeAddr}}")
    assert worker.stdout.split() == ["active", "10.209.9.12"]


def test_the_daemons_live_in_their_namespaces(lab, host_before):
    for node in lab.nodes.values():
        assert os.readlink(f"/proc/{node.process.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        links = subprocess.run(["nsenter", f"--net=/run/netns/{node.netns}", "ip", "-o", "link", "show"],
                               capture_output=True, text=True, check=True).stdout
        assert "docker0" in links and "eth0" in links           # its default bridge, made at start
    now = host_state()
    assert {"docker0", "docker_gwbridge"} & now["links"] == set()
    assert not any(chain.startswith(":DOCKER") for chain in now["chains"] - host_before["chains"])


def test_a_service_of_four_spreads_over_both_nodes(lab):
    counts = lab.create_service(replicas=4)
    assert sum(counts.values()) == 4
    assert counts["node1"] >= 1 and counts["node2"] >= 1    # the scheduler spreads; here 2 + 2
    # each worker runs its tasks itself: its own docker ps shows them
    for name, node in lab.nodes.items():
        running = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={swarm.SERVICE}")
        assert len(running.stdout.split()) == counts[name]


def test_the_swarm_ports_are_seen_on_the_lan(lab):
    before = lab.traffic()
    output = lab.ping_across(count=3)
    after = lab.traffic()
    assert "3 packets received" in output
    assert after["4789/udp"]["packets"] - before["4789/udp"]["packets"] >= 6   # 3 echoes and 3 replies, as VXLAN
    assert after["2377/tcp"]["packets"] > 0 and after["7946/udp"]["packets"] > 0
    table = swarm.port_rows(after)
    assert [(row["port"], row["protocol"]) for row in table] == list(swarm.SWARM_PORTS)
    assert table[-1]["packets"] == after["4789/udp"]["packets"] and "VXLAN" in table[-1]["what"]
    rows = lab.conversations()
    # the worker keeps a TCP connection to the manager's 2377, held by dockerd on both ends
    to_manager = [row for row in rows if row["node"] == "node2" and row["state"] == "ESTAB"
                  and row["peer"] == "10.209.9.11:2377"]
    assert to_manager and to_manager[0]["program"] == "dockerd"
    assert any(row["node"] == "node1" and row["state"] == "ESTAB" and row["peer"] == to_manager[0]["local"]
               for row in rows)
    assert any(row["node"] == "node1" and row["state"] == "LISTEN" and row["local"] == "10.209.9.11:2377"
               for row in rows)
    assert {row["node"] for row in rows if row["local"].endswith(":4789")} == {"node1", "node2"}


def test_idle_daemons_still_talk(lab):
    chatter = lab.idle_chatter(seconds=3)
    assert chatter["7946/udp"]["packets"] > 0                 # gossip probes go on without work
    assert chatter["4789/udp"]["packets"] == 0                # no task talks, no VXLAN


def test_drain_moves_every_task_to_the_other_node(lab):
    timeline = lab.drain("node2")
    assert timeline[0][1]["node2"] >= 1
    assert timeline[-1][1] == {"node1": 4, "node2": 0}
    seconds = [second for second, _counts in timeline]
    assert seconds == sorted(seconds)
    availability = {node["Hostname"]: node["Availability"] for node in lab.node_list()}
    assert availability == {"node1": "Active", "node2": "Drain"}
    assert lab.nodes["node2"].docker("ps", "-q").stdout.split() == []
    tasks = lab.service_tasks(all_tasks=True)
    shut_down = [task for task in tasks if task["Node"] == "node2"]
    assert len(shut_down) == timeline[0][1]["node2"]
    assert all(task["DesiredState"] == "Shutdown" for task in shut_down)
    assert sorted(task["Node"] for task in lab.service_tasks()) == ["node1"] * 4

    figure = swarm.plot_tasks(timeline[0][1], timeline[-1][1])
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    assert heights == [timeline[0][1]["node1"], timeline[0][1]["node2"], 4, 0]
    figure = swarm.plot_drain(timeline)
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["node1", "node2"]


def test_bad_input_is_refused(lab):
    with pytest.raises(ValueError, match="no node 'node3'"):
        lab.drain("node3")
    with pytest.raises(swarm.SwarmError, match="was started before"):
        lab.start()
    with pytest.raises(swarm.SwarmError, match="docker network create .* failed: .*already exists"):
        lab.create_service()                                 # the overlay network is there already


def test_close_leaves_nothing(lab, host_before):
    pids = lab.processes()
    assert {node.process.pid for node in lab.nodes.values()} < set(pids)   # and containerd, shims, tasks
    lab.close()
    assert lab.leftovers() == [] and lab.processes() == []
    assert [pid for pid in pids if alive(pid)] == []
    assert not lab.directory.exists()
    now = host_state()
    assert not {link for link in now["links"] - host_before["links"] if link.startswith(("td09", "docker", "veth"))}
    assert not any("DOCKER" in chain for chain in now["chains"] - host_before["chains"])
    assert not any("docker" in table.lower() for table in now["tables"] - host_before["tables"])
    lab.close()                                              # twice is fine


def test_a_failed_start_leaves_nothing(monkeypatch):
    broken = swarm.Swarm()

    def refuse_to_init():
        raise swarm.SwarmError("init refused by the test")

    monkeypatch.setattr(broken, "init", refuse_to_init)
    with pytest.raises(swarm.SwarmError, match="init refused by the test"):
        broken.start()                                       # the LAN and both dockerd were up by then
    assert broken.leftovers() == []


def test_close_after_a_daemon_crashed_kills_what_it_left():
    with swarm.Swarm() as crashed:
        crashed.start()
        crashed.create_service(replicas=4)
        worker = crashed.nodes["node2"]
        orphans = [pid for pid in crashed.processes() if pid != worker.process.pid]
        os.kill(worker.process.pid, signal.SIGKILL)              # its containerd, shims and tasks stay
        worker.process.wait()
        assert [pid for pid in orphans if alive(pid)] != []
    assert crashed.leftovers() == []
    assert [pid for pid in orphans if alive(pid)] == []
