"""Networks: ``none``, ``host``, and user-made bridges that containers plug into with veth pairs.

- ``none`` (our default): the container has its own network namespace with only ``lo``.
- ``host``: no network namespace at all; the container sees the host's interfaces.
- ``docker network create NAME``: a Linux bridge ``td-<12 hex of the id>`` carrying the
  gateway address (``172.30.N.1/24``). Each container started with ``--network NAME`` gets a
  veth pair: one end on the bridge, the other moved into the container's namespace, named
  ``eth0``, given the next free address and a default route via the gateway.

There is no NAT and no iptables rule: containers on one bridge reach each other (plain
layer 2 switching), and nothing else. All kernel work goes through pyroute2's netlink
sockets, the same messages ``ip link``/``ip addr`` send.

State: one JSON file per user network under ``<data root>/daemon/networks/<id>.json``, with
its addresses in use. An address belongs to a container only while the host end of its veth
exists: the kernel removes the pair when the container's namespace dies, so a stopped
container frees its address without the daemon having to notice.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError
from teachdock.files import write_json_atomically

PREDEFINED = ("none", "host")
SUBNET_POOL = ipaddress.ip_network("172.30.0.0/16")  # user networks get 172.30.N.0/24
BRIDGE_PREFIX = "td-"
VETH_PREFIX = "tdv"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NetworkNotFound(NotFound):
    """No network by that name or id (worded as moby words it)."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mac_for(ip: ipaddress.IPv4Address) -> str:
    """Docker's scheme: 02:42 then the four bytes of the IPv4 address, so it is unique on the bridge."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ip.packed)


class NetworkManager:
    """Create, find, connect to and remove networks of one data root."""

    def __init__(self, data_root):
        self.data_root = Path(data_root)
        self.root = self.data_root / "daemon" / "networks"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._predefined = {name: self._predefined_network(name) for name in PREDEFINED}
        for network in self._user_networks():
            try:
                self._ensure_bridge(network)  # after a reboot the bridges are gone; the networks are not
            except (TeachdockError, NetlinkError, OSError):
                pass  # connect() tries again and then says why it cannot

    # --- the records ------------------------------------------------------------------------------
    def _predefined_network(self, name: str) -> dict:
        network_id = hashlib.sha256(f"{self.data_root}:{name}".encode()).hexdigest()
        return {"Name": name, "Id": network_id, "Created": "0001-01-01T00:00:00Z", "Scope": "local",
                "Driver": "null" if name == "none" else "host", "EnableIPv4": True, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
                "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Options": {}, "Labels": {}}

    def _path(self, network_id: str) -> Path:
        return self.root / f"{network_id}.json"

    def _user_networks(self) -> list[dict]:
        networks = []
        for path in sorted(self.root.glob("*.json")):
            try:
                networks.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return networks

    def _save(self, network: dict) -> None:
        write_json_atomically(self._path(network["Id"]), network)

    def list(self) -> list[dict]:
        return [*self._predefined.values(), *sorted(self._user_networks(), key=lambda n: n["Created"])]

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
        """HostConfig.NetworkMode -> the network's name; 400/404 for what cannot be used."""
        if mode in (None, "", "default", "bridge"):
            return "none"  # no default bridge here: each container gets its own empty namespace
        if mode.startswith("container:"):
            raise InvalidConfig(f"network mode {mode} is not supported by teachdockd: use none, host or a network "
                                "made with docker network create")
        return self.get(mode)["Name"]

    # --- create and remove ----------------------------------------------------------------------------
    def create(self, name: str, *, driver: str | None = "bridge", subnet: str | None = None,
               gateway: str | None = None, labels: dict | None = None, options: dict | None = None,
               internal: bool = False) -> dict:
        """``docker network create``: the record, then the bridge with the gateway address on it."""
        if not name or not _NAME.match(name):
            raise InvalidConfig(f"invalid network name {name!r}: use letters, digits, '_', '.' and '-'")
        driver = driver or "bridge"
        if driver in ("host", "null"):
            raise Conflict(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found: teachdockd has the bridge driver only')
        with self._lock:
            for network in self.list():
                if network["Name"] == name:
                    raise Conflict(f"network with name {name} already exists")
            taken = [ipaddress.ip_network(n["IPAM"]["Config"][0]["Subnet"]) for n in self._user_networks()]
            subnet_net = self._pick_subnet(subnet, taken)
            gateway_ip = self._gateway(subnet_net, gateway)
            network_id = secrets.token_hex(32)
            network = {
                "Name": name, "Id": network_id, "Created": _now(), "Scope": "local", "Driver": "bridge",
                "EnableIPv4": True, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": str(subnet_net), "Gateway": str(gateway_ip)}]},
                "Internal": bool(internal), "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
                "ConfigOnly": False, "Options": dict(options or {}), "Labels": dict(labels or {}),
                "Bridge": BRIDGE_PREFIX + network_id[:12], "Endpoints": {},
            }
            self._ensure_bridge(network)
            try:
                self._save(network)
            except OSError:
                self._delete_bridge(network)
                raise
        return network

    def _pick_subnet(self, wanted: str | None, taken: list) -> ipaddress.IPv4Network:
        in_use_on_host = _host_networks()
        if wanted:
            try:
                subnet = ipaddress.ip_network(wanted, strict=False)
            except ValueError:
                raise InvalidConfig(f"invalid subnet {wanted!r}: give an IPv4 CIDR such as 172.30.5.0/24") from None
            if subnet.version != 4 or subnet.prefixlen > 30:
                raise InvalidConfig(f"invalid subnet {wanted}: an IPv4 network of at most /30 is needed")
            for other in taken + in_use_on_host:
                if subnet.overlaps(other):
                    raise Conflict(f"Pool overlaps with other one on this address space: {subnet} and {other}")
            return subnet
        for candidate in SUBNET_POOL.subnets(new_prefix=24):
            if candidate.network_address.packed[2] == 0:
                continue  # 172.30.0.0/24 left alone: it reads like a default
            if not any(candidate.overlaps(other) for other in taken + in_use_on_host):
                return candidate
        raise Conflict("all 172.30.N.0/24 subnets are in use: remove a network or give --subnet")

    @staticmethod
    def _gateway(subnet: ipaddress.IPv4Network, wanted: str | None) -> ipaddress.IPv4Address:
        if not wanted:
            return next(subnet.hosts())
        try:
            gateway = ipaddress.ip_address(wanted)
        except ValueError:
            raise InvalidConfig(f"invalid gateway {wanted!r}") from None
        if gateway not in subnet:
            raise InvalidConfig(f"gateway {gateway} is not in the subnet {subnet}")
        return gateway

    def remove(self, name_or_id: str) -> dict:
        """``docker network rm``: 409 while containers are attached; the bridge goes with it."""
        with self._lock:
            network = self.get(name_or_id)
            if network["Name"] in PREDEFINED:
                raise Conflict(f"{network['Name']} is a pre-defined network and cannot be removed")
            live = self.endpoints(network)
            if live:
                raise Conflict(f"error while removing network: network {network['Name']} id {network['Id']} "
                               f"has active endpoints ({', '.join(c[:12] for c in live)})")
            self._path(network["Id"]).unlink(missing_ok=True)
            self._delete_bridge(network)
            return network

    def prune(self) -> list[str]:
        """Every user network without a live endpoint."""
        removed = []
        with self._lock:
            for network in self._user_networks():
                if not self.endpoints(network):
                    self.remove(network["Id"])
                    removed.append(network["Name"])
        return removed

    # --- endpoints ------------------------------------------------------------------------------------
    def endpoints(self, network: dict) -> dict[str, dict]:
        """The containers attached now: those whose PID 1 still lives.

        The kernel removes a veth pair when its namespace dies, but in a deferred cleanup a
        moment later; a dead container's host end still found here is deleted at once, so
        ``network rm`` right after ``docker rm`` does not see a leftover.
        """
        live = {}
        existing = None
        for container_id, endpoint in (network.get("Endpoints") or {}).items():
            started = endpoint.get("PidStart")
            if started is not None and _process_start(endpoint.get("Pid")) == started:
                live[container_id] = endpoint
                continue
            existing = _link_names() if existing is None else existing
            if endpoint.get("HostVeth") in existing:
                _delete_link(endpoint["HostVeth"])
        return live

    def endpoint(self, network_name: str, container_id: str) -> dict | None:
        try:
            network = self.get(network_name)
        except NetworkNotFound:
            return None
        return self.endpoints(network).get(container_id)

    def connect(self, name_or_id: str, container_id: str, pid: int) -> dict:
        """Plug the container whose PID 1 is ``pid`` into the bridge: a veth pair, ``eth0``
        inside with the next free address, a default route via the gateway."""
        with self._lock:
            network = self.get(name_or_id)
            if network["Name"] in PREDEFINED:
                raise InvalidConfig(f"cannot connect to the {network['Name']} network: it needs no veth")
            self._ensure_bridge(network)
            live = self.endpoints(network)
            network["Endpoints"] = live  # forget the endpoints whose namespace is gone
            config = network["IPAM"]["Config"][0]
            subnet = ipaddress.ip_network(config["Subnet"])
            gateway = ipaddress.ip_address(config["Gateway"])
            used = {ipaddress.ip_address(ep["IPAddress"]) for ep in live.values()} | {gateway}
            address = next((ip for ip in subnet.hosts() if ip not in used), None)
            if address is None:
                raise Conflict(f"no free address left in {subnet} on network {network['Name']}")
            suffix = secrets.token_hex(4)
            host_veth, peer = f"{VETH_PREFIX}{suffix}", f"tdp{suffix}"
            with IPRoute() as ipr:
                ipr.link("add", ifname=host_veth, kind="veth", peer={"ifname": peer})
                try:
                    host_index = ipr.link_lookup(ifname=host_veth)[0]
                    bridge_index = ipr.link_lookup(ifname=network["Bridge"])[0]
                    ipr.link("set", index=host_index, master=bridge_index, state="up")
                    ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_pid=pid)
                    _configure_inside(pid, peer, address, subnet.prefixlen, gateway)
                except (NetlinkError, OSError, IndexError) as error:
                    try:
                        ipr.link("del", ifname=host_veth)
                    except NetlinkError:
                        pass  # it went with the namespace already
                    raise TeachdockError(f"cannot connect the container to network {network['Name']}: {error}") \
                        from None
            endpoint = {"IPAddress": str(address), "IPPrefixLen": subnet.prefixlen, "Gateway": str(gateway),
                        "MacAddress": mac_for(address), "EndpointID": secrets.token_hex(32), "HostVeth": host_veth,
                        "Pid": pid, "PidStart": _process_start(pid)}
            network["Endpoints"][container_id] = endpoint
            self._save(network)
            return endpoint

    # --- the bridge -----------------------------------------------------------------------------------
    def _ensure_bridge(self, network: dict) -> None:
        config = network["IPAM"]["Config"][0]
        prefix = ipaddress.ip_network(config["Subnet"]).prefixlen
        with IPRoute() as ipr:
            if not ipr.link_lookup(ifname=network["Bridge"]):
                try:
                    ipr.link("add", ifname=network["Bridge"], kind="bridge")
                except NetlinkError as error:
                    raise TeachdockError(f"cannot create the bridge {network['Bridge']}: {error}") from None
            index = ipr.link_lookup(ifname=network["Bridge"])[0]
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
            if config["Gateway"] not in have:
                ipr.addr("add", index=index, address=config["Gateway"], prefixlen=prefix)
            ipr.link("set", index=index, state="up")

    def _delete_bridge(self, network: dict) -> None:
        with IPRoute() as ipr:
            try:
                ipr.link("del", ifname=network["Bridge"])
            except NetlinkError:
                pass  # already gone


def _configure_inside(pid: int, peer: str, address, prefixlen: int, gateway) -> None:
    """In the container's network namespace: rename to eth0, address, up, default route."""
    ns = NetNS(f"/proc/{pid}/ns/net")
    try:
        index = ns.link_lookup(ifname=peer)[0]
        ns.link("set", index=index, ifname="eth0", address=mac_for(address))
        ns.addr("add", index=index, address=str(address), prefixlen=prefixlen)
        ns.link("set", index=index, state="up")
        lo = ns.link_lookup(ifname="lo")
        if lo:
            ns.link("set", index=lo[0], state="up")
        ns.route("add", dst="default", gateway=str(gateway))
    finally:
        ns.close()


def _process_start(pid) -> str | None:
    """When the process started (field 22 of /proc/PID/stat): a PID reused later differs."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, TypeError, ValueError):
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _delete_link(name: str) -> None:
    with IPRoute() as ipr:
        try:
            ipr.link("del", ifname=name)
        except NetlinkError:
            pass  # the kernel's own cleanup got there first


def _link_names() -> set[str]:
    with IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def _host_networks() -> list:
    """IPv4 networks already on the host's interfaces: a new bridge must not overlap them."""
    with IPRoute() as ipr:
        return [ipaddress.ip_network(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}", strict=False)
                for a in ipr.get_addr(family=2) if a["prefixlen"] < 32 and not a.get_attr("IFA_ADDRESS").startswith("127.")]
