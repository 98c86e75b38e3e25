"""The embedded DNS server: what answers at 127.0.0.11 inside every container on a user network.

On a user network a container's /etc/resolv.conf says ``nameserver 127.0.0.11``, and a lookup of
another container's name (``ping web``) is answered by the daemon, as dockerd does. The
messages are read and written by hand in dns_messages.py (RFC 1035); this module is the server.

**How the socket gets into the container.** A socket belongs to the network namespace of the
thread that created it, forever. ``attach`` starts a short-lived thread that joins the
container's network namespace (setns(2) on /proc/PID/ns/net: only that thread moves), makes
sure ``lo`` is up, binds a UDP socket and a TCP listener to 127.0.0.11:53, and exits. The
sockets stay in the container's namespace; the daemon's other threads never left the host's.
No address needs adding: ``lo`` carries 127.0.0.0/8, so any 127.x.y.z is local once ``lo`` is up.
(dockerd binds a random port there and redirects 127.0.0.11:53 to it with iptables rules in the
container's namespace, so that a process inside may bind port 53 itself; teachdock keeps it simple.)

One serving thread waits on all containers' sockets at once with a selector. A question is
answered from ``lookup(container_id, name)``: the addresses of that name on the networks the
asking container is attached to, so names of other networks stay invisible. A name that is not
ours (``lookup`` returns []) is forwarded, unchanged, to the host's resolvers from
/etc/resolv.conf: from the daemon, in the host's namespace (dockerd forwards from inside the
container's namespace unless the resolver is on the host's loopback), and SERVFAIL when none
answers. Forwarding waits on the network, so it runs in a small pool of worker threads.

A socket holds its network namespace alive, so a container that dies without ``detach`` would
keep its namespace (and its veth) around; the serving thread therefore checks every few seconds
that each container's process is still in the namespace it was attached to, and lets go if not.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from teachdock import kernel
from teachdock.daemon.dns_messages import (
    CLASS_IN, FORMERR, HEADER, MAX_MESSAGE, NOERROR, NOTIMP, REFUSED, SERVFAIL, TYPE_A, TYPE_ANY,
    MalformedMessage, Message, build_error, build_response, parse_message)

log = logging.getLogger(__name__)

DNS_ADDRESS = "127.0.0.11"
DNS_PORT = 53
UDP_ANSWER_LIMIT = 512     # RFC 1035's limit for an answer over UDP (we speak no EDNS)
UPSTREAM_TIMEOUT = 2.0     # seconds to wait for each of the host's resolvers
MAX_UPSTREAMS = 3          # resolv.conf's MAXNS
MAX_FORWARDS = 64          # questions being forwarded at once; more get SERVFAIL at once
MAX_TCP_CLIENTS = 16       # open TCP connections per container
TCP_IDLE = 10.0            # seconds before an idle TCP connection is closed
CHECK_INTERVAL = 2.0       # seconds between checks for containers that died

# --- the host's resolvers ----------------------------------------------------------------------

def host_resolvers(resolv_conf: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The IPv4 ``nameserver`` lines of resolv.conf, at most three, as (address, 53)."""
    servers = []
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    try:
                        socket.inet_aton(fields[1])
                    except OSError:
                        continue  # an IPv6 resolver: our forwarding speaks IPv4 only
                    if fields[1].count(".") == 3 and fields[1] != DNS_ADDRESS:
                        servers.append((fields[1], DNS_PORT))
    except OSError:
        pass
    return servers[:MAX_UPSTREAMS]


def ask_upstream(packet: bytes, server: tuple[str, int], *, tcp: bool = False,
                 timeout: float = UPSTREAM_TIMEOUT) -> bytes:
    """Send a query as it came to one resolver and return its answer's bytes (OSError if none).

    Over UDP the socket is connected, so only the server's datagrams arrive, and only an answer
    carrying the query's id counts. Over TCP each message is preceded by its 2-byte length.
    """
    ident = packet[:2]
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(server)
        if tcp:
            sock.sendall(struct.pack("!H", len(packet)) + packet)
            length = struct.unpack("!H", _receive_exactly(sock, 2))[0]
            answer = _receive_exactly(sock, length)
            if answer[:2] != ident:
                raise OSError("the answer carries another id")
            return answer
        sock.send(packet)
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            answer = sock.recv(MAX_MESSAGE)
            if len(answer) >= HEADER.size and answer[:2] == ident and answer[2] & 0x80:
                return answer


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed before the whole message")
        data += chunk
    return data


# --- sockets inside a network namespace ----------------------------------------------------------

def open_sockets_inside(netns_path: str, address: str = DNS_ADDRESS,
                        port: int = DNS_PORT) -> tuple[socket.socket, socket.socket]:
    """A UDP socket and a TCP listener bound to address:port inside the network namespace
    at ``netns_path`` (/proc/PID/ns/net): made by a thread that joins it, binds, and ends."""
    result: dict = {}

    def inside() -> None:
        udp = tcp = None
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                kernel.setns(fd, kernel.CLONE_NEWNET)   # this thread only
            finally:
                os.close(fd)
            bring_loopback_up()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((address, port))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((address, port))
            tcp.listen(MAX_TCP_CLIENTS)
            result["sockets"] = (udp, tcp)
        except BaseException as error:  # handed to the caller's thread
            for sock in (udp, tcp):
                if sock is not None:
                    sock.close()
            result["error"] = error

    thread = threading.Thread(target=inside, name="dns-setns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    for sock in result["sockets"]:
        sock.setblocking(False)
    return result["sockets"]


def bring_loopback_up() -> None:
    """Set ``lo`` up in the calling thread's network namespace (the runtime usually did)."""
    from pyroute2 import IPRoute   # netlink: its socket is made in this thread's namespace
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname="lo")[0]
        link = ipr.get_links(index)[0]
        if not link["flags"] & 1:  # IFF_UP
            ipr.link("set", index=index, state="up")


# --- the server ------------------------------------------------------------------------------

class _Endpoint:
    """One container's sockets, and what is needed to notice that its namespace went away."""
    __slots__ = ("container_id", "pid", "netns_inode", "forward", "udp", "tcp", "clients", "closed")

    def __init__(self, container_id, pid, netns_inode, forward, udp, tcp):
        self.container_id, self.pid, self.netns_inode, self.forward = container_id, pid, netns_inode, forward
        self.udp, self.tcp = udp, tcp
        self.clients: dict = {}   # TCP connection -> _TcpClient
        self.closed = False


class _TcpClient:
    __slots__ = ("sock", "buffer", "last_active")

    def __init__(self, sock):
        self.sock, self.buffer, self.last_active = sock, b"", time.monotonic()


class Resolver:
    """The embedded DNS server: one UDP (and TCP) socket per container at 127.0.0.11:53, made
    inside the container's network namespace; answers A queries for names on the networks
    the asking container is attached to; forwards other names to the host's resolvers."""

    def __init__(self, lookup, *, upstreams: list[tuple[str, int]] | None = None,
                 timeout: float = UPSTREAM_TIMEOUT):
        """``lookup(container_id, name) -> [IPv4 address, ...]`` ([] = not ours: forward);
        ``name`` comes lower-cased and without the final dot. ``upstreams``: (address, port)
        pairs to forward to, by default the host's /etc/resolv.conf."""
        self._lookup = lookup
        self._upstreams = host_resolvers() if upstreams is None else list(upstreams)[:MAX_UPSTREAMS]
        self._timeout = timeout
        self._lock = threading.Lock()        # guards endpoints and every socket operation on them
        self._endpoints: dict[str, _Endpoint] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, ("wake", None, None))
        self._forwarders = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns-forward")
        self._forwarding = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    # --- the contract ---

    def attach(self, container_id: str, pid: int, *, forward: bool = True) -> None:
        """Listen at 127.0.0.11:53 in the network namespace of process ``pid``. ``forward=False``
        answers names that are not ours with SERVFAIL (dockerd: containers on internal networks only)."""
        self.detach(container_id)
        netns_path = f"/proc/{int(pid)}/ns/net"
        inode = os.stat(netns_path).st_ino
        if inode == os.stat("/proc/self/ns/net").st_ino:   # --network host: 127.0.0.11 is not ours
            raise ValueError(f"process {pid} is in the daemon's own network namespace")
        udp, tcp = open_sockets_inside(netns_path)
        endpoint = _Endpoint(container_id, int(pid), inode, forward, udp, tcp)
        with self._lock:
            if self._stopping:
                udp.close()
                tcp.close()
                raise RuntimeError("the resolver is closed")
            self._endpoints[container_id] = endpoint
            self._selector.register(udp, selectors.EVENT_READ, ("udp", endpoint, None))
            self._selector.register(tcp, selectors.EVENT_READ, ("listen", endpoint, None))

    def detach(self, container_id: str) -> None:
        """Close the container's sockets (nothing of it stays in its namespace)."""
        with self._lock:
            endpoint = self._endpoints.pop(container_id, None)
            if endpoint is not None:
                self._close_endpoint(endpoint)

    def close(self) -> None:
        """Stop the serving thread and close every socket."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._wake_writer.send(b"x")
        self._thread.join()
        with self._lock:
            for endpoint in self._endpoints.values():
                self._close_endpoint(endpoint)
            self._endpoints.clear()
        self._forwarders.shutdown(wait=False, cancel_futures=True)
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def attached(self) -> list[str]:
        """The containers being served now."""
        with self._lock:
            return list(self._endpoints)

    # --- the serving thread ---

    def _serve(self) -> None:
        next_check = time.monotonic() + CHECK_INTERVAL
        while not self._stopping:
            for key, _ in self._selector.select(timeout=CHECK_INTERVAL):
                kind, endpoint, client = key.data
                try:
                    if kind == "udp":
                        self._on_datagram(endpoint)
                    elif kind == "listen":
                        self._on_connection(endpoint)
                    elif kind == "tcp":
                        self._on_stream(endpoint, client)
                    else:
                        self._wake_reader.recv(64)
                except Exception:  # one bad packet must not end the server
                    log.exception("dns: handling a packet for %s", endpoint and endpoint.container_id)
            if time.monotonic() >= next_check:
                self._let_go_of_dead_containers()
                next_check = time.monotonic() + CHECK_INTERVAL

    def _on_datagram(self, endpoint: _Endpoint) -> None:
        with self._lock:
            if endpoint.closed:
                return
            try:
                packet, client = endpoint.udp.recvfrom(MAX_MESSAGE)
            except BlockingIOError:
                return

        def reply(answer: bytes) -> None:
            with self._lock:
                if not endpoint.closed:
                    try:
                        endpoint.udp.sendto(answer, client)
                    except OSError:
                        pass
        self._answer(endpoint, packet, reply, tcp=False)

    def _on_connection(self, endpoint: _Endpoint) -> None:
        with self._lock:
            if endpoint.closed:
                return
            try:
                sock, _ = endpoint.tcp.accept()
            except BlockingIOError:
                return
            if len(endpoint.clients) >= MAX_TCP_CLIENTS:
                sock.close()
                return
            sock.setblocking(False)
            client = _TcpClient(sock)
            endpoint.clients[sock] = client
            self._selector.register(sock, selectors.EVENT_READ, ("tcp", endpoint, client))

    def _on_stream(self, endpoint: _Endpoint, client: _TcpClient) -> None:
        """Bytes on a TCP connection: each message is a 2-byte length and that many bytes."""
        with self._lock:
            if endpoint.closed or client.sock not in endpoint.clients:
                return
            try:
                data = client.sock.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_client(endpoint, client)
                return
            client.buffer += data
            client.last_active = time.monotonic()
            messages = []
            while len(client.buffer) >= 2:
                length = struct.unpack_from("!H", client.buffer)[0]
                if len(client.buffer) < 2 + length:
                    break
                messages.append(client.buffer[2:2 + length])
                client.buffer = client.buffer[2 + length:]

        def reply(answer: bytes) -> None:
            with self._lock:
                if client.sock in endpoint.clients:
                    try:
                        client.sock.sendall(struct.pack("!H", len(answer)) + answer)
                    except OSError:
                        self._close_client(endpoint, client)
        for packet in messages:
            self._answer(endpoint, packet, reply, tcp=True)

    def _answer(self, endpoint: _Endpoint, packet: bytes, reply, *, tcp: bool) -> None:
        """Decide the answer to one packet: ours, forwarded, or an error. Runs without the lock:
        ``lookup`` belongs to the daemon and may take its own locks."""
        try:
            query = parse_message(packet)
        except MalformedMessage:
            error = build_error(packet, FORMERR)
            if error is not None:
                reply(error)
            return
        if query.is_response:
            return
        if query.opcode != 0:
            reply(build_response(query, NOTIMP))
            return
        if len(query.questions) != 1:
            reply(build_response(query, FORMERR))
            return
        question = query.questions[0]
        try:
            addresses = self._lookup(endpoint.container_id, question.name.lower()) \
                if question.qclass == CLASS_IN else []
        except Exception:
            log.exception("dns: lookup of %r for %s", question.name, endpoint.container_id)
            reply(build_response(query, SERVFAIL))
            return
        if addresses:
            # Our name. Only A records exist on IPv4-only networks: AAAA, MX and the rest get
            # NOERROR with no records ("the name exists, without that kind of record").
            found = addresses if question.qtype in (TYPE_A, TYPE_ANY) else []
            reply(build_response(query, NOERROR, found, limit=MAX_MESSAGE if tcp else UDP_ANSWER_LIMIT))
            return
        if not endpoint.forward or not self._upstreams:
            reply(build_response(query, SERVFAIL))
            return
        with self._lock:
            busy = self._forwarding >= MAX_FORWARDS or self._stopping
            if not busy:
                self._forwarding += 1
        if busy:
            reply(build_response(query, SERVFAIL))
            return
        try:
            self._forwarders.submit(self._forward, query, packet, reply, tcp)
        except RuntimeError:   # the pool shut down: close() ran meanwhile
            with self._lock:
                self._forwarding -= 1

    def _forward(self, query: Message, packet: bytes, reply, tcp: bool) -> None:
        """In a worker thread (host namespace): ask the host's resolvers in turn; the first that
        answers other than SERVFAIL or REFUSED gives the answer, as it is; SERVFAIL if none."""
        try:
            for server in self._upstreams:
                try:
                    answer = ask_upstream(packet, server, tcp=tcp, timeout=self._timeout)
                except OSError:
                    continue
                if answer[3] & 0x0F not in (SERVFAIL, REFUSED):
                    reply(answer)
                    return
            reply(build_response(query, SERVFAIL))
        finally:
            with self._lock:
                self._forwarding -= 1

    # --- cleaning up ---

    def _let_go_of_dead_containers(self) -> None:
        """Detach every container whose process is gone or in another namespace now."""
        with self._lock:
            endpoints = list(self._endpoints.values())
        now = time.monotonic()
        for endpoint in endpoints:
            try:
                alive = os.stat(f"/proc/{endpoint.pid}/ns/net").st_ino == endpoint.netns_inode
            except OSError:
                alive = False
            with self._lock:
                if not alive:
                    if self._endpoints.get(endpoint.container_id) is endpoint:
                        del self._endpoints[endpoint.container_id]
                    self._close_endpoint(endpoint)
                    continue
                for client in list(endpoint.clients.values()):
                    if now - client.last_active > TCP_IDLE:
                        self._close_client(endpoint, client)

    def _close_client(self, endpoint: _Endpoint, client: _TcpClient) -> None:
        """(lock held)"""
        if endpoint.clients.pop(client.sock, None) is not None:
            self._unregister(client.sock)
            client.sock.close()

    def _close_endpoint(self, endpoint: _Endpoint) -> None:
        """(lock held)"""
        if endpoint.closed:
            return
        endpoint.closed = True
        for client in list(endpoint.clients.values()):
            self._close_client(endpoint, client)
        for sock in (endpoint.udp, endpoint.tcp):
            self._unregister(sock)
            sock.close()

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError, RuntimeError):
            pass  # not registered, or the selector is closed
