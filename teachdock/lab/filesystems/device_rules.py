"""Chapter 04: a container may *make* a device node, yet not *open* it — and who says no.

Docker gives a container CAP_MKNOD, so ``mknod /dev/sda b 8 0`` works inside. What stops it
from reading the host's disk through that node is the container's device rules
(``DEFAULT_DEVICE_RULES`` in ``teachdock/runtime/spec.py``), which the kernel consults on every
open of a device node. Where they live depends on the host's cgroup version:

* cgroup v1: the ``devices`` controller, whose ``devices.deny``/``devices.allow`` files the
  runtime writes (``teachdock/runtime/cgroups/v1.py``);
* cgroup v2: no such files; an eBPF program the runtime assembles from the same rules and
  attaches to the container's cgroup (``teachdock/runtime/cgroups/devices_bpf.py``);
* no cgroup (a container started without root): the container lives in a user namespace,
  and there the kernel refuses ``mknod`` of any device outright.
"""

from __future__ import annotations

import os

from teachdock.lab.common.language import say
from teachdock.runtime import run
from teachdock.runtime.cgroups import detect_version, devices_bpf
from teachdock.runtime.spec import DEFAULT_DEVICE_RULES

#: The nodes the experiment makes: (name in /dev, type, major, minor, what it is on a host).
TRIES = (
    ("kmsg", "c", 1, 11, "the kernel's log: writing to it needs no capability"),
    ("sda", "b", 8, 0, "the first SCSI/SATA disk"),
    ("null2", "c", 1, 3, "a second /dev/null: allowed by the rules, the control"),
)


def how_rules_are_enforced(version: str | None = None, *, root: bool | None = None) -> str:
    """One sentence: what enforces a container's device rules on this machine."""
    root = os.geteuid() == 0 if root is None else root
    if not root:
        return say("Without root a container gets no cgroup, but it lives in a user namespace, and the kernel "
                   "refuses mknod of a device to any process there: it cannot make the node at all.")
    version = version or detect_version()
    rules = len(DEFAULT_DEVICE_RULES)
    if version == "v1":
        return say("This machine uses cgroup v1: the runtime writes the {rules} rules, in order, into the "
                   "container's devices.deny and devices.allow files, and the devices controller checks every "
                   "mknod and every open of a device node against them.", rules=rules)
    program = devices_bpf.device_filter(DEFAULT_DEVICE_RULES)
    return say("This machine uses cgroup v2, which has no devices files: the runtime turns the {rules} rules "
               "into an eBPF program of {count} instructions, of type BPF_PROG_TYPE_CGROUP_DEVICE, and attaches "
               "it to the container's cgroup; the kernel runs it on every mknod and open of a device node.",
               rules=rules, count=len(program))


def try_device_nodes(rootfs) -> list[tuple[str, str, str, str]]:
    """In a fresh container, make each node of ``TRIES`` and open it for writing.

    Returns one row per node: (path, "c 1 11", what mknod said, what the open said); the
    messages are busybox sh's, e.g. "made" / "Operation not permitted". Needs root.
    """
    script = "; ".join(
        f"mknod /dev/{name} {kind} {major} {minor} 2>&1 && echo made; (exec 3>/dev/{name}) 2>&1 && echo opened"
        for name, kind, major, minor, _ in TRIES)
    result = run(["sh", "-c", script], rootfs=rootfs, timeout=30)
    lines = iter(result.stdout.splitlines())
    rows = []
    no_answer = say("(no answer)")
    for name, kind, major, minor, _ in TRIES:
        made = next(lines, no_answer)
        opened = next(lines, no_answer)
        rows.append((f"/dev/{name}", f"{kind} {major} {minor}", _short(made), _short(opened)))
    return rows


def _short(message: str) -> str:
    """"sh: can't create /dev/sda: Operation not permitted" -> "Operation not permitted"."""
    return message.rsplit(": ", 1)[-1]
