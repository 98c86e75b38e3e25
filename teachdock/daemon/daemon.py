"""``Daemon``: one teachdockd — its roots, its objects, its API server — wired together.

Several daemons can run side by side: each has its own data root (images, container
records, logs), exec root (the runtime's state and the socket) and cgroup parent.

The whole object graph is made in ``Daemon.__init__``, in one place: each manager is
created once and handed to those that need it. The API routes get the daemon itself and
reach the managers as its attributes (``daemon.containers``, ``daemon.networks``, ...).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from pathlib import Path

from teachdock.daemon import (api_archive, api_build, api_checkpoints, api_containers, api_events, api_exec,
                              api_export, api_images,
                              api_networks, api_prune, api_stats, api_system, api_volumes)
from teachdock.daemon.containers import ContainerManager
from teachdock.daemon.dns import Resolver
from teachdock.daemon.events import EventLog
from teachdock.daemon.execs import ExecManager
from teachdock.daemon.firewall import Firewall, table_name
from teachdock.daemon.health import HealthMonitor
from teachdock.daemon.networks import DEFAULT_BIP, DEFAULT_BRIDGE, NetworkManager
from teachdock.daemon.routes import Router
from teachdock.daemon.server import HEADER_TIMEOUT, TCPHTTPServer, UnixHTTPServer
from teachdock.daemon.volumes import VolumeManager
from teachdock.errors import TeachdockError
from teachdock.image.images import Images
from teachdock.paths import DEFAULT_EXEC_ROOT, DEFAULT_SOCKET


REAL = object()  # "make the real one" (a Firewall, a Resolver), as opposed to None: "none at all"


def make_firewall(bridge: str):
    """The daemon's nftables table (the way out, isolation, published ports; see firewall.py),
    named after its default bridge. None without root: a rootless daemon has no NAT."""
    if os.geteuid() != 0:
        return None
    return Firewall(table_name(bridge, DEFAULT_BRIDGE))


def make_resolver(lookup):
    """The embedded DNS resolver at 127.0.0.11, answered by ``lookup``; None without root."""
    return Resolver(lookup) if os.geteuid() == 0 else None


class Daemon:
    def __init__(self, *, socket_path: str | None = DEFAULT_SOCKET, data_root, exec_root=DEFAULT_EXEC_ROOT,
                 cgroup_parent: str = "teachdock", pidfile: str | None = None, verbose: bool = False,
                 tcp_address: tuple[str, int] | None = None, bridge: str = DEFAULT_BRIDGE, bip: str = DEFAULT_BIP,
                 firewall=REAL, resolver=REAL, tls=None, socket_gid: int | None = None,
                 header_timeout: float = HEADER_TIMEOUT):
        """``bridge``/``bip``: the default network's Linux bridge and its gateway/subnet (dockerd's
        ``--bridge``, ``--bip``). ``firewall``/``resolver``: the Firewall (nftables: the way out,
        isolation, published ports) and the embedded DNS Resolver; by default the real ones,
        None for none (tests hand in recording fakes). ``tls``: the TCP door's ssl.SSLContext
        (daemon/tls.py); ``socket_gid``: the Unix socket's group; ``header_timeout``: see deadlines.py."""
        self.data_root = Path(data_root).absolute()
        self.exec_root = Path(exec_root).absolute()
        self.socket_path = socket_path
        self.pidfile = pidfile
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        # The daemon's objects, each made once; those that need another get it handed in.
        self.events = EventLog()  # what `docker events` streams
        self.images = Images(self.data_root, state_root=self.exec_root / "runtime")  # image store and snapshots
        self.volumes = VolumeManager(self.data_root)  # <data root>/daemon/volumes
        self.firewall = make_firewall(bridge) if firewall is REAL else firewall
        # <data root>/daemon/networks, and their bridges
        self.networks = NetworkManager(self.data_root, firewall=self.firewall, default_bridge=bridge, default_subnet=bip)
        self.resolver = make_resolver(self.networks.lookup) if resolver is REAL else resolver
        self.containers = ContainerManager(self.data_root, self.exec_root, images=self.images, volumes=self.volumes,
                                           networks=self.networks, events=self.events, cgroup_parent=cgroup_parent,
                                           firewall=self.firewall, resolver=self.resolver)
        self.execs = ExecManager(self.containers, self.events)
        self.health = HealthMonitor(self.containers, self.execs)  # runs HEALTHCHECK probes as execs
        self.daemon_id = hashlib.sha256(str(self.data_root).encode()).hexdigest()[:32]
        router = Router(self)
        for api in (api_system, api_containers, api_archive, api_exec, api_stats, api_images, api_build, api_events,
                    api_networks, api_volumes, api_prune, api_export, api_checkpoints):
            api.register(router)
        # One server per -H: the Unix socket, and a TCP port only when asked for (TLS, or --insecure-tcp).
        self.servers = []
        if socket_path:
            self.servers.append(UnixHTTPServer(socket_path, router, verbose=verbose, socket_gid=socket_gid,
                                               header_timeout=header_timeout))
        if tcp_address:
            self.servers.append(TCPHTTPServer(tcp_address, router, verbose=verbose, tls=tls,
                                              header_timeout=header_timeout))
        if not self.servers:
            raise TeachdockError("nothing to listen on: give -H unix://PATH and/or -H tcp://127.0.0.1:PORT")

    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT. Running containers are left running, as dockerd
        with live-restore leaves them: their monitors and log writers do not need us."""
        if self.pidfile:
            Path(self.pidfile).write_text(f"{os.getpid()}\n")

        def stop(_number, _frame):
            for server in self.servers:
                threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        others = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
                  for server in self.servers[1:]]
        for thread in others:
            thread.start()
        try:
            self.servers[0].serve_forever(poll_interval=0.2)
        finally:
            for thread in others:
                thread.join(timeout=5)
            for server in self.servers:
                server.server_close()
            if self.resolver is not None:
                self.resolver.close()  # its sockets live in this process: a daemon started again re-attaches
            if self.pidfile:
                try:
                    os.unlink(self.pidfile)
                except FileNotFoundError:
                    pass
