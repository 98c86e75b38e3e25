"""Chapter 04's account of who enforces the device rules, for each kind of host."""

from teachdock.lab.filesystems import device_rules
from tests.support.korean import reads_korean


def test_v1_names_the_devices_files():
    sentence = device_rules.how_rules_are_enforced("v1", root=True)
    assert "cgroup v1" in sentence and "devices.deny and devices.allow" in sentence
    assert "every mknod and every open" in sentence


def test_v2_names_the_program_and_its_size():
    sentence = device_rules.how_rules_are_enforced("v2", root=True)
    assert "cgroup v2" in sentence and "eBPF program of 64 instructions" in sentence
    assert "BPF_PROG_TYPE_CGROUP_DEVICE" in sentence and "every mknod and open" in sentence


def test_without_root_the_user_namespace_is_the_answer():
    sentence = device_rules.how_rules_are_enforced("v2", root=False)
    assert "user namespace" in sentence and "refuses mknod" in sentence


def test_the_account_reads_korean(korean):
    for sentence in (device_rules.how_rules_are_enforced("v1", root=True),
                     device_rules.how_rules_are_enforced("v2", root=True),
                     device_rules.how_rules_are_enforced("v2", root=False)):
        assert reads_korean(sentence), sentence
