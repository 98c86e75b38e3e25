"""The ENOSYS prologue: a few BPF instructions before libseccomp's program, as runc puts there.

A profile such as Docker's denies what it does not list with EPERM. For a syscall the
profile's author had never heard of — one newer than the profile — that is the wrong answer:
glibc and other programs try a new syscall first and fall back to an older one only on
ENOSYS ("not implemented"), so EPERM breaks them. runc therefore answers ENOSYS for every
syscall number *above the largest one the profile names*, per architecture, and lets
libseccomp's program decide the rest. teachdock does the same, so both runtimes answer alike.

```
 for each architecture of the filter (seccomp_data.arch):
     ld arch; jeq AUDIT_ARCH_X, 0, next
     ld nr
     [s390, s390x: nr 0 is where the kernel leaves unknown "large" syscalls -> ENOSYS]
     [x86_64: bit 30 of nr marks an x32 call; each ABI has its own largest number]
     jgt LARGEST, enosys, filter
 next: ja filter
 enosys: ret ERRNO(ENOSYS)
 filter: libseccomp's program
```

No prologue when the default action lets calls through (allow, log, trace: a new syscall
then works, or its tracer decides) or when the default errno is ENOSYS already.

Pure: the caller hands in how to look a name up on an architecture (libseccomp's
``seccomp_syscall_resolve_name_arch``), so the instructions can be checked without it.
"""

from __future__ import annotations

import errno
import struct

# classic BPF opcodes (linux/bpf_common.h) and struct seccomp_data's offsets
LD_W_ABS, JEQ_K, JGT_K, JSET_K, JA, RET_K = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
NR_OFFSET, ARCH_OFFSET = 0, 4
RET_ERRNO_ENOSYS = 0x00050000 | errno.ENOSYS

AUDIT_ARCH_X86_64 = 0xC000003E
SCMP_ARCH_X32 = 0x4000003E  # libseccomp's own token: x32 calls arrive as AUDIT_ARCH_X86_64 with bit 30 set
X32_SYSCALL_BIT = 0x40000000
AUDIT_ARCH_S390, AUDIT_ARCH_S390X = 0x00000016, 0x80000016
PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def largest_syscalls(names, architectures, resolve) -> dict[int, dict[str, int]]:
    """{AUDIT_ARCH_*: {"native" or "x32": the largest number any of ``names`` has there}}.

    ``architectures`` are libseccomp tokens (equal to AUDIT_ARCH_* but for x32);
    ``resolve(token, name)`` gives a number, or a negative one when the name is unknown there.
    """
    largest: dict[int, dict[str, int]] = {}
    for token in dict.fromkeys(architectures):
        audit, abi = (AUDIT_ARCH_X86_64, "x32") if token == SCMP_ARCH_X32 else (token, "native")
        numbers = [number for number in (resolve(token, name) for name in names) if number > 0]
        if numbers:
            largest.setdefault(audit, {})[abi] = max(numbers)
    return largest


def prologue(seccomp: dict, architectures, resolve) -> bytes:
    """The instructions to put before libseccomp's program (b"" when none are needed)."""
    if seccomp["defaultAction"] in PERMISSIVE or seccomp.get("defaultErrnoRet") == errno.ENOSYS:
        return b""
    names = [name for rule in seccomp.get("syscalls") or [] for name in rule["names"]]
    largest = largest_syscalls(names, architectures, resolve)
    if not largest:
        return b""
    program: list = []
    for index, (audit, abis) in enumerate(sorted(largest.items())):
        program += [f"arch{index}", (LD_W_ABS, 0, 0, ARCH_OFFSET), (JEQ_K, 0, f"arch{index + 1}", audit),
                    (LD_W_ABS, 0, 0, NR_OFFSET)]
        if audit in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            program.append((JEQ_K, "enosys", 0, 0))
        if audit == AUDIT_ARCH_X86_64:
            native, x32 = abis.get("native"), abis.get("x32")
            if native is not None and x32 is not None:
                program += [(JSET_K, f"x32_{index}", 0, X32_SYSCALL_BIT), (JGT_K, "enosys", "filter", native),
                            f"x32_{index}", (JGT_K, "enosys", "filter", x32)]
            elif native is not None:  # an x32 call: libseccomp's program refuses the ABI itself
                program += [(JSET_K, "filter", 0, X32_SYSCALL_BIT), (JGT_K, "enosys", "filter", native)]
            else:
                program += [(JSET_K, 0, "filter", X32_SYSCALL_BIT), (JGT_K, "enosys", "filter", x32)]
        else:
            program.append((JGT_K, "enosys", "filter", abis["native"]))
    program += [f"arch{len(largest)}", (JA, 0, 0, "filter"), "enosys", (RET_K, 0, 0, RET_ERRNO_ENOSYS), "filter"]
    return assemble(program)


def assemble(program: list) -> bytes:
    """Instructions (code, jt, jf, k) and label strings -> struct sock_filter bytes.

    A label as jt, jf (or k of ``ja``) becomes the forward distance to it.
    """
    labels, position = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = position
        else:
            position += 1
    out, position = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        position += 1

        def offset(target, limit=255):
            if not isinstance(target, str):
                return target
            distance = labels[target] - position
            if not 0 <= distance <= limit:
                raise ValueError(f"BPF jump to {target} of {distance} instructions")
            return distance

        code, jt, jf, k = item
        out.append(struct.pack("=HBBI", code, offset(jt), offset(jf), offset(k, 0xFFFFFFFF)))
    return b"".join(out)
