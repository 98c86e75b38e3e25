"""Chapter 08, networks: a Docker bridge network built by hand in namespaces of the lab's own
(``byhand``), its nftables rules as ``nft`` text (``nft_text``), the topology drawn from netlink
data (``topology``), latency and throughput with busybox nc (``measure``), the daemon's side
through the docker CLI (``daemon_side``), a DNS sniffer (``dnswatch``), the exercises
(``checks``). Programs run inside a namespace through ``nsexec`` (``setns`` in a fresh process).
"""

from teachdock.lab.networks.byhand import (BRIDGE, CONTAINERS, GATEWAY, HOST, HOST_OUTSIDE_ADDRESS, OUTSIDE,
                                           OUTSIDE_ADDRESS, SUBNET, UPLINK, add_address, add_default_route, ask,
                                           build_lab, cleanup, enslave, ipr, leftovers, link_up, links, make_bridge,
                                           make_namespace, ping, plug_in, routes, run_in, sysctl, veth_pair,
                                           whoami_server)
from teachdock.lab.networks.checks import (FOURTH, REASONS, check_fourth_namespace, check_published,
                                           check_published_by_hand, check_reach_by_name, check_unreachable)
from teachdock.lab.networks.daemon_side import (container_address, container_netns, daemon_reachable, daemon_sources,
                                                docker, ensure_daemon, http_get, lab_objects, remove_lab_objects)
from teachdock.lab.networks.dnswatch import describe, watch
from teachdock.lab.networks.measure import free_port, measure_path, plot_paths
from teachdock.lab.networks.nft_text import apply, flush_nat, list_table, masquerade, publish, rules, ruleset_json
from teachdock.lab.networks.topology import (daemon_rule_sources, draw, lab_rule_sources, lab_sources, snapshot,
                                             topology_widget)

__all__ = [
    "apply", "daemon_rule_sources", "flush_nat", "free_port", "lab_rule_sources", "rules", "ruleset_json",
    "FOURTH", "ipr", "daemon_reachable", "BRIDGE", "CONTAINERS", "GATEWAY", "HOST", "HOST_OUTSIDE_ADDRESS", "OUTSIDE", "OUTSIDE_ADDRESS", "REASONS",
    "SUBNET", "UPLINK", "add_address", "add_default_route", "ask", "build_lab", "check_fourth_namespace",
    "check_published", "check_published_by_hand", "check_reach_by_name", "check_unreachable", "cleanup",
    "container_address", "container_netns", "daemon_sources", "describe", "docker", "draw", "enslave",
    "ensure_daemon", "http_get", "lab_objects", "lab_sources", "leftovers", "link_up", "links", "list_table",
    "make_bridge", "make_namespace", "masquerade", "measure_path", "ping", "plot_paths", "plug_in", "publish",
    "remove_lab_objects", "routes", "run_in", "snapshot", "sysctl", "topology_widget", "veth_pair", "watch",
    "whoami_server",
]
