"""The embedded DNS server (teachdock/daemon/dns.py) in real network namespaces.

Each "container" is a ``sleep`` in a network namespace of its own (``unshare --net``: only
``lo``, and down). The resolver itself is made inside another namespace, "upstream", whose
loopback carries the fake upstream resolver this file starts: the resolver's serving and
forwarding threads live where it was made (as the daemon's live in the host's namespace), so
forwarded questions reach only that fake server. Nothing leaves the namespaces we create.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from teachdock import kernel
from teachdock.daemon import dns
from teachdock.daemon.dns_messages import (
    FLAG_TC, FORMERR, NOERROR, NXDOMAIN, REFUSED, SERVFAIL, TTL, TYPE_A, TYPE_AAAA, TYPE_MX,
    build_query, build_response, parse_message)

pytestmark = pytest.mark.root

UPSTREAM_ADDRESS = "192.0.2.10"    # TEST-NET-1: only ever data inside an answer


def in_netns(pid: int, function):
    """Call ``function`` in a thread that joined the network namespace of ``pid``."""
    result = {}

    def run():
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                kernel.setns(fd, kernel.CLONE_NEWNET)
            finally:
                os.close(fd)
            result["value"] = function()
        except BaseException as error:
            result["error"] = error
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def namespaces():
    """make() -> the pid of a process alone in a new network namespace; all killed afterwards."""
    processes = []

    def make() -> int:
        process = subprocess.Popen(["unshare", "--net", "sleep", "300"])
        processes.append(process)
        own = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{process.pid}/ns/net").st_ino == own:   # unshare has not run yet
            assert time.monotonic() < deadline
            time.sleep(0.005)
        return process.pid
    yield make
    for process in processes:
        process.kill()
        process.wait()


class FakeUpstream:
    """A DNS server on 127.0.0.1 (UDP and TCP) in the upstream namespace, answering by name."""

    def __init__(self, pid: int):
        def make():
            dns.bring_loopback_up()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            tcp.listen(8)
            silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # binds, never answers
            silent.bind(("127.0.0.1", 0))
            return udp, tcp, silent
        self.udp, self.tcp, self.silent = in_netns(pid, make)
        self.address = self.udp.getsockname()
        self.silent_address = self.silent.getsockname()
        self.asked: list[tuple[str, str]] = []        # (transport, name)
        self.stopping = False
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for thread in self.threads:
            thread.start()

    def answer(self, packet: bytes, transport: str) -> bytes:
        query = parse_message(packet)
        name = query.questions[0].name
        self.asked.append((transport, name))
        if name == "example.test":
            return build_response(query, NOERROR, [UPSTREAM_ADDRESS])
        if name == "refused.test":
            return build_response(query, REFUSED)
        return build_response(query, NXDOMAIN)

    def _serve_udp(self):
        self.udp.settimeout(0.1)
        while not self.stopping:
            try:
                packet, client = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            self.udp.sendto(self.answer(packet, "udp"), client)

    def _serve_tcp(self):
        self.tcp.settimeout(0.1)
        while not self.stopping:
            try:
                connection, _ = self.tcp.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                length = struct.unpack("!H", connection.recv(2, socket.MSG_WAITALL))[0]
                answer = self.answer(connection.recv(length, socket.MSG_WAITALL), "tcp")
                connection.sendall(struct.pack("!H", len(answer)) + answer)

    def close(self):
        self.stopping = True
        for thread in self.threads:
            thread.join()
        for sock in (self.udp, self.tcp, self.silent):
            sock.close()


NAMES = {"web": ["172.30.5.2"], "db": ["172.30.5.3"], "many": [f"172.30.6.{i}" for i in range(1, 61)]}


def fake_lookup(container_id: str, name: str) -> list[str]:
    """Names of 'our networks'; a container named lonely-* sees none of them."""
    if container_id.startswith("lonely"):
        return []
    if name == "self":
        return [f"172.31.0.{int(container_id.rsplit('-', 1)[1]) + 1}"]
    return NAMES.get(name, [])


@pytest.fixture
def upstream(namespaces):
    pid = namespaces()
    server = FakeUpstream(pid)
    server.pid = pid
    yield server
    server.close()


@pytest.fixture
def resolver(upstream):
    """A Resolver made in the upstream namespace, forwarding to the fake upstream there."""
    made = []

    def make(upstreams=None, timeout=1.0):
        resolver = in_netns(upstream.pid, lambda: dns.Resolver(
            fake_lookup, upstreams=[upstream.address] if upstreams is None else upstreams, timeout=timeout))
        made.append(resolver)
        return resolver
    yield make
    for resolver in made:
        resolver.close()


def ask(pid: int, packet: bytes, *, tcp: bool = False, timeout: float = 5.0) -> bytes:
    """Send ``packet`` to 127.0.0.11:53 from inside the namespace of ``pid``; the answer's bytes."""
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM

    def connect():
        sock = socket.socket(socket.AF_INET, kind)
        sock.settimeout(timeout)
        sock.connect((dns.DNS_ADDRESS, dns.DNS_PORT))
        return sock
    with in_netns(pid, connect) as sock:
        if tcp:
            sock.sendall(struct.pack("!H", len(packet)) + packet)
            length = struct.unpack("!H", sock.recv(2, socket.MSG_WAITALL))[0]
            return sock.recv(length, socket.MSG_WAITALL)
        sock.send(packet)
        return sock.recv(65535)


def test_a_container_gets_the_addresses_of_its_networks_names(namespaces, resolver, upstream):
    pid = namespaces()                                   # lo is down in there: attach brings it up
    server = resolver()
    server.attach("box-1", pid)
    raw = ask(pid, build_query("WEB", TYPE_A, ident=4242))
    answer = parse_message(raw)
    assert (answer.id, answer.rcode, answer.is_response) == (4242, NOERROR, True)
    assert answer.questions[0].name == "WEB"             # repeated as asked; looked up lower-cased
    assert [(r.name, r.ttl, r.address) for r in answer.answers] == [("WEB", TTL, "172.30.5.2")]
    assert raw[12 + 9:12 + 11] == b"\xc0\x0c"            # the answer's name: a pointer to offset 12
    assert upstream.asked == []                          # ours: never forwarded


def test_aaaa_and_mx_of_our_names_are_empty_noerror(namespaces, resolver, upstream):
    pid = namespaces()
    resolver().attach("box-1", pid)
    for qtype in (TYPE_AAAA, TYPE_MX):
        answer = parse_message(ask(pid, build_query("db", qtype)))
        assert (answer.rcode, answer.answers) == (NOERROR, [])
    assert upstream.asked == []


def test_other_names_are_forwarded_and_the_answer_relayed(namespaces, resolver, upstream):
    pid = namespaces()
    resolver().attach("box-1", pid)
    found = parse_message(ask(pid, build_query("example.test", TYPE_A)))
    assert (found.rcode, [r.address for r in found.answers]) == (NOERROR, [UPSTREAM_ADDRESS])
    missing = parse_message(ask(pid, build_query("missing.test", TYPE_A)))
    assert (missing.rcode, missing.answers) == (NXDOMAIN, [])
    assert upstream.asked == [("udp", "example.test"), ("udp", "missing.test")]


def test_names_of_networks_a_container_is_not_on_stay_invisible(namespaces, resolver, upstream):
    pid = namespaces()
    resolver().attach("lonely-1", pid)
    answer = parse_message(ask(pid, build_query("web", TYPE_A)))
    assert answer.rcode == NXDOMAIN                      # the upstream's word, not ours
    assert upstream.asked == [("udp", "web")]


def test_servfail_when_no_upstream_answers(namespaces, resolver, upstream):
    pid = namespaces()
    dead = ("127.0.0.1", 1)                              # nothing listens there
    resolver(upstreams=[upstream.silent_address, dead, upstream.address], timeout=0.3).attach("box-1", pid)
    # silent: times out; dead: refused at once; the fake one answers REFUSED: try on, then give up
    started = time.monotonic()
    answer = parse_message(ask(pid, build_query("refused.test", TYPE_A)))
    assert answer.rcode == SERVFAIL
    assert 0.3 <= time.monotonic() - started < 3
    assert upstream.asked == [("udp", "refused.test")]
    # the silent one is skipped for the next server's answer
    found = parse_message(ask(pid, build_query("example.test", TYPE_A)))
    assert [r.address for r in found.answers] == [UPSTREAM_ADDRESS]


def test_no_forwarding_for_a_container_on_internal_networks_only(namespaces, resolver, upstream):
    pid = namespaces()
    resolver().attach("box-1", pid, forward=False)
    assert parse_message(ask(pid, build_query("example.test", TYPE_A))).rcode == SERVFAIL
    assert parse_message(ask(pid, build_query("web", TYPE_A))).answers[0].address == "172.30.5.2"
    assert upstream.asked == []


def test_a_truncated_udp_answer_is_complete_over_tcp(namespaces, resolver, upstream):
    pid = namespaces()
    resolver().attach("box-1", pid)
    over_udp = parse_message(ask(pid, build_query("many", TYPE_A)))
    assert over_udp.flags & FLAG_TC and 0 < len(over_udp.answers) < 60
    over_tcp = parse_message(ask(pid, build_query("many", TYPE_A), tcp=True))
    assert not over_tcp.flags & FLAG_TC
    assert [r.address for r in over_tcp.answers] == NAMES["many"]
    forwarded = parse_message(ask(pid, build_query("example.test", TYPE_A), tcp=True))
    assert [r.address for r in forwarded.answers] == [UPSTREAM_ADDRESS]
    assert upstream.asked == [("tcp", "example.test")]   # forwarded the way it came


def test_malformed_packets_do_not_hurt_the_server(namespaces, resolver):
    pid = namespaces()
    resolver().attach("box-1", pid)
    bad = struct.pack("!HHHHHH", 0xABCD, 0x0100, 1, 0, 0, 0) + b"\x3fweb"
    error = parse_message(ask(pid, bad))
    assert (error.id, error.rcode) == (0xABCD, FORMERR)

    def send_garbage():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((dns.DNS_ADDRESS, dns.DNS_PORT))
        return sock
    with in_netns(pid, send_garbage) as sock:
        for packet in (b"", b"\x00", os.urandom(11), b"\xff" * 600, build_response(
                parse_message(build_query("web")), NOERROR, ["1.2.3.4"])):   # an answer: not answered
            sock.send(packet)
    assert parse_message(ask(pid, build_query("web"))).answers[0].address == "172.30.5.2"


def test_busybox_nslookup_inside_the_namespace(namespaces, resolver):
    pid = namespaces()
    resolver().attach("box-1", pid)
    result = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "busybox", "nslookup", "db", dns.DNS_ADDRESS],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Address: 172.30.5.3" in result.stdout
    missing = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "busybox", "nslookup", "missing.test",
                              dns.DNS_ADDRESS], capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "NXDOMAIN" in missing.stdout + missing.stderr


def bind_is_free(pid: int) -> bool:
    """Whether 127.0.0.11:53 can be bound (UDP and TCP) in the namespace of ``pid``."""
    def try_bind():
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind((dns.DNS_ADDRESS, dns.DNS_PORT))
                except OSError:
                    return False
        return True
    return in_netns(pid, try_bind)


def test_detach_closes_the_sockets_inside(namespaces, resolver):
    pid = namespaces()
    server = resolver()
    assert bind_is_free(pid)
    server.attach("box-1", pid)
    assert not bind_is_free(pid)
    server.detach("box-1")
    assert bind_is_free(pid)
    assert server.attached() == []
    with pytest.raises(OSError):                         # refused or timed out: nobody listens
        ask(pid, build_query("web"), timeout=0.5)
    server.detach("box-1")                               # twice is harmless


def test_no_resolver_in_the_daemons_own_namespace(resolver):
    with pytest.raises(ValueError):                      # --network host: the host's 127.0.0.11
        resolver().attach("box-1", os.getpid())


def test_a_container_that_dies_leaves_nothing_behind(namespaces, resolver):
    """Its namespace (with a veth in it) goes away although nobody called detach."""
    pid = namespaces()
    server = resolver()
    host_end = f"tddns{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", str(pid)],
                   check=True)
    try:
        server.attach("box-1", pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 4 * dns.CHECK_INTERVAL
        while os.path.exists(f"/sys/class/net/{host_end}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/sys/class/net/{host_end}")
        assert server.attached() == []
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)


def test_many_containers_each_get_their_own_answers(namespaces, resolver):
    server = resolver()
    pids = [namespaces() for _ in range(40)]
    started = time.monotonic()
    for number, pid in enumerate(pids):
        server.attach(f"box-{number}", pid)
    per_attach = (time.monotonic() - started) / len(pids)
    for number, pid in enumerate(pids):
        answer = parse_message(ask(pid, build_query("self")))
        assert [r.address for r in answer.answers] == [f"172.31.0.{number + 1}"]
    for number in range(len(pids)):
        server.detach(f"box-{number}")
    assert server.attached() == []
    assert per_attach < 0.05, f"attach took {per_attach * 1000:.1f} ms"


def test_close_ends_the_thread_and_closes_every_socket(namespaces, resolver):
    pid = namespaces()
    server = resolver()
    server.attach("box-1", pid)
    assert parse_message(ask(pid, build_query("example.test"))).answers   # a forwarding worker ran
    server.close()
    deadline = time.monotonic() + 5
    while any(t.name == "dns" or t.name.startswith("dns-forward") for t in threading.enumerate()):
        assert time.monotonic() < deadline, [t.name for t in threading.enumerate()]
        time.sleep(0.05)
    assert bind_is_free(pid)
    with pytest.raises(RuntimeError):
        server.attach("box-2", pid)
    server.close()                                       # twice is harmless
