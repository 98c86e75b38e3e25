"""daemon/ports.py: Docker's port bindings read, checked with dockerd's words, held, and shown."""

import socket

import pytest

from teachdock.daemon.ports import (PortBinding, bindings_from_host_config, ports_json, ps_ports, release,
                                    reserve)
from teachdock.errors import Conflict, InvalidConfig


def test_port_bindings_as_the_docker_cli_sends_them():
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                                    "443": [{"HostIp": "", "HostPort": "0"}, {"HostIp": "", "HostPort": "8443"}]}}
    assert bindings_from_host_config(host_config, {}, False) == [
        PortBinding(80, "tcp", "", 8080), PortBinding(53, "udp", "127.0.0.1", 0),
        PortBinding(443, "tcp", "", 0), PortBinding(443, "tcp", "", 8443)]


def test_publish_all_adds_the_exposed_ports_not_bound_already():
    host_config = {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}
    exposed = {"80/tcp": {}, "9000/udp": {}, "22/tcp": {}}
    assert bindings_from_host_config(host_config, exposed, True) == [
        PortBinding(80, "tcp", "", 8080), PortBinding(22, "tcp"), PortBinding(9000, "udp")]
    assert bindings_from_host_config({}, exposed, False) == []


def test_a_host_port_range_is_a_choice_of_one():
    [binding] = bindings_from_host_config({"PortBindings": {"80/tcp": [{"HostPort": "8000-8010"}]}}, {}, False)
    assert (binding.host_port, binding.host_port_end) == (8000, 8010)


@pytest.mark.parametrize("key, host_port, message", [
    ("99999/tcp", "", 'invalid port specification: "99999"'),
    ("0/tcp", "", 'invalid port specification: "0"'),
    ("http/tcp", "", 'invalid port specification: "http"'),
    ("80/tcp", "70000", 'invalid port specification: "70000"'),
    ("80/tcp", "-1", 'invalid port specification: "-1"'),
    ("80/tcp", "90-80", 'invalid port specification: "90-80"'),
    ("80/icmp", "", "invalid proto: icmp"),
])
def test_bad_ports_get_dockerds_words(key, host_port, message):
    with pytest.raises(InvalidConfig) as caught:
        bindings_from_host_config({"PortBindings": {key: [{"HostPort": host_port}]}}, {}, False)
    assert str(caught.value) == message
    assert caught.value.status == 400


def test_a_bad_host_ip():
    with pytest.raises(InvalidConfig, match="invalid IP address: localhost"):
        bindings_from_host_config({"PortBindings": {"80/tcp": [{"HostIp": "localhost"}]}}, {}, False)


def test_reserve_picks_free_ports_and_holds_them():
    bindings = reserve([PortBinding(80, "tcp", "127.0.0.1"), PortBinding(53, "udp", "127.0.0.1")])
    try:
        assert all(b.host_port > 0 for b in bindings)
        tcp, udp = bindings
        with pytest.raises(OSError), socket.socket() as other:   # a program on the host cannot take it
            other.bind(("127.0.0.1", tcp.host_port))
        with pytest.raises(Conflict) as caught:                    # neither can another container
            reserve([PortBinding(8080, "tcp", "127.0.0.1", tcp.host_port)], name="web", container_id="abc")
        assert str(caught.value) == (f"driver failed programming external connectivity on endpoint web (abc): "
                                     f"Bind for 127.0.0.1:{tcp.host_port} failed: port is already allocated")
        assert caught.value.status == 409
    finally:
        release(bindings)
    with socket.socket() as other:                                 # released: free again
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", tcp.host_port))


def test_reserve_is_all_or_nothing():
    [held] = reserve([PortBinding(80, "tcp", "127.0.0.1")])
    try:
        with pytest.raises(Conflict):
            reserve([PortBinding(81, "udp", "127.0.0.1"), PortBinding(82, "tcp", "127.0.0.1", held.host_port)])
        # the udp port of the failed call was let go: a new reservation of "any" port works and
        # nothing but `held` is left in the table of held sockets
        from teachdock.daemon import ports
        assert list(ports._held) == [("tcp", "127.0.0.1", held.host_port)]
    finally:
        release([held])


def test_a_port_taken_by_another_program():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        with pytest.raises(Conflict, match=f"failed to bind host port for 127.0.0.1:{port}/tcp: address already in use"):
            reserve([PortBinding(80, "tcp", "127.0.0.1", port)])


def test_a_range_takes_the_first_free_port():
    [first] = reserve([PortBinding(80, "tcp", "127.0.0.1")])
    try:
        last = min(first.host_port + 50, 65535)
        [second] = reserve([PortBinding(80, "tcp", "127.0.0.1", first.host_port, last)])
        assert first.host_port < second.host_port <= last    # the first of the range is ours already
        release([second])
    finally:
        release([first])


def test_what_inspect_and_ps_show():
    bindings = [PortBinding(80, "tcp", "", 8080), PortBinding(80, "tcp", "127.0.0.1", 8081),
                PortBinding(53, "udp", "", 5353)]
    assert ports_json(bindings) == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                               {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                                    "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}]}
    assert ps_ports(bindings) == "0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp, 0.0.0.0:5353->53/udp"
    assert ps_ports([]) == ""
