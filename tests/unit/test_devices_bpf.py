"""cgroup v2 device rules: the eBPF program made from OCI rules (pure Python, no root).

The listing below was checked by hand against the rules, block by block (each jump lands on
the first instruction of the next block), and against the program runc's devicefilter.go
makes for the same list (runc's test "BuiltInAllowList" has the same blocks in the same order,
plus one for 10:200, which Docker's current list no longer has).
"""

from __future__ import annotations

import struct

import pytest

from teachdock.errors import ContainerStartError, InvalidConfig
from teachdock.runtime import container as runtime_container
from teachdock.runtime.cgroups import DeviceFilterError, Resources, devices_bpf
from teachdock.runtime.cgroups.devices_bpf import (BPF_DEVCG_ACC_MKNOD, BPF_DEVCG_ACC_READ, BPF_DEVCG_ACC_WRITE,
                                                   BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, device_filter,
                                                   effective_rules, listing, may_make_device_nodes, needs_program)
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES

DOCKER_DEFAULT_LISTING = """\
0: (61) r2 = *(u32 *)(r1 +0)
1: (54) w2 &= 65535
2: (61) r3 = *(u32 *)(r1 +0)
3: (74) w3 >>= 16
4: (61) r4 = *(u32 *)(r1 +4)
5: (61) r5 = *(u32 *)(r1 +8)
6: (55) if r2 != 0x1 goto pc+5
7: (bc) w1 = w3
8: (54) w1 &= 1
9: (5d) if r1 != r3 goto pc+2
10: (b4) w0 = 1
11: (95) exit
12: (55) if r2 != 0x2 goto pc+5
13: (bc) w1 = w3
14: (54) w1 &= 1
15: (5d) if r1 != r3 goto pc+2
16: (b4) w0 = 1
17: (95) exit
18: (55) if r2 != 0x2 goto pc+4
19: (55) if r4 != 0x1 goto pc+3
20: (55) if r5 != 0x3 goto pc+2
21: (b4) w0 = 1
22: (95) exit
23: (55) if r2 != 0x2 goto pc+4
24: (55) if r4 != 0x1 goto pc+3
25: (55) if r5 != 0x5 goto pc+2
26: (b4) w0 = 1
27: (95) exit
28: (55) if r2 != 0x2 goto pc+4
29: (55) if r4 != 0x1 goto pc+3
30: (55) if r5 != 0x7 goto pc+2
31: (b4) w0 = 1
32: (95) exit
33: (55) if r2 != 0x2 goto pc+4
34: (55) if r4 != 0x1 goto pc+3
35: (55) if r5 != 0x8 goto pc+2
36: (b4) w0 = 1
37: (95) exit
38: (55) if r2 != 0x2 goto pc+4
39: (55) if r4 != 0x1 goto pc+3
40: (55) if r5 != 0x9 goto pc+2
41: (b4) w0 = 1
42: (95) exit
43: (55) if r2 != 0x2 goto pc+4
44: (55) if r4 != 0x5 goto pc+3
45: (55) if r5 != 0x0 goto pc+2
46: (b4) w0 = 1
47: (95) exit
48: (55) if r2 != 0x2 goto pc+4
49: (55) if r4 != 0x5 goto pc+3
50: (55) if r5 != 0x1 goto pc+2
51: (b4) w0 = 1
52: (95) exit
53: (55) if r2 != 0x2 goto pc+4
54: (55) if r4 != 0x5 goto pc+3
55: (55) if r5 != 0x2 goto pc+2
56: (b4) w0 = 1
57: (95) exit
58: (55) if r2 != 0x2 goto pc+3
59: (55) if r4 != 0x88 goto pc+2
60: (b4) w0 = 1
61: (95) exit
62: (b4) w0 = 0
63: (95) exit"""

ACCESS = {"r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE, "m": BPF_DEVCG_ACC_MKNOD}
TYPE = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}


def run(program, kind: str, major: int, minor: int, access: str) -> int:
    """Run the program on one request, from its bytes, as the kernel would (only the opcodes
    a device filter uses): returns r0, 1 allow, 0 deny."""
    code = b"".join(instruction.encode() for instruction in program)
    context = struct.pack("<III", TYPE[kind] | sum(ACCESS[c] for c in access) << 16, major, minor)
    registers: list = [0] * 11
    registers[1] = "context"  # r1 points at struct bpf_cgroup_dev_ctx when the program starts
    pc = 0
    while True:
        op, regs, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regs & 0xF, regs >> 4
        pc += 1
        if op == 0x61:
            assert registers[src] == "context"
            registers[dst] = struct.unpack_from("<I", context, off)[0]
        elif op == 0x54:
            registers[dst] &= imm
        elif op == 0x74:
            registers[dst] >>= imm
        elif op == 0xB4:
            registers[dst] = imm
        elif op == 0xBC:
            registers[dst] = registers[src]
        elif op == 0x55:
            pc += off if registers[dst] != imm else 0
        elif op == 0x5D:
            pc += off if registers[dst] != registers[src] else 0
        elif op == 0x95:
            return registers[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


def test_docker_default_list_gives_the_hand_checked_program():
    assert listing(device_filter(DEFAULT_DEVICE_RULES)) == DOCKER_DEFAULT_LISTING


def test_instructions_are_packed_as_struct_bpf_insn():
    program = device_filter(DEFAULT_DEVICE_RULES)
    assert program[0].encode() == bytes([0x61, 0x12, 0, 0, 0, 0, 0, 0])  # dst r2, src r1 in one byte
    assert program[6].encode() == bytes([0x55, 0x02, 5, 0, 1, 0, 0, 0])  # off 5, imm 1, little-endian
    assert program[9].encode() == bytes([0x5D, 0x31, 2, 0, 0, 0, 0, 0])
    assert program[-1].encode() == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("kind, major, minor, access, allowed", [
    ("c", 1, 1, "m", 1),      # mknod of /dev/mem: the "c *:* m" rule
    ("c", 1, 1, "r", 0),      # ... but not opening it
    ("c", 1, 1, "rw", 0),
    ("b", 8, 0, "m", 1),      # a node for the host's disk may be made
    ("b", 8, 0, "r", 0),      # ... and never opened
    ("c", 1, 3, "rw", 1),     # /dev/null
    ("c", 1, 9, "r", 1),      # /dev/urandom
    ("c", 5, 2, "rw", 1),     # /dev/ptmx
    ("c", 136, 7, "rw", 1),   # a pty: any minor
    ("c", 10, 200, "rw", 0),  # /dev/net/tun is not in the list
    ("c", 3, 1, "r", 0),      # the same minor as /dev/null under another major
])
def test_docker_default_list_decides_as_the_v1_controller(kind, major, minor, access, allowed):
    assert run(device_filter(DEFAULT_DEVICE_RULES), kind, major, minor, access) == allowed


def test_no_rules_allow_everything_and_need_no_program():
    assert not needs_program(None)
    assert not needs_program([])
    assert not needs_program([{"allow": True, "access": "rwm"}])
    assert needs_program(DEFAULT_DEVICE_RULES)
    assert run(device_filter([]), "b", 8, 0, "rw") == 1


def test_later_rules_win_and_access_adds_up_as_on_v1():
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "w"},
             {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]
    assert effective_rules(rules) == (False, [("c", 1, 3, "rw", True), ("c", 1, 5, "rm", True)])
    program = device_filter(rules)
    assert run(program, "c", 1, 3, "rw") == 1  # an O_RDWR open asks for both at once
    assert run(program, "c", 1, 3, "m") == 0
    assert run(program, "c", 1, 5, "w") == 0
    assert run(program, "c", 1, 5, "r") == 1


def test_an_a_rule_resets_everything_before_it():
    rules = [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": True, "type": "a", "access": "rwm"},
             {"allow": False, "type": "b", "major": 8, "minor": None, "access": "rw"}]
    default_allow, exceptions = effective_rules(rules)
    assert default_allow is True and exceptions == [("b", 8, -1, "rw", False)]
    program = device_filter(rules)
    assert run(program, "b", 8, 1, "r") == 0
    assert run(program, "b", 8, 1, "m") == 1
    assert run(program, "c", 1, 1, "rw") == 1


def test_a_rule_that_cuts_a_hole_in_a_wildcard_is_refused():
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "access": "rw"},
             {"allow": False, "type": "c", "major": 1, "minor": 1, "access": "r"}]
    with pytest.raises(InvalidConfig, match=r"devices\[2\].*wider rule c 1:\* rw"):
        device_filter(rules)


def test_only_a_container_with_cap_mknod_in_the_host_user_namespace_can_make_device_nodes():
    config = {"process": {"capabilities": {"bounding": list(DEFAULT_CAPABILITIES)}},
              "linux": {"namespaces": [{"type": "mount"}]}}
    assert may_make_device_nodes(config, host_user_namespace=True)
    assert not may_make_device_nodes(config, host_user_namespace=False)
    with_userns = {**config, "linux": {"namespaces": [{"type": "user"}]}}
    assert not may_make_device_nodes(with_userns, host_user_namespace=True)
    without = {**config, "process": {"capabilities": {
        "bounding": [c for c in DEFAULT_CAPABILITIES if c != "CAP_MKNOD"]}}}
    assert not may_make_device_nodes(without, host_user_namespace=True)
    in_ambient_only = {**config, "process": {"capabilities": {"ambient": ["CAP_MKNOD"]}}}
    assert may_make_device_nodes(in_ambient_only, host_user_namespace=True)


class UnenforceableCgroup:
    """A v2 cgroup on which the device program cannot be loaded."""

    def apply(self, resources):
        raise DeviceFilterError("bpf(BPF_PROG_LOAD) was refused (EPERM): loading a BPF program needs CAP_BPF")


def test_unenforceable_rules_refuse_a_container_with_cap_mknod(monkeypatch):
    monkeypatch.setattr(devices_bpf, "in_host_user_namespace", lambda: True)
    config = {"process": {"capabilities": {"bounding": ["CAP_MKNOD"], "effective": ["CAP_MKNOD"]}},
              "linux": {"namespaces": [{"type": "pid"}]}}
    resources = Resources(devices=list(DEFAULT_DEVICE_RULES))
    with pytest.raises(ContainerStartError, match=r"cannot enforce device rules.*EPERM.*Refusing.*CAP_MKNOD"):
        runtime_container.apply_resources(UnenforceableCgroup(), resources, config)
    config["process"]["capabilities"] = {"bounding": ["CAP_KILL"]}
    runtime_container.apply_resources(UnenforceableCgroup(), resources, config)  # cannot mknod: goes on
