"""Which layer stopped an attempt: the first check on its way that is closed in this container.

Each attempt lists its ``Gate``s in the order the kernel meets them (attempts.py): the seccomp
filter runs at the system call's entry, before the call looks at anything; then the kernel's own
checks — capabilities, the device rules of the container's cgroup, the mounts the runtime made
read-only or masked, what the container's namespaces let it see. ``decide`` walks the gates with
the container's facts (its capabilities, its seccomp mode, its mounts, read from inside it) and
compares the errno the first closed gate gives with the errno the attempt really met. A match
names the layer; all gates open and a success means the attempt got through; anything else is
reported as unexplained, never forced into a box.
"""

from __future__ import annotations

from dataclasses import dataclass

from teachdock.lab.common.language import SaidWhenRead, say
from teachdock.lab.security.attempts import Attempt, Facts, Gate, Outcome
from teachdock.runtime.seccomp_profile import docker_default
from teachdock.runtime.spec import DEFAULT_DEVICE_RULES


def layer_table() -> dict[str, tuple[str, str, str]]:
    """layer -> (short name for the grid, what it is, the errno it answers with); the names and
    sentences in the learner's language, the keys and errnos the same in every language."""
    return {
        "seccomp": ("seccomp", say("the system-call filter: Docker's profile refuses the call before the kernel "
                                   "runs it"), "EPERM"),
        "capabilities": (say("capabilities"), say("root in the container lacks the capability the kernel asks "
                                                  "for"), "EPERM"),
        "devices": (say("devices cgroup"), say("the cgroup's device rules (a BPF program on v2) refuse to open "
                                               "the node"), "EPERM"),
        "masked": (say("masked path"), say("the runtime bound /dev/null over the file: reading it gives nothing"),
                   "EMPTY"),
        "read-only": (say("read-only /proc"), say("the runtime remounted the path read-only"), "EROFS"),
        "namespaces": (say("namespaces"), say("the thing is not in the container's mount namespace: nothing to "
                                              "reach"), "ENOENT"),
        "user namespace": (say("user namespace"), say("root inside is an ordinary user outside: the host's checks "
                                                      "say no"), "EPERM"),
        "kernel": (say("not in this kernel"), say("this kernel was built without it: nothing to attack"), "ENOENT"),
        "host": (say("the host itself"), say("this machine refuses it even to its own root, outside any container "
                                             "(a sandbox's policy)"), "EPERM"),
    }


#: layer -> (short name for the grid, what it is, the errno it answers with)
LAYERS = SaidWhenRead(layer_table)
#: the kernel without module support answers the module calls with ENOSYS
NO_MODULES_ERRNO = "ENOSYS"
THROUGH = "through"
UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class Verdict:
    """One cell of the grid: the attempt, the configuration, what happened and who said no."""

    attempt: str
    configuration: str
    errno: str                   # what the attempt met: "OK", "EMPTY", "EPERM", ...
    layer: str                   # a key of LAYERS, THROUGH or UNEXPLAINED
    expected: str                # the errno the deciding gate gives ("OK" when every gate is open)

    @property
    def stopped(self) -> bool:
        return self.layer in LAYERS

    @property
    def label(self) -> str:
        if self.layer == THROUGH:
            return say("got through")
        if self.layer == UNEXPLAINED:
            return f"? {self.errno}"
        return LAYERS[self.layer][0]


def refused_by_docker_profile(syscalls, capabilities) -> bool:
    """Whether Docker's default profile, resolved for these capabilities, refuses every one of
    ``syscalls`` outright (no rule allows it without conditions on its arguments)."""
    profile = docker_default(sorted(capabilities))
    allowed = {name for rule in profile["syscalls"] if rule.get("action") == "SCMP_ACT_ALLOW"
               and not rule.get("args") for name in rule["names"]}
    return profile.get("defaultAction") != "SCMP_ACT_ALLOW" and not any(name in allowed for name in syscalls)


def device_allowed(rules, kind: str, major: int, minor: int, access: str) -> bool:
    """The OCI device rules read as v1's devices controller reads them: the last rule that
    matches the node decides, for each letter of ``access``."""
    for letter in access:
        verdict = False
        for rule in rules:
            if rule.get("type") not in (None, "a", kind):
                continue
            if rule.get("major") not in (None, -1, major) or rule.get("minor") not in (None, -1, minor):
                continue
            if letter in rule.get("access", "rwm"):
                verdict = bool(rule.get("allow"))
        if not verdict:
            return False
    return True


def _covering_mount(facts: Facts, path: str):
    """The mount a path lives on: the longest mount point that is the path or a parent of it."""
    best = None
    for mount in facts.mounts:
        point = mount[0]
        if (path == point or path.startswith(point.rstrip("/") + "/")) and (best is None or len(point) > len(best[0])):
            best = mount
    return best


def closed(gate: Gate, facts: Facts, attempt: Attempt) -> str | None:
    """The errno this gate answers with in this container, or None when it lets the attempt on."""
    layer = gate.layer
    if layer == "seccomp":
        bounding = facts.capabilities if facts.bounding is None else facts.bounding
        refused = facts.seccomp == 2 and refused_by_docker_profile(gate.what, bounding)
        return LAYERS[layer][2] if refused else None
    if layer == "capabilities":
        if facts.user_namespace and not gate.in_user_namespace_too:
            return LAYERS["user namespace"][2]
        return None if gate.what in facts.capabilities else LAYERS[layer][2]
    if layer == "devices":
        kind, major, minor, access = gate.what
        return None if facts.privileged or device_allowed(DEFAULT_DEVICE_RULES, kind, major, minor, access) \
            else LAYERS[layer][2]
    if layer == "masked":
        mount = _covering_mount(facts, gate.what)
        return LAYERS[layer][2] if mount and mount[0] == gate.what and mount[3] != "proc" else None
    if layer == "read-only":
        mount = _covering_mount(facts, gate.what)
        return LAYERS[layer][2] if mount and "ro" in mount[2].split(",") else None
    if layer in ("namespaces", "kernel"):
        if gate.what in facts.existing:
            return None
        return NO_MODULES_ERRNO if gate.what == "/proc/modules" else LAYERS[layer][2]
    if layer == "host":
        return LAYERS[layer][2] if gate.what in facts.host_refuses else None
    if layer == "user namespace":
        return gate.what if facts.user_namespace else None
    raise ValueError(f"unknown layer {layer!r}")


def gate_layer(gate: Gate, facts: Facts) -> str:
    """The layer to name for a closed gate (a capability missing because of a user namespace is the namespace's)."""
    if gate.layer == "capabilities" and facts.user_namespace and not gate.in_user_namespace_too:
        return "user namespace"
    return gate.layer


def decide(attempt: Attempt, facts: Facts, result: Outcome, configuration: str = "") -> Verdict:
    """Which layer stopped ``attempt`` in a container with ``facts``, given what it met."""
    for gate in attempt.gates:
        errno = closed(gate, facts, attempt)
        if errno is not None:
            layer = gate_layer(gate, facts)
            same = result.errno == errno or (errno == "EPERM" and result.errno == "EACCES" and layer == "user namespace")
            return Verdict(attempt.key, configuration, result.errno, layer if same else UNEXPLAINED, errno)
    through = result.errno == "OK" or result.errno in attempt.reached
    return Verdict(attempt.key, configuration, result.errno, THROUGH if through else UNEXPLAINED, "OK")
