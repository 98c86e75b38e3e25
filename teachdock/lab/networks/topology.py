"""The network topology, drawn from netlink data: bridges, veth pairs and the namespace of each
end, addresses, and the NAT rules (chapter 08, section 3).

``collect(sources)`` reads the links of each namespace with pyroute2 (``byhand.links``);
``build(data, rules)`` is pure: it pairs the veth ends across namespaces and groups bridge
ports, so it is tested with made-up data. ``draw(topology)`` makes a matplotlib figure;
``topology_widget(sources)`` redraws it on a button, or every second while "watch" is on
(an asyncio task on the kernel's loop, so Stop always works).

How a veth finds its peer: netlink gives each veth ``IFLA_LINK``, the peer's interface index,
and, when the peer is in another namespace, ``IFLA_LINK_NETNSID``. Interface indexes are only
unique per namespace, so two ends pair up when each one's peer index is the other's index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from teachdock.lab.common.language import say
from teachdock.lab.networks.byhand import LinkState

HIDDEN_KINDS = ("loopback",)


@dataclass
class End:
    namespace: str
    link: LinkState


@dataclass
class Topology:
    namespaces: list[str]
    bridges: list[End] = field(default_factory=list)
    pairs: list[tuple[End, End]] = field(default_factory=list)     # veth pairs, both ends known
    loose: list[End] = field(default_factory=list)                 # veths whose peer we did not look at
    ports: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (ns, bridge) -> port names
    rules: list[tuple[str, str, str]] = field(default_factory=list)       # (table, chain, rule)

    def peer_of(self, namespace: str, name: str) -> End | None:
        for a, b in self.pairs:
            if (a.namespace, a.link.name) == (namespace, name):
                return b
            if (b.namespace, b.link.name) == (namespace, name):
                return a
        return None

    def __repr__(self) -> str:
        lines = [say("namespaces: {names}", names=", ".join(self.namespaces))]
        for bridge in self.bridges:
            ports = self.ports.get((bridge.namespace, bridge.link.name), [])
            addresses = " ".join(bridge.link.addresses)
            if ports:
                lines.append(say("bridge {name} ({namespace}) {addresses} ports: {ports}", name=bridge.link.name,
                                 namespace=bridge.namespace, addresses=addresses, ports=", ".join(ports)))
            else:
                lines.append(say("bridge {name} ({namespace}) {addresses} ports: none", name=bridge.link.name,
                                 namespace=bridge.namespace, addresses=addresses))
        for a, b in self.pairs:
            lines.append(f"veth {a.namespace}:{a.link.name} {' '.join(a.link.addresses)} <-> "
                         f"{b.namespace}:{b.link.name} {' '.join(b.link.addresses)}")
        for table, chain, rule in self.rules:
            lines.append(say("rule {table} {chain}: {rule}", table=table, chain=chain, rule=rule))
        return "\n".join(lines)


def build(data: dict[str, list[LinkState]], rules=()) -> Topology:
    """The topology of the namespaces in ``data`` (namespace label -> its links)."""
    topology = Topology(namespaces=list(data), rules=list(rules))
    veths = []
    for namespace, links in data.items():
        for link in links:
            if link.kind == "bridge":
                topology.bridges.append(End(namespace, link))
                topology.ports[(namespace, link.name)] = sorted(
                    other.name for other in links if other.master == link.name)
            elif link.kind == "veth":
                veths.append(End(namespace, link))
    paired = set()
    for i, end in enumerate(veths):
        if i in paired:
            continue
        for j in range(i + 1, len(veths)):
            other = veths[j]
            if j in paired:
                continue
            same_namespace = other.namespace == end.namespace
            if (end.link.peer_index == other.link.index and other.link.peer_index == end.link.index
                    and same_namespace != end.link.peer_elsewhere):
                topology.pairs.append((end, other))
                paired.update((i, j))
                break
        else:
            topology.loose.append(end)
    return topology


# ------------------------------------------------------------------ where the data comes from


def lab_sources() -> list[tuple[str, str | None]]:
    """The by-hand lab's namespaces: (label, namespace path)."""
    from teachdock.lab.networks.byhand import namespaces
    from teachdock.lab.networks.nsexec import netns_path

    return [(name, netns_path(name)) for name in namespaces()]


def lab_rule_sources() -> list[tuple[str | None, str | None]]:
    """The by-hand lab's NAT table, in the lab's host namespace."""
    from teachdock.lab.networks.byhand import HOST
    from teachdock.lab.networks.nft_text import TABLE
    from teachdock.lab.networks.nsexec import netns_path

    return [(netns_path(HOST), TABLE)]


def daemon_rule_sources(table: str = "teachdock") -> list[tuple[str | None, str | None]]:
    """teachdockd's one nftables table, in the host's namespace (any family)."""
    return [(None, table)]


def collect(sources: list[tuple[str, str | None]]) -> dict[str, list[LinkState]]:
    """The links of each (label, namespace path or None for this process's) source; a
    namespace that vanished meanwhile (a container that exited) is left out."""
    from teachdock.lab.networks.byhand import links

    data = {}
    for label, path in sources:
        if path is not None and not os.path.exists(path):
            continue
        try:
            data[label] = [link for link in links(path) if link.kind not in HIDDEN_KINDS]
        except Exception:  # noqa: BLE001 — gone between the check and the read
            continue
    return data


def snapshot(sources, rule_sources=()) -> Topology:
    """Read everything now: the links of ``sources``, the rules of ``rule_sources``
    ((namespace path or None, table name or None for all))."""
    from teachdock.lab.networks.nft_text import rules, ruleset_json

    found_rules = []
    for path, table in rule_sources:
        found_rules += rules(ruleset_json(path), table=table)
    return build(collect(sources), found_rules)


# ------------------------------------------------------------------ the picture


def interface_label(link: LinkState) -> str:
    name = link.name if link.up else say("{name} (down)", name=link.name)
    return "\n".join([name, *link.addresses])


def draw(topology: Topology, *, title: str = "", host: str | None = None):
    """One box per namespace, the host namespace (``host``, or the one with the bridges) on top;
    bridges inside it, each veth pair a line from one end to the other, bridge ports joined to
    their bridge; the NAT rules printed underneath."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    if host is None:
        host = topology.bridges[0].namespace if topology.bridges else (topology.namespaces or ["host"])[0]
    others = []   # namespaces joined directly to each other first, side by side
    for a, b in topology.pairs:
        if host not in (a.namespace, b.namespace):
            others += [name for name in (a.namespace, b.namespace) if name not in others]
    others += [name for name in topology.namespaces if name != host and name not in others]
    width = max(len(others), 3) * 2.6
    rule_lines = [f"{table} {chain}: {rule}" for table, chain, rule in topology.rules][:8]
    height = 5.2 + 0.22 * len(rule_lines)
    fig = Figure(figsize=(min(max(width, 8), 16), height), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, width)
    ax.set_ylim(-0.3 - 0.25 * len(rule_lines), 5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)

    def box(x, y, w, h, colour, edge="#777777"):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor=colour, edgecolor=edge))

    where: dict[tuple[str, str], tuple[float, float]] = {}   # (namespace, interface) -> point
    box(0.1, 2.9, width - 0.2, 2.0, "#f3f8ee")
    ax.text(0.25, 4.75, say("namespace {name}", name=host), fontsize=9, weight="bold", va="top")
    host_links = [end for end in topology.bridges if end.namespace == host]
    for i, bridge in enumerate(host_links):
        x = (i + 0.5) * width / max(len(host_links), 1)
        box(x - 1.0, 3.7, 2.0, 0.7, "#e6eefb", "#0072B2")
        ax.text(x, 4.05, interface_label(bridge.link), ha="center", va="center", fontsize=8)
        where[(host, bridge.link.name)] = (x, 3.7)
    slots = {}
    for i, name in enumerate(others):
        x = (i + 0.5) * width / max(len(others), 1)
        slots[name] = x
        box(x - 1.15, 0.2, 2.3, 1.7, "#fff7e6")
        ax.text(x, 1.82, name, ha="center", va="top", fontsize=8.5, weight="bold")
    counters: dict[str, int] = {}
    for a, b in topology.pairs:
        if a.namespace != host and b.namespace == host:
            a, b = b, a
        if a.namespace == host and b.namespace in slots:
            x = slots[b.namespace]
            step = counters.get(b.namespace, 0)
            counters[b.namespace] = step + 1
            inner = (x - 0.55 + 1.1 * (step % 2), 1.25 - 0.55 * (step // 2))
            ax.text(*inner, interface_label(b.link), ha="center", va="center", fontsize=7,
                    bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#bbbbbb"})
            outer = (x - 0.55 + 1.1 * (step % 2), 3.15)
            ax.text(*outer, interface_label(a.link), ha="center", va="center", fontsize=7, color="#444444")
            ax.plot([inner[0], outer[0]], [inner[1] + 0.2, outer[1] - 0.15], color="#D55E00", linewidth=1.5)
            if a.link.master and (host, a.link.master) in where:
                bx, by = where[(host, a.link.master)]
                ax.plot([outer[0], bx], [outer[1] + 0.15, by], color="#0072B2", linewidth=1)
        elif a.namespace in slots and b.namespace in slots:
            (xa, xb) = slots[a.namespace], slots[b.namespace]
            ax.plot([xa + 0.6, xb - 0.6], [0.6, 0.6], color="#D55E00", linewidth=1.5)
            ax.text(xa + 0.45, 0.45, interface_label(a.link), ha="center", va="top", fontsize=7)
            ax.text(xb - 0.45, 0.45, interface_label(b.link), ha="center", va="top", fontsize=7)
    for end in topology.loose:
        if end.namespace in slots:
            ax.text(slots[end.namespace], 0.45, interface_label(end.link) + "\n" + say("(peer not shown)"),
                    ha="center", va="top", fontsize=7, color="#777777")
    for i, line in enumerate(rule_lines):
        ax.text(0.15, -0.1 - 0.25 * i, line, fontsize=7.5, family="monospace", va="top")
    ax.text(width - 0.1, 4.95, say("orange: veth pair   blue: bridge port"), ha="right", va="top", fontsize=7,
            color="#555555")
    return fig


# ------------------------------------------------------------------ the widget


class TopologyWidget:
    """A picture that redraws: ``Refresh`` once, or ``Watch`` to redraw every ``interval``
    seconds until ``Stop``. ``sources()`` is called each time, so new containers appear."""

    def __init__(self, sources, rule_sources=(), *, title: str = "", host: str | None = None,
                 interval: float = 1.0):
        import ipywidgets as widgets

        self.sources, self.rule_sources, self.title, self.host = sources, rule_sources, title, host
        self.interval = interval
        self.task = None
        self.topology: Topology | None = None
        self.refresh_button = widgets.Button(description=say("Refresh"), icon="refresh")
        self.watch_button = widgets.ToggleButton(description=say("Watch"), icon="eye", value=False)
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.watch_button.observe(self.on_watch, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.refresh_button, self.watch_button, self.status]),
                                    self.image])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def refresh(self) -> Topology:
        import io
        import time

        self.topology = snapshot(self.sources(), self.rule_sources)
        buffer = io.BytesIO()
        draw(self.topology, title=self.title, host=self.host).savefig(buffer, format="png", dpi=80)
        self.image.value = buffer.getvalue()
        self.status.value = say("{namespaces} namespaces, {pairs} veth pairs, {rules} rules — read at {time}",
                                namespaces=len(self.topology.namespaces), pairs=len(self.topology.pairs),
                                rules=len(self.topology.rules), time=time.strftime("%H:%M:%S"))
        return self.topology

    def on_watch(self, change) -> None:
        import asyncio

        if change["new"]:
            self.watch_button.description = say("Stop")
            self.task = asyncio.get_event_loop().create_task(self.watch())
        else:
            self.watch_button.description = say("Watch")
            if self.task is not None:
                self.task.cancel()
                self.task = None

    async def watch(self) -> None:
        import asyncio

        while True:
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 — show it, keep watching
                self.status.value = say("could not read: {error}", error=error)
            await asyncio.sleep(self.interval)

    def stop(self) -> None:
        self.watch_button.value = False


def topology_widget(sources, rule_sources=(), **options) -> TopologyWidget:
    return TopologyWidget(sources, rule_sources, **options)
