"""The kernel side of a bridge network: bridges, veth pairs, addresses and routes, through netlink.

Every call here sends the netlink messages ``ip link`` / ``ip addr`` / ``ip route`` would
send, through pyroute2's sockets (``IPRoute`` on the host, ``NetNS`` inside a container's
network namespace) — no ``ip`` command is run::

    host                                   container's network namespace
    bridge td-0123456789ab  172.30.1.1/24
      └─ tdv1a2b3c4d ◄──── veth pair ────► eth0  172.30.1.2/24, 02:42:ac:1e:01:02
                                                default via 172.30.1.1

A veth pair is made with one end on the bridge and the other in the namespace of the
container's PID 1, named ``eth0`` (``eth1``, … for each further network). Deleting either end
deletes both, and the kernel deletes the pair when the namespace dies.
"""

from __future__ import annotations

import ipaddress
import secrets

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

from teachdock.errors import TeachdockError

VETH_PREFIX = "tdv"    # the host end of a container's veth: tdv + 8 hex (its other end: eth0, eth1, ...)


class LinkError(TeachdockError):
    """The kernel refused a link, address or route."""


def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """The bridge ``name`` exists, carries ``gateway/prefixlen`` and is up (made if missing)."""
    with IPRoute() as ipr:
        try:
            if index_of(ipr, name) is None:
                ipr.link("add", ifname=name, kind="bridge")
            index = index_of(ipr, name)
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
            if gateway not in have:
                ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            ipr.link("set", index=index, state="up")
        except NetlinkError as error:
            raise LinkError(f"cannot set up the bridge {name}: {error}") from None


def index_of(ipr, name: str) -> int | None:
    """A link's index by name, from a dump of the links: pyroute2 0.9's ``link_lookup`` keeps
    ~1.5 KB of the process's memory per call (measured), which a daemon that runs for weeks must not."""
    for link in ipr.get_links():
        if link.get_attr("IFLA_IFNAME") == name:
            return link["index"]
    return None


def delete_link(name: str) -> bool:
    """Delete a link (a bridge, or a veth pair by either end); False if it was not there."""
    with IPRoute() as ipr:
        try:
            ipr.link("del", ifname=name)
            return True
        except NetlinkError:
            return False  # gone already (the kernel removes a veth pair with its namespace)


def link_names() -> set[str]:
    with IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def ports_of(bridge: str) -> list[str]:
    """The names of the links plugged into ``bridge`` (the host ends of its veths)."""
    with IPRoute() as ipr:
        found = index_of(ipr, bridge)
        if found is None:
            return []
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == found]


def host_networks() -> list[ipaddress.IPv4Network]:
    """IPv4 networks on the host's interfaces but loopback: a new network must not overlap them."""
    with IPRoute() as ipr:
        return [ipaddress.ip_network(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}", strict=False)
                for a in ipr.get_addr(family=2)
                if a["prefixlen"] < 32 and not a.get_attr("IFA_ADDRESS").startswith("127.")]


def plug(ipr: IPRoute, bridge: str, pid: int, *, ifname: str, address: str, prefixlen: int, mac: str,
         gateway: str | None) -> str:
    """Connect the network namespace of process ``pid`` (a container's PID 1) to ``bridge``;
    return the veth's host end. ``ipr``: the caller's netlink socket on the host.

    One message makes the veth pair with its host end on the bridge and its other end already
    in the namespace as ``ifname`` (eth0, eth1, ...) with ``mac`` — each move or rename would
    be one more trip through the kernel's network lock —; then, inside, ``address``, up, and a
    default route via ``gateway`` when given (the first network gives the way out). Nothing is
    left behind when a step fails.
    """
    host_end = VETH_PREFIX + secrets.token_hex(4)
    try:
        bridge_index = index_of(ipr, bridge)
        if bridge_index is None:
            raise LinkError(f"the bridge {bridge} does not exist")
        ipr.link("add", ifname=host_end, kind="veth", master=bridge_index, state="up",
                 peer={"ifname": ifname, "address": mac, "net_ns_pid": pid})
    except NetlinkError as error:
        raise LinkError(f"cannot make a veth pair on {bridge}: {error}") from None
    try:
        with NetNS(f"/proc/{pid}/ns/net") as ns:
            index = index_of(ns, ifname)
            ns.addr("add", index=index, address=address, prefixlen=prefixlen)
            ns.link("set", index=index, state="up")
            if gateway:
                ns.route("add", dst="default", gateway=gateway)
    except (NetlinkError, OSError, IndexError) as error:
        try:
            ipr.link("del", ifname=host_end)
        except NetlinkError:
            pass
        raise LinkError(f"cannot connect process {pid}'s namespace to {bridge}: {error}") from None
    return host_end


def unplug(host_end: str, pid: int | None = None, *, gateways=()) -> None:
    """Remove a veth pair by its host end; with ``pid``, give that process's namespace a default
    route via the first of ``gateways`` (its remaining networks) if it lost its own."""
    delete_link(host_end)
    if pid and gateways:
        try:
            with NetNS(f"/proc/{pid}/ns/net") as ns:
                if not _default_routes(ns):
                    ns.route("add", dst="default", gateway=gateways[0])
        except (NetlinkError, OSError):
            pass  # the namespace is gone: nothing to route


def _default_routes(ns) -> list:
    return [route for route in ns.get_routes(family=2) if route["dst_len"] == 0 and route.get_attr("RTA_GATEWAY")]
