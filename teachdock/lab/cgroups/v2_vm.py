"""cgroup v2 live in a tiny VM, for learners whose own machine still uses cgroup v1.

The cgroups chapter works with whatever version the learner's kernel mounts. Where that is
v1, the v2 files can still be seen for real: :func:`show_v2_in_vm` boots teachdock's Python
guest (teachdock.vm.guest: the host's kernel under QEMU, cgroup2 at /sys/fs/cgroup), starts
one container there with teachdock's own runtime, and reads the files a v2 runtime writes and
reads: the root's ``cgroup.controllers`` and ``cgroup.subtree_control``, the container's
``memory.max``, ``pids.max`` and ``cpu.max``, and ``memory.events`` before and after the
container grows past its memory limit. About 15 s under software emulation::

    from teachdock.lab.cgroups.v2_vm import host_cgroup_sentence, show_v2_in_vm
    print(host_cgroup_sentence())
    show_v2_in_vm()          # a table in Jupyter, text in a terminal
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path

import teachdock
from teachdock.errors import TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML
from teachdock.runtime.cgroups import detect_version
from teachdock.vm import VmError
from teachdock.vm.guest import run_in_guest

MARKER = "TEACHDOCK-V2"

#: Runs inside the VM (Python, teachdock from the host at /project). Prints one JSON line of
#: [file, content, meaning key] rows (the host says each meaning in the learner's language:
#: guest_meaning). The container waits on stdin so that its files can be read while it lives;
#: then it doubles a string until the OOM killer stops it.
GUEST_SCRIPT = r'''
import json, os, tempfile
from teachdock.image import busybox
from teachdock.runtime import PIPE, Container

ROOT = "/sys/fs/cgroup"
rows = []


def show(path, meaning, **values):
    with open(path) as f:
        rows.append([path, f.read().strip(), meaning, values])


show(f"{ROOT}/cgroup.controllers", "controllers")
show(f"{ROOT}/cgroup.subtree_control", "root-subtree")
rootfs = busybox.build_busybox_rootfs(os.path.join(tempfile.mkdtemp(), "rootfs"))
container = Container.create("demo", rootfs=rootfs, state_root=tempfile.mkdtemp(), stdin=PIPE, stdout=PIPE,
                             args=["sh", "-c", "echo ready; read x; x=a; while true; do x=$x$x; done"],
                             memory="32m", pids_limit=20, cpus=0.5)
try:
    here = container.cgroup.dir
    container.start()
    os.read(container.stdout, 6)
    show(f"{ROOT}/teachdock/cgroup.subtree_control", "teachdock-subtree")
    show(f"/proc/{container.pid}/cgroup", "pid1-cgroup")
    show(f"{here}/memory.max", "memory.max")
    show(f"{here}/pids.max", "pids.max")
    show(f"{here}/cpu.max", "cpu.max")
    show(f"{here}/memory.events", "events-before")
    os.close(container.stdin)
    container.stdin = None
    code = container.wait(60)
    show(f"{here}/memory.events", "events-after", code=code)
finally:
    container.delete(force=True)
print("\nTEACHDOCK-V2 " + json.dumps(rows))
'''


def guest_meaning(key: str, code=None) -> str:
    """What a file the guest script showed means, in the learner's language (unknown keys as they are)."""
    if key == "events-after":
        return say("after it grew past 32 MiB: max = times the limit was hit, oom_kill = processes killed (exit "
                   "code {code} = 128 + SIGKILL)", code=code)
    meanings = {
        "controllers": say("controllers this kernel offers at the root of the one tree"),
        "root-subtree": say("controllers the root hands down to its children"),
        "teachdock-subtree": say("the runtime switched these on for the containers below"),
        "pid1-cgroup": say("the container's PID 1: one line, 0::<path>, in the one tree"),
        "memory.max": say("memory=\"32m\" in bytes; v1 called this memory.limit_in_bytes"),
        "pids.max": say("pids_limit=20: fork() fails beyond it"),
        "cpu.max": say("cpus=0.5: 50 ms of CPU time in every 100 ms period (quota period)"),
        "events-before": say("while the container waits: nothing has happened yet"),
    }
    return meanings.get(key, key)


def host_cgroup_sentence(root: str = "/sys/fs/cgroup") -> str:
    """One sentence for the learner: which cgroup version this machine uses."""
    try:
        version = detect_version(root)
    except TeachdockError as error:
        return say("This machine has no usable cgroup filesystem: {error}", error=error)
    if version == "v2":
        return say("This machine uses cgroup v2: one tree at /sys/fs/cgroup, the same files as in the VM below "
                   "(which you can skip).")
    return say("This machine uses cgroup v1: one tree per controller (/sys/fs/cgroup/memory, .../cpu, .../pids). "
               "Most current distributions use v2; show_v2_in_vm() shows its files live in a tiny VM.")


@dataclass
class V2Demo:
    """What the VM showed: rows of (file, content, meaning), and how long it took."""

    rows: list[tuple[str, str, str]]
    kernel: str = ""
    seconds: float = 0.0

    def table(self) -> TextAndHTML:
        html_rows, lines = [], []
        for path, content, meaning in self.rows:
            html_rows.append(
                f"<tr><td style='text-align:left'><code>{escape(path)}</code></td>"
                f"<td style='text-align:left'><code>{escape(content).replace(chr(10), '<br>')}</code></td>"
                f"<td style='text-align:left'>{escape(meaning)}</td></tr>")
            lines.append(f"{path}\n    {content.replace(chr(10), ' | ')}\n    ({meaning})")
        caption = say("cgroup v2 in a VM (kernel {kernel}, {seconds:.0f} s)", kernel=self.kernel, seconds=self.seconds)
        head = "".join(f"<th style='text-align:left'>{escape(h)}</th>"
                       for h in (say("cgroup file"), say("what the file holds"), say("what it means")))
        html = (f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(html_rows)}</tbody></table>")
        return TextAndHTML(html, caption + "\n" + "\n".join(lines))

    def _repr_html_(self) -> str:
        return self.table().html

    def __repr__(self) -> str:
        return self.table().text


def parse_demo_output(output: str) -> list[tuple[str, str, str]]:
    """The rows (file, content, meaning) from the guest script's marker line; VmError when it never printed one."""
    for line in output.splitlines():
        if line.startswith(f"{MARKER} "):
            return [(path, content, guest_meaning(key, **(values[0] if values else {})))
                    for path, content, key, *values in json.loads(line[len(MARKER) + 1:])]
    raise VmError(say("the VM did not print the cgroup files; its last lines were:\n{lines}",
                      lines="\n".join(output.strip().splitlines()[-15:])))


def show_v2_in_vm(timeout: float = 120) -> V2Demo:
    """Boot the VM, start one limited container there, and return the v2 files it showed.

    Raises QemuNotFound or KernelNotFound (with what to install) when the VM cannot run.
    """
    started = time.monotonic()
    package_parent = Path(teachdock.__file__).resolve().parent.parent  # shared read-only at /project
    result = run_in_guest("python3 /teachdock/show_v2.py", share=package_parent, timeout=timeout,
                          files={"teachdock/show_v2.py": GUEST_SCRIPT.encode()})
    rows = parse_demo_output(result.output)
    if result.status != 0:
        raise VmError(say("the script in the VM ended with status {status}:\n{output}", status=result.status,
                          output=result.output[-2000:]))
    return V2Demo(rows, kernel=result.vm.kernel_release, seconds=time.monotonic() - started)
