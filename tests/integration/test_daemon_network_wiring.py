"""The daemon's calls to the Firewall, the port allocator and the Resolver, checked with recording
fakes of their contract (NETWORKS.md): net-fw's daemon/firewall.py and ports.py and net-dns's
daemon/dns.py are other branches' modules. The bridges, veths and containers here are real: the
daemon runs in this process (``Daemon(firewall=..., resolver=...)``) on its own data root and
default bridge, and the tests drive its managers directly.
"""

from __future__ import annotations

import collections
import secrets
import shutil
import sys
import time
import types

import pytest

from teachdock.daemon import links
from teachdock.daemon.daemon import Daemon
from teachdock.errors import Conflict, TeachdockError
from teachdock.image import busybox
from teachdock.image.images import Images
from tests.support.daemons import free_bip

pytestmark = [pytest.mark.root]


class RecordingFirewall:
    """Firewall's contract: every call written down, nothing done."""

    backend = "recording"

    def __init__(self):
        self.calls = []

    def add_network(self, bridge, subnet, *, internal=False):
        self.calls.append(("add_network", bridge, subnet, internal))

    def remove_network(self, bridge):
        self.calls.append(("remove_network", bridge))

    def publish(self, container_id, container_ip, bindings):
        self.calls.append(("publish", container_id, container_ip, list(bindings)))

    def unpublish(self, container_id):
        self.calls.append(("unpublish", container_id))

    def sweep(self, bridges, container_ids):
        self.calls.append(("sweep", set(bridges), set(container_ids)))

    def named(self, name):
        return [call for call in self.calls if call[0] == name]


class RecordingResolver:
    """Resolver's contract: who is attached; ``lookup`` is the daemon's, as the real one gets it."""

    def __init__(self):
        self.lookup = None
        self.attached = {}
        self.calls = []

    def attach(self, container_id, pid):
        self.attached[container_id] = pid
        self.calls.append(("attach", container_id))

    def detach(self, container_id):
        self.attached.pop(container_id, None)
        self.calls.append(("detach", container_id))

    def close(self):
        self.calls.append(("close",))


PortBinding = collections.namedtuple("PortBinding", "container_port protocol host_ip host_port")


def fake_ports_module(taken: set[int]) -> types.ModuleType:
    """ports.py's contract, small: HostConfig.PortBindings -> bindings; a port in ``taken`` is allocated."""
    module = types.ModuleType("teachdock.daemon.ports")
    module.PortBinding = PortBinding

    def bindings_from_host_config(host_config, exposed_ports, publish_all):
        found = []
        for key, entries in (host_config.get("PortBindings") or {}).items():
            port, _, protocol = key.partition("/")
            for entry in entries:
                found.append(PortBinding(int(port), protocol or "tcp", entry.get("HostIp") or "",
                                         int(entry.get("HostPort") or 0)))
        return found

    def reserve(bindings, *, name="", container_id=""):
        for binding in bindings:
            if binding.host_port in taken:
                raise Conflict(f"driver failed programming external connectivity on endpoint {name} ({container_id}): "
                               f"Bind for 0.0.0.0:{binding.host_port} failed: port is already allocated")
        held = [b._replace(host_port=b.host_port or 49153) for b in bindings]
        module.held.extend(held)
        return held

    def release(bindings):
        for binding in bindings:
            module.held.remove(binding)

    def ports_json(bindings):
        return {f"{b.container_port}/{b.protocol}": [{"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)}]
                for b in bindings}

    module.bindings_from_host_config = bindings_from_host_config
    module.held = []  # what reserve holds and release gives back: empty again once the container stops
    module.reserve = reserve
    module.release = release
    module.ports_json = ports_json
    return module


@pytest.fixture
def wired(tmp_path, monkeypatch):
    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox: {error}")
    taken = {8080}
    fake = fake_ports_module(taken)
    monkeypatch.setitem(sys.modules, "teachdock.daemon.ports", fake)
    import teachdock.daemon  # noqa: PLC0415
    monkeypatch.setattr(teachdock.daemon, "ports", fake, raising=False)
    Images(tmp_path / "data").bootstrap_busybox()
    firewall, resolver = RecordingFirewall(), RecordingResolver()
    bridge = f"tdb{secrets.token_hex(4)}"
    daemon = Daemon(socket_path=str(tmp_path / "d.sock"), data_root=tmp_path / "data", exec_root=tmp_path / "exec",
                    cgroup_parent=f"tdd-{secrets.token_hex(4)}", bridge=bridge,
                    bip=free_bip(), firewall=firewall, resolver=resolver)
    resolver.lookup = daemon.networks.lookup
    daemon.fw, daemon.dns, daemon.bridge, daemon.ports = firewall, resolver, bridge, fake
    try:
        yield daemon
    finally:
        for record in daemon.containers.list():
            daemon.containers.remove(record, force=True)
        for network in daemon.networks.list():
            if network["Name"] not in ("bridge", "none", "host"):
                daemon.networks.remove(network["Id"])
        for server in daemon.servers:
            server.server_close()
        deadline = time.monotonic() + 10
        while links.ports_of(bridge) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = links.ports_of(bridge)
        links.delete_link(bridge)
        shutil.rmtree(tmp_path, ignore_errors=True)
        assert not left, f"veths left on the default bridge: {left}"


def start(daemon, name, **body):
    record = daemon.containers.create({"Image": "busybox", "Cmd": ["sleep", "60"], **body}, name)
    daemon.containers.start(record)
    return record


def address(daemon, record, network):
    return daemon.containers.networking.inspect(record)["Networks"][network]["IPAddress"]


def test_bridges_are_handed_to_the_firewall_and_swept_at_start(wired):
    subnet = wired.networks.get("bridge")["IPAM"]["Config"][0]["Subnet"]
    assert ("add_network", wired.bridge, subnet, False) in wired.fw.calls
    assert wired.fw.named("sweep") == [("sweep", {wired.bridge}, set())]
    network = wired.networks.create("inner", internal=True)
    assert wired.fw.calls[-1] == ("add_network", network["Bridge"], network["IPAM"]["Config"][0]["Subnet"], True)
    wired.networks.remove("inner")
    assert wired.fw.calls[-1] == ("remove_network", network["Bridge"])


def test_published_ports_go_to_the_firewall_and_come_back_at_exit(wired):
    web = start(wired, "web", HostConfig={"PortBindings": {"80/tcp": [{"HostPort": "8081"}]}})
    ip = address(wired, web, "bridge")
    assert wired.fw.named("publish") == [("publish", web.id, ip, [PortBinding(80, "tcp", "", 8081)])]
    shown = wired.containers.networking.inspect(web)["Ports"]
    assert shown == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8081"}]}
    assert wired.ports.held == [PortBinding(80, "tcp", "", 8081)]  # the host port is held while it runs
    wired.containers.stop(web, timeout=0)
    assert ("unpublish", web.id) in wired.fw.calls
    assert wired.containers.networking.inspect(web)["Ports"] == {}
    assert wired.ports.held == []  # and given back when it stops, so a restart can take it again


def test_a_port_already_allocated_leaves_the_container_created_and_nothing_behind(wired):
    record = wired.containers.create({"Image": "busybox", "Cmd": ["sleep", "60"],
                                      "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}, "clash")
    with pytest.raises(Conflict, match="port is already allocated"):
        wired.containers.start(record)
    assert record.status == "created" and not record.running
    deadline = time.monotonic() + 10
    while links.ports_of(wired.bridge) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert links.ports_of(wired.bridge) == []  # its veth went with the namespace of the failed start
    assert wired.fw.named("publish") == [] and wired.networks.attached(record.id) == []
    wired.containers.remove(record)
    assert not list((wired.data_root / "daemon" / "networks" / "leases").glob("*.json"))


def test_the_resolver_answers_names_on_shared_networks_only(wired):
    wired.networks.create("app")
    wired.networks.create("other")
    db = start(wired, "db", HostConfig={"NetworkMode": "app"},
               NetworkingConfig={"EndpointsConfig": {"app": {"Aliases": ["database"]}}})
    web = start(wired, "web", HostConfig={"NetworkMode": "app"})
    lone = start(wired, "lone", HostConfig={"NetworkMode": "other"})
    plain = start(wired, "plain")  # the default bridge: no resolver, as with Docker
    assert set(wired.dns.attached) == {db.id, web.id, lone.id}
    resolv = (web.directory / "resolv.conf").read_text()
    assert "nameserver 127.0.0.11" in resolv and "ndots:0" in resolv
    assert "127.0.0.11" not in (plain.directory / "resolv.conf").read_text()
    db_ip = address(wired, db, "app")
    for name in ("db", "database", db.id[:12], "DB."):
        assert wired.dns.lookup(web.id, name) == [db_ip], name
    assert wired.dns.lookup(web.id, "nosuch") == []
    assert wired.dns.lookup(lone.id, "db") == []          # another network: not visible
    assert wired.dns.lookup(plain.id, "db") == []
    wired.containers.connect_network(lone, "app", {"Aliases": ["lonely"]})
    assert wired.dns.lookup(lone.id, "db") == [db_ip]    # connected: now it is
    assert wired.dns.lookup(db.id, "lonely") == [address(wired, lone, "app")]
    wired.containers.rename(db, "store")
    assert wired.dns.lookup(web.id, "store") == [db_ip] and wired.dns.lookup(web.id, "db") == []
    wired.containers.stop(db, timeout=0)
    assert db.id not in wired.dns.attached and wired.dns.lookup(web.id, "database") == []
