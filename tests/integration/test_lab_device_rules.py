"""Chapter 04: a container makes device nodes, and opening them is refused (on this v1 host by the
devices controller; tests/vm/test_devices_vm.py does the same on cgroup v2)."""

import pytest

from teachdock.lab.filesystems import device_rules

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]


def test_nodes_are_made_but_only_the_allowed_one_opens(rootfs):
    rows = device_rules.try_device_nodes(rootfs)
    assert rows == [("/dev/kmsg", "c 1 11", "made", "Operation not permitted"),
                    ("/dev/sda", "b 8 0", "made", "Operation not permitted"),
                    ("/dev/null2", "c 1 3", "made", "opened")]
