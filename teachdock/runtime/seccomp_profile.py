"""Docker's seccomp profile and how it becomes a container's ``linux.seccomp``.

``seccomp_default.json`` beside this module is Docker's default profile, byte for byte:
``default.json`` of github.com/moby/profiles/seccomp v0.2.3 (Apache-2.0), as vendored in
moby/moby at b985e2313a86. It denies every syscall (EPERM) except an allow list of about
370, plus rules that depend on the container:

- ``includes``/``excludes`` ``caps``: e.g. ``mount``, ``unshare``, ``setns``, ``bpf`` are allowed
  only when CAP_SYS_ADMIN is in the bounding set, ``reboot`` only with CAP_SYS_BOOT;
- ``arches``: ``arch_prctl`` only on amd64, ``modify_ldt`` on x86 machines …;
- ``minKernel``: ``ptrace`` without CAP_SYS_PTRACE only from Linux 4.8 on;
- argument conditions: ``clone`` without the namespace flags (a mask), ``personality``
  with one of five values, ``socket`` for any family but AF_VSOCK (40).

A profile in Docker's format (also one a user gives with ``--security-opt seccomp=FILE``)
is resolved against the container's capabilities and this machine when the spec is made, as
moby's ``setupSeccomp`` does: what is left is plain runtime-spec data any runtime (runc,
crun, teachdock) applies the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from teachdock.errors import InvalidConfig

DEFAULT_PROFILE_FILE = Path(__file__).with_name("seccomp_default.json")

#: uname's machine -> (Docker's name of the architecture, as in ``includes.arches``, its SCMP_ARCH_*)
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"), "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
    "i686": ("x86", "SCMP_ARCH_X86"), "armv7l": ("arm", "SCMP_ARCH_ARM"),
}

_default_profile: dict | None = None


def default_profile() -> dict:
    """Docker's default profile as it is stored (archMap, includes, excludes); a copy of it."""
    return json.loads(DEFAULT_PROFILE_FILE.read_text())


def _stored_default() -> dict:
    """The stored profile, read once per process; :func:`resolve` copies what it keeps."""
    global _default_profile
    if _default_profile is None:
        _default_profile = json.loads(DEFAULT_PROFILE_FILE.read_text())
    return _default_profile


def parse_profile(text: str) -> dict:
    """A profile in Docker's JSON format (``--security-opt seccomp=FILE``'s content)."""
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidConfig(f"Decoding seccomp profile failed: {error.msg} at line {error.lineno} "
                            f"column {error.colno}") from None
    if not isinstance(profile, dict):
        raise InvalidConfig("Decoding seccomp profile failed: the profile must be a JSON object")
    return profile


def resolve(profile: dict, capabilities, *, machine: str | None = None,
            kernel_release: str | None = None) -> dict | None:
    """A Docker-format profile -> runtime-spec ``linux.seccomp`` for a container whose bounding set
    is ``capabilities``, on ``machine`` (uname -m) running ``kernel_release`` (uname -r).

    None when the profile has neither a default action nor rules (moby: seccomp disabled).
    """
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidConfig("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                            "use either 'architectures' or 'archMap'")
    machine = machine or os.uname().machine
    docker_arch, native = MACHINES.get(machine, (machine, None))
    capabilities = set(capabilities)
    release = kernel_version(kernel_release or os.uname().release)
    resolved = {key: _copy(value) for key, value in profile.items()
                if key in ("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
                           "listenerMetadata")}
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            resolved["architectures"] = [native, *(entry.get("subArchitectures") or [])]
            break
    syscalls = []
    for index, rule in enumerate(profile.get("syscalls") or []):
        if not isinstance(rule, dict):
            raise InvalidConfig(f"seccomp profile: syscalls[{index}] must be an object")
        names = rule.get("names") or []
        if rule.get("name"):
            if names:
                raise InvalidConfig("both 'name' and 'names' are specified in the seccomp profile, "
                                    "use either 'name' or 'names'")
            names = [rule["name"]]
        if applies(rule, docker_arch, capabilities, release):
            syscalls.append({"names": list(names), "action": rule.get("action"),
                             **{key: _copy(rule[key]) for key in ("errnoRet", "args") if rule.get(key) is not None}})
    resolved["syscalls"] = syscalls
    return resolved


def _copy(value):
    """A copy of JSON data (the copy module's import costs ~1 ms on the start path)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def applies(rule: dict, docker_arch: str, capabilities: set, release: tuple[int, int]) -> bool:
    """Whether a rule's ``excludes`` and ``includes`` let it into this container's filter."""
    excludes, includes = rule.get("excludes") or {}, rule.get("includes") or {}
    if docker_arch in (excludes.get("arches") or []):
        return False
    if any(cap in capabilities for cap in excludes.get("caps") or []):
        return False
    if excludes.get("minKernel") and release >= kernel_version(excludes["minKernel"]):
        return False
    if includes.get("arches") and docker_arch not in includes["arches"]:
        return False
    if any(cap not in capabilities for cap in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and release < kernel_version(includes["minKernel"]):
        return False
    return True


def kernel_version(release: str) -> tuple[int, int]:
    """'6.1.0-18-amd64' -> (6, 1): what ``minKernel`` compares."""
    try:
        major, minor = release.split("-")[0].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise InvalidConfig(f"seccomp profile: {release!r} is not a kernel version such as 4.8") from None


def docker_default(capabilities) -> dict:
    """``linux.seccomp`` of Docker's default profile for a container with these bounding capabilities."""
    return resolve(_stored_default(), capabilities)
