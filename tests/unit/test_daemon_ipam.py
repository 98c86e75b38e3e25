"""IPAM without a kernel: subnets from the pool, gateways, --ip-range, --ip, leases on disk, MACs."""

from __future__ import annotations

import ipaddress

import pytest

from teachdock.daemon import ipam
from teachdock.errors import Conflict, InvalidConfig

net = ipaddress.ip_network


def test_subnets_come_from_the_pool_skipping_taken_and_the_first():
    assert ipam.pick_subnet(None, []) == net("172.30.1.0/24")
    assert ipam.pick_subnet(None, [net("172.30.1.0/24"), net("172.30.2.0/25")]) == net("172.30.3.0/24")
    # an interface of the host on 172.30.1.0/16 covers the whole pool
    with pytest.raises(Conflict, match="non-overlapping"):
        ipam.pick_subnet(None, [net("172.30.0.0/16")])


def test_a_wanted_subnet_is_checked_as_dockerd_checks_it():
    assert ipam.pick_subnet("10.9.0.0/16", [net("172.30.1.0/24")]) == net("10.9.0.0/16")
    assert ipam.pick_subnet("10.9.0.5/24", []) == net("10.9.0.0/24")  # host bits dropped
    with pytest.raises(Conflict, match="^Pool overlaps with other one on this address space$"):
        ipam.pick_subnet("172.30.1.128/25", [net("172.30.1.0/24")])
    for bad in ("300.1.1.0/24", "10.0.0.0/33", "nonsense"):
        with pytest.raises(InvalidConfig, match=f"^Invalid subnet {bad} : invalid CIDR address: {bad}$"):
            ipam.pick_subnet(bad, [])
    with pytest.raises(InvalidConfig, match="IPv4 only"):
        ipam.pick_subnet("fd00::/64", [])
    with pytest.raises(InvalidConfig, match="/30"):
        ipam.pick_subnet("10.0.0.0/31", [])


def test_gateway_and_ip_range():
    subnet = net("10.1.0.0/24")
    assert str(ipam.pick_gateway(subnet, None)) == "10.1.0.1"
    assert str(ipam.pick_gateway(subnet, "10.1.0.254")) == "10.1.0.254"
    with pytest.raises(InvalidConfig, match="no matching subnet for gateway 10.2.0.1"):
        ipam.pick_gateway(subnet, "10.2.0.1")
    with pytest.raises(InvalidConfig, match="invalid gateway"):
        ipam.pick_gateway(subnet, "x")
    assert ipam.check_ip_range(subnet, None) is None
    assert ipam.check_ip_range(subnet, "10.1.0.128/25") == "10.1.0.128/25"
    with pytest.raises(InvalidConfig, match="no matching subnet for range"):
        ipam.check_ip_range(subnet, "10.1.1.0/25")


def test_next_address_skips_gateway_used_and_respects_range_and_wanted():
    subnet = "10.1.0.0/29"  # hosts .1-.6
    assert str(ipam.next_address(subnet, "10.1.0.1", [])) == "10.1.0.2"
    assert str(ipam.next_address(subnet, "10.1.0.1", ["10.1.0.2", "10.1.0.3"])) == "10.1.0.4"
    assert str(ipam.next_address(subnet, "10.1.0.3", ["10.1.0.1", "10.1.0.2"])) == "10.1.0.4"
    assert str(ipam.next_address("10.1.0.0/24", "10.1.0.1", [], ip_range="10.1.0.128/25")) == "10.1.0.129"
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ipam.next_address(subnet, "10.1.0.1", [f"10.1.0.{n}" for n in range(2, 7)])
    assert str(ipam.next_address(subnet, "10.1.0.1", [], wanted="10.1.0.5")) == "10.1.0.5"
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.next_address(subnet, "10.1.0.1", ["10.1.0.5"], wanted="10.1.0.5")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.next_address(subnet, "10.1.0.1", [], wanted="10.1.0.1")
    with pytest.raises(InvalidConfig, match="no configured subnet or ip-range contain the IP address 10.9.0.5"):
        ipam.next_address(subnet, "10.1.0.1", [], wanted="10.9.0.5")
    with pytest.raises(InvalidConfig, match="no configured subnet"):
        ipam.next_address(subnet, "10.1.0.1", [], wanted="10.1.0.7")  # the broadcast address


def test_mac_is_dockers():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert ipam.mac_for("172.30.1.255") == "02:42:ac:1e:01:ff"


def test_leases_persist_are_kept_by_their_holder_and_freed(tmp_path):
    leases = ipam.Leases(tmp_path / "leases")
    first = leases.take("net1", "c1", "10.1.0.0/24", "10.1.0.1")
    second = leases.take("net1", "c2", "10.1.0.0/24", "10.1.0.1")
    assert (first, second) == ("10.1.0.2", "10.1.0.3")
    again = ipam.Leases(tmp_path / "leases")  # a daemon started again reads them back
    assert again.of("net1") == {"c1": "10.1.0.2", "c2": "10.1.0.3"}
    assert again.take("net1", "c1", "10.1.0.0/24", "10.1.0.1") == "10.1.0.2"  # a restart keeps its address
    assert again.take("net1", "c1", "10.1.0.0/24", "10.1.0.1", wanted="10.1.0.9") == "10.1.0.9"  # asks anew
    again.release_container("c1")
    assert again.of("net1") == {"c2": "10.1.0.3"}
    assert again.take("net1", "c3", "10.1.0.0/24", "10.1.0.1") == "10.1.0.2"  # freed, so given again
    again.take("net2", "c2", "10.2.0.0/24", "10.2.0.1")
    again.take("gone", "c2", "10.3.0.0/24", "10.3.0.1")
    again.sweep({"net1", "net2"}, {"c3"})  # after a restart: net "gone" and container c2 are no more
    assert again.of("net1") == {"c3": "10.1.0.2"} and again.of("net2") == {} and again.of("gone") == {}
    assert sorted(p.name for p in (tmp_path / "leases").iterdir()) == ["net1.json"]
    again.forget_network("net1")
    assert list((tmp_path / "leases").iterdir()) == []
