"""teachdock.lab.networks on the real kernel (chapter 08's by-hand network): namespaces, a veth
pair, a bridge joining three, masquerade to an outside namespace the test makes, a published
port by DNAT, the topology read back, a measured path, the DNS sniffer, and a cleanup that
leaves nothing.

The traffic rule: every packet here goes to loopback or to an address inside a namespace these
tests create. The lab's "Docker host" is itself a namespace (tdlab-host), so ip_forward and the
nftables rules change only there, and die with it.
"""

import subprocess
import sys
import time

import pytest

from teachdock.lab.networks import byhand, checks, dnswatch, measure, nft_text, topology

pytestmark = pytest.mark.root

HOST_FORWARD = "/proc/sys/net/ipv4/ip_forward"


@pytest.fixture
def clean_lab():
    """Start from nothing of the lab's, end with nothing, and never touch the host's forwarding."""
    byhand.cleanup()
    with open(HOST_FORWARD) as f:
        forward_before = f.read()
    try:
        yield
    finally:
        removed = byhand.cleanup()
        assert byhand.leftovers() == [], byhand.leftovers()
        with open(HOST_FORWARD) as f:
            assert f.read() == forward_before, "the host's ip_forward changed"
        assert removed is not None


def test_two_namespaces_and_a_veth_pair_ping(clean_lab):
    byhand.make_namespace("tdlab-red")
    byhand.make_namespace("tdlab-blue")
    byhand.veth_pair("tdlab-red", "eth0", "tdlab-blue", "eth0")
    byhand.add_address("tdlab-red", "eth0", "10.213.1.1/24")
    byhand.add_address("tdlab-blue", "eth0", "10.213.1.2/24")
    assert byhand.ping("tdlab-red", "10.213.1.2").ok
    [veth] = [link for link in byhand.links("tdlab-red") if link.kind == "veth"]
    assert veth.up and veth.addresses == ["10.213.1.1/24"] and veth.peer_elsewhere
    assert "10.213.1.0/24 dev eth0" in byhand.routes("tdlab-red")
    assert byhand.host_links() == []          # nothing was ever made in the host's namespace


def test_the_whole_lab_bridge_masquerade_and_dnat(clean_lab):
    byhand.build_lab(4)
    # the bridge joins three namespaces
    ports = sorted(link.name for link in byhand.links(byhand.HOST) if link.master == byhand.BRIDGE)
    assert ports == ["tdlab-v1", "tdlab-v2", "tdlab-v3"]
    assert byhand.ping("tdlab-c1", byhand.CONTAINERS["tdlab-c3"]).ok
    # the way out: the outside server sees the host's address, not the container's
    outside = byhand.whoami_server(byhand.OUTSIDE, 8000)
    answer = byhand.ask("tdlab-c2", byhand.OUTSIDE_ADDRESS, 8000)
    assert answer.startswith(f"you are {byhand.HOST_OUTSIDE_ADDRESS}:"), answer
    byhand.stop(outside)
    # a published port: the container answers, and sees the real client
    inside = byhand.whoami_server("tdlab-c1", 80)
    answer = byhand.ask(byhand.OUTSIDE, byhand.HOST_OUTSIDE_ADDRESS, 8080)
    assert f"you are {byhand.OUTSIDE_ADDRESS}:" in answer and "I am 10.213.0.11:80" in answer, answer
    byhand.stop(inside)
    # the kernel holds exactly the rules the lab wrote
    table = nft_text.list_table(byhand.HOST)
    assert "masquerade" in table and "dnat to 10.213.0.11:80" in table
    assert byhand.sysctl(byhand.HOST, "net.ipv4.ip_forward") == "1"


def test_without_masquerade_the_outside_cannot_answer(clean_lab):
    byhand.build_lab(2)
    byhand.make_namespace(byhand.OUTSIDE)
    byhand.veth_pair(byhand.HOST, byhand.UPLINK, byhand.OUTSIDE, "eth0")
    byhand.add_address(byhand.HOST, byhand.UPLINK, f"{byhand.HOST_OUTSIDE_ADDRESS}/24")
    byhand.add_address(byhand.OUTSIDE, "eth0", f"{byhand.OUTSIDE_ADDRESS}/24")
    server = byhand.whoami_server(byhand.OUTSIDE, 8000, count=3)
    assert "unreachable" in byhand.ask("tdlab-c1", byhand.OUTSIDE_ADDRESS, 8000, wait=1).lower()
    byhand.add_default_route("tdlab-c1", byhand.GATEWAY)
    byhand.sysctl(byhand.HOST, "net.ipv4.ip_forward", "1")
    assert not byhand.ask("tdlab-c1", byhand.OUTSIDE_ADDRESS, 8000, wait=1).startswith("you are")
    nft_text.apply(byhand.HOST, nft_text.masquerade(byhand.SUBNET, byhand.BRIDGE))
    assert byhand.ask("tdlab-c1", byhand.OUTSIDE_ADDRESS, 8000).startswith(f"you are {byhand.HOST_OUTSIDE_ADDRESS}:")
    byhand.stop(server)


def test_topology_reads_the_lab_back(clean_lab):
    byhand.build_lab(3)
    model = topology.snapshot(topology.lab_sources(), topology.lab_rule_sources())
    assert model.ports[(byhand.HOST, byhand.BRIDGE)] == ["tdlab-v1", "tdlab-v2", "tdlab-v3"]
    peer = model.peer_of("tdlab-c2", "eth0")
    assert (peer.namespace, peer.link.name) == (byhand.HOST, "tdlab-v2")
    assert model.peer_of("tdlab-red", "eth0").namespace == "tdlab-blue"
    assert not model.loose
    assert [chain for _, chain, _ in model.rules] == ["postrouting"]


def test_the_exercise_checks_on_real_state(clean_lab):
    byhand.build_lab(4)
    assert "make_namespace" in checks.check_fourth_namespace().message
    byhand.make_namespace(checks.FOURTH)
    byhand.veth_pair(byhand.HOST, "tdlab-v4", checks.FOURTH, "eth0")
    byhand.add_address(checks.FOURTH, "eth0", "10.213.0.14/24")
    assert "not a port" in checks.check_fourth_namespace().message
    byhand.enslave(byhand.HOST, "tdlab-v4", byhand.BRIDGE)
    assert checks.check_fourth_namespace().passed
    assert "No rule" in checks.check_published_by_hand().message
    nft_text.apply(byhand.HOST, nft_text.publish(byhand.HOST_OUTSIDE_ADDRESS, 9090, "10.213.0.12", 80))
    assert checks.check_published_by_hand().passed


def test_a_measured_path_and_loopback(clean_lab):
    byhand.build_lab(2)
    bridge = measure.measure_path("bridge", "tdlab-c1", "tdlab-c2", "10.213.0.11", 5001, count=200, megabytes=4)
    loopback = measure.measure_path("loopback", None, None, "127.0.0.1", measure.free_port(), count=200,
                                    megabytes=4)
    for result in (bridge, loopback):
        assert 0 < result.round_trip_us < 100_000 and result.throughput_mb_s > 0


def test_the_sniffer_sees_a_lookup_and_its_answer(clean_lab):
    byhand.make_namespace("tdlab-dns")
    resolver = (
        "import socket, struct\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.11', 53))\n"
        "for _ in range(2):\n"
        "    q, a = s.recvfrom(512); end = 12 + q[12:].index(0) + 5\n"
        "    rr = b'\\xc0\\x0c' + struct.pack('!2HIH', 1, 1, 60, 4) + bytes([172, 30, 0, 2])\n"
        "    ok = q[end - 4:end - 2] == b'\\x00\\x01'\n"
        "    s.sendto(q[:2] + b'\\x81\\x80' + struct.pack('!4H', 1, int(ok), 0, 0) + q[12:end] + (rr if ok else b''), a)\n"
    )
    watch = dnswatch.watch("tdlab-dns", 3)
    server = byhand.start_in("tdlab-dns", [sys.executable, "-c", resolver])
    time.sleep(0.3)
    lookup = byhand.run_in("tdlab-dns", [byhand.busybox(), "nslookup", "tdlab-api", "127.0.0.11"])
    packets = watch.packets()
    byhand.stop(server)
    assert "172.30.0.2" in lookup.stdout, lookup
    answers = [p for p in packets if p["response"] and p["answers"]]
    assert answers and answers[0]["answers"][0]["value"] == "172.30.0.2", packets
    assert any(not p["response"] and p["questions"][0]["name"] == "tdlab-api" for p in packets)


def test_cleanup_stops_processes_that_hold_a_namespace(clean_lab):
    byhand.make_namespace("tdlab-hold")
    process = byhand.start_in("tdlab-hold", ["sleep", "60"])
    assert byhand.leftovers() == ["namespace tdlab-hold", f"process {process.pid}"]
    removed = byhand.cleanup()
    assert f"process {process.pid}" in removed and "namespace tdlab-hold" in removed
    assert process.poll() is not None
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count("tdlab-") == 0
