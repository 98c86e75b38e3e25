"""Capabilities and no_new_privs: a container's root gets Docker's 14 default capabilities, not all of them."""

import pytest

from teachdock import kernel
from teachdock.runtime.spec import DEFAULT_CAPABILITIES

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

DEFAULT_MASK = 0xA80425FB  # Docker's default set, as /proc/<pid>/status prints it


def status_fields(text: str) -> dict[str, str]:
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def test_the_default_mask_is_dockers_14_capabilities():
    assert kernel.capability_bits(DEFAULT_CAPABILITIES) == DEFAULT_MASK
    assert len(DEFAULT_CAPABILITIES) == 14


def test_root_inside_has_exactly_the_default_capabilities(box):
    result = box("grep -E '^Cap' /proc/self/status")
    fields = status_fields(result.stdout)
    for name in ("CapBnd", "CapEff", "CapPrm"):
        assert int(fields[name], 16) == DEFAULT_MASK, name
    assert int(fields["CapInh"], 16) == 0
    assert int(fields["CapAmb"], 16) == 0


def test_without_cap_sys_admin_mount_fails(box):
    result = box("mount -t tmpfs x /mnt; echo exit=$?")
    assert result.stdout == "exit=1\n"
    assert result.stderr == "mount: permission denied (are you root?)\n"


def test_with_cap_sys_admin_mount_works(box):
    """The control: the same mount succeeds once CAP_SYS_ADMIN is granted."""
    result = box("mount -t tmpfs x /mnt && grep -c ' /mnt ' /proc/self/mountinfo",
                 capabilities=DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "1\n", "")


def test_without_cap_net_admin_the_network_cannot_be_changed(box):
    """CAP_NET_ADMIN is not in the default set: even root in the container cannot take lo down."""
    result = box("ip link set lo down; echo exit=$?; cat /sys/class/net/lo/flags")
    assert result.stdout.splitlines() == ["exit=2", "0x9"]  # 0x9: IFF_UP | IFF_LOOPBACK, unchanged
    assert result.stderr == "ip: SIOCSIFFLAGS: Operation not permitted\n"


def test_with_cap_net_admin_the_network_can_be_changed(box):
    """The control: granted CAP_NET_ADMIN, the same command takes lo down (in the container's own namespace)."""
    result = box("ip link set lo down; echo exit=$?; cat /sys/class/net/lo/flags", capabilities=["CAP_NET_ADMIN"])
    assert result.stdout.splitlines() == ["exit=0", "0x8"]


def test_an_empty_capability_list_leaves_root_powerless(box):
    result = box("grep -E '^CapEff' /proc/self/status; chown 1 /tmp; echo exit=$?", capabilities=[])
    lines = result.stdout.splitlines()
    assert int(lines[0].split()[1], 16) == 0
    assert lines[1] == "exit=1"


def test_no_new_privs_is_set_by_default(box):
    result = box("grep NoNewPrivs /proc/self/status")
    assert result.stdout.split() == ["NoNewPrivs:", "1"]


def test_no_new_privs_can_be_turned_off(box):
    result = box("grep NoNewPrivs /proc/self/status", no_new_privileges=False)
    assert result.stdout.split() == ["NoNewPrivs:", "0"]


def test_a_non_root_user_has_no_effective_capabilities(box):
    result = box("id -u; grep -E '^CapEff' /proc/self/status; chown 1 /tmp; echo exit=$?", user="1000:1000")
    lines = result.stdout.splitlines()
    assert lines[0] == "1000"
    assert lines[2] == "exit=1"
    assert int(lines[1].split()[1], 16) == 0, "a non-root user should not hold capabilities (as with Docker)"
