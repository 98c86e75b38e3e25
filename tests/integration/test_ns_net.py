"""Network namespace: a new one holds only the loopback interface, and it is up."""

import os

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

NO_NETWORK_NAMESPACE = ("pid", "mount", "uts", "ipc")


def interfaces_in_proc_net_dev(text: str) -> list[str]:
    return sorted(line.split(":")[0].strip() for line in text.splitlines()[2:])


def test_only_lo_in_a_new_network_namespace(box):
    result = box("ls /sys/class/net; echo --; cat /proc/net/dev")
    assert result.exit_code == 0, result.stderr
    sys_listing, proc_net_dev = result.stdout.split("--\n")
    assert sys_listing.split() == ["lo"]
    assert interfaces_in_proc_net_dev(proc_net_dev) == ["lo"]
    assert len(os.listdir("/sys/class/net")) > 1  # the host has more than that


def test_lo_is_up_and_answers(box):
    result = box("cat /sys/class/net/lo/flags; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok")
    assert result.exit_code == 0, result.stderr
    flags, answer = result.stdout.split()
    assert int(flags, 16) & 0x1  # IFF_UP
    assert answer == "ping-ok"


def test_no_route_to_anywhere_else(box):
    result = box("ip route; ping -c 1 -W 1 192.0.2.1; echo exit=$?")
    assert result.stdout.splitlines()[-1] == "exit=1"  # `ip route` printed no route at all
    assert result.stdout.splitlines()[0].startswith("PING 192.0.2.1")
    assert result.stderr == "ping: sendto: Network is unreachable\n"


def test_without_a_network_namespace_the_host_interfaces_are_visible(box):
    result = box("ls /sys/class/net", namespaces=NO_NETWORK_NAMESPACE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == sorted(os.listdir("/sys/class/net"))


def test_the_namespace_differs_from_the_hosts(running, finish):
    with running("echo ready; read x; echo bye") as container:
        assert os.readlink(f"/proc/{container.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert finish(container) == (0, "bye\n")
