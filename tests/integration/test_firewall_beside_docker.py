"""teachdock's nftables table beside dockerd's iptables ``FORWARD`` policy DROP, as the instructor's
guide (docs/instructor.md, "Docker already installed") says it behaves.

dockerd sets iptables' FORWARD policy to DROP and lets only its own bridges through. An accept in
teachdock's own table does not overrule a drop in another table at the same hook, so on a host
where dockerd runs, everything the host forwards for teachdock is dropped: a container's way out,
traffic between two containers on one bridge (bridged frames pass the FORWARD hook when
``bridge-nf-call-iptables`` is 1, as dockerd sets it), and a published port reached from another
machine. The host's own connection to 127.0.0.1:PORT is not forwarded and keeps working. Two
rules in Docker's DOCKER-USER chain let teachdock's bridges through again.

Everything happens in network namespaces of the test's own ("host", two "containers", an
"outside"), with teachdock's own Firewall code in the "host"; nothing touches the machine's
own network, and every packet stays inside these namespaces.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

REPOSITORY = Path(__file__).resolve().parents[2]
SERVE_ONCE = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); s.settimeout(5)
print("ready", flush=True)
try:
    c, _ = s.accept(); c.sendall(b"hello"); c.close()
except OSError:
    pass
"""
ASK = r"""
import socket, sys
try:
    print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).recv(16).decode())
except OSError as error:
    print("failed:", error)
"""
TEACHDOCK_TABLE = r"""
from teachdock.daemon.firewall import Firewall
from teachdock.daemon.ports import PortBinding
firewall = Firewall()
firewall.add_network("tdbr0", "10.214.0.0/24")
firewall.publish("c1", "10.214.0.11", [PortBinding(80, "tcp", "", 8080)])
"""


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def world():
    """Namespaces host, c1, c2 and out: a bridge tdbr0 in host, c1 and c2 on it, out on an uplink."""
    if not (shutil.which("iptables") and shutil.which("ip")):
        pytest.skip("needs iptables and ip")
    tag = secrets.token_hex(3)
    ns = {name: f"tdfw-{tag}-{name}" for name in ("host", "c1", "c2", "out")}
    try:
        for name in ns.values():
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        host = ns["host"]
        sh("ip", "-n", host, "link", "add", "tdbr0", "type", "bridge")
        sh("ip", "-n", host, "address", "add", "10.214.0.1/24", "dev", "tdbr0")
        sh("ip", "-n", host, "link", "set", "tdbr0", "up")
        for number, container in ((1, "c1"), (2, "c2")):
            sh("ip", "-n", host, "link", "add", f"tdv{number}", "type", "veth", "peer", "name", "eth0",
               "netns", ns[container])
            sh("ip", "-n", host, "link", "set", f"tdv{number}", "master", "tdbr0", "up")
            sh("ip", "-n", ns[container], "address", "add", f"10.214.0.1{number}/24", "dev", "eth0")
            sh("ip", "-n", ns[container], "link", "set", "eth0", "up")
            sh("ip", "-n", ns[container], "route", "add", "default", "via", "10.214.0.1")
        sh("ip", "-n", host, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", ns["out"])
        sh("ip", "-n", host, "address", "add", "203.0.113.1/24", "dev", "up0")
        sh("ip", "-n", host, "link", "set", "up0", "up")
        sh("ip", "-n", ns["out"], "address", "add", "203.0.113.10/24", "dev", "eth0")
        sh("ip", "-n", ns["out"], "link", "set", "eth0", "up")
        subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", TEACHDOCK_TABLE], check=True,
                       env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def reach(ns: dict, client: str, server: str, address: str, port: int, server_port: int) -> str:
    """Start a one-shot server in ``server``, connect from ``client``; what the client got."""
    with subprocess.Popen(["ip", "netns", "exec", ns[server], sys.executable, "-c", SERVE_ONCE, str(server_port)],
                          stdout=subprocess.PIPE, text=True) as serving:
        assert serving.stdout.readline().strip() == "ready"
        asked = subprocess.run(["ip", "netns", "exec", ns[client], sys.executable, "-c", ASK, address, str(port)],
                               capture_output=True, text=True, timeout=30)
        serving.wait(timeout=30)
    return asked.stdout.strip()


def paths(ns: dict) -> dict[str, str]:
    return {
        "container -> outside": reach(ns, "c1", "out", "203.0.113.10", 8000, 8000),
        "container -> container": reach(ns, "c1", "c2", "10.214.0.12", 8001, 8001),
        "outside -> published port": reach(ns, "out", "c1", "203.0.113.1", 8080, 80),
        "host -> 127.0.0.1 published port": reach(ns, "host", "c1", "127.0.0.1", 8080, 80),
    }


def test_dockers_forward_drop_stops_what_teachdock_forwards_until_docker_user_lets_it_through(world):
    host = ["ip", "netns", "exec", world["host"]]
    bridged = sh(*host, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").strip() == "1"
    alone = paths(world)
    assert set(alone.values()) == {"hello"}, alone

    # what dockerd does on a host: a DOCKER-USER chain first, then the policy DROP
    sh(*host, "iptables", "-N", "DOCKER-USER")
    sh(*host, "iptables", "-A", "DOCKER-USER", "-j", "RETURN")
    sh(*host, "iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
    sh(*host, "iptables", "-P", "FORWARD", "DROP")
    beside_docker = paths(world)
    assert beside_docker["host -> 127.0.0.1 published port"] == "hello", beside_docker
    assert beside_docker["container -> outside"].startswith("failed"), beside_docker
    assert beside_docker["outside -> published port"].startswith("failed"), beside_docker
    if bridged:  # br_netfilter hands bridged frames to the FORWARD hook too
        assert beside_docker["container -> container"].startswith("failed"), beside_docker

    # the guide's fix: two rules in DOCKER-USER for every interface whose name starts with "td"
    sh(*host, "iptables", "-I", "DOCKER-USER", "-i", "td+", "-j", "ACCEPT")
    sh(*host, "iptables", "-I", "DOCKER-USER", "-o", "td+", "-j", "ACCEPT")
    fixed = paths(world)
    assert set(fixed.values()) == {"hello"}, fixed
