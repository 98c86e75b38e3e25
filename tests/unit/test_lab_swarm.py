"""teachdock.lab.applications.swarm without starting anything: why it cannot run, the names a
swarm gives, the counters' nftables text, the pictures. The swarm itself runs in
tests/integration/test_lab_swarm.py.
"""

from __future__ import annotations

import pytest

from teachdock.lab.applications import swarm


def test_without_root_the_reason_is_root(monkeypatch):
    monkeypatch.setattr(swarm.os, "geteuid", lambda: 1000)
    assert "needs root" in swarm.why_swarm_cannot_run()


def test_without_dockerd_the_reason_names_the_package(monkeypatch):
    monkeypatch.setattr(swarm.os, "geteuid", lambda: 0)
    monkeypatch.setattr(swarm, "DOCKERD", "/nonexistent/dockerd")
    assert swarm.why_swarm_cannot_run() == "/nonexistent/dockerd is not installed (apt-get install docker.io)"


def test_a_start_that_cannot_run_says_why_and_makes_nothing(monkeypatch):
    monkeypatch.setattr(swarm, "why_swarm_cannot_run", lambda: "no dockerd here")
    lab = swarm.Swarm()
    with pytest.raises(swarm.SwarmError, match="^no dockerd here$"):
        lab.start()
    assert not lab.directory.exists()
    lab.close()


def test_every_name_of_a_swarm_carries_its_id():
    lab = swarm.Swarm()
    try:
        assert lab.name.startswith("td09sw-") and lab.lan == f"{lab.name}-lan"
        assert [node.netns for node in lab.nodes.values()] == [f"{lab.name}-node1", f"{lab.name}-node2"]
        assert str(lab.directory) == f"/tmp/{lab.name}"
        assert lab.manager.name == "node1"
        assert swarm.Swarm().name != lab.name                 # two swarms at once never meet
    finally:
        lab.close()


def test_a_name_outside_the_prefix_is_refused():
    with pytest.raises(ValueError, match="starts with td09sw-"):
        swarm.Swarm(name="myswarm")


def test_the_counters_cover_each_swarm_port_both_ways():
    ruleset = swarm.traffic_ruleset()
    assert "table bridge td09sw" in ruleset and "hook forward" in ruleset
    for port, proto in swarm.SWARM_PORTS:
        for direction in ("dport", "sport"):
            assert f'{proto} {direction} {port} counter comment "{port}/{proto}"' in ruleset
    assert ruleset.count("counter") == 2 * len(swarm.SWARM_PORTS)


def test_plot_tasks_draws_before_and_after():
    figure = swarm.plot_tasks({"node1": 2, "node2": 2}, {"node1": 4, "node2": 0})
    [axes] = figure.axes
    assert [bar.get_height() for bar in axes.patches] == [2, 2, 4, 0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["node1", "node2"]


def test_plot_drain_draws_one_line_per_node():
    timeline = [(0.0, {"node1": 2, "node2": 2}), (0.1, {"node1": 2, "node2": 0}), (5.2, {"node1": 4, "node2": 0})]
    figure = swarm.plot_drain(timeline)
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["node1", "node2"]
    assert list(lines[0].get_ydata()) == [2, 2, 4] and list(lines[1].get_ydata()) == [2, 0, 0]
    with pytest.raises(ValueError, match="empty timeline"):
        swarm.plot_drain([])


def test_port_rows_join_the_ports_with_their_counters():
    traffic = {f"{port}/{proto}": {"packets": index, "bytes": 100 * index}
               for index, (port, proto) in enumerate(swarm.SWARM_PORTS)}
    rows = swarm.port_rows(traffic)
    assert rows[0] == {"port": 2377, "protocol": "tcp", "what": swarm.SWARM_PORTS[(2377, "tcp")],
                       "packets": 0, "bytes": 0}
    assert [row["packets"] for row in rows] == [0, 1, 2, 3]


@pytest.mark.parametrize("replicas", [0, -1, 2.5, "4"])
def test_a_service_needs_a_whole_positive_number_of_replicas(replicas):
    lab = swarm.Swarm()
    try:
        with pytest.raises(ValueError, match="at least one task"):
            lab.create_service(replicas=replicas)
    finally:
        lab.close()
