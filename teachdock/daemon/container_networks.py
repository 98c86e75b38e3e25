"""A container's networks: what ``create`` records, what ``start`` plugs in, what stop and rm undo.

The order, as dockerd's (daemon/container_operations.go) for ``docker run -p 8080:80 --network
mynet --network-alias web busybox``:

    create   NetworkSettings.Networks = {"mynet": {"Aliases": ["web"], "IPAMConfig": None, ...}}
             (the networks must exist; conflicting flags are refused before anything is made)
    start    1. an address per network, leased before the program exists (ipam.Leases), so that
                /etc/hosts can carry it and /etc/resolv.conf says 127.0.0.11 on a user network
             2. the runtime creates the container's namespaces (or joins another's: container:X)
             3. a veth per network into them: eth0, eth1, ... (NetworkManager.connect)
             4. the published ports (Firewall.publish), the resolver's socket (Resolver.attach)
             5. the program starts
    exit     the resolver's socket and the port rules go, the endpoints with the namespace
    rm       the leases go

A failure at any step undoes the steps before it: the container stays "created", with nothing
of it left on the host.
"""

from __future__ import annotations

from teachdock.daemon.networks import DEFAULT_NETWORK, NO_VETH, Forbidden, NetworkManager, NetworkNotFound
from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError

EMBEDDED_DNS = "127.0.0.11"
PUBLISH_CONFLICT = "conflicting options: port publishing and the container type network mode"
HOST_PORTS_WARNING = "Published ports are discarded when using host network mode"  # dockerd: a warning only
GOOGLE_DNS = ["8.8.8.8", "8.8.4.4"]  # what dockerd falls back to when the host has only loopback resolvers


def host_resolvers(path: str = "/etc/resolv.conf") -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of the host's resolv.conf."""
    servers, search, options = [], [], []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            search = words[1:]
        elif words and words[0] == "options":
            options += words[1:]
    return servers, search, options


def _is_publishing(host_config: dict) -> bool:
    return bool(host_config.get("PortBindings")) or bool(host_config.get("PublishAllPorts"))


class ContainerNetworking:
    """The network side of the container manager: one object, made by it, with the daemon's
    NetworkManager, Firewall and Resolver (either may be None: then no rules, no names)."""

    def __init__(self, networks: NetworkManager, *, firewall=None, resolver=None, find_container):
        self.networks = networks
        self.firewall = firewall
        self.resolver = resolver
        self.find_container = find_container  # name or id -> ContainerRecord (NotFound)
        self._resolved: set[str] = set()       # the containers the resolver answers for now
        self._held_ports: dict[str, list] = {}  # container id -> its PortBindings, held until it stops

    # --- create ------------------------------------------------------------------------------------
    def configure(self, host_config: dict, networking_config: dict | None) -> dict:
        """``NetworkSettings.Networks`` of a new container: its networks (``NetworkMode`` first,
        then the others of ``NetworkingConfig.EndpointsConfig``) with their aliases and addresses."""
        mode = host_config["NetworkMode"]
        wanted = dict((networking_config or {}).get("EndpointsConfig") or {})
        if mode.startswith("container:"):  # the other container is looked up at start, as dockerd does
            if _is_publishing(host_config):
                raise InvalidConfig(PUBLISH_CONFLICT)
            if wanted:
                raise InvalidConfig("conflicting options: container type network can't be used with other networks")
            return {}
        try:
            primary = self.networks.name_for_mode(mode)
        except NetworkNotFound:
            primary = mode
        if mode == "default":
            host_config["NetworkMode"] = primary  # "bridge" (rootless: "none"), as inspect shows it
        chosen = {primary: None}
        for key, endpoint_config in wanted.items():
            # the docker CLI names the default network "default" here too (NetworkMode's word);
            # a network that does not exist (yet) is dockerd's error at start, not at create
            name = primary if key in ("default", mode) else self._name(key)
            if name == primary:
                chosen[primary] = endpoint_config
            else:
                chosen[name] = endpoint_config
        if len(chosen) > 1 and any(name in NO_VETH for name in chosen):
            raise InvalidConfig("container cannot be connected to multiple networks with one of the networks in "
                                "private (none) mode" if "none" in chosen else
                                "container cannot be disconnected from host network or connected to host network")
        return {name: self._settings(name, endpoint_config) for name, endpoint_config in chosen.items()}

    def _settings(self, name: str, endpoint_config: dict | None) -> dict:
        """One network's entry of NetworkSettings.Networks, before the container runs."""
        endpoint_config = endpoint_config or {}
        aliases = list(endpoint_config.get("Aliases") or [])
        ipv4 = (endpoint_config.get("IPAMConfig") or {}).get("IPv4Address") or ""
        if name == DEFAULT_NETWORK and ipv4:
            raise InvalidConfig("user specified IP address is supported on user defined networks only")
        if name == DEFAULT_NETWORK and aliases:
            raise InvalidConfig("network-scoped alias is supported only for containers in user defined networks")
        return {"IPAMConfig": {"IPv4Address": ipv4} if ipv4 else None, "Links": None, "Aliases": aliases or None,
                "NetworkID": self._network_id(name), "DriverOpts": None}

    def _name(self, name_or_id: str) -> str:
        try:
            return self.networks.get(name_or_id)["Name"]
        except NetworkNotFound:
            return name_or_id

    def _network_id(self, name: str) -> str:
        try:
            return self.networks.get(name)["Id"]
        except NetworkNotFound:
            return ""

    # --- start -------------------------------------------------------------------------------------
    def prepare(self, record) -> tuple[dict, str | None]:
        """Before the runtime container exists: (write_etc_files' keyword arguments, the network
        namespace to join or None). Leases the container's addresses."""
        mode = record.data["HostConfig"].get("NetworkMode") or "none"
        if mode.startswith("container:"):
            target = self.find_container(mode.split(":", 1)[1])
            if not target.running or not target.data["State"].get("Pid"):
                raise Conflict(f"cannot join network namespace of a non running container: {target.id}")
            etc, _ = self.prepare(target)  # its address and resolvers: the same network
            return etc, f"/proc/{target.data['State']['Pid']}/ns/net"
        settings = self.settings(record)
        address, user_network = None, False
        for name, entry in settings.items():
            if name in NO_VETH:
                continue
            network = self.networks.get(name)
            address = address or self.networks.reserve(network["Name"], record.id,
                                                         (entry.get("IPAMConfig") or {}).get("IPv4Address"))
            user_network |= name != DEFAULT_NETWORK
        if "none" in settings:
            return {"nameservers": None}, None
        servers, search, options = host_resolvers()
        if user_network and self.resolver is not None:
            note = f"teachdockd's embedded resolver; it forwards other names to the host's: {', '.join(servers)}"
            return {"address": address, "nameservers": [EMBEDDED_DNS], "search": search,
                    "options": [*options, "ndots:0"], "note": note}, None
        outside = [s for s in servers if not s.startswith("127.")] or GOOGLE_DNS
        return {"address": address, "nameservers": outside, "search": search, "options": options,
                "note": "the host's resolvers, as on Docker's default bridge"}, None

    def attach(self, record, pid: int) -> None:
        """The runtime container exists, PID 1 waits: plug in every network, publish the ports,
        give it the resolver. On failure nothing of this stays."""
        try:
            user_network = False
            for name, entry in self.settings(record).items():
                if name in NO_VETH:
                    continue
                self.networks.connect(name, record.id, pid, name=record.name, aliases=entry.get("Aliases") or (),
                                      ipv4=(entry.get("IPAMConfig") or {}).get("IPv4Address") or None,
                                      hostname=record.data["Config"].get("Hostname"))
                user_network |= name != DEFAULT_NETWORK
            self._publish(record)
            if user_network and self.resolver is not None:
                self.resolver.attach(record.id, pid)
                self._resolved.add(record.id)
        except BaseException:
            self.detach(record)
            raise

    def _publish(self, record) -> None:
        host_config = record.data["HostConfig"]
        record.data.setdefault("NetworkSettings", {})["Ports"] = {}
        if not _is_publishing(host_config) or host_config.get("NetworkMode") == "host":
            return
        from teachdock.daemon import ports  # net-fw's module: port specs and allocation

        exposed = dict(record.data["Config"].get("ExposedPorts") or {})
        bindings = ports.reserve(ports.bindings_from_host_config(host_config, exposed,
                                                                 bool(host_config.get("PublishAllPorts"))),
                                 name=record.name.lstrip("/"), container_id=record.id)
        self._held_ports[record.id] = bindings
        address = next((e["IPAddress"] for n in self.networks.attached(record.id)
                        for cid, e in n["Endpoints"].items() if cid == record.id), None)
        if self.firewall is not None and address and bindings:
            self.firewall.publish(record.id, address, bindings)
        record.data["NetworkSettings"]["Ports"] = ports.ports_json(bindings)

    def restore(self, record) -> None:
        """A running container found again after a daemon restart: the resolver answers for it again."""
        if self.resolver is not None and any(n != DEFAULT_NETWORK and n not in NO_VETH for n in self.settings(record)):
            try:
                self.resolver.attach(record.id, record.data["State"]["Pid"])
                self._resolved.add(record.id)
            except TeachdockError:
                pass

    # --- exit and removal --------------------------------------------------------------------------
    def detach(self, record) -> None:
        """The program exited (or never started): resolver, port rules and endpoints go."""
        if record.id in self._resolved:
            self._resolved.discard(record.id)
            self.resolver.detach(record.id)
        if (record.data.get("NetworkSettings") or {}).get("Ports") and self.firewall is not None:
            self.firewall.unpublish(record.id)
        held = self._held_ports.pop(record.id, None)
        if held:  # the host ports go back: a restart of this container (or another) may take them
            from teachdock.daemon import ports  # noqa: PLC0415

            ports.release(held)
        record.data.setdefault("NetworkSettings", {})["Ports"] = {}
        self.networks.disconnect_all(record.id)

    def release(self, record) -> None:
        self.detach(record)
        self.networks.release(record.id)

    # --- docker network connect / disconnect ------------------------------------------------------
    def settings(self, record) -> dict:
        """NetworkSettings.Networks as recorded (a record from before networks were recorded: its NetworkMode)."""
        settings = record.data.setdefault("NetworkSettings", {})
        if "Networks" not in settings:
            mode = record.data["HostConfig"].get("NetworkMode") or "none"
            settings["Networks"] = {} if mode.startswith("container:") else {mode: {"NetworkID": ""}}
        return settings["Networks"]

    def connect(self, record, network_name: str, endpoint_config: dict | None) -> dict:
        """``docker network connect``: recorded, and plugged in now when the container runs."""
        mode = record.data["HostConfig"].get("NetworkMode") or ""
        network = self.networks.get(network_name)
        if mode.startswith("container:"):
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        if "host" in (mode, network["Name"]):
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        settings = self.settings(record)
        if "none" in (network["Name"], *settings):
            raise Forbidden("container cannot be connected to multiple networks with one of the networks in "
                            "private (none) mode")
        if network["Name"] in settings and record.running:
            raise Forbidden(f"endpoint with name {record.name.lstrip('/')} already exists in network "
                            f"{network['Name']}")
        entry = self._settings(network["Name"], endpoint_config)  # not running: dockerd takes the new settings
        if record.running:
            pid = record.data["State"]["Pid"]
            self.networks.connect(network["Name"], record.id, pid, name=record.name,
                                  aliases=entry.get("Aliases") or (),
                                  ipv4=(entry.get("IPAMConfig") or {}).get("IPv4Address") or None,
                                  hostname=record.data["Config"].get("Hostname"))
            if network["Name"] != DEFAULT_NETWORK and self.resolver is not None and record.id not in self._resolved:
                self.resolver.attach(record.id, pid)
                self._resolved.add(record.id)
        settings[network["Name"]] = entry
        return entry

    def disconnect(self, record, network_name: str) -> None:
        """``docker network disconnect``: the interface goes now if it runs; the lease goes too."""
        try:
            network = self.networks.get(network_name)
        except NetworkNotFound:
            network = None
        settings = self.settings(record)
        name = network["Name"] if network else network_name
        if name not in settings:
            raise Forbidden(f"container {record.id} is not connected to the network {network_name}")
        if name == "host" or (record.data["HostConfig"].get("NetworkMode") or "").startswith("container:"):
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if network is not None and name not in NO_VETH:
            self.networks.disconnect(network["Id"], record.id)
            self.networks.leases.release(network["Id"], record.id)
        del settings[name]

    # --- inspect -----------------------------------------------------------------------------------
    def inspect(self, record) -> dict:
        """NetworkSettings as ``docker inspect`` shows it: each network with its endpoint while it
        runs; the default bridge's address also at the top (dockerd's older fields)."""
        networks = {}
        # A snapshot: a connect or a start may add a network while this loop calls out.
        for name, entry in list(self.settings(record).items()):
            endpoint = (self.networks.endpoint(name, record.id) if record.running else None) or {}
            try:
                network_id = self.networks.get(name)["Id"]
            except NotFound:
                network_id = entry.get("NetworkID") or ""
            networks[name] = {
                "IPAMConfig": entry.get("IPAMConfig"), "Links": None, "Aliases": entry.get("Aliases"),
                "MacAddress": endpoint.get("MacAddress", ""), "DriverOpts": None, "NetworkID": network_id,
                "EndpointID": endpoint.get("EndpointID", ""), "Gateway": endpoint.get("Gateway", ""),
                "IPAddress": endpoint.get("IPAddress", ""), "IPPrefixLen": endpoint.get("IPPrefixLen", 0),
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": endpoint.get("DNSNames")}
        default = networks.get(DEFAULT_NETWORK) or {}
        pid = record.data["State"].get("Pid") if record.running else None
        return {"Bridge": "", "SandboxID": "", "SandboxKey": f"/proc/{pid}/ns/net" if pid else "",
                "Ports": dict((record.data.get("NetworkSettings") or {}).get("Ports") or {}),
                "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                "EndpointID": default.get("EndpointID", ""), "Gateway": default.get("Gateway", ""),
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": default.get("IPAddress", ""),
                "IPPrefixLen": default.get("IPPrefixLen", 0), "IPv6Gateway": "",
                "MacAddress": default.get("MacAddress", ""), "Networks": networks}


def ps_ports(ports_json: dict) -> list[dict]:
    """``Ports`` of ``GET /containers/json`` from NetworkSettings.Ports."""
    shown = []
    for key, bindings in (ports_json or {}).items():
        number, _, protocol = key.partition("/")
        for binding in bindings or [{}]:
            entry = {"PrivatePort": int(number), "Type": protocol or "tcp"}
            if binding.get("HostPort"):
                entry.update(IP=binding.get("HostIp") or "0.0.0.0", PublicPort=int(binding["HostPort"]))
            shown.append(entry)
    return shown
