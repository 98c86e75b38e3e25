"""The firewall with real traffic: masquerade, published ports (127.0.0.1 too, UDP too), isolation,
--internal, and a teardown that leaves nothing.

Each test builds its own small world with `ip` (the engine uses pyroute2; tests may use `ip`)::

    ns ctA  (10.251.1.2) ─┐                       ┌─ ns out (10.251.9.2): "the internet",
    ns ctA2 (10.251.1.3) ─┤ bridge A 10.251.1.1   │  routed from the host, knowing no
    ns ctB  (10.251.2.2) ── bridge B 10.251.2.1   │  container subnet: only masquerade
    ns ctI  (10.251.3.2) ── bridge I 10.251.3.1   │  gets an answer back to a container
                            (internal)   host ────┘ 10.251.9.1

The traffic rule: every packet goes to loopback or to an address inside these namespaces
(or to the host-side addresses of the links this test made).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading

import pytest

from teachdock.daemon.firewall import IP_FORWARD, Firewall
from teachdock.daemon.nftables import Nftables
from teachdock.daemon.ports import PortBinding, release, reserve

pytestmark = [pytest.mark.root]

SERVER = r"""
import socket, sys
proto, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:                      # answer every client with the address it came from
    if proto == "tcp":
        c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()
    else:
        data, peer = s.recvfrom(100); s.sendto(peer[0].encode(), peer)
"""

CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(1.5)
try:
    if proto == "tcp":
        s.connect((host, port)); print(s.recv(100).decode())
    else:
        s.sendto(b"hi", (host, port)); print(s.recvfrom(100)[0].decode())
except OSError as e:
    print("failed:", type(e).__name__)
"""


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def ask(namespace: str | None, proto: str, host: str, port: int) -> str:
    """What a client in ``namespace`` (None: the host) gets back from host:port: the server's view of it."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run([*prefix, sys.executable, "-c", CLIENT, proto, host, str(port)],
                          capture_output=True, text=True, timeout=10).stdout.strip()


class World:
    """The topology above, the processes started in it, and how to take it all down."""

    def __init__(self):
        tag = secrets.token_hex(2)
        self.tag = tag
        self.bridges = {name: f"tdfw{name}{tag}" for name in ("A", "B", "I")}
        self.namespaces = {name: f"tdfw-{name}-{tag}" for name in ("ctA", "ctA2", "ctB", "ctI", "out")}
        self.links: list[str] = []
        self.servers: list[subprocess.Popen] = []
        for namespace in self.namespaces.values():
            sh("ip", "netns", "add", namespace)
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
        for name, bridge in self.bridges.items():
            sh("ip", "link", "add", bridge, "type", "bridge")
            self.links.append(bridge)
            sh("ip", "addr", "add", f"{self.gateway(name)}/24", "dev", bridge)
            sh("ip", "link", "set", bridge, "up")
        for container, bridge, address in (("ctA", "A", "10.251.1.2"), ("ctA2", "A", "10.251.1.3"),
                                           ("ctB", "B", "10.251.2.2"), ("ctI", "I", "10.251.3.2")):
            self._veth(container, address, master=self.bridges[bridge], gateway=self.gateway(bridge))
        self._veth("out", "10.251.9.2", host_address="10.251.9.1")

    @staticmethod
    def gateway(network: str) -> str:
        return {"A": "10.251.1.1", "B": "10.251.2.1", "I": "10.251.3.1"}[network]

    def _veth(self, name: str, address: str, *, master: str = "", gateway: str = "", host_address: str = ""):
        host_end, namespace = f"tdfw{name[-2:]}{self.tag}h", self.namespaces[name]
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        self.links.append(host_end)
        if master:
            sh("ip", "link", "set", host_end, "master", master)
        if host_address:
            sh("ip", "addr", "add", f"{host_address}/24", "dev", host_end)
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", namespace, "link", "set", "eth0", "up")
        if gateway:
            sh("ip", "-n", namespace, "route", "add", "default", "via", gateway)

    def serve(self, name: str, proto: str, port: int) -> None:
        server = subprocess.Popen(["ip", "netns", "exec", self.namespaces[name], sys.executable, "-c", SERVER,
                                   proto, str(port)], stdout=subprocess.PIPE, text=True)
        self.servers.append(server)
        assert server.stdout.readline().strip() == "ready"

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def read(path: str) -> str:
    with open(path) as file:
        return file.read().strip()


@pytest.fixture
def world():
    forward_before = read(IP_FORWARD)
    world = World()
    firewall = Firewall(table=f"teachdock_test{world.tag}")
    world.firewall = firewall
    try:
        firewall.add_network(world.bridges["A"], "10.251.1.0/24")
        firewall.add_network(world.bridges["B"], "10.251.2.0/24")
        firewall.add_network(world.bridges["I"], "10.251.3.0/24", internal=True)
        yield world
    finally:
        for bridge in world.bridges.values():
            firewall.remove_network(bridge)
        world.close()
        leftover = [t["table"]["name"] for t in Nftables().list("tables") if "table" in t]
        assert firewall.table not in leftover
        if not [name for name in leftover if name.startswith("teachdock")]:  # no other daemon's table
            assert read(IP_FORWARD) == forward_before


def test_masquerade_the_outside_sees_the_host_not_the_container(world):
    world.serve("out", "tcp", 7000)
    assert ask(world.namespaces["ctA"], "tcp", "10.251.9.2", 7000) == "10.251.9.1"
    assert ask(world.namespaces["ctB"], "tcp", "10.251.9.2", 7000) == "10.251.9.1"


def test_without_the_table_a_container_gets_no_answer_from_outside(world):
    world.serve("out", "tcp", 7000)
    for bridge in world.bridges.values():
        world.firewall.remove_network(bridge)
    assert world.firewall.rules() == []
    assert ask(world.namespaces["ctA"], "tcp", "10.251.9.2", 7000).startswith("failed")


def test_a_published_tcp_port_from_loopback_the_host_addresses_and_outside(world):
    world.serve("ctA", "tcp", 80)
    [binding] = reserve([PortBinding(80, "tcp")])
    try:
        world.firewall.publish("c" * 64, "10.251.1.2", [binding])
        port = binding.host_port
        assert 32768 <= port <= 65535
        # from the host: 127.0.0.1 is masqueraded to the bridge's address (the container cannot answer 127.0.0.1)
        assert ask(None, "tcp", "127.0.0.1", port) == "10.251.1.1"
        assert read(f"/proc/sys/net/ipv4/conf/{world.bridges['A']}/route_localnet") == "1"
        assert ask(None, "tcp", "10.251.9.1", port) == "10.251.9.1"      # the host's outside address
        # another bridge's address of the host: a source in B's subnet leaving through A is masqueraded
        # by B's rule (as Docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE` does)
        assert ask(None, "tcp", "10.251.2.1", port) == "10.251.1.1"
        assert ask(world.namespaces["out"], "tcp", "10.251.9.1", port) == "10.251.9.2"   # from outside: prerouting
        # a neighbour on the same bridge through the host's address: DNAT there and back (hairpin masquerade)
        assert ask(world.namespaces["ctA2"], "tcp", "10.251.1.1", port) == "10.251.1.1"
        world.firewall.unpublish("c" * 64)
        assert ask(None, "tcp", "127.0.0.1", port).startswith("failed")
    finally:
        release([binding])


def test_a_published_udp_port_from_loopback(world):
    world.serve("ctA", "udp", 53)
    [binding] = reserve([PortBinding(53, "udp", "127.0.0.1", 0)])
    try:
        world.firewall.publish("d" * 64, "10.251.1.2", [binding])
        assert ask(None, "udp", "127.0.0.1", binding.host_port) == "10.251.1.1"
        # bound to 127.0.0.1 only: the host's other addresses do not publish it
        assert ask(None, "udp", "10.251.9.1", binding.host_port).startswith("failed")
    finally:
        release([binding])


def test_isolation_between_two_bridges(world):
    world.serve("ctB", "tcp", 8000)
    assert ask(world.namespaces["ctA"], "tcp", "10.251.2.2", 8000).startswith("failed")
    assert ask(None, "tcp", "10.251.2.2", 8000) == "10.251.2.1"       # the host itself reaches it
    [binding] = reserve([PortBinding(8000, "tcp")])
    try:  # ... and a published port is reachable from the other network, as with Docker
        world.firewall.publish("e" * 64, "10.251.2.2", [binding])
        assert ask(world.namespaces["ctA"], "tcp", "10.251.1.1", binding.host_port) == "10.251.2.1"  # masqueraded
    finally:
        release([binding])


def test_an_internal_network_has_no_way_out(world):
    world.serve("out", "tcp", 7000)
    world.serve("ctA", "tcp", 80)
    assert ask(world.namespaces["ctI"], "tcp", "10.251.9.2", 7000).startswith("failed")
    assert ask(world.namespaces["ctI"], "tcp", "10.251.1.2", 80).startswith("failed")
    assert ask(world.namespaces["out"], "tcp", "10.251.3.2", 80).startswith("failed")


def test_unasked_traffic_from_outside_to_a_container_is_dropped(world):
    world.serve("ctA", "tcp", 80)
    sh("ip", "-n", world.namespaces["out"], "route", "add", "10.251.1.0/24", "via", "10.251.9.1")
    assert ask(world.namespaces["out"], "tcp", "10.251.1.2", 80).startswith("failed")


def test_a_container_cannot_reach_the_hosts_loopback_through_the_bridge(world):
    """The guard against CVE-2020-8558: route_localnet must not open the host's 127.0.0.1 to containers."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer():  # a service on the host's loopback only, answering "secret"
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                connection.sendall(b"secret")
                connection.close()

    threading.Thread(target=answer, daemon=True).start()
    port = listener.getsockname()[1]
    namespace = world.namespaces["ctA"]
    try:  # make the container send 127.0.0.1 out of eth0 to the host: what an attacker inside would do
        sh("ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1")
        sh("ip", "-n", namespace, "addr", "del", "127.0.0.1/8", "dev", "lo")   # its own 127.0.0.1 gone
        sh("ip", "-n", namespace, "route", "add", "127.0.0.1/32", "via", "10.251.1.1")
        assert "via 10.251.1.1 dev eth0" in sh("ip", "-n", namespace, "route", "get", "127.0.0.1")
        world.firewall.remove_network(world.bridges["A"])
        world.firewall.add_network(world.bridges["A"], "10.251.1.0/24")
        rules = [r for r in world.firewall.rules() if r["chain"] == "guard"]
        assert rules  # the guard is there ...
        assert ask(namespace, "tcp", "127.0.0.1", port).startswith("failed")   # ... and it holds
        # without the guard rule the same packet reaches the host's loopback-only listener
        nft = Nftables()
        for rule in rules:
            nft.run([{"delete": {"rule": {"family": "inet", "table": world.firewall.table, "chain": "guard",
                                          "handle": rule["handle"]}}}])
        assert ask(namespace, "tcp", "127.0.0.1", port) == "secret"
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def test_teardown_leaves_no_table_and_restores_ip_forward(world):
    table = world.firewall.table
    assert read(IP_FORWARD) == "1"
    assert f"table inet {table}" in sh("nft", "list", "tables")
    world.firewall.remove_network(world.bridges["A"])
    world.firewall.remove_network(world.bridges["B"])
    assert f"table inet {table}" in sh("nft", "list", "tables")     # the internal network still uses it
    world.firewall.remove_network(world.bridges["I"])
    assert f"table inet {table}" not in sh("nft", "list", "tables")
    assert read(f"/proc/sys/net/ipv4/conf/{world.bridges['A']}/route_localnet") == "0"


def test_sweep_drops_what_belongs_to_gone_bridges_and_containers(world):
    world.firewall.publish("f" * 64, "10.251.1.2", [PortBinding(80, "tcp", "", 18080)])
    world.firewall.publish("9" * 64, "10.251.1.3", [PortBinding(80, "tcp", "", 18081)])
    world.firewall.sweep({world.bridges["A"], world.bridges["I"]}, {"9" * 64})
    comments = {rule.get("comment") for rule in world.firewall.rules()}
    assert f"container {'9' * 64}" in comments and f"container {'f' * 64}" not in comments
    assert f"network {world.bridges['B']}" not in comments and f"network {world.bridges['A']}" in comments
    world.firewall.sweep(set(), set())
    assert world.firewall.rules() == []          # nothing left: the table went too


def test_nft_errors_carry_nfts_message():
    with pytest.raises(Exception, match="nft: .*No such file or directory"):
        Nftables().run([{"delete": {"table": {"family": "inet", "name": f"teachdock_absent{os.getpid()}"}}}])
