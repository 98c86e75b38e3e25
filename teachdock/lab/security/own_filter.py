"""A seccomp filter of one's own: a profile in Docker's format that refuses ``mkdir``.

``profile_blocking(["mkdir"])`` writes the smallest useful profile: allow every call, but answer
the named ones with an errno. ``try_filter(profile)`` runs ``mkdir`` (and ``touch``, the control)
in a fresh container of teachdock's runtime with that profile as its ``linux.seccomp`` — the same
way ``docker run --security-opt seccomp=FILE`` reaches runc — and reports what each met.
``instructions(profile)`` shows the BPF program the kernel runs on every system call, one line
per instruction; ``docker_rules_for("mount")`` the rules of Docker's default profile that name a
call, with the capabilities they depend on.
"""

from __future__ import annotations

import errno as errno_module
import json
import struct
from dataclasses import dataclass

from teachdock.errors import TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.security.attempts import errno_of

#: mkdir, then touch (a call the filter should leave alone), each followed by its exit status
TRIAL_SCRIPT = ("mkdir /tmp/td-dir 2>&1; echo \"mkdir status $?\"; "
                "touch /tmp/td-file 2>&1; echo \"touch status $?\"")


def profile_blocking(names, errno: str = "EPERM") -> dict:
    """A Docker-format profile: every call allowed, those in ``names`` answered with ``errno``."""
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO",
                          "errnoRet": getattr(errno_module, errno)}]}


@dataclass(frozen=True)
class FilterTrial:
    """What ``mkdir`` and ``touch`` met under a profile (errno names, "OK", or None: never ran)."""

    mkdir: str | None
    touch: str | None
    exit_code: int | None
    output: str
    problem: str = ""           # the runtime's refusal of the profile itself

    @property
    def started(self) -> bool:
        return self.mkdir is not None


def read_trial(stdout: str, exit_code: int | None, problem: str = "") -> FilterTrial:
    """TRIAL_SCRIPT's output -> what each command met."""
    met: dict[str, str] = {}
    previous = ""
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] == "status" and words[0] in ("mkdir", "touch"):
            met[words[0]] = "OK" if words[2] == "0" else (errno_of(previous) or f"exit {words[2]}")
        previous = line
    return FilterTrial(met.get("mkdir"), met.get("touch"), exit_code, stdout, problem)


def try_filter(profile, rootfs=None) -> FilterTrial:
    """``mkdir`` and ``touch`` in a fresh container whose seccomp filter is ``profile`` (a dict in
    Docker's format, or its JSON text). Works without root too: a rootless container."""
    from teachdock.runtime import run

    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except json.JSONDecodeError as error:
            return FilterTrial(None, None, None, "", say("not JSON: {error}", error=error))
    try:
        result = run(["sh", "-c", TRIAL_SCRIPT], rootfs, seccomp=profile, timeout=30)
    except TeachdockError as error:
        return FilterTrial(None, None, None, "", str(error))
    return read_trial(result.stdout + result.stderr, result.exit_code)


# classic BPF opcodes libseccomp emits (linux/filter.h): enough to read a filter
_OPCODES = {0x20: "ld  [{k}]", 0x15: "jeq #{k}", 0x25: "jgt #{k}", 0x35: "jge #{k}", 0x45: "jset #{k}",
            0x06: "ret #{k}", 0x54: "and #{k}", 0x00: "ld  #{k}", 0x07: "tax", 0x87: "txa", 0x05: "ja  {k}"}
_RETURNS = {0x7FFF0000: "ALLOW", 0x00000000: "KILL_THREAD", 0x80000000: "KILL_PROCESS", 0x7FF00000: "TRACE",
            0x7FFC0000: "LOG", 0x7FC00000: "USER_NOTIF"}
_CONSTANTS = {0xC000003E: "AUDIT_ARCH_X86_64", 0xC00000B7: "AUDIT_ARCH_AARCH64"}


def _constant_note(k: int) -> str:
    """What a constant in a comparison means (in the learner's language), or ""."""
    if k == 0x40000000:
        return say("x32 calls start here")
    if k == 0xFFFFFFFF:
        return say("-1: no call")
    return _CONSTANTS.get(k, "")


def _data_note(k: int) -> str:
    """Which field of the kernel's ``seccomp_data`` a load reads (in the learner's language), or ""."""
    return {0: say("the syscall's number"), 4: say("the architecture"), 16: say("argument 0 (low half)"),
            20: say("argument 0 (high half)")}.get(k, "")


def _return_text(k: int) -> str:
    if k & 0xFFFF0000 == 0x00050000:
        number = k & 0xFFFF
        return f"ERRNO({errno_module.errorcode.get(number, number)})"
    return _RETURNS.get(k, hex(k))


def instructions(profile: dict) -> list[str]:
    """The BPF program a profile compiles to (libseccomp, as the runtime loads it), one line each,
    with syscall numbers and return values named."""
    from teachdock.runtime.seccomp import compile_filter, syscall_number
    from teachdock.runtime.seccomp_profile import resolve
    from teachdock.runtime.spec import DEFAULT_CAPABILITIES

    resolved = resolve(profile, DEFAULT_CAPABILITIES)
    program = compile_filter(resolved).bpf
    names = {}
    for rule in resolved.get("syscalls") or []:
        for name in rule.get("names") or []:
            number = syscall_number(name)
            if number is not None:
                names.setdefault(number, name)
    lines = []
    for index in range(len(program) // 8):
        code, jt, jf, k = struct.unpack_from("=HBBI", program, index * 8)
        text = _OPCODES.get(code, f"op {code:#04x} #{{k}}").format(k=k)
        note = ""
        if code == 0x20:
            note = _data_note(k)
        elif code in (0x15, 0x25, 0x35):
            note = names.get(k) or _constant_note(k)
        elif code == 0x06:
            text, note = f"ret {_return_text(k)}", ""
        if code in (0x15, 0x25, 0x35, 0x45):
            text += say("  (true: +{jt}, false: +{jf})", jt=jt, jf=jf)
        lines.append(f"{index:3}  {text}" + (f"   ; {note}" if note else ""))
    return lines


def docker_rules_for(syscall: str) -> list[dict]:
    """The rules of Docker's default profile (as stored, before resolving) that name ``syscall``."""
    from teachdock.runtime.seccomp_profile import default_profile

    return [{key: rule[key] for key in ("action", "args", "includes", "excludes", "errnoRet") if rule.get(key)}
            for rule in default_profile()["syscalls"] if syscall in (rule.get("names") or [])]
