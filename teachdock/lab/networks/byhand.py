"""A Docker bridge network built by hand, one kernel object at a time (chapter 08, section 1).

Everything lives in network namespaces this module creates, named ``tdlab-…``: even the
"Docker host" of the lab is a namespace (``tdlab-host``), so the machine's own interfaces,
routes, ``ip_forward`` and firewall are never touched, and removing the namespaces removes
every veth, bridge, route and nftables rule inside them. The layout (``LAB``):

    tdlab-c1  eth0 10.213.0.11 ─┐
    tdlab-c2  eth0 10.213.0.12 ─┼─ tdlab-v1..v3 ── bridge tdlab-br0 10.213.0.1   (in tdlab-host)
    tdlab-c3  eth0 10.213.0.13 ─┘                  tdlab-up0 203.0.113.1 ── eth0 203.0.113.10  tdlab-out

Links, addresses and routes are made with pyroute2 (netlink, as the daemon does); programs run
inside a namespace through ``nsexec`` (``setns(2)`` in a fresh process). ``cleanup()`` stops
the processes this module started and removes every ``tdlab-`` namespace and host link;
``leftovers()`` says what is still there.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from teachdock.lab.common.language import say
from teachdock.lab.networks.nsexec import NETNS_DIR, netns_path, nsexec_argv

PREFIX = "tdlab-"

HOST = "tdlab-host"            # the lab's Docker host
OUTSIDE = "tdlab-out"          # a fake "internet": one server, no route back to the bridge
BRIDGE = "tdlab-br0"
SUBNET = "10.213.0.0/24"
GATEWAY = "10.213.0.1"
UPLINK = "tdlab-up0"
HOST_OUTSIDE_ADDRESS = "203.0.113.1"    # TEST-NET-3 (RFC 5737): never a real address
OUTSIDE_ADDRESS = "203.0.113.10"
CONTAINERS = {"tdlab-c1": "10.213.0.11", "tdlab-c2": "10.213.0.12", "tdlab-c3": "10.213.0.13"}

_started: list[subprocess.Popen] = []   # servers started in namespaces: cleanup() stops them
_cleanup_registered = []


def remember_to_clean_up() -> None:
    """Once this process creates something, cleanup() also runs at its exit (an interrupted
    chapter leaves nothing behind); merely importing the lab registers nothing."""
    if not _cleanup_registered:
        atexit.register(cleanup)
        _cleanup_registered.append(True)


def check_name(name: str) -> str:
    if not name.startswith(PREFIX):
        raise ValueError(say("{name}: everything this lab creates is named {prefix}…, so cleanup() finds it",
                             name=repr(name), prefix=PREFIX))
    return name


def namespaces() -> list[str]:
    """The lab's named namespaces that exist now."""
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(PREFIX))
    except FileNotFoundError:
        return []


# ------------------------------------------------------------------ netlink (pyroute2)


_worker: list[ThreadPoolExecutor] = []


def in_worker(function, *args, **kwargs):
    """Run ``function`` on the lab's one netlink thread. pyroute2's synchronous API drives an
    asyncio loop of its own, which it cannot do in a thread whose loop is already running —
    a Jupyter kernel's main thread is such a thread. Generators are read to the end there."""
    if not _worker:
        _worker.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="tdlab-netlink"))

    def call():
        result = function(*args, **kwargs)
        if hasattr(result, "__next__"):
            result = list(result)
        return result

    try:
        future = _worker[0].submit(call)
    except RuntimeError:   # at interpreter exit the pool is shut down: no loop runs here by then
        return call()
    return future.result()


class Netlink:
    """A pyroute2 socket (IPRoute, or NetNS for another namespace) whose every call runs on the
    netlink thread: ``with ipr("tdlab-red") as red: red.link("add", …)`` works anywhere."""

    def __init__(self, netns: str | None):
        self.netns, self.socket = netns, None

    def __enter__(self):
        from pyroute2 import IPRoute, NetNS

        path = netns_path(self.netns)
        self.socket = in_worker(lambda: IPRoute() if path is None else NetNS(path))
        return self

    def __exit__(self, *exc):
        in_worker(self.socket.close)

    def __getattr__(self, name):
        method = getattr(self.socket, name)
        return lambda *args, **kwargs: in_worker(method, *args, **kwargs)


def ipr(netns: str | None = None) -> Netlink:
    """A pyroute2 netlink socket in ``netns`` (None: this process's own namespace)."""
    return Netlink(netns)


def make_namespace(name: str) -> str:
    """``ip netns add NAME`` and ``ip link set lo up`` inside it."""
    from pyroute2 import netns

    remember_to_clean_up()
    in_worker(netns.create, check_name(name))
    with ipr(name) as ns:
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
    return name


def index_of(ns, ifname: str) -> int:
    found = ns.link_lookup(ifname=ifname)
    if not found:
        raise LookupError(say("no interface {ifname} here", ifname=repr(ifname)))
    return found[0]


def veth_pair(netns_a: str, name_a: str, netns_b: str, name_b: str) -> None:
    """A veth pair with one end in each namespace, made inside ``netns_a`` (never on the host)."""
    with ipr(netns_a) as ns:
        ns.link("add", ifname=name_a, kind="veth", peer={"ifname": name_b, "net_ns_fd": netns_path(netns_b)})


def add_address(netns: str, ifname: str, cidr: str) -> None:
    """``ip addr add CIDR dev IFNAME`` and ``ip link set IFNAME up``."""
    address, prefix = cidr.split("/")
    with ipr(netns) as ns:
        index = index_of(ns, ifname)
        ns.addr("add", index=index, address=address, prefixlen=int(prefix))
        ns.link("set", index=index, state="up")


def link_up(netns: str, ifname: str) -> None:
    with ipr(netns) as ns:
        ns.link("set", index=index_of(ns, ifname), state="up")


def make_bridge(netns: str, name: str, cidr: str | None = None) -> None:
    """``ip link add NAME type bridge``, its address (the gateway), up."""
    with ipr(netns) as ns:
        ns.link("add", ifname=check_name(name), kind="bridge")
    if cidr:
        add_address(netns, name, cidr)
    else:
        link_up(netns, name)


def enslave(netns: str, ifname: str, bridge: str) -> None:
    """``ip link set IFNAME master BRIDGE up``: the bridge now switches frames to and from it."""
    with ipr(netns) as ns:
        ns.link("set", index=index_of(ns, ifname), master=index_of(ns, bridge), state="up")


def add_default_route(netns: str, gateway: str) -> None:
    """``ip route add default via GATEWAY``."""
    with ipr(netns) as ns:
        ns.route("add", dst="0.0.0.0/0", gateway=gateway)


def plug_in(container_ns: str, host_end: str, address: str, *, host: str = HOST, bridge: str = BRIDGE,
            prefix: int = 24, gateway: str | None = GATEWAY) -> None:
    """What Docker does for each container on a bridge network, in four netlink calls:
    a veth pair (``eth0`` inside, ``host_end`` in the host), the host end on the bridge,
    the container's address, and (with a gateway) its default route."""
    veth_pair(host, check_name(host_end), container_ns, "eth0")
    enslave(host, host_end, bridge)
    add_address(container_ns, "eth0", f"{address}/{prefix}")
    if gateway:
        add_default_route(container_ns, gateway)


# ------------------------------------------------------------------ kernel state, read back


@dataclass
class LinkState:
    name: str
    index: int
    kind: str                 # "veth", "bridge", "loopback", …
    up: bool
    master: str | None        # the bridge this link is a port of
    addresses: list[str]      # "10.213.0.1/24"
    peer_index: int | None    # a veth's peer: its index in the peer's namespace
    peer_elsewhere: bool      # the peer is in another namespace


def links(netns: str | None = None) -> list[LinkState]:
    """Every link of a namespace with its addresses: ``ip -d addr`` as data."""
    with ipr(netns) as ns:
        raw = list(ns.get_links())
        addresses: dict[int, list[str]] = {}
        for entry in ns.get_addr(family=2):
            addresses.setdefault(entry["index"], []).append(f"{entry.get('IFA_ADDRESS')}/{entry['prefixlen']}")
    names = {link["index"]: link.get("IFLA_IFNAME") for link in raw}
    found = []
    for link in raw:
        info = link.get("IFLA_LINKINFO")
        kind = info.get("IFLA_INFO_KIND") if info else ("loopback" if link.get("IFLA_IFNAME") == "lo" else "device")
        master = link.get("IFLA_MASTER")
        found.append(LinkState(
            name=link.get("IFLA_IFNAME"), index=link["index"], kind=kind or "device",
            up=bool(link["flags"] & 1), master=names.get(master) if master else None,
            addresses=addresses.get(link["index"], []),
            peer_index=link.get("IFLA_LINK") if kind == "veth" else None,
            peer_elsewhere=link.get("IFLA_LINK_NETNSID") is not None))
    return found


def routes(netns: str | None = None) -> list[str]:
    """The main routing table as ``ip route`` prints it (IPv4)."""
    lines = []
    with ipr(netns) as ns:
        names = {link["index"]: link.get("IFLA_IFNAME") for link in ns.get_links()}
        for route in ns.get_routes(family=2, table=254):
            destination = f"{route.get('RTA_DST')}/{route['dst_len']}" if route.get("RTA_DST") else "default"
            via = f" via {route.get('RTA_GATEWAY')}" if route.get("RTA_GATEWAY") else ""
            lines.append(f"{destination}{via} dev {names.get(route.get('RTA_OIF'), '?')}")
    return lines


# ------------------------------------------------------------------ programs in namespaces


def run_in(netns: str | None, argv: list[str], *, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``netns`` and wait for it (``ip netns exec NETNS ARGV``)."""
    return subprocess.run(nsexec_argv(netns, argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start_in(netns: str | None, argv: list[str]) -> subprocess.Popen:
    """Start ``argv`` inside ``netns`` in the background; cleanup() stops it."""
    remember_to_clean_up()
    process = subprocess.Popen(nsexec_argv(netns, argv),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    _started.append(process)
    return process


def stop(process: subprocess.Popen) -> None:
    """End a process this module started, and every child of it (its session), by its id."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()
    with contextlib.suppress(ValueError):
        _started.remove(process)


def busybox() -> str:
    from teachdock.image.busybox import find_busybox

    return str(find_busybox())


@dataclass
class PingResult:
    ok: bool
    milliseconds: float | None
    output: str

    def __repr__(self) -> str:
        if self.ok:
            return say("reply in {milliseconds:.3f} ms", milliseconds=self.milliseconds)
        lines = self.output.strip().splitlines()
        if not lines:
            return say("no reply, and ping printed nothing")
        return say("no reply: {last}", last=lines[-1])


def ping(netns: str | None, address: str, *, wait: int = 1) -> PingResult:
    """One ``ping`` (busybox) from inside ``netns``."""
    done = run_in(netns, [busybox(), "ping", "-c", "1", "-W", str(wait), address], timeout=wait + 15)
    text = done.stdout + done.stderr
    milliseconds = None
    for word in text.split():
        if word.startswith("time="):
            milliseconds = float(word[5:])
    return PingResult(done.returncode == 0 and milliseconds is not None, milliseconds, text)


def listening(process: subprocess.Popen, port: int, *, timeout: float = 10) -> bool:
    """Wait until the namespace ``process`` is in has a TCP socket listening on ``port``:
    ``/proc/<pid>/net/tcp`` shows the sockets of *that process's* network namespace."""
    deadline = time.monotonic() + timeout
    wanted = f":{port:04X} "
    while time.monotonic() < deadline and process.poll() is None:
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(OSError):
                with open(f"/proc/{process.pid}/net/{table}") as sockets:
                    if any(wanted in line and line.split()[3] == "0A" for line in sockets):
                        return True
        time.sleep(0.02)
    return False


def whoami_server(netns: str, port: int, *, count: int = 1) -> subprocess.Popen:
    """A server in ``netns`` that tells each client which address it saw (COUNT clients)."""
    from teachdock.lab.networks import nsexec

    process = start_in(None, [sys.executable, nsexec.__file__, netns_path(netns), "--whoami", str(port), str(count)])
    if not listening(process, port):
        stop(process)
        raise RuntimeError(say("the whoami server in {netns} did not start listening on port {port}",
                               netns=netns, port=port))
    return process


def ask(netns: str | None, address: str, port: int, *, wait: int = 3) -> str:
    """Connect from ``netns`` with busybox ``nc`` and return what the server said ("" if nothing)."""
    done = run_in(netns, [busybox(), "nc", "-w", str(wait), address, str(port)], timeout=wait + 15)
    return done.stdout.strip() or done.stderr.strip()


def sysctl(netns: str, key: str, value: str | None = None) -> str:
    """Read (and with ``value``, write) a sysctl of ``netns``: /proc/sys/net is per namespace."""
    path = "/proc/sys/" + key.replace(".", "/")
    script = f"cat {path}" + (f" && echo {value} > {path}" if value is not None else "")
    done = run_in(netns, ["sh", "-c", script])
    if done.returncode != 0:
        raise RuntimeError(say("sysctl {key} in {netns}: {error}", key=key, netns=netns, error=done.stderr.strip()))
    return done.stdout.strip()


# ------------------------------------------------------------------ the whole lab, and cleanup


def build_lab(steps: int = 4) -> None:
    """The whole of section 1 in one call (for tests and for catching up): 1 two namespaces and a
    veth; 2 the bridge and three namespaces; 3 the way out with masquerade; 4 a published port."""
    from teachdock.lab.networks import nft_text

    if steps >= 1:
        make_namespace("tdlab-red")
        make_namespace("tdlab-blue")
        veth_pair("tdlab-red", "eth0", "tdlab-blue", "eth0")
        add_address("tdlab-red", "eth0", "10.213.1.1/24")
        add_address("tdlab-blue", "eth0", "10.213.1.2/24")
    if steps >= 2:
        make_namespace(HOST)
        make_bridge(HOST, BRIDGE, f"{GATEWAY}/24")
        for number, (name, address) in enumerate(CONTAINERS.items(), start=1):
            make_namespace(name)
            plug_in(name, f"{PREFIX}v{number}", address, gateway=None)
    if steps >= 3:
        make_namespace(OUTSIDE)
        veth_pair(HOST, UPLINK, OUTSIDE, "eth0")
        add_address(HOST, UPLINK, f"{HOST_OUTSIDE_ADDRESS}/24")
        add_address(OUTSIDE, "eth0", f"{OUTSIDE_ADDRESS}/24")
        for name in CONTAINERS:
            add_default_route(name, GATEWAY)
        sysctl(HOST, "net.ipv4.ip_forward", "1")
        nft_text.apply(HOST, nft_text.masquerade(SUBNET, BRIDGE))
    if steps >= 4:
        nft_text.apply(HOST, nft_text.publish(HOST_OUTSIDE_ADDRESS, 8080, CONTAINERS["tdlab-c1"], 80))


def host_links() -> list[str]:
    """Links in this (the host's) namespace named tdlab-…: the lab makes none; a leak if any."""
    with ipr(None) as ns:
        return sorted(link.get("IFLA_IFNAME") for link in ns.get_links()
                      if (link.get("IFLA_IFNAME") or "").startswith(PREFIX))


def leftovers() -> list[str]:
    """What of the lab still exists: its namespaces, host links, and processes it started."""
    left = [say("namespace {name}", name=name) for name in namespaces()]
    left += [say("link {name}", name=name) for name in host_links()]
    left += [say("process {pid}", pid=process.pid) for process in _started if process.poll() is None]
    return left


def cleanup() -> list[str]:
    """Stop the lab's processes, delete its namespaces (and with them every link, address, route
    and nftables rule inside) and any tdlab- link on the host. Returns what it removed."""
    from pyroute2 import netns

    removed = []
    for process in list(_started):
        if process.poll() is None:
            removed.append(say("process {pid}", pid=process.pid))
        stop(process)
    for name in namespaces():
        in_worker(netns.remove, name)
        removed.append(say("namespace {name}", name=name))
    for name in host_links():
        with ipr(None) as ns, contextlib.suppress(Exception):
            ns.link("del", index=index_of(ns, name))
            removed.append(say("link {name}", name=name))
    return removed

