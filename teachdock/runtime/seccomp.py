"""seccomp: config.json's ``linux.seccomp`` becomes a BPF program the kernel runs on every system call.

A seccomp filter is a small classic-BPF program the kernel runs on each system call the
container makes; it looks at the architecture, the syscall number and the arguments and
answers allow, fail with an errno, kill, trap or log. config.json describes it as data
(runtime-spec "Seccomp"): a default action, the architectures, and rules — names, an
action, and argument conditions (``SCMP_CMP_EQ`` …) that must all hold.

How teachdock makes the program: **libseccomp, through ctypes, in the caller, before the fork**.

- libseccomp (the C library runc, crun and Docker use) owns what is hard to get right by
  hand: the syscall tables of every architecture (x86_64 plus its x86 and x32 personalities
  in Docker's profile), names that are pseudo-syscalls on one architecture and real on
  another, 64-bit argument comparisons and the jumps of a long program. Writing BPF
  ourselves would mean keeping those tables. The binding is a dozen functions, so it is
  written here with ctypes (as the daemon's libnftables one) rather than taken from PyPI.
- The program is *exported* as BPF bytes (``seccomp_export_bpf``) in the caller, and the
  container's init (or ``td-exec``'s program) only hands those bytes to ``seccomp(2)``: after
  a fork from a process with threads nothing may take a lock or import, and libseccomp's
  own ``seccomp_load`` would build the program there with malloc.

When it is loaded (:func:`teachdock.runtime.init`): as runc, with ``noNewPrivileges`` as
late as possible — just before ``execve`` — and without it before the capabilities are
dropped (installing a filter without no_new_privs needs CAP_SYS_ADMIN).

As runc: a rule whose syscall this libseccomp does not know is skipped (a profile may name
syscalls newer than the machine), a rule with the default action is skipped (it changes
nothing), conditions on the same argument twice become one rule per condition (libseccomp
cannot AND two conditions on one argument), and a syscall newer than every one the profile
names gets ENOSYS rather than the default EPERM (:mod:`teachdock.runtime.seccomp_enosys`). What teachdock cannot do is refused:
``SCMP_ACT_NOTIFY`` and ``listenerPath`` (a seccomp agent).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os

from teachdock import kernel
from teachdock.errors import InvalidConfig, TeachdockError
from teachdock.runtime.seccomp_enosys import prologue

ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
#: runtime-spec action -> libseccomp's action value (errno and trace add their 16-bit number)
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": ACT_ERRNO, "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
#: runtime-spec comparison -> libseccomp's enum scmp_compare
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
#: runtime-spec flag -> seccomp(2)'s SECCOMP_FILTER_FLAG_* bit. TSYNC changes nothing for the
#: one-threaded process that loads it; WAIT_KILLABLE_RECV only matters with a notify listener.
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
MAX_ARGUMENTS = 6
_NR_SCMP_ERROR = -1
CACHE_SIZE = 16  # compiled programs kept per process: a daemon starts many containers with one profile
_compiled: dict[str, bytes] = {}


class ScmpArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp: one argument condition of a libseccomp rule."""
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class Filter:
    """A compiled filter: the BPF program (ready for seccomp(2)) and its flags.

    Made by :func:`compile_filter` in the caller; :meth:`load` is all a forked child does.
    """

    def __init__(self, bpf: bytes, flags: int):
        self.bpf = bpf
        self.flags = flags
        self.program = kernel.SeccompProgram(bpf)

    def __len__(self) -> int:
        """The number of BPF instructions."""
        return len(self.bpf) // 8

    def load(self, *, kernel=kernel) -> None:
        """Install the filter on the calling process; from here on every syscall passes through it."""
        kernel.set_seccomp_filter(self.program, self.flags)


# --- checking the profile ------------------------------------------------------------------------
def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(f"config.json: linux.seccomp: {message}")


def check(seccomp) -> None:
    """Check the shape of ``linux.seccomp``; raise InvalidConfig naming the first bad field."""
    _require(isinstance(seccomp, dict), "must be an object")
    _require(not seccomp.get("listenerPath") and not seccomp.get("listenerMetadata"),
             "listenerPath (a seccomp agent for SCMP_ACT_NOTIFY) is not supported by teachdock")
    _check_action(seccomp.get("defaultAction"), seccomp.get("defaultErrnoRet"), "defaultAction")
    for arch in seccomp.get("architectures") or []:
        _require(isinstance(arch, str) and arch.startswith("SCMP_ARCH_"),
                 f"architecture {arch!r} is not a SCMP_ARCH_* name")
    for flag in seccomp.get("flags") or []:
        _require(flag in FLAGS, f"flag {flag!r} is not supported (known: {', '.join(FLAGS)})")
    syscalls = seccomp.get("syscalls") or []
    _require(isinstance(syscalls, list), "syscalls must be a list")
    for index, rule in enumerate(syscalls):
        where = f"syscalls[{index}]"
        _require(isinstance(rule, dict), f"{where} must be an object")
        names = rule.get("names")
        _require(isinstance(names, list) and names and all(isinstance(n, str) and n for n in names),
                 f"{where}.names must be a non-empty list of syscall names")
        _check_action(rule.get("action"), rule.get("errnoRet"), f"{where}.action")
        for number, condition in enumerate(rule.get("args") or []):
            at = f"{where}.args[{number}]"
            _require(isinstance(condition, dict), f"{at} must be an object")
            index_ = condition.get("index")
            _require(isinstance(index_, int) and not isinstance(index_, bool) and 0 <= index_ < MAX_ARGUMENTS,
                     f"{at}.index must be 0-{MAX_ARGUMENTS - 1}")
            _require(condition.get("op") in OPERATORS, f"{at}.op {condition.get('op')!r} is not one of "
                                                       f"{', '.join(OPERATORS)}")
            for field in ("value", "valueTwo"):
                value = condition.get(field, 0)
                _require(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64,
                         f"{at}.{field} must be an unsigned 64-bit integer")


def _check_action(action, errno_ret, where: str) -> None:
    if action == "SCMP_ACT_NOTIFY":
        raise InvalidConfig(f"config.json: linux.seccomp: {where} SCMP_ACT_NOTIFY needs a seccomp agent, "
                            "which teachdock does not support")
    _require(action in ACTIONS, f"{where} {action!r} is not one of {', '.join(ACTIONS)}")
    _require(errno_ret is None or (isinstance(errno_ret, int) and not isinstance(errno_ret, bool)
                                   and 0 <= errno_ret <= 0xFFFF), f"{where}'s errno must be 0-65535")


def action_value(action: str, errno_ret: int | None) -> int:
    """libseccomp's value of an action; ERRNO and TRACE without a number return EPERM (as runc)."""
    value = ACTIONS[action]
    if value in (ACT_ERRNO, ACT_TRACE):
        value |= (errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


# --- libseccomp ---------------------------------------------------------------------------------------
_library = None


def libseccomp() -> ctypes.CDLL:
    """libseccomp.so.2 with the prototypes we call, loaded once."""
    global _library
    if _library is None:
        try:
            library = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError:
            raise TeachdockError("linux.seccomp needs libseccomp (the libseccomp2 package); "
                                 "it is not installed") from None
        library.seccomp_init.restype = ctypes.c_void_p
        library.seccomp_init.argtypes = [ctypes.c_uint32]
        library.seccomp_release.argtypes = [ctypes.c_void_p]
        library.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        library.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        library.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        library.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        library.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        library.seccomp_arch_native.restype = ctypes.c_uint32
        library.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                                   ctypes.POINTER(ScmpArgCmp)]
        library.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _library = library
    return _library


def syscall_number(name: str) -> int | None:
    """The number libseccomp gives ``name`` on this machine (negative for a pseudo-syscall that only
    exists on another architecture of the filter), or None when it does not know the name."""
    number = libseccomp().seccomp_syscall_resolve_name(name.encode())
    return None if number == _NR_SCMP_ERROR else number


def architecture_token(name: str) -> int:
    """SCMP_ARCH_X86_64 -> libseccomp's token for "x86_64"; an unknown name is an error."""
    token = libseccomp().seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode())
    if not token:
        raise InvalidConfig(f"config.json: linux.seccomp: unknown architecture {name!r}")
    return token


def rules(seccomp: dict) -> list[tuple[int, str, list[tuple[int, int, int, int]]]]:
    """The libseccomp rules of a profile, as runc adds them: (action value, syscall name,
    [(argument, operator, value, valueTwo), ...]).

    Rules with the default action are left out; conditions that test one argument twice
    are split into one rule each.
    """
    default = action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    result = []
    for rule in seccomp.get("syscalls") or []:
        action = action_value(rule["action"], rule.get("errnoRet"))
        if action == default:
            continue
        conditions = [(c["index"], OPERATORS[c["op"]], c.get("value", 0), c.get("valueTwo", 0))
                      for c in rule.get("args") or []]
        indexes = [condition[0] for condition in conditions]
        groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
        for name in rule["names"]:
            for group in groups:
                result.append((action, name, group))
    return result


def compile_filter(seccomp: dict, *, cached: bool = True) -> Filter:
    """Build ``linux.seccomp`` with libseccomp and export it as BPF; syscalls it does not know are skipped.

    The program depends only on the profile, so a process keeps the last few it made: building
    Docker's default one takes ~10 ms, looking it up well under one. ``cached=False`` builds it
    anew (what a fresh process pays; the benchmark measures it so).
    """
    check(seccomp)
    if not cached:
        return Filter(_build(seccomp), _flags(seccomp))
    key = json.dumps(seccomp, sort_keys=True)
    if key not in _compiled:
        if len(_compiled) >= CACHE_SIZE:
            del _compiled[next(iter(_compiled))]  # the oldest
        _compiled[key] = _build(seccomp)
    return Filter(_compiled[key], _flags(seccomp))


def _build(seccomp: dict) -> bytes:
    """libseccomp's program for a checked profile, as BPF bytes, after runc's ENOSYS prologue
    (:mod:`teachdock.runtime.seccomp_enosys`)."""
    library = libseccomp()
    architectures = [library.seccomp_arch_native(), *map(architecture_token, seccomp.get("architectures") or [])]
    start = prologue(seccomp, architectures,
                     lambda token, name: library.seccomp_syscall_resolve_name_arch(token, name.encode()))
    context = library.seccomp_init(action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet")))
    if not context:
        raise InvalidConfig("config.json: linux.seccomp: libseccomp refused the default action")
    try:
        for arch in seccomp.get("architectures") or []:
            result = library.seccomp_arch_add(context, architecture_token(arch))
            if result < 0 and result != -errno.EEXIST:  # the native architecture is there from the start
                raise InvalidConfig(f"config.json: linux.seccomp: cannot add architecture {arch}: "
                                    f"{os.strerror(-result)}")
        for action, name, conditions in rules(seccomp):
            number = syscall_number(name)
            if number is None:
                continue  # as runc and libseccomp: a name this machine does not know is not an error
            array = (ScmpArgCmp * len(conditions))(*(ScmpArgCmp(*condition) for condition in conditions))
            result = library.seccomp_rule_add_array(context, action, number, len(conditions), array)
            if result < 0:
                raise InvalidConfig(f"config.json: linux.seccomp: the rule for {name} {conditions or ''} "
                                    f"was refused by libseccomp: {os.strerror(-result)}")
        program = start + _export(library, context)
    finally:
        library.seccomp_release(context)
    if len(program) // 8 > 4096:  # BPF_MAXINSNS
        raise InvalidConfig(f"config.json: linux.seccomp: the filter needs {len(program) // 8} BPF instructions, "
                            "more than the kernel's 4096")
    return program


def _export(library: ctypes.CDLL, context) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        result = library.seccomp_export_bpf(context, fd)
        if result < 0:
            raise InvalidConfig(f"config.json: linux.seccomp: libseccomp could not export the filter: "
                                f"{os.strerror(-result)}")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _flags(seccomp: dict) -> int:
    flags = 0
    for name in seccomp.get("flags") or []:
        flags |= FLAGS[name]
    return flags


def filter_for(config: dict) -> Filter | None:
    """The compiled filter of a config.json, or None without ``linux.seccomp``."""
    seccomp = config.get("linux", {}).get("seccomp")
    return None if seccomp is None else compile_filter(seccomp)
