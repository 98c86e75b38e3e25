"""Published ports: ``-p 8080:80``, ``-p 127.0.0.1::80/udp``, ``-P`` — from the API's shape to host ports held.

The docker CLI turns ``-p [ip:][hostport:]containerport[/proto]`` into the create body's
``HostConfig.PortBindings`` (``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``) and ``-P``
into ``PublishAllPorts`` with the image's ``ExposedPorts``. Here that becomes a list of
:class:`PortBinding`, one per host port, checked with dockerd's words for bad input.

Holding a port: ``reserve`` binds a socket on each host address and port (a listening one for
TCP) and keeps it open until ``release``, as dockerd does (its port mapper keeps one socket per
published port, in docker-proxy or in the daemon). So a second container asking for 8080 gets
dockerd's "port is already allocated", a program on the host that asks for 8080 later gets
"address already in use", and ``ss -ltnp`` shows who owns the port. The socket never sees a
packet: the firewall's DNAT sends them to the container before they reach it.
A host port "" or "0" is chosen by the kernel (bind to port 0: a free one out of
``net.ipv4.ip_local_port_range``).
"""

from __future__ import annotations

import ipaddress
import socket
import threading

from teachdock.errors import Conflict, InvalidConfig

PROTOCOLS = ("tcp", "udp")


class PortBinding:
    """One published port: container_port/protocol <- host_ip:host_port (host_ip "" = every address)."""

    __slots__ = ("container_port", "protocol", "host_ip", "host_port", "host_port_end")

    def __init__(self, container_port: int, protocol: str = "tcp", host_ip: str = "", host_port: int = 0,
                 host_port_end: int = 0):
        self.container_port = container_port
        self.protocol = protocol
        self.host_ip = host_ip
        self.host_port = host_port          # 0 = any free port, chosen by reserve()
        self.host_port_end = host_port_end  # -p 8000-8010:80: the first free one of a range

    def _key(self):
        return (self.container_port, self.protocol, self.host_ip, self.host_port, self.host_port_end)

    def __eq__(self, other):
        return isinstance(other, PortBinding) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        end = f"-{self.host_port_end}" if self.host_port_end else ""
        return f"PortBinding({self.host_ip or '0.0.0.0'}:{self.host_port}{end}->{self.container_port}/{self.protocol})"


# --- from the create body -----------------------------------------------------------------------------
def bindings_from_host_config(host_config: dict, exposed_ports: dict, publish_all: bool) -> list[PortBinding]:
    """HostConfig.PortBindings (+ every ExposedPorts entry on a random port with -P) -> bindings."""
    bindings, bound = [], set()
    for key, entries in (host_config.get("PortBindings") or {}).items():
        port, protocol = _container_port(key)
        for entry in entries or [{}]:
            entry = entry or {}
            host_ip = _host_ip(entry.get("HostIp") or "")
            start, end = _host_ports(str(entry.get("HostPort") or ""))
            bindings.append(PortBinding(port, protocol, host_ip, start, end if end != start else 0))
        bound.add((port, protocol))
    if publish_all:
        for key in sorted(exposed_ports or {}, key=lambda k: _container_port(k)):
            port, protocol = _container_port(key)
            if (port, protocol) not in bound:
                bindings.append(PortBinding(port, protocol))
    return bindings


def _container_port(key: str) -> tuple[int, str]:
    """``"80/tcp"`` (or ``"80"``) -> (80, "tcp")."""
    port, _, protocol = str(key).partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise InvalidConfig(f"invalid proto: {protocol}" if protocol != "sctp"
                            else "publishing sctp ports is not supported by teachdock")
    number = _port_number(port)
    if number is None or number == 0:
        raise InvalidConfig(f'invalid port specification: "{port}"')
    return number, protocol


def _host_ports(text: str) -> tuple[int, int]:
    """``""``/``"0"`` -> (0, 0); ``"8080"`` -> (8080, 8080); ``"8000-8010"`` -> (8000, 8010)."""
    if text in ("", "0"):
        return 0, 0
    first, dash, last = text.partition("-")
    start, end = _port_number(first), _port_number(last) if dash else _port_number(first)
    if start is None or end is None or start == 0 or end < start:
        raise InvalidConfig(f'invalid port specification: "{text}"')
    return start, end


def _port_number(text: str) -> int | None:
    if not text.isdigit() or int(text) > 65535:
        return None
    return int(text)


def _host_ip(text: str) -> str:
    text = text.strip("[]")
    if text:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise InvalidConfig(f"invalid IP address: {text}") from None
    return text


# --- holding host ports -------------------------------------------------------------------------------
_held: dict[tuple[str, str, int], socket.socket] = {}   # (protocol, host_ip, host_port) -> the socket
_held_lock = threading.Lock()


def reserve(bindings, *, name: str = "", container_id: str = "") -> list[PortBinding]:
    """Concrete host ports for ``bindings``, each held by a socket until :func:`release`.

    All or nothing: when one port is taken, the ones held so far are let go and Conflict is
    raised with dockerd's words (``name``/``container_id`` name the endpoint in the message)."""
    done: list[PortBinding] = []
    try:
        for binding in bindings:
            done.append(_reserve_one(binding, name, container_id))
    except BaseException:
        release(done)
        raise
    return done


def _reserve_one(binding: PortBinding, name: str, container_id: str) -> PortBinding:
    family = socket.AF_INET6 if ":" in binding.host_ip else socket.AF_INET
    address = binding.host_ip or "0.0.0.0"
    candidates = range(binding.host_port, (binding.host_port_end or binding.host_port) + 1)
    where = f"endpoint {name} ({container_id})" if name or container_id else "endpoint"
    shown = f"[{address}]" if family == socket.AF_INET6 else address
    for port in candidates:
        with _held_lock:
            if port and (binding.protocol, address, port) in _held:
                if binding.host_port_end:
                    continue
                raise Conflict(f"driver failed programming external connectivity on {where}: "
                               f"Bind for {shown}:{port} failed: port is already allocated")
            sock = socket.socket(family, socket.SOCK_STREAM if binding.protocol == "tcp" else socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like any server: no TIME_WAIT wait
                sock.bind((address, port))
                if binding.protocol == "tcp":
                    sock.listen(1)
            except OSError as error:
                sock.close()
                if binding.host_port_end and port != candidates[-1]:
                    continue
                reason = (error.strerror or str(error)).lower()
                raise Conflict(f"driver failed programming external connectivity on {where}: failed to bind "
                               f"host port for {shown}:{port}/{binding.protocol}: {reason}") from None
            chosen = sock.getsockname()[1]
            _held[(binding.protocol, address, chosen)] = sock
            return PortBinding(binding.container_port, binding.protocol, binding.host_ip, chosen)
    raise Conflict(f"driver failed programming external connectivity on {where}: Bind for {shown}:"
                   f"{binding.host_port}-{binding.host_port_end} failed: port is already allocated")


def release(bindings) -> None:
    """Let go of the host ports :func:`reserve` holds for ``bindings`` (a stopped container's)."""
    with _held_lock:
        for binding in bindings:
            sock = _held.pop((binding.protocol, binding.host_ip or "0.0.0.0", binding.host_port), None)
            if sock is not None:
                sock.close()


# --- what inspect and ps show -------------------------------------------------------------------------
def ports_json(bindings) -> dict:
    """NetworkSettings.Ports of inspect: ``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}``."""
    ports: dict = {}
    for b in bindings:
        ports.setdefault(f"{b.container_port}/{b.protocol}", []).append(
            {"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)})
    return ports


def ps_ports(bindings) -> str:
    """docker ps's PORTS column: ``0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp``."""
    return ", ".join(f"{b.host_ip or '0.0.0.0'}:{b.host_port}->{b.container_port}/{b.protocol}" for b in bindings)
