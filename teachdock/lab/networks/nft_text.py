"""The lab's own nftables rules, as ``nft`` script text, and a reader for ``nft -j`` output.

The chapter writes its few rules by hand, in the language ``nft -f`` reads, so the learner sees
exactly what goes into the kernel: one table, ``ip tdlab-nat``, with a ``postrouting`` chain
(masquerade: the way out) and a ``prerouting`` + ``output`` pair (DNAT: a published port).
teachdockd keeps its own rules in its own table through libnftables' JSON API
(``teachdock/daemon/firewall.py``); the lab only *reads* that table, through ``nft -j``.

The builders are pure (unit-tested); ``apply``, ``list_table`` and ``table_json`` run ``nft``
inside a namespace.
"""

from __future__ import annotations

import json
import subprocess

from teachdock.lab.common.language import say

TABLE = "tdlab-nat"


def masquerade(subnet: str, bridge: str, *, table: str = TABLE) -> str:
    """Source NAT for the bridge's subnet, for packets that leave through any other interface:
    what Docker adds for each bridge network (``-j MASQUERADE`` in its iptables days)."""
    return (
        f"table ip {table} {{\n"
        f"    chain postrouting {{\n"
        f"        type nat hook postrouting priority srcnat; policy accept;\n"
        f'        ip saddr {subnet} oifname != "{bridge}" masquerade\n'
        f"    }}\n"
        f"}}\n"
    )


def publish(host_address: str, host_port: int, container_address: str, container_port: int, *,
            protocol: str = "tcp", table: str = TABLE) -> str:
    """A published port: destination NAT of ``host_address:host_port`` to the container.
    ``prerouting`` catches packets that arrive from outside; ``output`` catches the host's
    own connections, which never pass prerouting."""
    if protocol not in ("tcp", "udp"):
        raise ValueError(say("protocol {protocol}: tcp or udp", protocol=repr(protocol)))
    for port in (host_port, container_port):
        if not 0 < int(port) < 65536:
            raise ValueError(say("port {port} out of range 1-65535", port=port))
    rule = (f"ip daddr {host_address} {protocol} dport {int(host_port)} "
            f"dnat to {container_address}:{int(container_port)}")
    return (
        f"table ip {table} {{\n"
        f"    chain prerouting {{\n"
        f"        type nat hook prerouting priority dstnat; policy accept;\n"
        f"        {rule}\n"
        f"    }}\n"
        f"    chain output {{\n"
        f"        type nat hook output priority -100; policy accept;\n"
        f"        {rule}\n"
        f"    }}\n"
        f"}}\n"
    )


def flush_nat(*, table: str = TABLE) -> str:
    """Empty the DNAT chains (the published ports) and keep the masquerade: a fresh start."""
    return f"flush chain ip {table} prerouting\nflush chain ip {table} output\n"


def delete_table(*, family: str = "ip", table: str = TABLE) -> str:
    return f"delete table {family} {table}\n"


# ------------------------------------------------------------------ running nft


def nft_argv(netns: str | None, *args: str) -> list[str]:
    from teachdock.lab.networks.nsexec import nsexec_argv

    return nsexec_argv(netns, ["nft", *args])


def apply(netns: str | None, script: str) -> None:
    """``nft -f -`` with ``script`` on stdin, inside ``netns``; nft's own message on error."""
    done = subprocess.run(nft_argv(netns, "-f", "-"), input=script, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(say("nft refused the rules:\n{error}", error=done.stderr.strip()))


def list_table(netns: str | None, *, family: str = "ip", table: str = TABLE) -> str:
    """``nft list table FAMILY TABLE``: the rules as the kernel holds them now ("" if none)."""
    done = subprocess.run(nft_argv(netns, "list", "table", family, table), capture_output=True, text=True, timeout=20)
    return done.stdout if done.returncode == 0 else ""


def ruleset_json(netns: str | None) -> dict:
    """``nft -j list ruleset`` of a namespace ({} when nft fails or is missing)."""
    try:
        done = subprocess.run(nft_argv(netns, "-j", "list", "ruleset"), capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        return {}
    if done.returncode != 0 or not done.stdout.strip():
        return {}
    return json.loads(done.stdout)


# ------------------------------------------------------------------ reading nft -j (pure)


def expression_text(expression) -> str:
    """One statement of a rule's JSON ``expr`` list, back to words (the common ones)."""
    if not isinstance(expression, dict) or len(expression) != 1:
        return json.dumps(expression)
    (kind, value), = expression.items()
    if kind == "match":
        left = value.get("left", {})
        if isinstance(left, dict) and "payload" in left:
            left = f"{left['payload'].get('protocol')} {left['payload'].get('field')}"
        elif isinstance(left, dict) and "meta" in left:
            left = left["meta"].get("key")
        right = value.get("right")
        if isinstance(right, dict) and "prefix" in right:
            right = f"{right['prefix']['addr']}/{right['prefix']['len']}"
        elif isinstance(right, dict) and "set" in right:
            right = "{ " + ", ".join(map(str, right["set"])) + " }"
        op = value.get("op", "==")
        return f"{left} {'' if op == '==' else op + ' '}{right}"
    if kind in ("dnat", "snat"):
        port = f":{value['port']}" if "port" in value else ""
        return f"{kind} to {value.get('addr')}{port}"
    if kind in ("masquerade", "accept", "drop", "return", "counter"):
        return kind
    if kind == "jump":
        return f"jump {value.get('target')}"
    return f"{kind} {json.dumps(value)}"


def rules(ruleset: dict, *, table: str | None = None) -> list[tuple[str, str, str]]:
    """(table, chain, rule text) for every rule of ``nft -j list ruleset`` output, optionally
    of one table only (any family)."""
    found = []
    for item in ruleset.get("nftables", []):
        rule = item.get("rule") if isinstance(item, dict) else None
        if rule is None or (table is not None and rule.get("table") != table):
            continue
        text = " ".join(expression_text(expression) for expression in rule.get("expr", []))
        found.append((f"{rule.get('family')} {rule.get('table')}", rule.get("chain"), text))
    return found
