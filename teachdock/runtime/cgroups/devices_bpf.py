"""Device rules on cgroup v2: a small eBPF program, assembled here and attached to the cgroup.

cgroup v1 has a ``devices`` controller that reads rules such as ``c 1:3 rwm`` from
``devices.allow``/``devices.deny``. cgroup v2 has no such files: the kernel asks a
``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached to the cgroup instead, once for every
``mknod(2)`` and every ``open(2)`` of a device node by a process in it. The program gets a
``struct bpf_cgroup_dev_ctx`` (``access_type``: the device type in the low 16 bits, the
access asked for in the high 16; ``major``; ``minor``) and returns 1 (allow) or 0 (the
caller gets ``EPERM``).

How the program is made (the way runc's ``devices/devicefilter.go`` does it, which follows
crun's ``ebpf.c`` and systemd):

1. The OCI rules are played through the v1 controller's logic (``effective_rules``), so the
   same ``linux.resources.devices`` means the same on both cgroup versions: rules apply in
   order; a rule of type ``a`` resets everything to "allow all" or "deny all"; later rules
   add or take away access for one type/major/minor; the result is a default and a list of
   exceptions, sorted by (major, minor, type).
2. The program loads the context into registers r2 (type), r3 (access), r4 (major) and
   r5 (minor), then tests one exception per block — type, then access (skipped for
   ``rwm``), then major and minor (skipped for "any") — and returns the exception's answer
   on a match; after the last block it returns the default.
3. ``bpf(BPF_PROG_LOAD)`` hands it to the verifier (licence "Apache", runc's; crun says
   "GPL"), ``bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)`` attaches it to
   the cgroup's directory fd. Then both fds are closed: the cgroup holds the program, and
   removing the cgroup frees it. Nothing needs detaching at delete.

``listing(program)`` prints the instructions the way the kernel's verifier log does
(``(61) r2 = *(u32 *)(r1 +0)``), so a learner can read what the kernel runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from teachdock import kernel
from teachdock.errors import CgroupError, InvalidConfig, KernelError

# --- the kernel's numbers (include/uapi/linux/bpf.h) -----------------------------------------
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # the attach type
BPF_F_ALLOW_MULTI = 2  # other programs may sit on the same cgroup; every one must say yes

BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2

ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
TYPE_BITS = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
LICENSE = b"Apache"  # what runc passes; the kernel only asks it for GPL-only helpers, used not here
PROGRAM_NAME = b"td_devices"  # shown by `bpftool prog`
ANY = -1  # a major or minor number that matches every number

# Instruction classes and operations (include/uapi/linux/bpf_common.h, bpf.h).
_LDX_MEM_W = 0x61   # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54  # dst &= imm (32 bit)
_ALU32_RSH_K = 0x74  # dst >>= imm (32 bit)
_ALU32_MOV_K = 0xB4  # dst = imm (32 bit)
_ALU32_MOV_X = 0xBC  # dst = src (32 bit)
_JMP_JNE_K = 0x55    # if dst != imm: skip off instructions
_JMP_JNE_X = 0x5D    # if dst != src: skip off instructions
_JMP_EXIT = 0x95     # return r0


class Instruction:
    """One eBPF instruction: ``struct bpf_insn`` {u8 code; u8 dst:4, src:4; s16 off; s32 imm}."""

    __slots__ = ("code", "dst", "src", "off", "imm")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0):
        self.code, self.dst, self.src, self.off, self.imm = code, dst, src, off, imm

    def encode(self) -> bytes:
        return struct.pack("<BBhi", self.code, self.dst | self.src << 4, self.off, self.imm)

    def __eq__(self, other) -> bool:
        return type(other) is Instruction and self.encode() == other.encode()

    def __repr__(self) -> str:
        return f"Instruction({self})"

    def __str__(self) -> str:
        """The verifier log's form of this instruction (kernel/bpf/disasm.c)."""
        d, s, off, imm = self.dst, self.src, self.off, self.imm
        text = {
            _LDX_MEM_W: f"r{d} = *(u32 *)(r{s} {off:+d})",
            _ALU32_AND_K: f"w{d} &= {imm}",
            _ALU32_RSH_K: f"w{d} >>= {imm}",
            _ALU32_MOV_K: f"w{d} = {imm}",
            _ALU32_MOV_X: f"w{d} = w{s}",
            _JMP_JNE_K: f"if r{d} != {imm:#x} goto pc{off:+d}",
            _JMP_JNE_X: f"if r{d} != r{s} goto pc{off:+d}",
            _JMP_EXIT: "exit",
        }[self.code]
        return f"({self.code:02x}) {text}"


def listing(program: list[Instruction]) -> str:
    """The program, one numbered instruction a line, as the verifier log prints it."""
    return "\n".join(f"{index}: {instruction}" for index, instruction in enumerate(program))


# --- 1. the rules, as the v1 controller would hold them -------------------------------------
def _key(rule: dict) -> tuple[str, int, int]:
    numbers = [rule.get(name) for name in ("major", "minor")]
    return (rule.get("type", "a"), *(ANY if n is None or n < 0 else n for n in numbers))


def effective_rules(rules: list[dict]) -> tuple[bool, list[tuple[str, int, int, str, bool]]]:
    """Play OCI device rules (checked by ``Resources``) through cgroup v1's logic.

    Returns (allow by default?, exceptions), each exception (type, major, minor, access,
    allow) with ``allow`` the opposite of the default, sorted by (major, minor, type) as runc
    sorts them. Like a fresh v1 cgroup, the start is "allow all". A rule that would cut
    part of a wildcard exception (deny ``c 1:3 r`` after allowing ``c *:* r``) is refused:
    v1 would ignore it silently, and a silent gap is what device rules exist to avoid.
    """
    default_allow = True
    exceptions: dict[tuple[str, int, int], set[str]] = {}
    for index, rule in enumerate(rules):
        kind, major, minor = key = _key(rule)
        access = set(rule.get("access", "rwm"))
        if kind == "a":  # "a" means every device, whatever numbers follow (as in the kernel)
            default_allow, exceptions = rule["allow"], {}
        elif rule["allow"] != default_allow:  # an exception to the default: add access
            exceptions[key] = exceptions.get(key, set()) | access
        else:  # back to the default for this device: take access away
            for wider in ((kind, ANY, minor), (kind, major, ANY), (kind, ANY, ANY)):
                if wider != key and exceptions.get(wider, set()) & access:
                    raise InvalidConfig(
                        f"linux.resources.devices[{index}] = {rule!r} cuts a hole in the wider rule "
                        f"{_rule_text(wider, exceptions[wider])}; the devices controller cannot "
                        "do that (cgroup v1 would silently ignore it): list the devices one by one")
            left = exceptions.get(key, set()) - access
            if left:
                exceptions[key] = left
            else:
                exceptions.pop(key, None)
    ordered = sorted(exceptions.items(), key=lambda item: (item[0][1], item[0][2], item[0][0]))
    return default_allow, [(k, ma, mi, "".join(c for c in "rwm" if c in access), not default_allow)
                           for (k, ma, mi), access in ordered]


def _rule_text(key: tuple[str, int, int], access) -> str:
    kind, major, minor = key
    number = lambda n: "*" if n == ANY else str(n)  # noqa: E731
    return f"{kind} {number(major)}:{number(minor)} {''.join(c for c in 'rwm' if c in access)}"


def needs_program(rules: list[dict] | None) -> bool:
    """False when the rules leave every device open (nothing to enforce), True otherwise."""
    if rules is None:
        return False
    default_allow, exceptions = effective_rules(rules)
    return not (default_allow and not exceptions)


# --- 2. the program ----------------------------------------------------------------------------
def device_filter(rules: list[dict]) -> list[Instruction]:
    """The eBPF program that enforces OCI device ``rules`` (see the module's docstring)."""
    default_allow, exceptions = effective_rules(rules)
    program = [
        Instruction(_LDX_MEM_W, dst=2, src=1, off=0),     # r2 = access_type
        Instruction(_ALU32_AND_K, dst=2, imm=0xFFFF),     # r2 = device type (low 16 bits)
        Instruction(_LDX_MEM_W, dst=3, src=1, off=0),     # r3 = access_type
        Instruction(_ALU32_RSH_K, dst=3, imm=16),         # r3 = access asked for (high 16 bits)
        Instruction(_LDX_MEM_W, dst=4, src=1, off=4),     # r4 = major
        Instruction(_LDX_MEM_W, dst=5, src=1, off=8),     # r5 = minor
    ]
    for kind, major, minor, access, allow in exceptions:
        program += _block(kind, major, minor, access, allow)
    program += [Instruction(_ALU32_MOV_K, dst=0, imm=int(default_allow)), Instruction(_JMP_EXIT)]
    return program


def _block(kind: str, major: int, minor: int, access: str, allow: bool) -> list[Instruction]:
    """Tests for one exception; each failed test jumps to the next block (past the return)."""
    access_bits = sum(ACCESS_BITS[c] for c in access)
    tests = [("type", TYPE_BITS[kind])]  # ("type"|"access"|"major"|"minor", value)
    if access_bits != sum(ACCESS_BITS.values()):
        tests.append(("access", access_bits))
    if major != ANY:
        tests.append(("major", major))
    if minor != ANY:
        tests.append(("minor", minor))
    body: list[tuple[Instruction, bool]] = []  # (instruction, jumps to the next block?)
    for test, value in tests:
        if test == "access":  # the access asked for must lie within the rule's: r3 & bits == r3
            body += [(Instruction(_ALU32_MOV_X, dst=1, src=3), False),
                     (Instruction(_ALU32_AND_K, dst=1, imm=value), False),
                     (Instruction(_JMP_JNE_X, dst=1, src=3), True)]
        else:
            body.append((Instruction(_JMP_JNE_K, dst={"type": 2, "major": 4, "minor": 5}[test], imm=value), True))
    body += [(Instruction(_ALU32_MOV_K, dst=0, imm=int(allow)), False), (Instruction(_JMP_EXIT), False)]
    for index, (instruction, jumps) in enumerate(body):
        if jumps:  # offsets count from the instruction after the jump
            instruction.off = len(body) - index - 1
    return [instruction for instruction, _ in body]


# --- 3. into the kernel --------------------------------------------------------------------------
class DeviceFilterError(CgroupError):
    """The device program could not be loaded or attached; ``reason`` says why in the kernel's words."""

    def __init__(self, reason: str):
        super().__init__(f"cannot enforce device rules on cgroup v2: {reason}")
        self.reason = reason


def _attr(fmt: str, *values) -> ctypes.Array:
    return ctypes.create_string_buffer(struct.pack(fmt, *values), struct.calcsize(fmt))


def load(program: list[Instruction]) -> int:
    """bpf(BPF_PROG_LOAD): the verifier checks the program; returns its fd. On refusal, asks
    again with the verifier's log switched on, and puts the log into the error."""
    code = ctypes.create_string_buffer(b"".join(i.encode() for i in program))
    license_ = ctypes.create_string_buffer(LICENSE)

    def attempt(log) -> int:
        log_address, log_size = (ctypes.addressof(log), len(log)) if log is not None else (0, 0)
        attr = _attr("<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(program), ctypes.addressof(code),
                     ctypes.addressof(license_), int(log is not None), log_size, log_address, 0, 0, PROGRAM_NAME)
        return kernel.bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")

    try:
        return attempt(None)
    except KernelError as first:
        if first.errno != errno.EACCES and first.errno != errno.EINVAL:
            raise DeviceFilterError(_why(first)) from None
    log = ctypes.create_string_buffer(1 << 16)
    try:
        fd = attempt(log)
    except KernelError as refused:
        raise DeviceFilterError(f"{refused}; the verifier said:\n{log.value.decode(errors='replace')}") from None
    return fd  # refused once, accepted with the log on: take it


def _why(error: KernelError) -> str:
    if error.errno == errno.EPERM:
        return (f"{error.call} was refused (EPERM): loading a BPF program needs CAP_BPF or CAP_SYS_ADMIN "
                "in the host's user namespace, which this process lacks (rootless, or inside a container); "
                "before Linux 5.11 a low RLIMIT_MEMLOCK also ends in EPERM")
    if error.errno == errno.ENOSYS:
        return f"{error.call}: this kernel has no bpf(2) (built without CONFIG_BPF_SYSCALL)"
    return str(error)


def attach(program_fd: int, cgroup_dir: str, *, flags: int = BPF_F_ALLOW_MULTI) -> None:
    """bpf(BPF_PROG_ATTACH) to the cgroup directory, beside any other device programs there.

    ``flags=0`` attaches exclusively, as an older tool might: then no cgroup below may attach
    a program of its own (the kernel says EPERM), which the tests use to see a refusal."""
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        kernel.bpf(BPF_PROG_ATTACH, _attr("<IIIII", cgroup_fd, program_fd, BPF_CGROUP_DEVICE, flags, 0),
                   "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)")
    except KernelError as error:
        if error.errno in (errno.EBADF, errno.EINVAL):
            raise DeviceFilterError(f"{error} ({cgroup_dir} is not a cgroup v2 directory, or the kernel "
                                    "lacks CONFIG_CGROUP_BPF)") from None
        if error.errno == errno.EPERM:
            raise DeviceFilterError(
                f"{error.call} was refused (EPERM): this process lacks CAP_BPF or CAP_SYS_ADMIN in the "
                "host's user namespace, or a parent cgroup holds a device program attached without "
                "BPF_F_ALLOW_MULTI, which forbids programs below it") from None
        raise DeviceFilterError(_why(error)) from None
    finally:
        os.close(cgroup_fd)


def apply_device_rules(cgroup_dir: str, rules: list[dict]) -> None:
    """Build, load and attach the program for ``rules``; raises ``DeviceFilterError`` with the
    kernel's reason when that cannot be done. Rules that deny nothing need no program."""
    if not needs_program(rules):
        return
    program_fd = load(device_filter(rules))
    try:
        attach(program_fd, cgroup_dir)
    finally:
        os.close(program_fd)  # the cgroup keeps its own reference


# --- looking at what the kernel holds (tests, the lab) -------------------------------------------
def attached_program_ids(cgroup_dir: str) -> list[int]:
    """bpf(BPF_PROG_QUERY): the ids of the device programs attached to this cgroup itself."""
    ids = (ctypes.c_uint32 * 64)()
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = _attr("<IIIIQI4x", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), len(ids))
        kernel.bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE)")
    finally:
        os.close(cgroup_fd)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def program_exists(program_id: int) -> bool:
    """Whether the kernel still holds program ``program_id`` (bpf(BPF_PROG_GET_FD_BY_ID))."""
    try:
        fd = kernel.bpf(BPF_PROG_GET_FD_BY_ID, _attr("<III", program_id, 0, 0), "bpf(BPF_PROG_GET_FD_BY_ID)")
    except KernelError as error:
        if error.errno == errno.ENOENT:
            return False
        raise
    os.close(fd)
    return True


def may_make_device_nodes(config: dict, *, host_user_namespace: bool | None = None) -> bool:
    """Whether the container described by OCI ``config`` could create a device node that works.

    That takes CAP_MKNOD in the *host's* user namespace: the kernel refuses ``mknod`` of a
    device to any process in another user namespace, whatever its capabilities there. So a
    container with a user namespace of its own (rootless, ``--userns``), or a runtime that
    itself runs in one, cannot — and neither can a container without CAP_MKNOD in any of its
    capability sets. Such a container can still open the nodes that are already there (the
    ``/dev`` the runtime makes from ``linux.devices``, and any in its root filesystem or
    mounts): device rules it cannot enforce leave those open.
    """
    if host_user_namespace is None:
        host_user_namespace = in_host_user_namespace()
    if not host_user_namespace:
        return False
    linux = config.get("linux") or {}
    if any(entry.get("type") == "user" for entry in linux.get("namespaces") or []):
        return False
    capabilities = (config.get("process") or {}).get("capabilities") or {}
    return any("CAP_MKNOD" in (names or []) for names in capabilities.values())


def in_host_user_namespace() -> bool:
    """True when this process lives in the initial user namespace (its uid_map is the identity)."""
    try:
        with open("/proc/self/uid_map") as file:
            return file.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False
