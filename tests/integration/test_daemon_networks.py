"""teachdockd's networks over the Engine API: the default bridge, none, host, container:NAME, user
bridges, connect/disconnect, IPAM, and what a restart and a removal leave.

One daemon per module (tests/support/daemons.py), with its own default bridge (``--bridge``,
``--bip``, so daemons side by side never share addresses). The tests look at the kernel with
pyroute2 (the bridges, their addresses, the host ends of the veths, the interfaces inside a
container's namespace) and run busybox inside the containers (``ip``, ``ping``), so a network
that is only a JSON record fails them. Traffic goes only between the test's own containers.
Every test checks that no bridge or veth of its own remains. The Firewall (isolation, NAT,
ports) and the Resolver are other branches' modules: tests/integration/test_daemon_network_wiring.py
checks the calls to them with recording fakes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.parse

import pytest

from teachdock.image.images import Images
from tests.support.daemons import demultiplex, running_daemon

pyroute2 = pytest.importorskip("pyroute2", reason="the network tests read links with pyroute2")

pytestmark = [pytest.mark.root]

V = "/v1.45"


def links() -> dict[str, dict]:
    """Host links by name: {"td-...": {"kind": "bridge", "master": index, "index": n, "addresses": [...]}}."""
    with pyroute2.IPRoute() as ipr:
        return _links(ipr)


def _links(ipr) -> dict[str, dict]:
    addresses = {}
    for address in ipr.get_addr(family=2):
        addresses.setdefault(address["index"], []).append(f"{address.get_attr('IFA_ADDRESS')}/{address['prefixlen']}")
    result = {}
    for link in ipr.get_links():
        info = link.get_attr("IFLA_LINKINFO")
        result[link.get_attr("IFLA_IFNAME")] = {
            "index": link["index"], "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
            "master": link.get_attr("IFLA_MASTER"), "addresses": addresses.get(link["index"], []),
            "up": bool(link["flags"] & 1), "mac": link.get_attr("IFLA_ADDRESS")}
    return result


def inside(pid: int) -> dict[str, dict]:
    """The links of a container's network namespace, read through netlink from the host."""
    with pyroute2.NetNS(f"/proc/{pid}/ns/net") as ns:
        found = _links(ns)
        found["routes"] = [(r["dst_len"], r.get_attr("RTA_GATEWAY")) for r in ns.get_routes(family=2)
                           if r.get_attr("RTA_GATEWAY")]
        return found


BRIDGES_SEEN: set[str] = set()  # the user networks' bridges (other daemons, other tests run beside these)


def our_links() -> list[str]:
    """This module's networks' bridges still there, and the veths on any of them."""
    found = links()
    ours = BRIDGES_SEEN & set(found)
    indexes = {found[name]["index"] for name in ours}
    return sorted(ours | {name for name, link in found.items() if link["master"] in indexes})


def make_network(daemon, name: str, **body) -> dict:
    """``docker network create``, its bridge remembered for the leak checks."""
    created = daemon.json("POST", f"{V}/networks/create", {"Name": name, **body}, expect=201)
    BRIDGES_SEEN.add("td-" + created["Id"][:12])
    return created


@pytest.fixture(scope="module")
def daemon(scratch_dir):
    with running_daemon(str(scratch_dir)) as process:
        yield process
    assert our_links() == [], "bridges or veths of the daemon's networks were left behind"
    assert process.bridge not in links()


@pytest.fixture
def clean(daemon):
    """Each test ends with no container, no user network, no bridge or veth of ours, no lease."""
    yield daemon
    daemon.remove_all()
    for network in daemon.json("GET", f"{V}/networks"):
        if network["Name"] not in ("bridge", "none", "host"):
            assert daemon.request("DELETE", f"{V}/networks/{network['Id']}")[0] == 204
    deadline = time.monotonic() + 10
    while (our_links() or pyroute2_ports(daemon.bridge)) and time.monotonic() < deadline:
        time.sleep(0.05)  # a veth's host end goes a moment after its namespace
    assert our_links() == []
    assert not list((daemon.data_root / "daemon" / "networks" / "leases").glob("*.json")), "leases left"
    assert pyroute2_ports(daemon.bridge) == []


def pyroute2_ports(bridge: str) -> list[str]:
    all_links = links()
    index = all_links[bridge]["index"] if bridge in all_links else None
    return [name for name, link in all_links.items() if index is not None and link["master"] == index]


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


def started(daemon, name: str, network: str | None = None, **config) -> dict:
    """A sleeping container, started; its inspect."""
    if network:
        config.setdefault("HostConfig", {})["NetworkMode"] = network
    container_id = daemon.create(["sleep", "60"], name=name, **config)
    status, _, body = daemon.request("POST", f"{V}/containers/{container_id}/start")
    assert status == 204, body
    return daemon.json("GET", f"{V}/containers/{container_id}/json")


def error(daemon, method, path, body=None) -> tuple[int, str]:
    status, _, data = daemon.request(method, path, body)
    return status, json.loads(data)["message"] if data else ""


# --- the predefined networks ---------------------------------------------------------------------------
def test_predefined_networks(clean):
    networks = {n["Name"]: n for n in clean.json("GET", f"{V}/networks")}
    assert set(networks) == {"bridge", "none", "host"}
    assert networks["none"]["Driver"] == "null" and networks["host"]["Driver"] == "host"
    bridge = networks["bridge"]
    assert bridge["Driver"] == "bridge" and bridge["IPAM"]["Config"] == [
        {"Subnet": clean.bip.replace(".1/24", ".0/24"), "Gateway": clean.bip.split("/")[0]}]
    assert bridge["Options"]["com.docker.network.bridge.name"] == clean.bridge
    assert bridge["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    link = links()[clean.bridge]
    assert link["kind"] == "bridge" and link["up"] and clean.bip in link["addresses"]
    assert clean.json("GET", f"{V}/networks/{networks['host']['Id'][:12]}")["Name"] == "host"
    for name in ("host", "bridge"):
        status, message = error(clean, "DELETE", f"{V}/networks/{name}")
        assert status == 403 and message == f"{name} is a pre-defined network and cannot be removed"
    assert error(clean, "GET", f"{V}/networks/nosuch") == (404, "network nosuch not found")


def test_run_joins_the_default_bridge_as_with_dockerd(clean):
    gateway = clean.bip.split("/")[0]
    code, out, err = run(clean, ["sh", "-c", "ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; "
                                 f"ping -c1 -W1 {gateway}"])
    assert code == 0, out + err
    address = gateway[:-1] + "2"
    assert f"inet {address}/24" in out and f"default via {gateway} dev eth0" in out
    assert "1 packets received" in out  # the gateway, on the host's end of the bridge
    record = clean.json("GET", f"{V}/containers/json?all=1")[0]
    assert f"{address}\t{record['Id'][:12]}" in out  # /etc/hosts names the container's own address
    assert "nameserver " in out and "127.0.0.11" not in out  # the host's resolvers, as on docker0
    assert record["HostConfig"]["NetworkMode"] == "bridge" and list(record["NetworkSettings"]["Networks"]) == ["bridge"]

    details = started(clean, "web")
    settings = details["NetworkSettings"]
    second = gateway[:-1] + "3"  # the first container still holds .2 until it is removed
    assert settings["IPAddress"] == second and settings["Gateway"] == gateway and settings["IPPrefixLen"] == 24
    assert settings["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in second.split("."))
    endpoint = settings["Networks"]["bridge"]
    assert endpoint["IPAddress"] == second and len(endpoint["EndpointID"]) == 64
    assert endpoint["NetworkID"] == clean.json("GET", f"{V}/networks/bridge")["Id"] and endpoint["Aliases"] is None
    eth0 = inside(details["State"]["Pid"])["eth0"]
    assert eth0["mac"] == settings["MacAddress"] and f"{second}/24" in eth0["addresses"]
    assert clean.json("GET", f"{V}/networks/bridge")["Containers"][details["Id"]]["IPv4Address"] == f"{second}/24"
    assert len(pyroute2_ports(clean.bridge)) == 1  # its veth's host end is on the bridge
    clean.request("DELETE", f"{V}/containers/{details['Id']}?force=1")
    assert clean.json("GET", f"{V}/networks/bridge")["Containers"] == {}
    deadline = time.monotonic() + 10
    while pyroute2_ports(clean.bridge) and time.monotonic() < deadline:
        time.sleep(0.02)  # the kernel deletes the veth with the namespace, a moment after
    assert pyroute2_ports(clean.bridge) == []


def test_none_and_host(clean):
    code, out, err = run(clean, ["ls", "/sys/class/net"], HostConfig={"NetworkMode": "none"})
    assert (code, out.split()) == (0, ["lo"]), err
    code, out, err = run(clean, ["ls", "/sys/class/net"], HostConfig={"NetworkMode": "host"})
    assert code == 0 and {"lo", "eth0", clean.bridge} <= set(out.split()), err  # (others come and go)
    on_host = started(clean, "onhost", "host")
    assert clean.json("GET", f"{V}/networks/host")["Containers"][on_host["Id"]]["Name"] == "onhost"
    assert clean.json("GET", f"{V}/networks/none")["Containers"] == {}
    status, _, body = clean.request("POST", f"{V}/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "host",
                                                            "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}})
    assert status == 201  # as dockerd: the ports are dropped, with a warning
    assert json.loads(body)["Warnings"] == ["Published ports are discarded when using host network mode"]
    status, message = error(clean, "POST", f"{V}/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "container:onhost",
                                                            "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}})
    assert (status, message) == (400, "conflicting options: port publishing and the container type network mode")


def test_container_network_mode_joins_the_other_namespace(clean):
    target = started(clean, "target")
    code, out, err = run(clean, ["ip", "-o", "-4", "addr", "show", "eth0"], HostConfig={"NetworkMode": "container:target"})
    assert code == 0 and target["NetworkSettings"]["IPAddress"] + "/24" in out, out + err
    joined = [c for c in clean.json("GET", f"{V}/containers/json?all=1") if c["Id"] != target["Id"]]
    assert joined[0]["NetworkSettings"]["Networks"] == {}
    assert joined[0]["HostConfig"]["NetworkMode"] == "container:target"
    assert len(pyroute2_ports(clean.bridge)) == 1  # no veth of its own
    code, _, message = run(clean, ["true"], HostConfig={"NetworkMode": "container:nosuch"})
    assert (code, message) == (-1, "No such container: nosuch")
    clean.request("POST", f"{V}/containers/target/kill")
    clean.json("POST", f"{V}/containers/target/wait")
    code, _, message = run(clean, ["true"], HostConfig={"NetworkMode": "container:target"})
    assert code == -1 and message.startswith("cannot join network namespace of a non running container")


# --- user networks -----------------------------------------------------------------------------------
def test_create_inspect_and_remove_a_network_makes_and_deletes_the_bridge(clean):
    created = make_network(clean, "testnet", Labels={"course": "08"})
    network = clean.json("GET", f"{V}/networks/testnet")
    assert network["Id"] == created["Id"] and network["Driver"] == "bridge" and network["Scope"] == "local"
    assert network["Labels"] == {"course": "08"}
    [ipam] = network["IPAM"]["Config"]
    assert ipam["Subnet"].startswith("172.30.") and ipam["Subnet"].endswith(".0/24")
    assert ipam["Gateway"] == ipam["Subnet"].replace(".0/24", ".1")
    assert "com.docker.network.bridge.name" not in network["Options"]  # as dockerd: only options given at create
    bridge = "td-" + created["Id"][:12]
    link = links()[bridge]
    assert link["kind"] == "bridge" and link["up"] and f"{ipam['Gateway']}/24" in link["addresses"]
    assert clean.json("GET", f"{V}/networks/{created['Id'][:5]}")["Name"] == "testnet"  # an id prefix
    assert [n["Name"] for n in clean.json("GET", f"{V}/networks?filters=" + urllib.parse.quote(json.dumps({"label": ["course=08"]})))] \
        == ["testnet"]
    assert error(clean, "POST", f"{V}/networks/create", {"Name": "testnet"}) == (
        409, "network with name testnet already exists")
    assert clean.request("DELETE", f"{V}/networks/testnet")[0] == 204
    assert bridge not in links()
    assert clean.request("GET", f"{V}/networks/testnet")[0] == 404


def test_subnets_gateways_ranges_and_bad_input_leave_nothing(clean):
    first = make_network(clean, "n1")
    second = make_network(clean, "n2")
    subnets = [clean.json("GET", f"{V}/networks/{n['Id']}")["IPAM"]["Config"][0]["Subnet"] for n in (first, second)]
    assert subnets[0] != subnets[1]
    custom = make_network(clean, "n3", IPAM={"Config": [
        {"Subnet": "172.30.200.0/24", "Gateway": "172.30.200.254", "IPRange": "172.30.200.128/25"}]})
    assert clean.json("GET", f"{V}/networks/{custom['Id']}")["IPAM"]["Config"][0] == {
        "Subnet": "172.30.200.0/24", "Gateway": "172.30.200.254", "IPRange": "172.30.200.128/25"}
    code, out, err = run(clean, ["ip", "-o", "-4", "addr", "show", "eth0"], HostConfig={"NetworkMode": "n3"})
    assert code == 0 and "172.30.200.129/24" in out, out + err
    for body, expected in [
            ({"Name": "n4", "IPAM": {"Config": [{"Subnet": "172.30.200.0/25"}]}},
             (409, "Pool overlaps with other one on this address space")),
            ({"Name": "n4", "IPAM": {"Config": [{"Subnet": "172.30.300.0/24"}]}},
             (400, "Invalid subnet 172.30.300.0/24 : invalid CIDR address: 172.30.300.0/24")),
            ({"Name": "n4", "IPAM": {"Config": [{"Subnet": "10.99.0.0/24", "Gateway": "10.98.0.1"}]}},
             (400, "no matching subnet for gateway 10.98.0.1")),
            ({"Name": "n1"}, (409, "network with name n1 already exists")),
            ({"Name": "bad name"}, (400, None))]:
        status, message = error(clean, "POST", f"{V}/networks/create", body)
        assert status == expected[0] and (expected[1] is None or message == expected[1]), message
    made = {a.split("/")[0] for link in links().values() for a in link["addresses"]}
    assert not made & {"172.30.200.1", "172.30.300.1", "10.99.0.1", "10.98.0.1"}  # no bridge for what was refused
    assert [n["Name"] for n in clean.json("GET", f"{V}/networks")].count("n4") == 0


def test_containers_on_a_user_network_reach_each_other_and_keep_their_address(clean):
    make_network(clean, "pingnet")
    server = started(clean, "pinged", "pingnet")
    network = clean.json("GET", f"{V}/networks/pingnet")
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    settings = server["NetworkSettings"]["Networks"]["pingnet"]
    assert settings["Gateway"] == gateway and settings["IPAddress"] == gateway[:-1] + "2"
    assert server["NetworkSettings"]["IPAddress"] == ""  # the top-level fields are the default bridge's
    assert settings["DNSNames"] == ["pinged", server["Id"][:12]]
    assert network["Containers"][server["Id"]] == {
        "Name": "pinged", "EndpointID": settings["EndpointID"], "MacAddress": settings["MacAddress"],
        "IPv4Address": settings["IPAddress"] + "/24", "IPv6Address": ""}
    code, out, err = run(clean, ["sh", "-c", f"ip route; cat /etc/resolv.conf; ping -c1 -W1 {settings['IPAddress']}"],
                         HostConfig={"NetworkMode": "pingnet"})
    assert code == 0 and f"default via {gateway}" in out and "1 packets received" in out, out + err

    assert error(clean, "DELETE", f"{V}/networks/pingnet") == (
        409, f"error while removing network: network pingnet id {network['Id']} has active endpoints")
    clean.request("POST", f"{V}/containers/pinged/stop?t=0")
    assert clean.json("GET", f"{V}/containers/pinged/json")["NetworkSettings"]["Networks"]["pingnet"]["IPAddress"] == ""
    assert clean.json("GET", f"{V}/networks/pingnet")["Containers"] == {}
    assert clean.request("POST", f"{V}/containers/pinged/start")[0] == 204  # its lease: the same address again
    again = clean.json("GET", f"{V}/containers/pinged/json")["NetworkSettings"]["Networks"]["pingnet"]
    assert again["IPAddress"] == settings["IPAddress"] and again["EndpointID"] != settings["EndpointID"]


def test_containers_on_different_networks_cannot_reach_each_other(clean):
    make_network(clean, "left")
    make_network(clean, "right")
    target = started(clean, "lefty", "left")["NetworkSettings"]["Networks"]["left"]["IPAddress"]
    code, out, _ = run(clean, ["ping", "-c1", "-W1", target], HostConfig={"NetworkMode": "left"})
    assert code == 0, out  # the same network: it answers
    code, out, _ = run(clean, ["ping", "-c1", "-W1", target], HostConfig={"NetworkMode": "right"})
    assert code != 0 and "0 packets received" in out, out  # routed through the host, dropped by the firewall


def test_internal_network_has_no_default_route(clean):
    make_network(clean, "closed", Internal=True)
    assert clean.json("GET", f"{V}/networks/closed")["Internal"] is True
    details = started(clean, "shut", "closed")
    assert inside(details["State"]["Pid"])["routes"] == []
    assert details["NetworkSettings"]["Networks"]["closed"]["Gateway"] == ""


def test_unknown_network_is_a_404_at_start_as_with_dockerd(clean):
    code, _, message = run(clean, ["true"], HostConfig={"NetworkMode": "nosuchnet"})
    assert (code, message) == (-1, "network nosuchnet not found")
    assert not list((clean.data_root / "daemon" / "networks" / "leases").glob("*.json"))


# --- connect and disconnect ------------------------------------------------------------------------------
def test_connect_and_disconnect_a_running_container_live(clean):
    make_network(clean, "front")
    back = make_network(clean, "back", IPAM={"Config": [{"Subnet": "172.30.201.0/24"}]})
    details = started(clean, "app", "front")
    pid = details["State"]["Pid"]
    assert set(inside(pid)) - {"routes"} == {"lo", "eth0"}
    assert clean.request("POST", f"{V}/networks/{back['Id'][:12]}/connect", {
        "Container": "app", "EndpointConfig": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "172.30.201.50"}}})[0] == 200
    now = inside(pid)
    assert "172.30.201.50/24" in now["eth1"]["addresses"]
    front_gateway = clean.json("GET", f"{V}/networks/front")["IPAM"]["Config"][0]["Gateway"]
    assert now["routes"] == [(0, front_gateway)]  # the way out stays with the first network
    shown = clean.json("GET", f"{V}/containers/app/json")["NetworkSettings"]["Networks"]["back"]
    assert shown["IPAddress"] == "172.30.201.50" and shown["Aliases"] == ["db"]
    assert shown["IPAMConfig"] == {"IPv4Address": "172.30.201.50"}
    assert shown["DNSNames"] == ["app", "db", details["Id"][:12]]
    assert details["Id"] in clean.json("GET", f"{V}/networks/back")["Containers"]
    status, message = error(clean, "POST", f"{V}/networks/back/connect", {"Container": "app"})
    assert (status, message) == (403, "endpoint with name app already exists in network back")
    # a second container on back pings the first over eth1
    code, out, err = run(clean, ["ping", "-c1", "-W1", "172.30.201.50"], HostConfig={"NetworkMode": "back"})
    assert code == 0, out + err
    # disconnect the first network: eth0 goes, the default route moves to back
    assert clean.request("POST", f"{V}/networks/front/disconnect", {"Container": "app"})[0] == 200
    now = inside(pid)
    assert set(now) - {"routes"} == {"lo", "eth1"} and now["routes"] == [(0, "172.30.201.1")]
    assert list(clean.json("GET", f"{V}/containers/app/json")["NetworkSettings"]["Networks"]) == ["back"]
    status, message = error(clean, "POST", f"{V}/networks/front/disconnect", {"Container": "app"})
    assert status == 403 and message == f"container {details['Id']} is not connected to the network front"
    assert error(clean, "POST", f"{V}/networks/host/connect", {"Container": "app"})[0] == 403


def test_connect_a_created_container_and_several_networks_at_create(clean):
    make_network(clean, "one")
    make_network(clean, "two")
    both = clean.create(["sleep", "60"], name="both", HostConfig={"NetworkMode": "one"},
                        NetworkingConfig={"EndpointsConfig": {"one": {"Aliases": ["first"]}, "two": {}}})
    later = clean.create(["sleep", "60"], name="later")
    assert clean.request("POST", f"{V}/networks/two/connect", {"Container": "later"})[0] == 200
    assert list(clean.json("GET", f"{V}/containers/later/json")["NetworkSettings"]["Networks"]) == ["bridge", "two"]
    for container_id in (both, later):
        assert clean.request("POST", f"{V}/containers/{container_id}/start")[0] == 204
    both_inside = inside(clean.json("GET", f"{V}/containers/both/json")["State"]["Pid"])
    later_inside = inside(clean.json("GET", f"{V}/containers/later/json")["State"]["Pid"])
    assert {"eth0", "eth1"} <= set(both_inside) and {"eth0", "eth1"} <= set(later_inside)
    one = clean.json("GET", f"{V}/networks/one")["IPAM"]["Config"][0]["Subnet"][:-4]
    two = clean.json("GET", f"{V}/networks/two")["IPAM"]["Config"][0]["Subnet"][:-4]
    assert any(a.startswith(one) for a in both_inside["eth0"]["addresses"])
    assert any(a.startswith(two) for a in both_inside["eth1"]["addresses"])
    assert any(a.startswith(clean.bip[:-5]) for a in later_inside["eth0"]["addresses"])
    assert any(a.startswith(two) for a in later_inside["eth1"]["addresses"])
    assert clean.json("GET", f"{V}/containers/both/json")["NetworkSettings"]["Networks"]["one"]["Aliases"] == ["first"]
    status, message = error(clean, "POST", f"{V}/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}}})
    assert (status, message) == (400, "network-scoped alias is supported only for containers in user defined networks")


# --- restart, prune, nothing left ----------------------------------------------------------------------
def test_kill_9_and_restart_keep_networks_and_addresses_and_sweep_the_gone(clean):
    created = make_network(clean, "durable")
    keeper = started(clean, "keeper", "durable")
    address = keeper["NetworkSettings"]["Networks"]["durable"]["IPAddress"]
    ghost = clean.create(["true"], name="ghost", HostConfig={"NetworkMode": "durable"})
    assert clean.request("POST", f"{V}/containers/{ghost}/start")[0] == 204
    clean.json("POST", f"{V}/containers/{ghost}/wait")
    leases = clean.data_root / "daemon" / "networks" / "leases" / f"{created['Id']}.json"
    assert set(json.loads(leases.read_text())) == {keeper["Id"], ghost}
    os.kill(clean.pid, signal.SIGKILL)
    clean.process.wait()
    clean.process = None
    # the container "ghost" disappears while no daemon runs (a crash in the middle of its rm)
    Images(clean.data_root).release(ghost)
    shutil.rmtree(clean.data_root / "daemon" / "containers" / ghost)
    clean.start()
    assert clean.json("GET", f"{V}/networks/durable")["Id"] == created["Id"]
    again = clean.json("GET", f"{V}/containers/keeper/json")
    assert again["State"]["Running"] and again["NetworkSettings"]["Networks"]["durable"]["IPAddress"] == address
    assert set(json.loads(leases.read_text())) == {keeper["Id"]}  # ghost's lease was swept
    code, out, err = run(clean, ["ping", "-c1", "-W1", address], HostConfig={"NetworkMode": "durable"})
    assert code == 0, out + err
    clean.request("DELETE", f"{V}/containers/keeper?force=1")
    assert clean.json("POST", f"{V}/networks/prune") == {"NetworksDeleted": ["durable"]}
    assert f"td-{created['Id'][:12]}" not in links()
    assert clean.bridge in links()  # the default bridge stays, as docker0 does


def test_two_hundred_runs_on_the_default_bridge_leave_nothing(clean):
    """Fewer than 200 here (the lead's soak runs 200): each --rm run frees its veth and its lease."""
    for _ in range(20):
        container_id = clean.create(["true"], HostConfig={"AutoRemove": True})
        assert clean.request("POST", f"{V}/containers/{container_id}/start")[0] == 204
        status, _, _ = clean.request("POST", f"{V}/containers/{container_id}/wait?condition=removed")
        assert status in (200, 404)  # 404: removed already
    deadline = time.monotonic() + 10
    while pyroute2_ports(clean.bridge) and time.monotonic() < deadline:
        time.sleep(0.02)  # the last one's veth goes with its namespace, a moment after
    assert pyroute2_ports(clean.bridge) == []
    assert not list((clean.data_root / "daemon" / "networks" / "leases").glob("*.json"))


# --- end to end, with the daemon's real Firewall and Resolver ------------------------------------------
def wait_for(probe, seconds: float = 10.0):
    """``probe()`` until it returns something true (a server in a container takes a moment to listen)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = probe()
            if result:
                return result
        except OSError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return probe()
        time.sleep(0.1)


def test_containers_on_a_user_network_find_each_other_by_name_alias_and_short_id(clean):
    make_network(clean, "names")
    make_network(clean, "elsewhere")
    db = started(clean, "db", "names", NetworkingConfig={"EndpointsConfig": {"names": {"Aliases": ["database"]}}})
    address = db["NetworkSettings"]["Networks"]["names"]["IPAddress"]
    for name in ("db", "database", db["Id"][:12]):
        code, out, err = run(clean, ["nslookup", name], HostConfig={"NetworkMode": "names"})
        assert code == 0 and "127.0.0.11" in out and address in out, (name, out, err)
    code, out, _ = run(clean, ["ping", "-c1", "-W2", "db"], HostConfig={"NetworkMode": "names"})
    assert code == 0 and f"({address})" in out, out
    code, out, _ = run(clean, ["nslookup", "db"], HostConfig={"NetworkMode": "elsewhere"})
    assert code != 0 and address not in out, out  # names of other networks are not visible
    outsider = started(clean, "outsider", "elsewhere")
    assert clean.request("POST", f"{V}/networks/names/connect", {"Container": outsider["Id"]})[0] == 200
    _, _, body = clean.request("POST", f"{V}/containers/{outsider['Id']}/exec",
                               {"Cmd": ["ping", "-c1", "-W2", "db"], "AttachStdout": True, "AttachStderr": True})
    exec_id = json.loads(body)["Id"]
    _, _, output = clean.request("POST", f"{V}/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    assert "1 packets received" in b"".join(p for _, p in demultiplex(output)).decode()  # connected: now it can


def test_a_published_port_answers_on_the_hosts_loopback(clean):
    import urllib.request  # noqa: PLC0415

    server = clean.create(["sh", "-c", "mkdir -p /www && echo hello from the container > /www/index.html && "
                                       "exec httpd -f -p 80 -h /www"], name="web",
                          HostConfig={"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}})
    assert clean.request("POST", f"{V}/containers/{server}/start")[0] == 204
    ports = clean.json("GET", f"{V}/containers/{server}/json")["NetworkSettings"]["Ports"]["80/tcp"]
    assert ports[0]["HostIp"] == "127.0.0.1" and int(ports[0]["HostPort"]) > 0
    url = f"http://127.0.0.1:{ports[0]['HostPort']}/"
    body = wait_for(lambda: urllib.request.urlopen(url, timeout=2).read())
    assert body == b"hello from the container\n"


def test_the_way_out_is_masqueraded(clean, tmp_path):
    """An "outside" network namespace of the test's own, routed from the host: a container on the
    default bridge reaches a server there, which sees the host's address, not the container's."""
    import subprocess  # noqa: PLC0415

    outside, host_end = f"tdout{os.getpid() % 100000}", f"tdo{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", outside], check=True)
    try:
        subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", outside],
                       check=True)
        subprocess.run(["ip", "addr", "add", "198.51.100.1/24", "dev", host_end], check=True)
        subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
        for command in (["ip", "addr", "add", "198.51.100.2/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                        ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", outside, *command], check=True)
        server_code = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
                       "s.bind(('198.51.100.2', 9009)); s.listen(1); s.settimeout(20); c, peer = s.accept();"
                       "c.sendall(b'seen you\\n'); c.close(); print(peer[0])")
        server = subprocess.Popen(["ip", "netns", "exec", outside, "python3", "-c", server_code],
                                  stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            code, out, err = run(clean, ["sh", "-c", "echo hi | nc -w 5 198.51.100.2 9009; ip -o -4 addr show eth0"])
            seen_from = server.communicate(timeout=30)[0].strip()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert code == 0 and "seen you" in out, out + err
        assert seen_from == "198.51.100.1", seen_from  # the host's address: masqueraded
        assert f"inet {seen_from}/" not in out
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", outside], capture_output=True)
