"""What a process can see: the host's view and a container's view, side by side.

The same questions are asked on both sides: what is my PID, who is PID 1, which processes
exist, what is my hostname, how many mounts do I have, which network interfaces, which user
am I. On the host we read /proc directly; inside a container a small shell script
(PROBE_SCRIPT) asks the same things and prints them as ``key=value`` lines, which
``container_view()`` reads back. Both answers come from the kernel, through /proc: the
differences are exactly what the namespaces hide.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from html import escape
from pathlib import Path

from teachdock.lab.common.language import say

# Runs inside the container under busybox sh. Each line asks the kernel one question.
PROBE_SCRIPT = """\
echo "pid=$$"
echo "pid1=$(cat /proc/1/comm)"
echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "mounts=$(wc -l < /proc/self/mountinfo)"
echo "interfaces=$(cut -s -d: -f1 /proc/net/dev | tr -d ' ' | tr '\\n' ' ')"
echo "--- ps"
ps
"""


@dataclass
class View:
    """The world as one process sees it."""

    who: str  # "host" or "container"
    own_pid: int  # the PID this process sees for itself
    pid1: str  # the command name of PID 1, as this process sees it
    processes: list[tuple[int, str]]  # (pid, command) of every visible process
    hostname: str
    mounts: int  # lines of /proc/self/mountinfo
    interfaces: list[str]  # network interfaces, from /proc/net/dev
    uid: int


def interfaces_from_net_dev(text: str) -> list[str]:
    """Interface names from /proc/net/dev (two header lines, then "  name: counters...")."""
    return [line.split(":", 1)[0].strip() for line in text.splitlines() if ":" in line]


def host_view() -> View:
    """What this notebook's own process sees, read straight from /proc."""
    processes = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:  # the process ended while we looked
                continue
            processes.append((int(entry), command))
    processes.sort()
    return View(
        who="host",
        own_pid=os.getpid(),
        pid1=Path("/proc/1/comm").read_text().strip(),
        processes=processes,
        hostname=socket.gethostname(),
        mounts=len(Path("/proc/self/mountinfo").read_text().splitlines()),
        interfaces=interfaces_from_net_dev(Path("/proc/net/dev").read_text()),
        uid=os.getuid(),
    )


def parse_ps(text: str) -> list[tuple[int, str]]:
    """busybox ps output: a header ("PID USER COMMAND", some builds add TIME), then one line each.

    The command is last and may contain spaces, so split each line into as many fields as
    the header has and keep the rest whole.
    """
    lines = text.splitlines()
    if not lines:
        return []
    columns = len(lines[0].split())
    processes = []
    for line in lines[1:]:
        fields = line.split(None, columns - 1)
        if len(fields) == columns and fields[0].isdigit():
            processes.append((int(fields[0]), fields[-1]))
    return processes


def container_view(probe_output: str) -> View:
    """Read back what PROBE_SCRIPT printed inside a container."""
    head, _, ps_text = probe_output.partition("--- ps\n")
    values = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    missing = {"pid", "pid1", "hostname", "uid", "mounts", "interfaces"} - values.keys()
    if missing:
        raise ValueError(f"probe output lacks {', '.join(sorted(missing))}: did PROBE_SCRIPT run? Got:\n{probe_output}")
    return View(
        who="container",
        own_pid=int(values["pid"]),
        pid1=values["pid1"],
        processes=parse_ps(ps_text),
        hostname=values["hostname"],
        mounts=int(values["mounts"]),
        interfaces=values["interfaces"].split(),
        uid=int(values["uid"]),
    )


def comparison_rows(host: View, container: View) -> list[tuple[str, str, str]]:
    """(question, host's answer, container's answer) for the table."""
    return [
        (say("my own PID"), str(host.own_pid), str(container.own_pid)),
        (say("PID 1 is"), host.pid1, container.pid1),
        (say("processes I can see"), str(len(host.processes)), str(len(container.processes))),
        (say("hostname"), host.hostname, container.hostname),
        (say("mounts I can see"), str(host.mounts), str(container.mounts)),
        (say("network interfaces"), " ".join(host.interfaces), " ".join(container.interfaces)),
        (say("user id"), str(host.uid), str(container.uid)),
    ]


class TextAndHTML:
    """A tiny displayable: Jupyter shows _repr_html_, a terminal shows the text."""

    def __init__(self, html: str, text: str):
        self.html, self.text = html, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def compare_table(host: View, container: View) -> TextAndHTML:
    """The two views as a table; rows whose answers differ are highlighted."""
    rows, text_rows = [], []
    for question, mine, theirs in comparison_rows(host, container):
        style = ' style="background:#fff1cc"' if mine != theirs else ""
        rows.append(
            f"<tr{style}><td style='text-align:left'>{escape(question)}</td>"
            f"<td style='text-align:left'><code>{escape(mine)}</code></td>"
            f"<td style='text-align:left'><code>{escape(theirs)}</code></td></tr>"
        )
        text_rows.append(f"{question:<20} {mine:<30} {theirs}")
    html = (
        f"<table><thead><tr><th style='text-align:left'>{escape(say('question'))}</th>"
        f"<th style='text-align:left'>{escape(say('host (this notebook)'))}</th>"
        f"<th style='text-align:left'>{escape(say('container'))}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<small>{escape(say('Highlighted: the answers differ.'))}</small>"
    )
    text = "\n".join([f"{say('question'):<20} {say('host'):<30} {say('container')}"] + text_rows)
    return TextAndHTML(html, text)


def plot_comparison(host: View, container: View):
    """Bar chart: how many processes, mounts and interfaces each side can see.

    Built with matplotlib's object API (no pyplot), so returning it from a cell shows it once.
    """
    from matplotlib.figure import Figure

    panels = [
        (say("processes I can see"), len(host.processes), len(container.processes)),
        (say("mounts I can see"), host.mounts, container.mounts),
        (say("network interfaces"), len(host.interfaces), len(container.interfaces)),
    ]
    colours = ["#0072B2", "#E69F00"]  # Okabe-Ito blue (host) and orange (container)
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    fig.suptitle(say("Same kernel, two views: what the host and the container can see"))
    for ax, (title, on_host, in_container) in zip(fig.subplots(1, 3), panels):
        bars = ax.bar([say("host"), say("container")], [on_host, in_container], color=colours, width=0.6)
        ax.bar_label(bars, padding=2)
        ax.set_title(title)
        ax.margins(y=0.2)
        ax.set_yticks([])
        for spine in ("top", "right", "left"):
            ax.spines[spine].set_visible(False)
    return fig


def busybox_rootfs(progress=None) -> Path:
    """The busybox root filesystem the chapters run containers in; built once if missing."""
    from teachdock.image.busybox import build_busybox_rootfs
    from teachdock.paths import default_rootfs_path

    path = default_rootfs_path()
    if not (path / "bin" / "busybox").exists() and progress is None:
        progress = print  # the first build says what it does
    return build_busybox_rootfs(path, progress=progress)
