"""Chapter 01: the system calls of one shell command, on the host and in a container, by strace.

The kernel is not the operating system: a program asks the kernel for everything through system
calls, and strace(1) prints each one. ``trace_on_host()`` traces ``busybox sh -c COMMAND`` as a
plain process. ``trace_in_container()`` traces a Python process that calls
``teachdock.runtime.run()`` with the same command, following every child (``strace -f``), and
keeps only the calls made from the container's ``execve`` of busybox on: the runtime's own calls
(namespaces, mounts, cgroup) come before that and are not the command's. ``compare()`` lines the
two up call by call; ``plot_syscall_counts()`` draws them.

``parse_strace()`` and ``command_calls()`` are pure, so they are tested without strace or root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from teachdock.lab.common.language import say
from teachdock.lab.virtualization.measurements import BUSYBOX, COLOURS

TRACED_COMMAND = "uname -n; cat /proc/version | wc -c"  # same work on both sides, no writes

# "1234 openat(AT_FDCWD, ...) = 3", "1234 wait4(-1,  <unfinished ...>", "1234 <... wait4 resumed>...) = 5"
LINE = re.compile(r"^(?P<pid>\d+)\s+(?:(?P<name>\w+)\(|<\.\.\. (?P<resumed>\w+) resumed>)(?P<rest>.*)$")
# "= 2 /* 23650 in strace's PID NS */": a PID seen inside the container, and the same one on the host
RESULT = re.compile(r"\)\s+=\s+(?P<value>-?\d+|\?)(?:\s+/\* (?P<host>\d+) in strace's PID NS \*/)?")
FORKS = {"clone", "clone3", "fork", "vfork"}

# Run by the traced Python: the same command in a teachdock container, output passed through.
RUN_IN_CONTAINER = """\
import sys
from teachdock.runtime import run
result = run(sys.argv[2:], rootfs=sys.argv[1], timeout=30)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
sys.exit(result.exit_code)
"""


class StraceUnavailable(RuntimeError):
    """strace(1) is not installed (Debian: apt-get install strace), or may not trace here (ptrace refused)."""


@dataclass(frozen=True)
class Call:
    """One system call as strace printed it: who made it, its name, and its first line."""

    pid: int
    name: str
    line: str
    result: str | None  # the return value ("0", "-1", "?"; a PID as the host sees it), None when unfinished


@dataclass
class Trace:
    """The calls one command made, in order, with the command's output."""

    where: str  # "host" or "container"
    calls: list[Call]
    output: str  # what it printed, stdout then stderr
    exit_code: int = 0

    def counts(self) -> Counter:
        return Counter(call.name for call in self.calls)

    def names(self) -> set[str]:
        return set(self.counts())


def parse_strace(text: str) -> list[Call]:
    """The calls in ``strace -f`` output, one per call: an unfinished call is counted where it
    starts and its "resumed" line only completes its result; signals and exits are skipped."""
    calls: list[Call] = []
    open_calls: dict[int, int] = {}  # pid -> index of its unfinished call
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue  # "--- SIGCHLD ...", "+++ exited with 0 +++"
        pid, rest = int(match["pid"]), match["rest"]
        result = RESULT.search(rest)
        value = (result["host"] or result["value"]) if result else None
        if match["resumed"]:
            index = open_calls.pop(pid, None)
            if index is not None and calls[index].name == match["resumed"]:
                calls[index] = Call(pid, calls[index].name, calls[index].line, value)
            continue
        if rest.rstrip().endswith("<unfinished ...>"):
            open_calls[pid] = len(calls)
        calls.append(Call(pid, match["name"], line, value))
    return calls


def command_execve(busybox: str = BUSYBOX) -> str:
    """How strace prints the start of ``busybox sh -c ...``: the command's own execve."""
    return f'execve("{busybox}", ["{busybox}", "sh", "-c", '


def command_calls(calls: list[Call], marker: str | None = None) -> list[Call]:
    """The calls of the command: from the successful ``execve`` whose arguments hold ``marker``
    on, in that process and every process it forked; everything before it (strace's own start,
    the runtime's Python) is left out."""
    marker = marker or command_execve()
    start = next((index for index, call in enumerate(calls)
                  if call.name == "execve" and marker in call.line and call.result == "0"), None)
    if start is None:
        raise ValueError(say("no successful call starting {marker}... in the trace: did the command start?",
                             marker=marker))
    children: dict[int, int] = {}  # child pid -> parent pid, from every fork's return value
    for call in calls:
        if call.name in FORKS and call.result not in (None, "?") and int(call.result) > 0:
            children[int(call.result)] = call.pid
    ours = {calls[start].pid}
    changed = True
    while changed:  # the command's processes: its own and its descendants'
        before = len(ours)
        ours |= {child for child, parent in children.items() if parent in ours}
        changed = len(ours) != before
    return [call for call in calls[start:] if call.pid in ours]


def _strace(args: list[str], trace_file: Path) -> tuple[int, str]:
    """Run ``args`` under ``strace -f``; (its exit code, its output). A failing command is traced too."""
    strace = shutil.which("strace")
    if strace is None:
        raise StraceUnavailable(say("strace is not installed here (Debian: apt-get install strace)"))
    done = subprocess.run([strace, "-f", "-qq", "--pidns-translation", "-o", str(trace_file), "--", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    if not trace_file.exists() or not trace_file.stat().st_size:  # e.g. ptrace refused in a container
        raise StraceUnavailable(say("strace could not trace here ({code}): {stderr}", code=done.returncode,
                                    stderr=done.stderr.strip()[-500:]))
    return done.returncode, done.stdout + done.stderr


def trace_on_host(command: str = TRACED_COMMAND, busybox: str = BUSYBOX) -> Trace:
    """``busybox sh -c COMMAND`` as a plain process, every call traced."""
    with tempfile.TemporaryDirectory(prefix="td-strace-") as scratch:
        trace_file = Path(scratch) / "host.trace"
        exit_code, output = _strace([busybox, "sh", "-c", command], trace_file)
        calls = parse_strace(trace_file.read_text())
    return Trace("host", command_calls(calls, command_execve(busybox)), output, exit_code)


def trace_in_container(rootfs, command: str = TRACED_COMMAND) -> Trace:
    """The same command in a container made by ``run()``, traced from the host with ``strace -f``."""
    with tempfile.TemporaryDirectory(prefix="td-strace-") as scratch:
        trace_file = Path(scratch) / "container.trace"
        exit_code, output = _strace([sys.executable, "-c", RUN_IN_CONTAINER, str(rootfs), BUSYBOX, "sh", "-c",
                                     command], trace_file)
        calls = parse_strace(trace_file.read_text())
    return Trace("container", command_calls(calls), output, exit_code)


def compare(host: Trace, container: Trace) -> list[tuple[str, int, int]]:
    """(call, times on the host, times in the container), most frequent first."""
    host_counts, container_counts = host.counts(), container.counts()
    names = sorted(host_counts.keys() | container_counts.keys(),
                   key=lambda name: (-(host_counts[name] + container_counts[name]), name))
    return [(name, host_counts[name], container_counts[name]) for name in names]


def overlap(host: Trace, container: Trace) -> float:
    """The share of distinct calls both made (Jaccard index): 1.0 is the very same set."""
    both, either = host.names() & container.names(), host.names() | container.names()
    return len(both) / len(either) if either else 1.0


def plot_syscall_counts(host: Trace, container: Trace):
    """Side-by-side bars: how often the command made each system call, on the host and in the container."""
    from matplotlib.figure import Figure

    rows = compare(host, container)
    if not rows:
        raise ValueError(say("nothing to draw: neither trace holds a call"))
    fig = Figure(figsize=(8, 0.25 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    positions = range(len(rows))
    ax.barh([p - 0.2 for p in positions], [row[1] for row in rows], height=0.4,
            color=COLOURS["process"], label=say("host ({count} calls)", count=len(host.calls)))
    ax.barh([p + 0.2 for p in positions], [row[2] for row in rows], height=0.4,
            color=COLOURS["container"], label=say("container ({count} calls)", count=len(container.calls)))
    ax.set_yticks(list(positions), [row[0] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(say("times the command made the call"))
    ax.set_title(say("One shell command's system calls, traced by strace on this machine"))
    ax.legend(loc="lower right")
    return fig
