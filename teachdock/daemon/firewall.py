"""The firewall of teachdock's networks: ONE nftables table, ``inet teachdock``, that teachdock alone owns.

Why one table of our own: nftables lets every program keep its rules in its own tables, each
hooked into the kernel's netfilter hooks beside the others. Setting up and tearing down never
touches a rule someone else owns (Docker's iptables rules, a host firewall), and
``nft delete table inet teachdock`` removes everything at once. What the table holds,
in the order a packet meets it (see it with ``nft list table inet teachdock``)::

    chain guard       prerouting, raw priority   packets to 127.0.0.0/8 arriving on a bridge: drop
    chain prerouting  prerouting, dstnat         to one of the host's addresses -> jump published
    chain output      output, dstnat             the host's own traffic to its addresses -> jump published
    chain published   (jumped to)                one DNAT per published port: host port -> container ip:port
    chain forward     forward, filter            our bridges' way out, isolation between bridges
    chain postrouting postrouting, srcnat        masquerade: subnet leaving by another interface

The ``forward`` chain has policy accept: it decides only about our bridges' traffic and
leaves everything else to whoever else filters. Note that an *accept* here does not overrule a
*drop* in another table at the same hook. So on a host where dockerd runs — it sets iptables'
FORWARD policy to DROP and lets through only its own bridges — teachdock's forwarded traffic is
dropped too: a container's way out, two containers on one bridge (dockerd loads br_netfilter,
so bridged frames pass FORWARD), published ports reached from elsewhere; only published ports on
127.0.0.1 keep working. teachdock does not write into Docker's rules: docs/instructor.md gives
the two DOCKER-USER accept rules that let its bridges through
(tests/integration/test_firewall_beside_docker.py shows both the drop and the fix).

Isolation (Docker's DOCKER-ISOLATION chains): a packet from one teachdock bridge to another
is dropped; to a published port (DNAT done) it is let through, as with Docker. An
``--internal`` network gets no masquerade and no forwarding to or from any other interface.

Published ports from 127.0.0.1 — why ``route_localnet`` and not a userland proxy:
a connection to 127.0.0.1:8080 never passes prerouting (it is the host's own traffic), so
the DNAT for it sits in ``output``. After the DNAT the packet would leave through the bridge
with source address 127.0.0.1, which the kernel refuses to route on a non-loopback interface
unless ``net.ipv4.conf.<bridge>.route_localnet=1``; and the container could not answer
127.0.0.1 (that is its own loopback), so postrouting masquerades 127.0.0.0/8 sources to the
bridge's address. Docker does the same with ``--userland-proxy=false``; by default it runs a
``docker-proxy`` process per published port that accepts on 127.0.0.1:8080 and copies bytes
to the container. We chose the kernel path because: (1) no process per port to start, watch
and clean up, and a teachdockd killed with ``kill -9`` leaves published ports working (rules
live in the kernel, a proxy would die with the daemon); (2) every byte stays in the kernel —
a proxy copies each one through user space twice, the latency the issue's benchmark measures;
(3) UDP needs no per-client flow tracking in Python; (4) it is one rule a learner can read.
The price, and its guard: with route_localnet a container could send packets *to* 127.0.0.1
over the bridge and reach services that listen on the host's loopback only (CVE-2020-8558,
found in Kubernetes). The ``guard`` chain drops every packet that arrives on one of our
bridges addressed to 127.0.0.0/8, before conntrack and NAT see it.

ip_forward: the host routes between interfaces only with ``net.ipv4.ip_forward=1``. It is set
when the table is made; the value found is written into the comment of the table's first
rule (so it survives a daemon restart) and restored when the table goes.

Every rule carries a comment, ``network <bridge>`` or ``container <id>``: removing a network
or a container's ports deletes the rules with its comment, and ``sweep`` after a restart
deletes those of bridges and containers that no longer exist.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading

from teachdock.daemon import nftables
from teachdock.errors import TeachdockError

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
_FORWARD_NOTE = "ip_forward was "  # + "0" or "1": the first rule's comment


# --- building blocks of nftables' JSON rules (each says the nft text it stands for) ---------------------
def _meta(key: str) -> dict:                 # iifname, oifname, l4proto, nfproto
    return {"meta": {"key": key}}


def _match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _saddr_in(subnet: str) -> dict:          # ip saddr 172.29.0.0/16
    network = ipaddress.ip_network(subnet, strict=False)
    return _match({"payload": {"protocol": "ip", "field": "saddr"}},
                  {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}})


_TO_LOOPBACK = _match({"payload": {"protocol": "ip", "field": "daddr"}}, {"prefix": {"addr": "127.0.0.0", "len": 8}})
_FROM_LOOPBACK = _match({"payload": {"protocol": "ip", "field": "saddr"}}, {"prefix": {"addr": "127.0.0.0", "len": 8}})
_TO_LOCAL = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")   # fib daddr type local
_DNAT_DONE = _match({"ct": {"key": "status"}}, "dnat", "in")                     # ct status dnat
_ACCEPT, _DROP, _MASQUERADE = {"accept": None}, {"drop": None}, {"masquerade": None}

# name -> (type, hook, priority); None = a regular chain, entered by jump
_CHAINS = {
    "guard": ("filter", "prerouting", -300),
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "published": None,
    "forward": ("filter", "forward", 0),
    "postrouting": ("nat", "postrouting", 100),
}


class Firewall:
    """One nftables table, ``inet teachdock`` (ip family for NAT), owned by teachdock alone."""

    def __init__(self, table: str = "teachdock"):
        self.table = table
        self._lock = threading.Lock()
        try:
            self._nft = nftables.Nftables()
            self.backend = "nftables"
        except nftables.NftablesMissing as error:
            self._nft, self._missing = None, error
            self.backend = f"none ({nftables.PACKAGE} is not installed)"

    # --- networks -----------------------------------------------------------------------------------
    def add_network(self, bridge: str, subnet: str, *, internal: bool = False) -> None:
        """The rules of one bridge network; makes the table (and ip_forward=1) on first use. Idempotent."""
        nft = self._nft_or_refuse()
        tag = f"network {bridge}"
        with self._lock:
            forward_was = None if self._exists() else _read_sysctl(IP_FORWARD)
            commands = [] if forward_was is None else self._create_table(forward_was)
            commands += self._delete_rules(lambda comment: comment == tag)
            commands.append(self._add({"element": {"name": "bridges", "elem": [bridge]}}))
            rule = lambda chain, *expr: self._add({"rule": {"chain": chain, "comment": tag, "expr": list(expr)}})  # noqa: E731
            iif, oif = _meta("iifname"), _meta("oifname")
            commands.append(rule("guard", _match(iif, bridge), _TO_LOOPBACK, _DROP))
            if internal:
                commands += [rule("forward", _match(iif, bridge), _match(oif, bridge, "!="), _DROP),
                             rule("forward", _match(oif, bridge), _match(iif, bridge, "!="), _DROP)]
            else:
                commands += [
                    # isolation: from this bridge to another of ours
                    rule("forward", _match(iif, bridge), _match(oif, bridge, "!="), _match(oif, "@bridges"), _DROP),
                    rule("forward", _match(iif, bridge), _ACCEPT),                 # the way out
                    rule("forward", _match(oif, bridge), _DROP),                   # unasked traffic in (answers and
                    #                                                                DNAT were accepted at the top)
                    rule("postrouting", _saddr_in(subnet), _match(oif, bridge, "!="), _MASQUERADE),
                    rule("postrouting", _match(oif, bridge), _FROM_LOOPBACK, _MASQUERADE),        # 127.0.0.1 -> ports
                    rule("postrouting", _match(oif, bridge), _saddr_in(subnet), _DNAT_DONE, _MASQUERADE),  # hairpin
                ]
            nft.run(commands)  # one transaction: all of it or nothing
            if forward_was is not None:
                _write_sysctl(IP_FORWARD, "1")
            _write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "0" if internal else "1")

    def remove_network(self, bridge: str) -> None:
        """Delete one bridge's rules; the last network's removal deletes the table."""
        if self._nft is None:
            return
        with self._lock:
            if not self._exists():
                return
            self._nft.run(self._delete_rules(lambda comment: comment == f"network {bridge}")
                          + self._delete_bridge_elements({bridge}))
            _write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "0")
            self._drop_table_when_unused()

    # --- published ports ------------------------------------------------------------------------------
    def publish(self, container_id: str, container_ip: str, bindings: list) -> None:
        """DNAT host_ip:host_port/proto -> container_ip:container_port, from outside and from the host itself."""
        nft = self._nft_or_refuse()
        tag = f"container {container_id}"
        with self._lock:
            if not self._exists():
                raise TeachdockError(f"cannot publish ports of {container_id[:12]}: no network has set up "
                                     f"the nftables table inet {self.table}")
            commands = self._delete_rules(lambda comment: comment == tag)
            for binding in bindings:
                if binding.host_ip and ipaddress.ip_address(binding.host_ip).version == 6:
                    continue  # containers have IPv4 addresses only: nothing to DNAT to
                expr = [_match(_meta("nfproto"), "ipv4")]
                if binding.host_ip not in ("", "0.0.0.0"):
                    expr.append(_match({"payload": {"protocol": "ip", "field": "daddr"}}, binding.host_ip))
                expr += [_match(_meta("l4proto"), binding.protocol),
                         _match({"payload": {"protocol": "th", "field": "dport"}}, binding.host_port),
                         {"dnat": {"family": "ip", "addr": container_ip, "port": binding.container_port}}]
                commands.append(self._add({"rule": {"chain": "published", "comment": tag, "expr": expr}}))
            nft.run(commands)

    def unpublish(self, container_id: str) -> None:
        if self._nft is None:
            return
        with self._lock:
            if self._exists():
                self._nft.run(self._delete_rules(lambda comment: comment == f"container {container_id}"))

    def sweep(self, bridges: set[str], container_ids: set[str]) -> None:
        """After a daemon restart: drop the rules of bridges and containers that no longer exist."""
        if self._nft is None:
            return
        with self._lock:
            if not self._exists():
                return

            def gone(comment: str) -> bool:
                kind, _, name = comment.partition(" ")
                return (kind == "network" and name not in bridges) or (kind == "container" and name not in container_ids)

            known = set(self._bridge_elements())
            self._nft.run(self._delete_rules(gone) + self._delete_bridge_elements(known - set(bridges)))
            self._drop_table_when_unused()

    # --- what is there --------------------------------------------------------------------------------
    def rules(self) -> list[dict]:
        """Every rule of the table as libnftables' JSON (``[]`` when there is no table)."""
        if self._nft is None or not self._exists():
            return []
        return [item["rule"] for item in self._nft.list(f"table inet {self.table}") if "rule" in item]

    def text(self) -> str:
        """``nft list table inet teachdock``, for a learner to read (empty when there is no table)."""
        if self._nft is None or not self._exists():
            return ""
        plain = nftables.Nftables(json_output=False)
        try:
            return plain.run_text(f"list table inet {self.table}")
        finally:
            plain.close()

    # --- the table's life -----------------------------------------------------------------------------
    def _nft_or_refuse(self) -> nftables.Nftables:
        if self._nft is None:
            raise nftables.NftablesError(f"teachdock's networks need nftables: {self._missing}")
        return self._nft

    def _exists(self) -> bool:
        tables = self._nft.list("tables inet")
        return any(item.get("table", {}).get("name") == self.table for item in tables)

    def _add(self, obj: dict) -> dict:
        (kind, body), = obj.items()
        return {"add": {kind: {"family": "inet", "table": self.table, **body}}}

    def _create_table(self, forward_was: str) -> list[dict]:
        """The table, its chains and the rules every network shares (the first one notes ip_forward's value)."""
        commands = [{"add": {"table": {"family": "inet", "name": self.table}}},
                    self._add({"set": {"name": "bridges", "type": "ifname"}})]
        for name, hook in _CHAINS.items():
            chain = {"name": name}
            if hook:
                chain.update(type=hook[0], hook=hook[1], prio=hook[2], policy="accept")
            commands.append(self._add({"chain": chain}))
        state = {"ct": {"key": "state"}}
        commands += [
            self._add({"rule": {"chain": "forward", "comment": f"{_FORWARD_NOTE}{forward_was}",
                                "expr": [_match(state, ["established", "related"], "in"), _ACCEPT]}}),
            self._add({"rule": {"chain": "forward", "expr": [_DNAT_DONE, _ACCEPT]}}),   # published ports
            self._add({"rule": {"chain": "prerouting", "expr": [_TO_LOCAL, {"jump": {"target": "published"}}]}}),
            self._add({"rule": {"chain": "output", "expr": [_TO_LOCAL, {"jump": {"target": "published"}}]}}),
        ]
        return commands

    def _listing(self) -> list[dict]:
        return self._nft.list(f"table inet {self.table}")

    def _delete_rules(self, wanted) -> list[dict]:
        return [{"delete": {"rule": {"family": "inet", "table": self.table, "chain": item["rule"]["chain"],
                                     "handle": item["rule"]["handle"]}}}
                for item in (self._listing() if self._exists() else [])
                if "rule" in item and wanted(item["rule"].get("comment", ""))]

    def _bridge_elements(self) -> list[str]:
        for item in self._listing():
            if item.get("set", {}).get("name") == "bridges":
                return [e for e in item["set"].get("elem", []) if isinstance(e, str)]
        return []

    def _delete_bridge_elements(self, bridges: set[str]) -> list[dict]:
        present = [b for b in self._bridge_elements() if b in bridges]
        if not present:
            return []
        return [{"delete": {"element": {"family": "inet", "table": self.table, "name": "bridges", "elem": present}}}]

    def _drop_table_when_unused(self) -> None:
        """No network left: delete the table, and give ip_forward back the value it had."""
        listing = self._listing()
        if any(item.get("rule", {}).get("comment", "").startswith("network ") for item in listing):
            return
        was = next((item["rule"]["comment"][len(_FORWARD_NOTE):] for item in listing
                    if item.get("rule", {}).get("comment", "").startswith(_FORWARD_NOTE)), None)
        self._nft.run([{"delete": {"table": {"family": "inet", "name": self.table}}}])
        others = [item["table"]["name"] for item in self._nft.list("tables")
                  if item.get("table", {}).get("name", "").startswith("teachdock")]
        if was in ("0", "1") and not others:  # another teachdock table (another daemon) still routes
            _write_sysctl(IP_FORWARD, was)


def table_name(bridge: str, default_bridge: str = "teachdock0") -> str:
    """The table of the daemon whose default network is on ``bridge``: ``teachdock`` for the
    usual one, one of its own for each daemon beside it (so that one daemon's clean-up never
    sweeps another's rules). nft's names take letters, digits and ``_``."""
    if bridge == default_bridge:
        return "teachdock"
    return "teachdock_" + re.sub(r"[^A-Za-z0-9_]", "_", bridge)


def _read_sysctl(path: str) -> str:
    with open(path) as file:
        return file.read().strip()


def _write_sysctl(path: str, value: str) -> None:
    if os.path.exists(path):
        with open(path, "w") as file:
            file.write(value)
