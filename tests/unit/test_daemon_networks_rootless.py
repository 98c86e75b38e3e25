"""A daemon without root keeps ``none`` (and ``host``): it cannot make bridges or veths, and says so."""

from __future__ import annotations

import pytest

from teachdock.daemon.networks import NetworkManager
from teachdock.errors import InvalidConfig


def test_rootless_networks_are_none_and_host_and_the_reason_is_given(tmp_path):
    manager = NetworkManager(tmp_path, rootless=True, firewall=None)
    assert [n["Name"] for n in manager.list()] == ["none", "host"]  # no bridge was made
    assert manager.name_for_mode(None) == "none" and manager.name_for_mode("default") == "none"
    assert manager.name_for_mode("host") == "host"
    for mode in ("bridge", "mynet"):
        with pytest.raises(InvalidConfig, match="runs without root, so it cannot make bridges or veth pairs"):
            manager.name_for_mode(mode)
    with pytest.raises(InvalidConfig, match="cannot create network lab: teachdockd runs without root"):
        manager.create("lab")
    assert manager.lookup("c1", "anything") == []
