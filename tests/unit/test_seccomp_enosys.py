"""runc's ENOSYS prologue, run on a small classic-BPF interpreter: numbers above the largest one the
profile names get ENOSYS, the rest reach libseccomp's program, per architecture and x86 ABI."""

import errno
import struct

import pytest

from teachdock.runtime import seccomp_enosys as enosys

AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64 = 0x40000003, 0xC00000B7
X32 = enosys.X32_SYSCALL_BIT
NUMBERS = {  # (token, name) -> number, as libseccomp would resolve them
    (enosys.AUDIT_ARCH_X86_64, "read"): 0, (enosys.AUDIT_ARCH_X86_64, "clone3"): 435,
    (AUDIT_ARCH_I386, "read"): 3, (AUDIT_ARCH_I386, "clone3"): 435, (AUDIT_ARCH_I386, "socketcall"): 102,
    (enosys.SCMP_ARCH_X32, "read"): X32, (enosys.SCMP_ARCH_X32, "clone3"): X32 + 435,
    (enosys.AUDIT_ARCH_S390X, "clone3"): 435,
}
FILTER = "libseccomp's program"


def resolve(token, name):
    return NUMBERS.get((token, name), -10000)


def run(program: bytes, nr: int, arch: int):
    """Execute the prologue on seccomp_data {nr, arch}; FILTER when it falls through to its end."""
    data = struct.pack("=iI", nr, arch)
    instructions = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, accumulator = 0, 0
    while pc < len(instructions):
        code, jt, jf, k = instructions[pc]
        pc += 1
        if code == enosys.LD_W_ABS:
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == enosys.JA:
            pc += k
        elif code == enosys.RET_K:
            return k
        else:
            taken = {enosys.JEQ_K: accumulator == k, enosys.JGT_K: accumulator > k,
                     enosys.JSET_K: bool(accumulator & k)}[code]
            pc += jt if taken else jf
    assert pc == len(instructions), "a jump went past the end"
    return FILTER


DOCKERISH = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
             "syscalls": [{"names": ["read", "clone3", "socketcall", "made_up_2099"], "action": "SCMP_ACT_ALLOW"}]}
ENOSYS = enosys.RET_ERRNO_ENOSYS


def test_the_largest_number_per_architecture_and_abi():
    tokens = [enosys.AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, enosys.SCMP_ARCH_X32]
    assert enosys.largest_syscalls(["read", "clone3", "socketcall", "made_up_2099"], tokens, resolve) == {
        enosys.AUDIT_ARCH_X86_64: {"native": 435, "x32": X32 + 435}, AUDIT_ARCH_I386: {"native": 435}}


@pytest.mark.parametrize("nr, arch, expected", [
    (0, enosys.AUDIT_ARCH_X86_64, FILTER), (435, enosys.AUDIT_ARCH_X86_64, FILTER),
    (436, enosys.AUDIT_ARCH_X86_64, ENOSYS), (1000, enosys.AUDIT_ARCH_X86_64, ENOSYS),
    (-1, enosys.AUDIT_ARCH_X86_64, ENOSYS),  # compared unsigned (as runc): bit 30 set, above x32's largest
    (X32 + 435, enosys.AUDIT_ARCH_X86_64, FILTER), (X32 + 436, enosys.AUDIT_ARCH_X86_64, ENOSYS),
    (435, AUDIT_ARCH_I386, FILTER), (440, AUDIT_ARCH_I386, ENOSYS),
    (1000, AUDIT_ARCH_AARCH64, FILTER),  # not in the filter: libseccomp's bad-architecture action
])
def test_numbers_above_the_largest_get_enosys(nr, arch, expected):
    program = enosys.prologue(DOCKERISH, [enosys.AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, enosys.SCMP_ARCH_X32], resolve)
    assert run(program, nr, arch) == expected


def test_without_x32_in_the_filter_x32_calls_go_to_libseccomp():
    program = enosys.prologue(DOCKERISH, [enosys.AUDIT_ARCH_X86_64], resolve)
    assert run(program, X32 + 1000, enosys.AUDIT_ARCH_X86_64) == FILTER
    assert run(program, 1000, enosys.AUDIT_ARCH_X86_64) == ENOSYS


def test_s390x_answers_enosys_for_its_multiplexing_number_zero():
    program = enosys.prologue(DOCKERISH, [enosys.AUDIT_ARCH_S390X], resolve)
    assert run(program, 0, enosys.AUDIT_ARCH_S390X) == ENOSYS
    assert run(program, 435, enosys.AUDIT_ARCH_S390X) == FILTER


@pytest.mark.parametrize("profile", [
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": DOCKERISH["syscalls"]},
    {"defaultAction": "SCMP_ACT_LOG", "syscalls": DOCKERISH["syscalls"]},
    {"defaultAction": "SCMP_ACT_TRACE", "syscalls": DOCKERISH["syscalls"]},
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS, "syscalls": DOCKERISH["syscalls"]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []},
])
def test_no_prologue_when_the_default_lets_calls_through_or_is_enosys_already(profile):
    assert enosys.prologue(profile, [enosys.AUDIT_ARCH_X86_64], resolve) == b""


def test_assemble_resolves_forward_labels_and_refuses_a_backward_jump():
    assert enosys.assemble([(enosys.JA, 0, 0, "end"), (enosys.RET_K, 0, 0, 0), "end"]) == \
        struct.pack("=HBBI", enosys.JA, 0, 0, 1) + struct.pack("=HBBI", enosys.RET_K, 0, 0, 0)
    with pytest.raises(ValueError, match="jump to start"):
        enosys.assemble(["start", (enosys.JEQ_K, "start", 0, 1)])
