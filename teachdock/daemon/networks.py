"""Networks: the records, and connecting containers to them (libnetwork's job in dockerd).

- ``bridge`` (the default, as with dockerd): the Linux bridge ``teachdock0`` with
  ``172.29.0.1/16``; ``docker run`` with no ``--network`` joins it. No name resolution here
  (as on Docker's default bridge): the container gets the host's resolvers.
- ``none``: the container has its own network namespace with only ``lo``.
- ``host``: no network namespace at all; the container sees the host's interfaces.
- ``container:NAME``: the namespace of another running container (containers.py joins it).
- ``docker network create NAME``: a Linux bridge ``td-<12 hex of the id>`` on a /24 of
  ``172.30.0.0/16``; containers on it resolve each other by name through the embedded DNS
  resolver (daemon/dns.py, answered by :meth:`NetworkManager.lookup`).

Connecting a container: an address from IPAM (ipam.py: leases kept until the container is
removed), then a veth pair from the bridge into the container's namespace (links.py), named
``eth0``, ``eth1``, … in the order the networks were connected. The way out (masquerade),
the isolation between bridges and published ports are the Firewall's (daemon/firewall.py):
this manager tells it which bridges exist.

State: one JSON record per network under ``<data root>/daemon/networks/<id>.json`` (the
default network's too, so its id stays), with its live endpoints; leases under
``networks/leases/``. An endpoint is live while the container's PID 1 is (pid + start time).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

from pyroute2 import IPRoute

from teachdock.daemon import ipam, links
from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError
from teachdock.files import write_json_atomically

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "teachdock0"
DEFAULT_BIP = "172.29.0.1/16"             # its gateway and subnet (dockerd's --bip)
PREDEFINED = ("bridge", "none", "host")   # made by the daemon, never removed
NO_VETH = ("none", "host")                # networks a container joins without a veth
BRIDGE_PREFIX = "td-"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ROOTLESS_REASON = ("teachdockd runs without root, so it cannot make bridges or veth pairs: its containers "
                   "have --network none (their own namespace, lo only) or --network host")


class NetworkNotFound(NotFound):
    """No network by that name or id (worded as moby words it)."""


class Forbidden(TeachdockError):
    """What dockerd answers 403 for: an endpoint that exists already, a pre-defined network."""

    status = 403


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def process_start(pid) -> str | None:
    """When the process started (field 22 of /proc/PID/stat): a PID reused later differs."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, TypeError, ValueError):
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def dns_names(name: str, aliases, container_id: str, hostname: str | None = None) -> list[str]:
    """What a container answers to on a user network, in dockerd's order: name, aliases, short id, hostname."""
    names = [name.lstrip("/"), *aliases, container_id[:12], *([hostname] if hostname else [])]
    return list(dict.fromkeys(n for n in names if n))


class NetworkManager:
    """Create, find, connect to and remove the networks of one data root."""

    def __init__(self, data_root, *, firewall=None, default_bridge: str = DEFAULT_BRIDGE,
                 default_subnet: str = DEFAULT_BIP, rootless: bool | None = None):
        self.data_root = Path(data_root)
        self.root = self.data_root / "daemon" / "networks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.leases = ipam.Leases(self.root / "leases")
        self.firewall = firewall  # the way out, isolation, published ports (None: no rules at all)
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        self._lock = threading.RLock()
        self._netlink = None  # one netlink socket for connect(), made at the first (pyroute2's IPRoute)
        self._builtin = {name: self._builtin_network(name) for name in NO_VETH}
        self._networks: dict[str, dict] = {}
        for path in sorted(self.root.glob("*.json")):
            try:
                network = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            self._networks[network["Id"]] = network
        if not self.rootless:
            self._ensure_default(default_bridge, default_subnet)
            for network in self._networks.values():
                try:
                    self._ensure_bridge(network)  # after a reboot the bridges are gone; the networks are not
                except TeachdockError:
                    if network["Name"] == DEFAULT_NETWORK:
                        raise
                    # a user network's bridge: connect() tries again and then says why it cannot

    # --- the records ------------------------------------------------------------------------------
    def _builtin_network(self, name: str) -> dict:
        network_id = hashlib.sha256(f"{self.data_root}:{name}".encode()).hexdigest()
        return {"Name": name, "Id": network_id, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
                "Driver": "null" if name == "none" else "host", "EnableIPv4": True, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
                "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Options": {}, "Labels": {}}

    def _ensure_default(self, bridge: str, bip: str) -> None:
        """The network ``bridge`` on the Linux bridge ``bridge`` (``teachdock0``), as dockerd makes
        docker0; ``bip`` is its subnet, or the gateway's address in it (dockerd's ``--bip``)."""
        try:
            interface = ipaddress.ip_interface(bip)
        except ValueError:
            raise InvalidConfig(f"invalid CIDR address: {bip}") from None
        subnet = interface.network
        gateway = interface.ip if interface.ip != subnet.network_address else next(subnet.hosts())
        wanted = {"Subnet": str(subnet), "Gateway": str(gateway)}
        existing = next((n for n in self._networks.values() if n["Name"] == DEFAULT_NETWORK), None)
        if existing is not None and (existing["Bridge"], existing["IPAM"]["Config"][0]) != (bridge, wanted):
            # the daemon was started with another --bridge/--bip this time: the old one goes
            self._delete_bridge(existing)
            self._networks.pop(existing["Id"])
            self._path(existing["Id"]).unlink(missing_ok=True)
            self.leases.forget_network(existing["Id"])
            existing = None
        if existing is None:
            existing = self._record(DEFAULT_NETWORK, subnet, gateway, None, bridge=bridge, options={
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.driver.mtu": "1500"}, labels={}, internal=False)
            self._networks[existing["Id"]] = existing
            self._save(existing)

    def _record(self, name, subnet, gateway, ip_range, *, bridge=None, options, labels, internal) -> dict:
        network_id = secrets.token_hex(32)
        config = {"Subnet": str(subnet), "Gateway": str(gateway), **({"IPRange": ip_range} if ip_range else {})}
        return {"Name": name, "Id": network_id, "Created": _now(), "Scope": "local", "Driver": "bridge",
                "EnableIPv4": True, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None if name == DEFAULT_NETWORK else {}, "Config": [config]},
                "Internal": bool(internal), "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
                "ConfigOnly": False, "Options": dict(options or {}), "Labels": dict(labels or {}),
                "Bridge": bridge or BRIDGE_PREFIX + network_id[:12], "Endpoints": {}}

    def _path(self, network_id: str) -> Path:
        return self.root / f"{network_id}.json"

    def _save(self, network: dict) -> None:
        write_json_atomically(self._path(network["Id"]), network)

    def bridges(self) -> dict[str, dict]:
        """The bridge networks by Linux bridge name (``teachdock0``, ``td-…``)."""
        with self._lock:
            return {n["Bridge"]: n for n in self._networks.values()}

    def list(self) -> list[dict]:
        with self._lock:
            ordered = sorted(self._networks.values(), key=lambda n: (n["Name"] != DEFAULT_NETWORK, n["Created"]))
            return [*ordered[:1 if ordered and ordered[0]["Name"] == DEFAULT_NETWORK else 0],
                    *self._builtin.values(), *[n for n in ordered if n["Name"] != DEFAULT_NETWORK]]

    def get(self, name_or_id: str) -> dict:
        """By name, full id or unique id prefix, as Docker resolves networks."""
        networks = self.list()
        for network in networks:
            if name_or_id in (network["Name"], network["Id"]):
                return network
        matches = [n for n in networks if name_or_id and n["Id"].startswith(name_or_id)]
        if len(matches) == 1:
            return matches[0]
        raise NetworkNotFound(f"network {name_or_id} not found")

    def name_for_mode(self, mode: str | None) -> str:
        """HostConfig.NetworkMode -> the network's name (``container:…`` is left to the caller)."""
        if mode in (None, "", "default"):
            mode = "none" if self.rootless else DEFAULT_NETWORK
        if mode.startswith("container:"):
            return mode
        if self.rootless and mode not in NO_VETH:
            raise InvalidConfig(f"cannot use network {mode}: {ROOTLESS_REASON}")
        return self.get(mode)["Name"]

    # --- create and remove ----------------------------------------------------------------------------
    def create(self, name: str, *, driver: str | None = "bridge", subnet: str | None = None,
               gateway: str | None = None, ip_range: str | None = None, labels: dict | None = None,
               options: dict | None = None, internal: bool = False) -> dict:
        """``docker network create``: the record, then the bridge with the gateway address on it."""
        if self.rootless:
            raise InvalidConfig(f"cannot create network {name}: {ROOTLESS_REASON}")
        if not name or not _NAME.match(name):
            raise InvalidConfig(f"invalid network name {name!r}: use letters, digits, '_', '.' and '-'")
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found: teachdockd has the bridge driver only')
        with self._lock:
            if any(network["Name"] == name for network in self.list()):
                raise Conflict(f"network with name {name} already exists")
            taken = [ipaddress.ip_network(n["IPAM"]["Config"][0]["Subnet"]) for n in self._networks.values()]
            subnet_net = ipam.pick_subnet(subnet, taken + links.host_networks())
            gateway_ip = ipam.pick_gateway(subnet_net, gateway)
            ip_range = ipam.check_ip_range(subnet_net, ip_range)
            network = self._record(name, subnet_net, gateway_ip, ip_range, options=options, labels=labels,
                                   internal=internal)
            self._ensure_bridge(network)
            try:
                self._save(network)
            except OSError:
                self._delete_bridge(network)
                raise
            self._networks[network["Id"]] = network
        return network

    def remove(self, name_or_id: str) -> dict:
        """``docker network rm``: 409 while containers are attached; the bridge goes with it."""
        with self._lock:
            network = self.get(name_or_id)
            if network["Name"] in PREDEFINED:
                raise Forbidden(f"{network['Name']} is a pre-defined network and cannot be removed")
            if self.endpoints(network):
                raise Conflict(f"error while removing network: network {network['Name']} id {network['Id']} "
                               "has active endpoints")
            self._path(network["Id"]).unlink(missing_ok=True)
            self.leases.forget_network(network["Id"])
            self._networks.pop(network["Id"], None)
            self._delete_bridge(network)
            return network

    def prune(self, keep=lambda network: False) -> list[str]:
        """Every user network without a live endpoint (and not kept by the filters)."""
        removed = []
        with self._lock:
            for network in list(self._networks.values()):
                if network["Name"] not in PREDEFINED and not self.endpoints(network) and not keep(network):
                    self.remove(network["Id"])
                    removed.append(network["Name"])
        return removed

    # --- endpoints ------------------------------------------------------------------------------------
    def endpoints(self, network: dict) -> dict[str, dict]:
        """The containers attached now: those whose PID 1 still lives."""
        # a snapshot of the endpoints: another container's start may add one while /proc is read
        return {container_id: endpoint for container_id, endpoint in list((network.get("Endpoints") or {}).items())
                if endpoint.get("PidStart") is not None and process_start(endpoint.get("Pid")) == endpoint["PidStart"]}

    def endpoint(self, network_name: str, container_id: str) -> dict | None:
        try:
            network = self.get(network_name)
        except NetworkNotFound:
            return None
        return self.endpoints(network).get(container_id)

    def attached(self, container_id: str) -> list[dict]:
        """The networks the container has a live endpoint on."""
        with self._lock:
            return [n for n in self._networks.values() if container_id in self.endpoints(n)]

    def reserve(self, name_or_id: str, container_id: str, ipv4: str | None = None) -> str:
        """The container's address on the network, leased now (before its namespace exists)."""
        with self._lock:
            network = self.get(name_or_id)
            config = network["IPAM"]["Config"][0]
            return self.leases.take(network["Id"], container_id, config["Subnet"], config["Gateway"],
                                    ip_range=config.get("IPRange"), wanted=ipv4 or None)

    def connect(self, name_or_id: str, container_id: str, pid: int, *, name: str, aliases=(),
                ipv4: str | None = None, hostname: str | None = None) -> dict:
        """Plug the container whose PID 1 is ``pid`` into the network: an address (its lease, or
        ``ipv4``), a veth pair, ``ethN`` inside, a default route via the gateway if it has none."""
        with self._lock:
            network = self.get(name_or_id)
            if network["Name"] in NO_VETH:
                raise InvalidConfig(f"cannot connect to the {network['Name']} network: it needs no veth")
            if self.rootless:
                raise InvalidConfig(f"cannot connect to network {network['Name']}: {ROOTLESS_REASON}")
            if container_id in self.endpoints(network):
                raise Forbidden(f"endpoint with name {name.lstrip('/')} already exists in network {network['Name']}")
            if network["Name"] == DEFAULT_NETWORK and ipv4:
                raise InvalidConfig("user specified IP address is supported on user defined networks only")
            if network["Name"] == DEFAULT_NETWORK and aliases:
                raise InvalidConfig("network-scoped alias is supported only for containers in user defined networks")
            config = network["IPAM"]["Config"][0]
            subnet = ipaddress.ip_network(config["Subnet"])
            links.ensure_bridge(network["Bridge"], config["Gateway"], subnet.prefixlen)  # gone since? (a reboot)
            address = self.reserve(network["Id"], container_id, ipv4)
            mac = ipam.mac_for(address)
            gateway = "" if network["Internal"] else config["Gateway"]
            # eth0, eth1, ... in the order of connection; the first network with a gateway gives the default route
            others = [n["Endpoints"][container_id] for n in self.attached(container_id)]
            taken = {e.get("IfName") for e in others}
            ifname = next(f"eth{number}" for number in range(len(taken) + 1) if f"eth{number}" not in taken)
            routed = any(e.get("Gateway") for e in others)
            if self._netlink is None:
                self._netlink = IPRoute()
            try:
                host_end = links.plug(self._netlink, network["Bridge"], pid, ifname=ifname, address=address,
                                      prefixlen=subnet.prefixlen, mac=mac, gateway=None if routed else gateway or None)
            except TeachdockError as error:
                raise TeachdockError(f"cannot connect the container to network {network['Name']}: {error}") from None
            endpoint = {"IPAddress": address, "IPPrefixLen": subnet.prefixlen, "Gateway": gateway,
                        "MacAddress": mac, "EndpointID": secrets.token_hex(32), "HostVeth": host_end,
                        "IfName": ifname, "Aliases": list(aliases), "IPv4Requested": ipv4 or "",
                        "DNSNames": dns_names(name, aliases, container_id, hostname) if network["Name"] != DEFAULT_NETWORK else None,
                        "Pid": pid, "PidStart": process_start(pid)}
            network["Endpoints"] = {**self.endpoints(network), container_id: endpoint}
            self._save(network)
            return endpoint

    def disconnect(self, name_or_id: str, container_id: str) -> dict | None:
        """Take the container's live endpoint off the network: the veth goes; its default route
        moves to another network it is on. Returns the endpoint (None: it had none)."""
        with self._lock:
            network = self.get(name_or_id)
            endpoint = (network.get("Endpoints") or {}).pop(container_id, None)
            if endpoint is None:
                return None
            self._save(network)
            alive = process_start(endpoint["Pid"]) == endpoint["PidStart"]
            gateways = [other["Endpoints"][container_id]["Gateway"] for other in self.attached(container_id)
                        if other["Endpoints"][container_id]["Gateway"]]
            links.unplug(endpoint["HostVeth"], endpoint["Pid"] if alive else None, gateways=gateways)
            return endpoint

    def disconnect_all(self, container_id: str) -> None:
        """The container stopped: its endpoints go. Its veths go with its namespace: the kernel
        deletes them a moment later, which costs it ~20 ms each that ``docker run --rm`` need not wait for."""
        with self._lock:
            for network in self._networks.values():
                if (network.get("Endpoints") or {}).pop(container_id, None) is not None:
                    self._save(network)

    def release(self, container_id: str) -> None:
        """The container is removed: its endpoints and its addresses on every network."""
        self.disconnect_all(container_id)
        self.leases.release_container(container_id)

    def rename(self, container_id: str, old: str, new: str) -> None:
        """``docker rename``: the new name resolves, the old one no longer."""
        with self._lock:
            for network in self._networks.values():
                endpoint = (network.get("Endpoints") or {}).get(container_id)
                if endpoint and endpoint.get("DNSNames"):
                    old_name = old.lstrip("/")
                    endpoint["DNSNames"] = [new.lstrip("/") if n == old_name else n for n in endpoint["DNSNames"]]
                    self._save(network)

    # --- names (the embedded DNS resolver asks) ---------------------------------------------------
    def lookup(self, container_id: str, name: str) -> list[str]:
        """The addresses ``name`` has for the container ``container_id``: on each user network
        both are attached to, the endpoints answering to that name (container name, alias,
        short id, hostname). [] when none: the resolver forwards the question."""
        wanted = name.rstrip(".").lower()
        found = []
        with self._lock:
            for network in self._networks.values():
                live = self.endpoints(network)
                if network["Name"] == DEFAULT_NETWORK or container_id not in live:
                    continue
                for endpoint in live.values():
                    if wanted in (n.lower() for n in endpoint.get("DNSNames") or ()):
                        found.append(endpoint["IPAddress"])
        return list(dict.fromkeys(found))

    # --- after a restart -------------------------------------------------------------------------------
    def sweep(self, running: set[str], existing: set[str]) -> None:
        """Forget what belonged to containers that are gone: endpoints of containers not
        running, leases of containers that do not exist, veths on our bridges that no live
        endpoint owns; then the Firewall's rules of bridges and containers that are gone."""
        with self._lock:
            for network in self._networks.values():
                live = {cid: e for cid, e in self.endpoints(network).items() if cid in running}
                if live != (network.get("Endpoints") or {}):
                    network["Endpoints"] = live
                    self._save(network)
                owned = {e["HostVeth"] for e in live.values()}
                for port in links.ports_of(network["Bridge"]):
                    if port.startswith(links.VETH_PREFIX) and port not in owned:
                        links.delete_link(port)
            self.leases.sweep(set(self._networks), existing)
            if self.firewall is not None:
                self.firewall.sweep(set(self.bridges()), set(running))

    # --- the bridge -----------------------------------------------------------------------------------
    def _ensure_bridge(self, network: dict) -> None:
        config = network["IPAM"]["Config"][0]
        links.ensure_bridge(network["Bridge"], config["Gateway"], ipaddress.ip_network(config["Subnet"]).prefixlen)
        if self.firewall is not None:
            self.firewall.add_network(network["Bridge"], config["Subnet"], internal=bool(network["Internal"]))

    def _delete_bridge(self, network: dict) -> None:
        if self.firewall is not None:
            self.firewall.remove_network(network["Bridge"])
        links.delete_link(network["Bridge"])
