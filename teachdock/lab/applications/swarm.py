"""Two Debian dockerd in swarm mode: daemons that work together (chapter 09).

teachdockd does not orchestrate. To show what "the daemon talks to other daemons" means, this
module runs the real thing: two Debian ``dockerd`` (docker.io 20.10), each in a network
namespace of its own, joined by a bridge on a private LAN::

    td09sw-<id>-node1  eth0 10.209.9.11 (manager) ─┐
                                                   ├─ bridge td09sw   (in netns td09sw-<id>-lan)
    td09sw-<id>-node2  eth0 10.209.9.12 (worker)  ─┘

Each dockerd also gets a UTS namespace (its own hostname, so ``docker node ls`` shows two
names) and a private mount namespace with a /run of its own (its overlay and netns mounts, its
/run/docker and iptables lock are never seen by the host and vanish with it). Every swarm has
an id of its own in its names, so two runs at once (a test and a notebook) never meet. Everything dockerd builds for its networks — docker0, docker_gwbridge,
the ingress and overlay sandboxes, VXLAN devices, iptables chains — lives inside its node's
namespace and is gone when the namespace goes. The host keeps only what it had.

``Swarm.start()`` builds the LAN, starts both daemons, loads the busybox image teachdock builds
into both (there is no registry to pull from: services are created with
``--no-resolve-image``), runs ``docker swarm init`` on node1 and ``docker swarm join`` on node2
(``timings`` keeps the seconds of each step). ``create_service()`` makes a service of 4
replicas on an overlay network, ``service_tasks()`` and ``tasks_per_node()`` say where they
run, ``drain()`` drains a node and returns how the tasks moved (``plot_tasks``, ``plot_drain``
draw it). What the daemons say to each other (``SWARM_PORTS``) is made visible two ways:
``conversations()`` lists their sockets (``ss`` inside each node's namespace: who is connected
to whom on 2377, 7946, 4789), and ``traffic()`` / ``idle_chatter()`` read counters that an
nftables table in the LAN's namespace keeps per swarm port for every frame the bridge forwards
(``port_rows`` makes a table of them); ``ping_across()`` sends traffic over the overlay, so
VXLAN shows up too.

``why_swarm_cannot_run()`` says why this cannot work here (or None); ``Swarm.close()`` (also at
the end of a ``with`` block and at exit) removes everything; ``cleanup()`` removes whatever an
interrupted run left; ``leftovers()`` lists what is still there.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from teachdock.lab.common.language import SaidWhenRead, say

PREFIX = "td09sw"                    # every name this module gives: netns, bridge, dirs, cgroups
BRIDGE = "td09sw"                    # in the LAN's namespace: the "switch" the nodes are plugged into
SUBNET = "10.209.9.0/24"             # unused by teachdock's daemons (172.x) and the other labs (10.213.x)
DOCKERD = "/usr/sbin/dockerd"
NETNS_DIR = "/run/netns"
CGROUP_ROOT = "/sys/fs/cgroup"
IMAGE = "busybox:latest"
OVERLAY_NETWORK = "td09net"          # the service's overlay network: its traffic crosses the LAN as VXLAN
SERVICE = "counter"
#: Each task counts, once a second; it ends at SIGTERM (as PID 1, a plain ``sleep`` would not:
#: a drained node would wait the 10 s stop grace period before its tasks start elsewhere).
COUNTER = 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo "$(hostname) $i"; sleep 1; done'


@dataclass(frozen=True)
class NodeSpec:
    hostname: str
    address: str
    port: str                        # its veth's end on the bridge, in the LAN namespace


NODES = (
    NodeSpec("node1", "10.209.9.11", "td09sw-p1"),
    NodeSpec("node2", "10.209.9.12", "td09sw-p2"),
)


def port_meanings() -> dict[tuple[int, str], str]:
    """The ports swarm mode uses between daemons: (port, protocol) -> what travels there."""
    return {
        (2377, "tcp"): say("cluster management: join, Raft between managers, the manager sending tasks to workers"),
        (7946, "tcp"): say("gossip (memberlist): which nodes are alive, which overlay networks have endpoints where"),
        (7946, "udp"): say("gossip (memberlist): the frequent small probes and their answers"),
        (4789, "udp"): say("VXLAN: the overlay network's own traffic, container to container across nodes"),
    }


SWARM_PORTS = SaidWhenRead(port_meanings)  # (port, protocol) -> what travels there

_open_swarms: list[Swarm] = []


class SwarmError(RuntimeError):
    """A step of the swarm lab failed; the message quotes the command and what it said."""


# ---- can it run here? ---------------------------------------------------------------------


def docker_cli() -> str | None:
    """Debian's docker CLI (20.10, the daemon's own version) first, any other docker after."""
    return "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")


def why_swarm_cannot_run() -> str | None:
    """Why two dockerd in swarm mode cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return say("the swarm section needs root: it creates network namespaces, a bridge and runs dockerd")
    if not os.access(DOCKERD, os.X_OK):
        return say("{dockerd} is not installed (apt-get install docker.io)", dockerd=DOCKERD)
    if docker_cli() is None:
        return say("no docker CLI is installed (apt-get install docker.io)")
    for tool in ("ip", "nsenter", "unshare", "nft", "ss", "hostname"):
        if shutil.which(tool) is None:
            return say("the program {tool} is missing (iproute2, util-linux, nftables, hostname)", tool=repr(tool))
    # built in or loaded, or loadable (the kernel loads it when dockerd makes its first VXLAN device)
    if not os.path.exists("/sys/module/vxlan") and (
            shutil.which("modprobe") is None or _run(["modprobe", "--dry-run", "vxlan"]).returncode != 0):
        return say("the kernel has no VXLAN support (module vxlan): swarm's overlay networks need it")
    return None


# ---- the swarm ----------------------------------------------------------------------------


@dataclass
class Node:
    """One dockerd: its namespace, address, directory and process; ``docker(*args)`` talks to it."""

    spec: NodeSpec
    netns: str                       # also its cgroup parent's name
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.spec.hostname

    @property
    def socket_path(self) -> str:
        return str(self.directory / "docker.sock")

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def docker(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """Run the docker CLI against this node's socket (the CLI itself runs on the host)."""
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket_path}", "DOCKER_CONFIG": str(self.directory / "cli"),
               "DOCKER_CLI_HINTS": "false"}
        for variable in ("DOCKER_CONTEXT", "DOCKER_API_VERSION", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(variable, None)
        result = subprocess.run([docker_cli(), *args], env=env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise SwarmError(say("{node}: docker {args} failed: {error}", node=self.name, args=" ".join(args),
                                 error=result.stderr.strip()))
        return result

    def start(self, timeout: float = 60) -> None:
        """dockerd in the node's network namespace, with its own UTS and mount namespaces and /run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "daemon.json").write_text("{}\n")
        dockerd = [DOCKERD, "--config-file", str(self.directory / "daemon.json"), "-H", f"unix://{self.socket_path}",
                   "--data-root", str(self.directory / "data"), "--exec-root", str(self.directory / "exec"),
                   "--pidfile", str(self.directory / "docker.pid"), "--cgroup-parent", f"/{self.netns}",
                   "--storage-driver", "overlay2"]
        # nsenter, unshare and sh each exec the next: the Popen's pid is dockerd's own
        argv = ["nsenter", f"--net={NETNS_DIR}/{self.netns}", "--",
                "unshare", "--uts", "--mount", "--propagation", "private", "--",
                "sh", "-c", 'mount -t tmpfs -o mode=755 "$1" /run && hostname "$0" && shift && exec "$@"',
                self.spec.hostname, self.netns, *dockerd]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SwarmError(say("{node}: dockerd exited with {code}: {log}", node=self.name,
                                     code=self.process.returncode, log=self.log()[-2000:]))
            if self.docker("version", "--format", "{{.Server.Version}}", timeout=10, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise SwarmError(say("{node}: dockerd did not answer within {timeout} s: {log}", node=self.name,
                             timeout=timeout, log=self.log()[-2000:]))

    def terminate(self) -> None:
        """SIGTERM by PID: dockerd leaves the cluster's work, stops its containerd, exits."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM by PID (dockerd stops its containerd), SIGKILL if it is still there after ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


@dataclass
class Swarm:
    """Two dockerd on a private LAN, made one swarm. Use as a context manager, or call close()."""

    name: str = field(default_factory=lambda: f"{PREFIX}-{secrets.token_hex(3)}")
    nodes: dict[str, Node] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)   # seconds per step of start()
    closed: bool = False

    def __post_init__(self):
        if not self.name.startswith(f"{PREFIX}-"):
            raise ValueError(say("{name}: a swarm's name starts with {prefix}-, so cleanup() finds it",
                                 name=repr(self.name), prefix=PREFIX))
        self.directory = Path("/tmp") / self.name   # short: containerd's sockets live under it (108 bytes)
        self.lan = f"{self.name}-lan"
        for spec in NODES:
            self.nodes[spec.hostname] = Node(spec, f"{self.name}-{spec.hostname}", self.directory / spec.hostname)
        _open_swarms.append(self)
        if len(_open_swarms) == 1:
            atexit.register(_close_open_swarms)

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def manager(self) -> Node:
        return self.nodes[NODES[0].hostname]

    # -- building it

    def start(self, progress=None) -> Swarm:
        """The LAN, both daemons, the image on both, ``swarm init`` on node1, ``join`` from node2.

        ``progress(line)`` hears each step with its time (``print`` in a notebook); the
        seconds each step took stay in ``timings``."""
        reason = why_swarm_cannot_run()
        if reason:
            raise SwarmError(reason)
        if self.closed or self.directory.exists():
            raise SwarmError(say("the swarm {name} was started before: make a new Swarm()", name=self.name))
        self.directory.mkdir(mode=0o700)
        steps = [(say("the LAN: 3 namespaces, a bridge, 2 veth pairs"),
                  lambda: build_lan(self.lan, {node.netns: node.spec for node in self.nodes.values()}))]
        steps += [(say("dockerd on {node}", node=name), node.start) for name, node in self.nodes.items()]
        steps += [(say("busybox:latest loaded into both"), self.load_image),
                  (say("docker swarm init on node1"), self.init), (say("docker swarm join from node2"), self.join)]
        try:
            for what, step in steps:
                began = time.monotonic()
                step()
                self.timings[what] = time.monotonic() - began
                if progress:
                    progress(f"{what}: {self.timings[what]:.2f} s")
        except BaseException:
            self.close()   # a half-built swarm leaves nothing behind either
            raise
        return self

    def load_image(self) -> None:
        """busybox:latest from teachdock's own store, saved once and ``docker load``-ed into each node."""
        from teachdock.image import archive  # noqa: PLC0415
        from teachdock.image.images import Images  # noqa: PLC0415

        images = Images(self.directory / "teachdock-data")
        images.bootstrap_busybox()
        tarball = self.directory / "busybox.tar"
        archive.save(images.store, [IMAGE], tarball)
        for node in self.nodes.values():
            node.docker("load", "-i", str(tarball), timeout=120)
        tarball.unlink()

    def init(self) -> str:
        """``docker swarm init`` on node1: it becomes the (only) manager, listening on 2377."""
        address = self.manager.spec.address
        return self.manager.docker("swarm", "init", "--advertise-addr", address,
                                   "--listen-addr", f"{address}:2377").stdout

    def join(self) -> str:
        """node2 joins as a worker with the token node1 hands out."""
        token = self.manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        worker = self.nodes[NODES[1].hostname]
        return worker.docker("swarm", "join", "--token", token, "--advertise-addr", worker.spec.address,
                             f"{self.manager.spec.address}:2377").stdout

    def node_list(self) -> list[dict]:
        """``docker node ls`` on the manager: hostname, status, availability, manager status."""
        out = self.manager.docker("node", "ls", "--format", "{{json .}}").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    # -- a service

    def create_service(self, replicas: int = 4, timeout: float = 90) -> dict[str, int]:
        """A service of ``replicas`` busybox tasks on an overlay network; waits until all run.

        Returns the running tasks per node: the scheduler spreads them over both."""
        if not isinstance(replicas, int) or replicas < 1:
            raise ValueError(say("replicas={replicas}: a service here runs at least one task", replicas=repr(replicas)))
        self.manager.docker("network", "create", "--driver", "overlay", "--attachable", OVERLAY_NETWORK)
        self.manager.docker("service", "create", "--detach", "--no-resolve-image", "--name", SERVICE,
                            "--replicas", str(replicas), "--network", OVERLAY_NETWORK, IMAGE, "sh", "-c", COUNTER)
        return self.wait_for_tasks(lambda counts: sum(counts.values()) == replicas, timeout,
                                   say("{replicas} running tasks of {service}", replicas=replicas, service=SERVICE))

    def service_tasks(self, *, all_tasks: bool = False) -> list[dict]:
        """``docker service ps`` on the manager: each task's name, node, desired and current state.

        Only the tasks meant to run, unless ``all_tasks`` (then the shut-down ones as well)."""
        filters = [] if all_tasks else ["--filter", "desired-state=running"]
        out = self.manager.docker("service", "ps", SERVICE, *filters, "--format", "{{json .}}").stdout
        keys = ("Name", "Node", "DesiredState", "CurrentState", "Error")
        return [{key: task.get(key, "") for key in keys} for task in map(json.loads, out.splitlines())]

    def tasks_per_node(self) -> dict[str, int]:
        """How many of the service's tasks run on each node now (every node listed, 0 included)."""
        counts = {name: 0 for name in self.nodes}
        for task in self.service_tasks():
            if task["CurrentState"].startswith("Running") and task["Node"] in counts:
                counts[task["Node"]] += 1
        return counts

    def wait_for_tasks(self, done, timeout: float, what: str) -> dict[str, int]:
        """Poll tasks_per_node() until ``done(counts)``; after ``timeout`` s say ``what`` is missing."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.tasks_per_node()
            if done(counts):
                return counts
            if time.monotonic() > deadline:
                tasks = self.manager.docker("service", "ps", "--no-trunc", SERVICE, check=False).stdout
                raise SwarmError(say("no {what} after {timeout} s: {counts}; {tasks}", what=what, timeout=timeout,
                                     counts=counts, tasks=tasks))
            time.sleep(0.5)

    def drain(self, hostname: str = "node2", timeout: float = 90) -> list[tuple[float, dict[str, int]]]:
        """``docker node update --availability drain``: the manager moves the node's tasks away.

        The drained node's tasks stop at once; their replacements start on the other node
        after the service's restart delay (5 s unless ``--restart-delay`` says otherwise).
        Returns the timeline, (seconds since the drain, running tasks per node) from the moment
        before it until the drained node runs none and the service has all its replicas again."""
        if hostname not in self.nodes:
            raise ValueError(say("no node {node}: the nodes are {nodes}", node=repr(hostname), nodes=", ".join(self.nodes)))
        before = self.tasks_per_node()
        replicas = sum(before.values())
        start = time.monotonic()
        self.manager.docker("node", "update", "--availability", "drain", hostname)
        timeline = [(0.0, before)]
        while True:
            counts = self.tasks_per_node()
            timeline.append((round(time.monotonic() - start, 2), counts))
            if counts[hostname] == 0 and sum(counts.values()) == replicas:
                return timeline
            if time.monotonic() - start > timeout:
                raise SwarmError(say("the tasks did not leave {node} within {timeout} s: {last}", node=hostname,
                                     timeout=timeout, last=timeline[-1]))
            time.sleep(0.5)

    def ping_across(self, count: int = 3) -> str:
        """One task pings another on the other node over the overlay network: VXLAN on the LAN.

        Needs a task on each node (before a drain). Returns ping's output."""
        sources = {}
        for name, node in self.nodes.items():
            ids = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={SERVICE}").stdout.split()
            if not ids:
                raise SwarmError(say("no task of {service} runs on {node}: ping_across needs one on each node",
                                     service=SERVICE, node=name))
            sources[name] = ids[0]
        first, second = (self.nodes[spec.hostname] for spec in NODES)
        target = second.docker("inspect", "--format",
                               f'{{{{(index .NetworkSettings.Networks "{OVERLAY_NETWORK}").IPAddress}}}}',
                               sources[second.name]).stdout.strip()
        return first.docker("exec", sources[first.name], "ping", "-c", str(count), "-W", "2", target).stdout

    # -- what the daemons say to each other

    def conversations(self) -> list[dict]:
        """The swarm sockets of each node (``ss -tuanp`` in its namespace) on 2377, 7946, 4789."""
        ports = {str(port) for port, _ in SWARM_PORTS}
        rows = []
        for node in self.nodes.values():
            out = _run(["nsenter", f"--net={NETNS_DIR}/{node.netns}", "--", "ss", "-tuanpH"]).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) < 6:
                    continue
                local, peer = parts[4], parts[5]
                if local.rsplit(":", 1)[-1] in ports or peer.rsplit(":", 1)[-1] in ports:
                    program = parts[6].split('"')[1] if len(parts) > 6 and '"' in parts[6] else ""
                    rows.append({"node": node.name, "proto": parts[0], "state": parts[1], "local": local,
                                 "peer": peer, "program": program})
        return rows

    def traffic(self) -> dict[str, dict[str, int]]:
        """Frames the bridge forwarded since the LAN was built, per swarm port: packets and bytes."""
        return read_traffic(self.lan)

    def idle_chatter(self, seconds: float = 5) -> dict[str, dict[str, int]]:
        """What crosses the LAN in ``seconds`` while nobody asks anything: heartbeats and gossip."""
        before = self.traffic()
        time.sleep(seconds)
        after = self.traffic()
        return {port: {key: after[port][key] - before[port][key] for key in after[port]} for port in after}

    # -- tearing down

    def processes(self) -> list[int]:
        """The PIDs of this swarm: its dockerd and everything they started (containerd, shims, tasks)."""
        return _lab_pids(self.name)

    def leftovers(self) -> list[str]:
        """What of this swarm is still on the machine (empty after close())."""
        return leftovers(self.name)

    def close(self) -> None:
        """Remove the service, stop both daemons, kill what they left, remove namespaces and files."""
        if self.closed:
            return
        self.closed = True
        # a daemon that no longer answers must not stop the rest: it is killed below all the same
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if self.manager.process is not None and self.manager.process.poll() is None:
                self.manager.docker("service", "rm", SERVICE, check=False, timeout=30)
        for node in self.nodes.values():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _wait_no_containers(node)
        for node in self.nodes.values():    # both at once: the manager alone takes seconds
            node.terminate()
        for node in self.nodes.values():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                node.stop()
        _remove_everything(self.name)
        if self in _open_swarms:
            _open_swarms.remove(self)


def _wait_no_containers(node: Node, timeout: float = 30) -> None:
    if node.process is None or node.process.poll() is not None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = node.docker("ps", "-aq", check=False, timeout=15).stdout.split()
        if not ids:
            return
        node.docker("rm", "-f", *ids, check=False, timeout=30)
        time.sleep(0.5)


def _close_open_swarms() -> None:
    for swarm in list(_open_swarms):
        swarm.close()


# ---- the LAN ------------------------------------------------------------------------------


TRAFFIC_TABLE = "td09sw"


def build_lan(lan: str, nodes: dict[str, NodeSpec]) -> None:
    """The LAN namespace with its bridge, one namespace per node, a veth pair between each.

    ``nodes``: namespace name -> its node. Nothing is made in the host's own namespace."""
    _ip("netns", "add", lan)
    try:
        _ip("-n", lan, "link", "set", "lo", "up")
        _ip("-n", lan, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", lan, "link", "set", BRIDGE, "up")
        for netns, spec in nodes.items():
            _ip("netns", "add", netns)
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", lan, "link", "add", spec.port, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("-n", lan, "link", "set", spec.port, "master", BRIDGE, "up")
            _ip("-n", netns, "addr", "add", f"{spec.address}/{SUBNET.partition('/')[2]}", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
        _nft(lan, traffic_ruleset())
    except Exception:
        remove_namespaces(lan.removesuffix("-lan"))
        raise


def traffic_ruleset() -> str:
    """An nftables table of the bridge family: one counter per swarm port and direction."""
    rules = []
    for (port, proto) in SWARM_PORTS:
        for direction in ("dport", "sport"):
            rules.append(f'        {proto} {direction} {port} counter comment "{port}/{proto}"')
    return (f"table bridge {TRAFFIC_TABLE} {{\n    chain forward {{\n"
            "        type filter hook forward priority 0; policy accept;\n"
            + "\n".join(rules) + "\n    }\n}\n")


def port_rows(traffic: dict[str, dict[str, int]]) -> list[dict]:
    """Swarm's ports as a table: port, protocol, what travels there, packets and bytes seen."""
    return [{"port": port, "protocol": proto, "what": what, **traffic[f"{port}/{proto}"]}
            for (port, proto), what in SWARM_PORTS.items()]


def read_traffic(lan: str) -> dict[str, dict[str, int]]:
    """The counters of traffic_ruleset(), summed over both directions: {"2377/tcp": {packets, bytes}}."""
    out = _run(["nsenter", f"--net={NETNS_DIR}/{lan}", "--", "nft", "-j", "list", "table", "bridge", TRAFFIC_TABLE])
    if out.returncode != 0:
        raise SwarmError(say("cannot read the LAN's counters: {error}", error=out.stderr.strip()))
    totals = {f"{port}/{proto}": {"packets": 0, "bytes": 0} for port, proto in SWARM_PORTS}
    for item in json.loads(out.stdout)["nftables"]:
        rule = item.get("rule")
        if not rule or rule.get("comment") not in totals:
            continue
        for expression in rule["expr"]:
            if "counter" in expression:
                totals[rule["comment"]]["packets"] += expression["counter"]["packets"]
                totals[rule["comment"]]["bytes"] += expression["counter"]["bytes"]
    return totals


def _nft(netns: str, ruleset: str) -> None:
    result = subprocess.run(["nsenter", f"--net={NETNS_DIR}/{netns}", "--", "nft", "-f", "-"], input=ruleset,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SwarmError(say("nft -f in {netns} failed: {error}", netns=netns, error=result.stderr.strip()))


def remove_namespaces(prefix: str = PREFIX) -> None:
    """Delete the namespaces named ``prefix-…``: their veths, bridges, nftables tables and
    iptables chains go with them."""
    for name in lab_namespaces(prefix):
        _run(["ip", "netns", "del", name])


def lab_namespaces(prefix: str = PREFIX) -> list[str]:
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(f"{prefix}-"))
    except FileNotFoundError:
        return []


# ---- cleaning up --------------------------------------------------------------------------


def _remove_everything(prefix: str = PREFIX) -> None:
    """Kill what is left in the namespaces and cgroups named ``prefix-…`` (by PID), then remove
    the namespaces, the mounts and directories /tmp/``prefix…`` and the cgroups."""
    for _ in range(10):
        pids = _lab_pids(prefix)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    remove_namespaces(prefix)
    for root in _lab_directories(prefix):
        for point in sorted(_mount_points(), reverse=True):
            if point.startswith(f"{root}/"):
                _run(["umount", "-l", point])
        shutil.rmtree(root, ignore_errors=True)
    for cgroup in sorted(_lab_cgroups(prefix), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(cgroup)


def cleanup() -> None:
    """Remove everything any run of this lab left (an interrupted chapter, a crashed kernel).

    It removes every swarm of this lab on the machine, also one another process runs now."""
    _close_open_swarms()
    _remove_everything(PREFIX)


def leftovers(prefix: str = PREFIX) -> list[str]:
    """What of the lab (or of the swarm named ``prefix``) is still on the machine: namespaces,
    processes, mounts, cgroups, directories, host links."""
    found = [f"netns {name}" for name in lab_namespaces(prefix)]
    found += [f"process {pid}" for pid in _lab_pids(prefix)]
    found += [f"mount {point}" for point in _mount_points()
              if any(point.startswith(f"{root}/") for root in _lab_directories(prefix))]
    found += [f"cgroup {path}" for path in _lab_cgroups(prefix)]
    found += [f"directory {path}" for path in _lab_directories(prefix)]
    links = _run(["ip", "-o", "link", "show"]).stdout
    found += [f"host link {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().startswith(PREFIX)]
    return found


def _lab_pids(prefix: str) -> list[int]:
    """Processes inside the nodes' network namespaces or the nodes' cgroups: dockerd,
    containerd, the shims, the tasks. Only this lab puts processes there."""
    inodes = set()
    for name in lab_namespaces(prefix):
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"{NETNS_DIR}/{name}").st_ino)
    pids = set()
    if inodes:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                        pids.add(int(entry))
    for cgroup in _lab_cgroups(prefix):
        with contextlib.suppress(OSError), open(f"{cgroup}/cgroup.procs") as f:
            pids.update(int(line) for line in f if line.strip())
    pids.discard(os.getpid())
    return sorted(pids)


def _lab_directories(prefix: str) -> list[Path]:
    """/tmp/<swarm name>: the lab's own (``prefix`` = PREFIX), or one swarm's."""
    return sorted(path for path in Path("/tmp").iterdir()
                  if path.name == prefix or (prefix == PREFIX and path.name.startswith(f"{PREFIX}-")))


def _lab_cgroups(prefix: str) -> list[str]:
    """The nodes' cgroup parents (named as their namespaces) and what is inside, in every hierarchy."""
    return [directory for directory, _subdirs, _files in os.walk(CGROUP_ROOT) if f"/{prefix}-" in directory]


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def _ip(*args: str) -> None:
    result = _run(["ip", *args])
    if result.returncode != 0:
        raise SwarmError(say("ip {args} failed: {error}", args=" ".join(args), error=result.stderr.strip()))


# ---- the picture --------------------------------------------------------------------------


def plot_tasks(before: dict[str, int], after: dict[str, int], *, drained: str = "node2"):
    """Bars of running tasks per node, before and after ``drained`` was drained."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(6, 3.2), layout="constrained")
    axes = fig.subplots()
    names = sorted(set(before) | set(after))
    width = 0.38
    for offset, (label, counts, colour) in enumerate(((say("before the drain"), before, "#4c72b0"),
                                                      (say("after draining {node}", node=drained), after, "#dd8452"))):
        positions = [index + (offset - 0.5) * width for index in range(len(names))]
        bars = axes.bar(positions, [counts.get(name, 0) for name in names], width, label=label, color=colour)
        axes.bar_label(bars)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel(say("running tasks"))
    axes.set_ylim(0, max([*before.values(), *after.values(), 1]) + 1)
    axes.set_title(say("service {service}: tasks per node", service=repr(SERVICE)))
    axes.legend(loc="upper right")
    return fig


def plot_drain(timeline: list[tuple[float, dict[str, int]]], *, drained: str = "node2"):
    """Running tasks per node against the seconds since the drain (``Swarm.drain``'s timeline)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    if not timeline:
        raise ValueError(say("an empty timeline: Swarm.drain() returns one with at least one sample"))
    fig = Figure(figsize=(6, 3.2), layout="constrained")
    axes = fig.subplots()
    times = [seconds for seconds, _counts in timeline]
    for name in sorted(timeline[0][1]):
        axes.step(times, [counts.get(name, 0) for _seconds, counts in timeline], where="post", marker="o",
                  label=name)
    axes.set_xlabel(say("seconds since {node} was drained", node=drained))
    axes.set_ylabel(say("running tasks"))
    axes.set_ylim(-0.3, max(sum(counts.values()) for _seconds, counts in timeline) + 0.5)
    axes.set_title(say("the manager moves the tasks"))
    axes.legend()
    return fig
