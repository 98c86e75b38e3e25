"""IP address management (IPAM): which subnet a network gets, and which address each container.

Docker's default IPAM driver, small:

- a network's **subnet** comes from a pool (user networks: the /24s of ``172.30.0.0/16``; the
  default network ``bridge``: ``172.29.0.0/16``, both clear of Docker's ``172.17.0.0/16``) or
  from ``--subnet``; it must not overlap another network's, nor one on the host's interfaces;
- its **gateway** is the subnet's first address unless ``--gateway`` says otherwise; the
  gateway sits on the Linux bridge;
- ``--ip-range`` narrows where containers' addresses come from; ``--ip`` (``IPAMConfig``) asks
  for one address;
- a container's **lease** is kept until the container is removed, so a restarted container
  (or one still running across a daemon restart) keeps its address;
- its **MAC address** is derived from the IPv4 address, as Docker derives it (``02:42`` then
  the four bytes), so it is unique on the bridge without a registry of its own.

The choices are pure functions (unit-tested without root); :class:`Leases` persists them,
one JSON file per network under ``<data root>/daemon/networks/leases/``.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from pathlib import Path

from teachdock.errors import Conflict, InvalidConfig
from teachdock.files import write_json_atomically

SUBNET_POOL = ipaddress.ip_network("172.30.0.0/16")            # user networks get 172.30.N.0/24
DEFAULT_BRIDGE_SUBNET = ipaddress.ip_network("172.29.0.0/16")   # the network named "bridge"


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """``--subnet`` -> an IPv4 network; dockerd's words for what is not one."""
    try:
        subnet = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidConfig(f"Invalid subnet {text} : invalid CIDR address: {text}") from None
    if subnet.version != 4:
        raise InvalidConfig(f"invalid subnet {text}: teachdockd networks are IPv4 only")
    if subnet.prefixlen > 30:
        raise InvalidConfig(f"invalid subnet {text}: a network needs at least /30 (a gateway and an address)")
    return subnet


def pick_subnet(wanted: str | None, taken: list, *, pool=SUBNET_POOL, prefixlen: int = 24) -> ipaddress.IPv4Network:
    """The subnet for a new network: ``wanted`` if it overlaps nothing in ``taken`` (other
    networks' subnets and the host's), else the first free /24 of the pool."""
    if wanted:
        subnet = parse_subnet(wanted)
        if any(subnet.overlaps(other) for other in taken):
            raise Conflict("Pool overlaps with other one on this address space")
        return subnet
    for candidate in pool.subnets(new_prefix=prefixlen):
        if candidate.network_address == pool.network_address:
            continue  # 172.30.0.0/24 is left alone: it reads like a default
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise Conflict(f"could not find an available, non-overlapping IPv4 address pool among the defaults to "
                   f"assign to the network (all of {pool} is in use: remove a network or give --subnet)")


def pick_gateway(subnet: ipaddress.IPv4Network, wanted: str | None) -> ipaddress.IPv4Address:
    """``--gateway``, or the subnet's first host address."""
    if not wanted:
        return next(subnet.hosts())
    try:
        gateway = ipaddress.ip_address(wanted)
    except ValueError:
        raise InvalidConfig(f"invalid gateway address {wanted!r}") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidConfig(f"no matching subnet for gateway {wanted}")
    return gateway


def check_ip_range(subnet: ipaddress.IPv4Network, ip_range: str | None) -> str | None:
    """``--ip-range``: a CIDR inside the subnet, or None."""
    if not ip_range:
        return None
    try:
        narrowed = ipaddress.ip_network(ip_range, strict=False)
    except ValueError:
        raise InvalidConfig(f"invalid CIDR address: {ip_range}") from None
    if not narrowed.subnet_of(subnet):
        raise InvalidConfig(f"no matching subnet for range {ip_range}")
    return str(narrowed)


def next_address(subnet, gateway, used, *, ip_range=None, wanted=None) -> ipaddress.IPv4Address:
    """The address for a new lease: ``wanted`` (``--ip``) if free, else the lowest free one in
    ``ip_range`` (or the subnet), skipping the network address, broadcast and gateway."""
    subnet = ipaddress.ip_network(subnet)
    gateway = ipaddress.ip_address(gateway) if gateway else None
    used = {ipaddress.ip_address(address) for address in used}
    if wanted:
        try:
            address = ipaddress.ip_address(wanted)
        except ValueError:
            raise InvalidConfig(f"invalid IPv4 address: {wanted}") from None
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
            raise InvalidConfig(f"no configured subnet or ip-range contain the IP address {wanted}")
        if address in used or address == gateway:
            raise Conflict(f"Address already in use: {wanted}")
        return address
    hosts = ipaddress.ip_network(ip_range).hosts() if ip_range else subnet.hosts()
    for address in hosts:
        if address != gateway and address not in used and address != subnet.broadcast_address:
            return address
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {ip_range or subnet}")


def mac_for(address) -> str:
    """Docker's scheme: 02:42 then the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.ip_address(address).packed)


class Leases:
    """Who holds which address, per network: ``<directory>/<network id>.json`` = {container id: address}."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, network_id: str) -> Path:
        return self.directory / f"{network_id}.json"

    def of(self, network_id: str) -> dict[str, str]:
        try:
            return json.loads(self._path(network_id).read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, network_id: str, leases: dict) -> None:
        if leases:
            write_json_atomically(self._path(network_id), leases)
        else:
            self._path(network_id).unlink(missing_ok=True)

    def take(self, network_id: str, container_id: str, subnet, gateway, *, ip_range=None, wanted=None) -> str:
        """The container's address on the network: the one it holds already (unless it now
        asks for another), else a new one, written down before it is used."""
        with self._lock:
            leases = self.of(network_id)
            held = leases.get(container_id)
            if held and (not wanted or wanted == held):
                return held
            others = [address for holder, address in leases.items() if holder != container_id]
            address = str(next_address(subnet, gateway, others, ip_range=ip_range, wanted=wanted))
            leases[container_id] = address
            self._write(network_id, leases)
            return address

    def release(self, network_id: str, container_id: str) -> None:
        with self._lock:
            leases = self.of(network_id)
            if leases.pop(container_id, None) is not None:
                self._write(network_id, leases)

    def release_container(self, container_id: str) -> None:
        """A removed container's leases on every network."""
        for path in self.directory.glob("*.json"):
            self.release(path.stem, container_id)

    def forget_network(self, network_id: str) -> None:
        self._path(network_id).unlink(missing_ok=True)

    def sweep(self, network_ids: set[str], container_ids: set[str]) -> None:
        """After a restart: drop the files of networks and the leases of containers that are gone."""
        for path in self.directory.glob("*.json"):
            if path.stem not in network_ids:
                path.unlink(missing_ok=True)
                continue
            with self._lock:
                leases = self.of(path.stem)
                kept = {holder: address for holder, address in leases.items() if holder in container_ids}
                if kept != leases:
                    self._write(path.stem, kept)
