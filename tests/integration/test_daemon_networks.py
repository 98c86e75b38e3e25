"""teachdockd's networks over the Engine API: none, host, and user bridges with veth pairs.

One daemon per module (tests/support/daemons.py). The user-network tests look at the kernel with
pyroute2 (the bridge, its address, the host ends of the veths) and run busybox inside the
containers (``ip addr``, ``ping``), so a network that is only a JSON record fails them.
Every test checks that no bridge or veth of its own remains.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.daemons import demultiplex, running_daemon


pyroute2 = pytest.importorskip("pyroute2", reason="the network tests read links with pyroute2")

pytestmark = [
    pytest.mark.root,
]

V = "/v1.45"


def links() -> dict[str, dict]:
    """Host links by name: {"td-...": {"kind": "bridge", "master": index, "index": n, "addresses": [...]}}."""
    with pyroute2.IPRoute() as ipr:
        addresses = {}
        for address in ipr.get_addr(family=2):
            addresses.setdefault(address["index"], []).append(
                f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}")
        result = {}
        for link in ipr.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            result[link.get_attr("IFLA_IFNAME")] = {
                "index": link["index"], "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "master": link.get_attr("IFLA_MASTER"), "addresses": addresses.get(link["index"], []),
                "up": bool(link["flags"] & 1)}
        return result


def our_links() -> list[str]:
    return sorted(name for name in links() if name.startswith(("td-", "tdv", "tdp")))


@pytest.fixture(scope="module")
def daemon(scratch_dir):
    before = our_links()
    with running_daemon(str(scratch_dir)) as process:
        yield process
    assert our_links() == before, "bridges or veths of the daemon's networks were left behind"


@pytest.fixture
def clean(daemon):
    """Each test ends with no container, no user network, and no td- bridge or tdv veth of ours."""
    before = our_links()
    yield daemon
    daemon.remove_all()
    for network in daemon.json("GET", f"{V}/networks"):
        if network["Name"] not in ("none", "host"):
            assert daemon.request("DELETE", f"{V}/networks/{network['Id']}")[0] == 204
    deadline = time.monotonic() + 10
    while our_links() != before and time.monotonic() < deadline:
        time.sleep(0.05)  # a veth's host end goes a moment after its namespace
    assert our_links() == before


def run(daemon, cmd, **config) -> tuple[int, str, str]:
    container_id = daemon.create(cmd, **config)
    status, _, body = daemon.request("POST", f"{V}/containers/{container_id}/start")
    if status != 204:
        return -1, "", json.loads(body)["message"]
    code = daemon.json("POST", f"{V}/containers/{container_id}/wait")["StatusCode"]
    _, _, body = daemon.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&stderr=1")
    frames = demultiplex(body)
    return (code, b"".join(p for s, p in frames if s == 1).decode(),
            b"".join(p for s, p in frames if s == 2).decode())


def test_predefined_networks(clean):
    networks = {n["Name"]: n for n in clean.json("GET", f"{V}/networks")}
    assert set(networks) == {"none", "host"}
    assert networks["none"]["Driver"] == "null" and networks["host"]["Driver"] == "host"
    assert clean.json("GET", f"{V}/networks/none")["Id"] == networks["none"]["Id"]
    assert clean.json("GET", f"{V}/networks/{networks['host']['Id'][:12]}")["Name"] == "host"
    status, _, body = clean.request("DELETE", f"{V}/networks/host")
    assert status == 409 and "pre-defined" in json.loads(body)["message"]
    status, _, body = clean.request("GET", f"{V}/networks/nosuch")
    assert status == 404 and json.loads(body)["message"] == "network nosuch not found"


def test_default_network_is_an_empty_namespace(clean):
    code, out, err = run(clean, ["sh", "-c", "ls /sys/class/net"])
    assert (code, out.split()) == (0, ["lo"]), err
    container = clean.json("GET", f"{V}/containers/json?all=1")[0]
    assert list(container["NetworkSettings"]["Networks"]) == ["none"]


def test_host_network_sees_the_host_interfaces(clean):
    code, out, err = run(clean, ["ls", "/sys/class/net"], HostConfig={"NetworkMode": "host"})
    assert code == 0, err
    assert set(out.split()) == set(os.listdir("/sys/class/net"))
    sleeper = clean.create(["sleep", "30"], name="onhost", HostConfig={"NetworkMode": "host"})
    assert clean.request("POST", f"{V}/containers/{sleeper}/start")[0] == 204
    assert clean.json("GET", f"{V}/networks/host")["Containers"][sleeper]["Name"] == "onhost"
    assert clean.json("GET", f"{V}/networks/none")["Containers"] == {}


def test_create_inspect_and_remove_a_network_makes_and_deletes_the_bridge(clean):
    created = clean.json("POST", f"{V}/networks/create", {"Name": "testnet", "Driver": "bridge"}, expect=201)
    network = clean.json("GET", f"{V}/networks/testnet")
    assert network["Id"] == created["Id"] and network["Driver"] == "bridge" and network["Scope"] == "local"
    [ipam] = network["IPAM"]["Config"]
    assert ipam["Subnet"].startswith("172.30.") and ipam["Subnet"].endswith(".0/24")
    assert ipam["Gateway"] == ipam["Subnet"].replace(".0/24", ".1")
    bridge = network["Options"]["com.docker.network.bridge.name"]
    assert bridge == "td-" + created["Id"][:12]
    link = links()[bridge]
    assert link["kind"] == "bridge" and link["up"] and f"{ipam['Gateway']}/24" in link["addresses"]
    status, _, body = clean.request("POST", f"{V}/networks/create", {"Name": "testnet"})
    assert status == 409 and json.loads(body)["message"] == "network with name testnet already exists"
    assert clean.request("DELETE", f"{V}/networks/testnet")[0] == 204
    assert bridge not in links()
    assert clean.request("GET", f"{V}/networks/testnet")[0] == 404


def test_two_networks_get_different_subnets_and_custom_subnet(clean):
    first = clean.json("POST", f"{V}/networks/create", {"Name": "n1"}, expect=201)
    second = clean.json("POST", f"{V}/networks/create", {"Name": "n2"}, expect=201)
    subnets = [clean.json("GET", f"{V}/networks/{n['Id']}")["IPAM"]["Config"][0]["Subnet"] for n in (first, second)]
    assert subnets[0] != subnets[1]
    custom = clean.json("POST", f"{V}/networks/create",
                        {"Name": "n3", "IPAM": {"Config": [{"Subnet": "172.30.200.0/24"}]}}, expect=201)
    assert clean.json("GET", f"{V}/networks/{custom['Id']}")["IPAM"]["Config"][0] == {
        "Subnet": "172.30.200.0/24", "Gateway": "172.30.200.1"}
    status, _, body = clean.request("POST", f"{V}/networks/create",
                                    {"Name": "n4", "IPAM": {"Config": [{"Subnet": "172.30.200.0/25"}]}})
    assert status == 409 and "overlaps" in json.loads(body)["message"]


def test_containers_on_a_user_network_reach_each_other(clean):
    clean.json("POST", f"{V}/networks/create", {"Name": "pingnet"}, expect=201)
    server = clean.create(["sleep", "60"], name="pinged", HostConfig={"NetworkMode": "pingnet"})
    assert clean.request("POST", f"{V}/containers/{server}/start")[0] == 204
    details = clean.json("GET", f"{V}/containers/pinged/json")
    settings = details["NetworkSettings"]["Networks"]["pingnet"]
    network = clean.json("GET", f"{V}/networks/pingnet")
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    assert settings["Gateway"] == gateway and settings["IPPrefixLen"] == 24
    assert settings["IPAddress"] == gateway[:-1] + "2"  # the first container gets .2
    assert settings["MacAddress"].startswith("02:42:")
    assert network["Containers"][server]["IPv4Address"] == settings["IPAddress"] + "/24"
    assert network["Containers"][server]["Name"] == "pinged"
    # the host end of its veth is on the bridge
    bridge_index = links()[network["Options"]["com.docker.network.bridge.name"]]["index"]
    assert [n for n, link in links().items() if n.startswith("tdv") and link["master"] == bridge_index]

    code, out, err = run(clean, ["sh", "-c", f"ip -o -4 addr show eth0; ip route; ping -c1 -W2 {settings['IPAddress']}"],
                         HostConfig={"NetworkMode": "pingnet"})
    assert code == 0, out + err
    assert gateway[:-1] + "3/24" in out  # the second container gets .3
    assert f"default via {gateway}" in out
    assert "1 packets received" in out

    status, _, body = clean.request("DELETE", f"{V}/networks/pingnet")
    assert status == 409 and "active endpoints" in json.loads(body)["message"]
    clean.request("POST", f"{V}/containers/{server}/kill")
    clean.json("POST", f"{V}/containers/{server}/wait")
    stopped = clean.json("GET", f"{V}/containers/pinged/json")["NetworkSettings"]["Networks"]["pingnet"]
    assert stopped["IPAddress"] == ""
    deadline = time.monotonic() + 10
    while [n for n in links() if n.startswith("tdv")] and time.monotonic() < deadline:
        time.sleep(0.05)
    # its veth went with its namespace: the network has no endpoint left and can go
    assert clean.json("GET", f"{V}/networks/pingnet")["Containers"] == {}
    assert clean.request("DELETE", f"{V}/networks/pingnet")[0] == 204


def test_no_route_outside_the_bridge(clean):
    clean.json("POST", f"{V}/networks/create", {"Name": "closed"}, expect=201)
    code, out, err = run(clean, ["ping", "-c1", "-W1", "10.255.255.1"], HostConfig={"NetworkMode": "closed"})
    assert code != 0, out


def test_unknown_network_fails_the_start_with_404_words(clean):
    code, _, message = run(clean, ["true"], HostConfig={"NetworkMode": "nosuchnet"})
    assert code == -1 and message == "network nosuchnet not found"
    status, _, body = clean.request("POST", f"{V}/containers/create",
                                    {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "container:x"}})
    assert status == 400 and "not supported" in json.loads(body)["message"]


def test_networks_survive_a_daemon_restart_and_prune(clean):
    created = clean.json("POST", f"{V}/networks/create", {"Name": "durable"}, expect=201)
    clean.restart()
    network = clean.json("GET", f"{V}/networks/durable")
    assert network["Id"] == created["Id"]
    code, out, err = run(clean, ["ip", "-o", "-4", "addr", "show", "eth0"], HostConfig={"NetworkMode": "durable"})
    assert code == 0 and network["IPAM"]["Config"][0]["Subnet"][:-4] + "2/24" in out, err
    pruned = clean.json("POST", f"{V}/networks/prune")
    assert pruned == {"NetworksDeleted": ["durable"]}
    assert network["Options"]["com.docker.network.bridge.name"] not in links()
