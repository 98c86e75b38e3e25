"""The network verbs of the ``teachdock`` CLI, as ``docker network ...``: ls, create, inspect,
connect, disconnect, rm, prune. Each is one or two Engine API calls (``--help`` names them)."""

from __future__ import annotations

import sys

from teachdock.client.commands import Session, for_each, print_inspected, table
from teachdock.client.flags import Flag, UsageError, Verb


def cmd_network_ls(session: Session) -> int:
    networks = session.client.networks()
    if session.options.quiet:
        for network in networks:
            print(network["Id"][:12])
        return 0
    rows = [[n["Id"][:12], n["Name"], n.get("Driver", ""), n.get("Scope", "local")] for n in networks]
    sys.stdout.write(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows))
    return 0


def _labels(items) -> dict:
    labels = {}
    for item in items or []:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def cmd_network_create(session: Session) -> int:
    o = session.options
    print(session.client.create_network(session.args[0], o.driver or "bridge", o.subnet, o.gateway,
                                        ip_range=o.ip_range, internal=bool(o.internal), labels=_labels(o.label))["Id"])
    return 0


def cmd_network_inspect(session: Session) -> int:
    return print_inspected(session.args, session.client.inspect_network)


def cmd_network_connect(session: Session) -> int:
    network, container = session.args
    session.client.connect_network(network, container, aliases=session.options.alias or (), ip=session.options.ip)
    return 0


def cmd_network_disconnect(session: Session) -> int:
    network, container = session.args
    session.client.disconnect_network(network, container, force=bool(session.options.force))
    return 0


def cmd_network_rm(session: Session) -> int:
    return for_each(session.args, session.client.remove_network)


def cmd_network_prune(session: Session) -> int:
    if not session.options.force:
        answer = input("WARNING! This will remove all custom networks not used by at least one container.\n"
                       "Are you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("nothing removed")
    deleted = session.client.prune_networks().get("NetworksDeleted") or []
    if deleted:
        print("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted), end="")
    return 0


VERBS = {
    "network ls": (Verb("network ls", "", "List networks.", "GET /networks",
                        [Flag("-q,--quiet", "only the ids")], max_args=0), cmd_network_ls),
    "network create": (Verb("network create", "NAME", "Create a network (a Linux bridge and a subnet).",
                            "POST /networks/create {\"Name\": NAME, \"Driver\": \"bridge\", \"IPAM\": ...}",
                            [Flag("-d,--driver", "driver (bridge)", value="DRIVER"),
                             Flag("--subnet", "subnet in CIDR form", value="CIDR"),
                             Flag("--gateway", "gateway address", value="IP"),
                             Flag("--ip-range", "give containers addresses from this part of the subnet",
                                  value="CIDR"),
                             Flag("--internal", "no way out of the network"),
                             Flag("--label", "a label KEY=VALUE", value="KEY=VALUE", repeat=True)],
                            min_args=1, max_args=1), cmd_network_create),
    "network inspect": (Verb("network inspect", "NETWORK [NETWORK...]", "Show networks, with their containers.",
                             "GET /networks/NAME", min_args=1), cmd_network_inspect),
    "network connect": (Verb("network connect", "NETWORK CONTAINER",
                             "Connect a container to a network (a running one gets eth1, ... at once).",
                             "POST /networks/NAME/connect {\"Container\": ..., \"EndpointConfig\": ...}",
                             [Flag("--alias", "another name it answers to on this network", value="NAME",
                                   repeat=True),
                              Flag("--ip", "its IPv4 address on this network", value="IP")],
                             min_args=2, max_args=2), cmd_network_connect),
    "network disconnect": (Verb("network disconnect", "NETWORK CONTAINER", "Disconnect a container from a network.",
                                "POST /networks/NAME/disconnect {\"Container\": ...}",
                                [Flag("-f,--force", "also when the network is gone")], min_args=2, max_args=2),
                           cmd_network_disconnect),
    "network rm": (Verb("network rm", "NETWORK [NETWORK...]", "Remove networks.", "DELETE /networks/NAME",
                        min_args=1), cmd_network_rm),
    "network prune": (Verb("network prune", "", "Remove the networks no container uses.", "POST /networks/prune",
                           [Flag("-f,--force", "do not ask for confirmation")], max_args=0), cmd_network_prune),
}
