"""The virtualization chapter: a process, a container and a tiny VM, measured side by side.

Four parts, in the order the notebook uses them:

1. ``plot_stacks()`` draws bare metal, type-1 and type-2 hypervisors and containers as stacks
   of boxes (hardware, kernels, hypervisor, apps), from the data in ``ARCHITECTURES``.
2. One CPU-bound workload, ``loop_script()``: a busybox ``sh`` arithmetic loop that times itself
   with its own clock (``$EPOCHREALTIME``) and reports its own peak memory (``VmHWM``). The same
   busybox binary runs it on the host, in a container and in the VM, so the only thing that
   changes is *where* it runs. ``Measurements`` collects the figures; ``plot_measurements()``
   and ``plot_apparent_speed()`` draw them.
3. Virtualenv against container: the same questions (``PY_PROBE`` in Python, ``SH_PROBE`` in
   busybox sh, which has no Python) asked in this notebook's Python, in a fresh virtualenv and in
   a container; ``isolation_table()`` shows what each one changed.
4. Exercise checks. As in ``teachdock.lab.checks``, a pure ``judge_*`` function knows the usual
   mistakes, and a ``check_*`` function feeds it the truth observed on this machine.

Heavy libraries (matplotlib, ipywidgets) are imported only by the functions that draw.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from teachdock.lab.checks import NOT_ANSWERED, CheckResult, as_number, not_answered
from teachdock.lab.views import TextAndHTML

# Okabe-Ito colours, readable by colour-blind learners; host blue and container orange as in views.py.
COLOURS = {"process": "#0072B2", "container": "#E69F00", "VM": "#CC79A7"}
CONTENDERS = ("process", "container", "VM")

# ---- 1. four ways to run a program -----------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One layer of a stack: ``x`` and ``width`` in column units (0..1), ``level`` counts from the hardware."""

    x: float
    width: float
    level: int
    label: str
    kind: str  # hardware, kernel, hypervisor, app, container; "vm" outlines one guest
    height: int = 1  # in levels


@dataclass(frozen=True)
class Architecture:
    title: str
    examples: str
    boxes: tuple[Box, ...]
    kernels: str  # how many kernels run, said in words


ARCHITECTURES = (
    Architecture("bare metal", "one OS on the machine", (
        Box(0, 1, 0, "hardware", "hardware"),
        Box(0, 1, 1, "kernel", "kernel"),
        Box(0, 0.5, 2, "app", "app"),
        Box(0.5, 0.5, 2, "app", "app"),
    ), "1 kernel"),
    Architecture("type-1 hypervisor", "Xen, VMware ESXi, Hyper-V", (
        Box(0, 1, 0, "hardware", "hardware"),
        Box(0, 1, 1, "hypervisor", "hypervisor"),
        Box(0, 0.5, 2, "guest\nkernel", "kernel"),
        Box(0.5, 0.5, 2, "guest\nkernel", "kernel"),
        Box(0, 0.5, 3, "app", "app"),
        Box(0.5, 0.5, 3, "app", "app"),
        Box(0, 0.5, 2, "VM", "vm", height=2),
        Box(0.5, 0.5, 2, "VM", "vm", height=2),
    ), "hypervisor + 2 guest kernels"),
    Architecture("type-2 hypervisor", "QEMU, VirtualBox, VMware Workstation", (
        Box(0, 1, 0, "hardware", "hardware"),
        Box(0, 1, 1, "host kernel", "kernel"),
        Box(0, 0.7, 2, "hypervisor\n(a process)", "hypervisor"),
        Box(0.7, 0.3, 2, "app", "app"),
        Box(0, 0.35, 3, "guest\nkernel", "kernel"),
        Box(0.35, 0.35, 3, "guest\nkernel", "kernel"),
        Box(0, 0.35, 4, "app", "app"),
        Box(0.35, 0.35, 4, "app", "app"),
        Box(0, 0.35, 3, "VM", "vm", height=2),
        Box(0.35, 0.35, 3, "VM", "vm", height=2),
    ), "1 host + 2 guest kernels"),
    Architecture("containers", "Docker, podman, teachdock", (
        Box(0, 1, 0, "hardware", "hardware"),
        Box(0, 1, 1, "host kernel\nnamespaces + cgroups", "kernel"),
        Box(0, 0.5, 2, "app +\nits files", "container"),
        Box(0.5, 0.5, 2, "app +\nits files", "container"),
    ), "1 kernel, shared"),
)

KIND_STYLE = {  # fill colour, edge colour, line style
    "hardware": ("#d9d9d9", "#555555", "-"),
    "kernel": ("#cde6f7", "#0072B2", "-"),
    "hypervisor": ("#f6d5c1", "#D55E00", "-"),
    "app": ("#c8eadf", "#009E73", "-"),
    "container": ("#fbe7bf", "#E69F00", "--"),
    "vm": ("none", "#CC79A7", "--"),
}


def plot_stacks(architectures=ARCHITECTURES):
    """The four architectures as stacks of boxes, hardware at the bottom.

    Built with matplotlib's object API (no pyplot), so returning it from a cell shows it once.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, len(architectures))
    top = max(box.level + box.height for arch in architectures for box in arch.boxes)
    for ax, arch in zip(axes, architectures):
        for box in arch.boxes:
            fill, edge, style = KIND_STYLE[box.kind]
            if box.kind == "vm":  # an outline around the guest's kernel and apps
                ax.add_patch(FancyBboxPatch(
                    (box.x + 0.005, box.level + 0.01), box.width - 0.01, box.height - 0.02,
                    boxstyle="round,pad=0,rounding_size=0.06", facecolor=fill, edgecolor=edge,
                    linestyle=style, linewidth=1.4))
                ax.text(box.x + box.width / 2, box.level + box.height + 0.02, box.label, ha="center",
                        va="bottom", fontsize=8, color=edge, fontweight="bold")
                continue
            ax.add_patch(FancyBboxPatch(
                (box.x + 0.03, box.level + 0.08), box.width - 0.06, box.height - 0.16,
                boxstyle="round,pad=0,rounding_size=0.05", facecolor=fill, edgecolor=edge,
                linestyle=style, linewidth=1.6))
            ax.text(box.x + box.width / 2, box.level + box.height / 2, box.label, ha="center", va="center",
                    fontsize=8.5, linespacing=1.1)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.45, top + 0.55)
        ax.set_axis_off()
        ax.set_title(arch.title, fontsize=11, fontweight="bold")
        ax.text(0.5, top + 0.55, arch.examples, ha="center", va="top", fontsize=8.5, color="#444444",
                style="italic")
        ax.text(0.5, -0.1, arch.kernels, ha="center", va="top", fontsize=9, color="#0072B2")
    fig.suptitle("Four ways to run a program: what sits between the app and the hardware", fontsize=12)
    return fig


# ---- 2. the workload and the measurements ----------------------------------------------------

# Only shell builtins inside the timed part: arithmetic, [ and read run inside busybox sh itself,
# so the loop costs the same wherever that one binary runs. The last loop reads the shell's own
# peak memory ("VmHWM", high water mark, in KiB) from /proc, again without starting a process.
LOOP_TEMPLATE = """\
i=0
start=$EPOCHREALTIME
while [ $i -lt {iterations} ]; do i=$((i + 1)); done
end=$EPOCHREALTIME
while read -r key value unit; do [ "$key" = VmHWM: ] && peak=$value; done < /proc/$$/status
echo "loop start=$start end=$end peak_kib=$peak"
"""

LOOP_ITERATIONS = 100_000  # about 0.1 s on the host here; about 1.5 s under TCG emulation


def loop_script(iterations: int = LOOP_ITERATIONS) -> str:
    """The busybox sh workload: count to ``iterations``, print its own timing and peak memory."""
    if not isinstance(iterations, int) or iterations <= 0:
        raise ValueError(f"iterations must be a positive whole number, not {iterations!r}")
    return LOOP_TEMPLATE.format(iterations=iterations)


@dataclass(frozen=True)
class LoopResult:
    seconds: float  # by the clock of whoever ran it (host, container or guest)
    peak_rss_bytes: int  # the shell's own VmHWM


def parse_loop_output(text: str) -> LoopResult:
    """Read the ``loop start=... end=... peak_kib=...`` line that loop_script() prints."""
    for line in text.splitlines():
        if line.startswith("loop "):
            values = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            try:
                seconds = float(values["end"]) - float(values["start"])
                peak = int(values["peak_kib"]) * 1024
            except (KeyError, ValueError):
                break
            return LoopResult(round(seconds, 6), peak)
    raise ValueError(f"no complete 'loop start=... end=... peak_kib=...' line in the output:\n{text}")


@dataclass
class Measurements:
    """Everything measured on this machine, per contender ("process", "container", "VM").

    A contender that could not be measured (no root, no QEMU) has no entry and a line in
    ``missing`` saying why; the plots leave its place empty with that reason.
    """

    iterations: int = LOOP_ITERATIONS
    startup: dict[str, list[float]] = field(default_factory=dict)  # seconds
    memory: dict[str, list[int]] = field(default_factory=dict)  # peak bytes
    compute: dict[str, list[float]] = field(default_factory=dict)  # loop seconds, own clock
    missing: dict[str, str] = field(default_factory=dict)
    gaps: dict[str, str] = field(default_factory=dict)  # "memory:container" -> why that one figure is absent
    container_ids: list[str] = field(default_factory=list)
    vm_runs: list = field(default_factory=list)  # teachdock.vm.VmResult, one per boot

    def add(self, who: str, *, startup: float | None = None, memory: int | None = None,
            compute: float | None = None) -> None:
        for table, value in ((self.startup, startup), (self.memory, memory), (self.compute, compute)):
            if value is not None:
                table.setdefault(who, []).append(value)
        self.missing.pop(who, None)

    def median(self, table: str, who: str) -> float | None:
        values = getattr(self, table).get(who)
        return statistics.median(values) if values else None

    def fastest(self, table: str, who: str) -> float | None:
        values = getattr(self, table).get(who)
        return min(values) if values else None

    def speed_percent(self, who: str) -> float | None:
        """How fast the loop ran, in percent of the host's speed (100 = just as fast).

        From the fastest run on each side: other programs on the machine can only slow a
        CPU-bound run down, never speed it up, so the fastest run is the one least disturbed.
        """
        host, there = self.fastest("compute", "process"), self.fastest("compute", who)
        if host is None or there is None:
            return None
        return 100 * host / there

    def summary(self) -> str:
        """The figures as a small table, for printing: median start-up, highest peak, fastest loop."""
        lines = [f"Measured on this machine ({socket.gethostname()}, {os.cpu_count()} CPUs, "
                 f"kernel {os.uname().release}), loop of {self.iterations:,} iterations:",
                 f"{'':<11}{'start-up (median)':<30}{'peak memory':<13}{'loop (fastest run)':<28}speed"]
        for who in CONTENDERS:
            if who in self.missing:
                lines.append(f"{who:<11}not measured: {self.missing[who]}")
                continue
            startup, memory, loop = self.startup.get(who), self.memory.get(who), self.compute.get(who)
            speed = self.speed_percent(who)
            lines.append(f"{who:<11}"
                         f"{_spread(startup, statistics.median) if startup else '-':<30}"
                         f"{_format_bytes(max(memory)) if memory else '-':<13}"
                         f"{_spread(loop, min) if loop else '-':<28}"
                         f"{f'{speed:.0f} %' if speed is not None else '-'}")
        return "\n".join(lines)


def _format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.1f} ms"


def _format_bytes(count: float) -> str:
    return f"{count / 2**20:.1f} MiB"


def _spread(values: list[float], pick) -> str:
    """'24 ms (19–31 ms, 7 runs)': one figure, then the range, so the noise stays visible."""
    chosen = _format_seconds(pick(values))
    if len(values) == 1:
        return f"{chosen} (1 run)"
    low, high = _format_seconds(min(values)), _format_seconds(max(values))
    low_number, low_unit = low.split()
    if low_unit == high.split()[1]:
        low = low_number  # "19–31 ms" rather than "19 ms–31 ms"
    return f"{chosen} ({low}–{high}, {len(values)} runs)"


def time_host_process(args: list[str]) -> tuple[float, str]:
    """Run a plain host process; (wall-clock seconds from spawn to exit, its stdout)."""
    started = time.perf_counter()
    completed = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {completed.returncode}: {completed.stderr.strip()}")
    return elapsed, completed.stdout


BUSYBOX = "/bin/busybox"  # the same static binary the container's rootfs and the VM's initramfs hold


def measure_process(m: Measurements, repeats: int = 7, busybox: str = BUSYBOX) -> None:
    """Start-up of `busybox true` and the loop in `busybox sh`, as ordinary host processes."""
    script = loop_script(m.iterations)
    for _ in range(repeats):
        seconds, _ = time_host_process([busybox, "true"])
        m.add("process", startup=seconds)
    for _ in range(max(1, repeats // 2)):
        _, output = time_host_process([busybox, "sh", "-c", script])
        loop = parse_loop_output(output)
        m.add("process", memory=loop.peak_rss_bytes, compute=loop.seconds)


def measure_container(m: Measurements, rootfs, repeats: int = 7) -> None:
    """The same two things in teachdock containers; host and container runs take turns.

    Taking turns matters on a shared machine: a burst of load from a neighbour then slows
    both sides instead of only one. Memory is the container cgroup's peak (memory.max_usage_in_bytes
    on cgroup v1, memory.peak on v2): everything charged to the container, not one process.
    """
    from teachdock.runtime import run

    script = loop_script(m.iterations)
    for _ in range(repeats):
        started = time.perf_counter()
        result = run(["true"], rootfs=str(rootfs), timeout=30)
        elapsed = time.perf_counter() - started
        m.container_ids.append(result.id)
        if result.exit_code != 0:
            raise RuntimeError(f"`true` in a container exited with {result.exit_code}: {result.stderr.strip()}")
        m.add("container", startup=elapsed)
    for _ in range(max(1, repeats // 2)):
        _, output = time_host_process([BUSYBOX, "sh", "-c", script])  # the host's turn
        loop = parse_loop_output(output)
        m.add("process", memory=loop.peak_rss_bytes, compute=loop.seconds)
        result = run(["sh", "-c", script], rootfs=str(rootfs), timeout=60)
        m.container_ids.append(result.id)
        if result.exit_code != 0:
            raise RuntimeError(f"the loop in a container exited with {result.exit_code}: {result.stderr.strip()}")
        peak = result.metrics.memory_peak_bytes if result.metrics else None
        if peak is None:
            m.gaps["memory:container"] = "no cgroup (rootless)"
        m.add("container", memory=peak, compute=parse_loop_output(result.stdout).seconds)


def measure_vm(m: Measurements, boots: int = 1, timeout: float = 60) -> None:
    """Boot the tiny VM ``boots`` times, each running the loop once.

    Start-up is QEMU's start to the guest's "booted" line: the moment the guest could run a
    command. Memory is QEMU's peak resident set on the host (guest RAM it touched, QEMU itself,
    and under TCG its cache of translated code). Raises QemuNotFound / KernelNotFound when a
    part is missing: the caller says so and moves on.
    """
    from teachdock.vm import boot

    script = loop_script(m.iterations)
    for _ in range(boots):
        result = boot(script, timeout=timeout)
        m.vm_runs.append(result)
        if result.exit_status != 0:
            raise RuntimeError(f"the loop in the VM exited with {result.exit_status}: {result.output}")
        m.add("VM", startup=result.seconds_to_marker, memory=result.qemu_peak_rss_bytes,
              compute=parse_loop_output(result.output).seconds)


# ---- 2b. the figures -------------------------------------------------------------------------

PANELS = (  # (table, title, log scale); bars: median start-up, highest memory peak, fastest loop
    ("startup", "start-up (median, log scale)", True),
    ("memory", "peak memory (log scale)", True),
    ("compute", "CPU-bound loop (fastest run)", False),
)
METERS = {  # what each memory bar measures, written under its name
    "process": "shell's RSS",
    "container": "cgroup peak",
    "VM": "QEMU's RSS",
}


def plot_measurements(m: Measurements):
    """Three panels side by side: start-up, memory and compute of the three contenders.

    Bars: the median start-up, the highest memory peak, the fastest loop (see speed_percent);
    black dots are the single runs, so the noise is in plain view.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    positions = range(len(CONTENDERS))
    for ax, (table, title, log) in zip(axes, PANELS):
        shown = []
        for x, who in zip(positions, CONTENDERS):
            values = _panel_values(m, table, who)
            if not values:
                reason = m.gaps.get(f"{table}:{who}") or _short_reason(m.missing.get(who, ""))
                ax.text(x, 0.5, f"not measured\n({reason})" if reason else "not measured", ha="center",
                        va="center", fontsize=8, color="#777777", transform=ax.get_xaxis_transform())
                continue
            shown += values
            height = statistics.median(values) if table == "startup" else max(values)
            ax.bar(x, height, width=0.6, color=COLOURS[who], alpha=0.85)
            ax.plot([x] * len(values), values, "o", color="black", markersize=3, alpha=0.6, zorder=3)
            ax.annotate(_panel_label(table, height), (x, max(values)), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=9, fontweight="bold")
        ax.set_xticks(list(positions))
        if table == "memory":
            ax.set_xticklabels([f"{who}\n({METERS[who]})" for who in CONTENDERS], fontsize=9)
        else:
            ax.set_xticklabels(CONTENDERS)
        ax.set_title(title, fontsize=11)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
        if log:
            ax.set_yscale("log")
            if shown:
                ax.set_ylim(*_decades(min(shown), max(shown)))
        else:
            ax.axhline(100, color="#0072B2", linestyle=":", linewidth=1)
            ax.set_ylim(0, 130)
    axes[0].set_ylabel("seconds (start to ready)")
    axes[1].set_ylabel("MiB")
    axes[2].set_ylabel("% of the host's speed")
    fig.suptitle(f"Measured on this machine: one process, one container, one VM ({m.iterations:,}-step loop)",
                 fontsize=12)
    return fig


def _panel_values(m: Measurements, table: str, who: str) -> list[float]:
    if table == "startup":
        return list(m.startup.get(who, []))
    if table == "memory":
        return [value / 2**20 for value in m.memory.get(who, [])]
    host = m.fastest("compute", "process")
    if host is None:
        return []
    return [100 * host / seconds for seconds in m.compute.get(who, [])]


def _panel_label(table: str, value: float) -> str:
    if table == "startup":
        return _format_seconds(value)
    if table == "memory":
        return f"{value:.1f} MiB" if value < 100 else f"{value:.0f} MiB"
    return f"{value:.0f} %"


def _short_reason(reason: str) -> str:
    return "needs root" if "root" in reason else "see above" if reason else ""


def _decades(low: float, high: float) -> tuple[float, float]:
    """Log-axis limits on whole powers of ten, at least two decades, with room above for labels."""
    bottom = 10 ** math.floor(math.log10(low))
    if low / bottom < 3:  # a bar just above the axis' bottom would look empty
        bottom /= 10
    top = 10 ** math.ceil(math.log10(high * 4))
    return min(bottom, top / 100), top


def apparent_speed(job_seconds: float, startup: float, compute_percent: float = 100.0,
                   baseline_startup: float = 0.0) -> float:
    """Percent of host speed for a whole run: start-up included, compared with a plain process.

    A job that takes ``job_seconds`` as a plain process (which itself needs ``baseline_startup``
    to start) takes ``startup + job_seconds * 100 / compute_percent`` in the contender.
    """
    if job_seconds < 0 or startup < 0 or compute_percent <= 0:
        raise ValueError("job length and start-up must be >= 0 and the compute speed > 0")
    on_host = baseline_startup + job_seconds
    elsewhere = startup + job_seconds * 100 / compute_percent
    return 100 * on_host / elsewhere if elsewhere > 0 else 100.0


def break_even_seconds(startup: float, baseline_startup: float = 0.0, target_percent: float = 98.0) -> float:
    """How long a job must run (as a plain process) before a contender that computes at host speed
    but starts in ``startup`` reaches ``target_percent`` of host speed, start-up included.

    Solves (baseline + T) / (startup + T) = target for T.
    """
    share = target_percent / 100
    if not 0 < share < 1:
        raise ValueError("target_percent must be between 0 and 100")
    return max(0.0, (share * startup - baseline_startup) / (1 - share))


def plot_apparent_speed(m: Measurements, target_percent: float = 98.0):
    """Whole-run speed against job length: where a figure like "98 % of bare metal" comes from.

    The container is drawn computing at exactly host speed (what the loop showed, within the
    noise); the VM at the speed its loop measured.
    """
    from matplotlib.figure import Figure

    jobs = [10 ** (exponent / 20) for exponent in range(-60, 61)]  # 1 ms .. 1000 s
    baseline = m.median("startup", "process") or 0.0
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    for who in ("container", "VM"):
        startup = m.median("startup", who)
        if startup is None:
            continue
        speed = 100.0 if who == "container" else (m.speed_percent(who) or 100.0)
        ax.plot(jobs, [apparent_speed(job, startup, speed, baseline) for job in jobs], color=COLOURS[who],
                linewidth=2.2, label=f"{who}: starts in {_format_seconds(startup)}, computes at {speed:.0f} %")
    ax.axhline(target_percent, color="#555555", linestyle=":", linewidth=1)
    ax.text(1.2e-3, target_percent - 1.5, f'"{target_percent:.0f} % of bare metal"', va="top", fontsize=9,
            color="#555555")
    container_startup = m.median("startup", "container")
    if container_startup is not None:
        even = break_even_seconds(container_startup, baseline, target_percent)
        ax.axvline(even, color=COLOURS["container"], linestyle="--", linewidth=1)
        ax.annotate(f"container reaches {target_percent:.0f} %\nfor jobs of {_format_seconds(even)} or more",
                    (even, 50), xytext=(8, 0), textcoords="offset points", fontsize=9,
                    color="#8a5a00", va="center")
    loop = m.median("compute", "process")
    if loop is not None:
        ax.axvline(loop, color=COLOURS["process"], linestyle=":", linewidth=1)
        ax.annotate(f"our loop\n({_format_seconds(loop)})", (loop, 8), xytext=(-6, 0),
                    textcoords="offset points", ha="right", fontsize=9, color=COLOURS["process"])
    ax.set_xscale("log")
    ax.set_xlim(jobs[0], jobs[-1])
    ax.set_ylim(0, 105)
    ax.set_xlabel("length of the job as a plain process on the host (seconds, log scale)")
    ax.set_ylabel("% of host speed, start-up included")
    ax.set_title("The same work, start-up included: short jobs pay for the start, long jobs don't")
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    ax.legend(loc="center right", bbox_to_anchor=(1, 0.62), frameon=False, fontsize=9)
    return fig


def speed_sentence(m: Measurements, job_seconds: float) -> str:
    """What a job of this length costs in each contender, start-up included (for the widget)."""
    baseline = m.median("startup", "process") or 0.0
    parts = [f"A job that takes <b>{_format_seconds(job_seconds)}</b> as a plain process:"]
    for who in ("container", "VM"):
        startup = m.median("startup", who)
        if startup is None:
            parts.append(f"{who}: not measured")
            continue
        speed = 100.0 if who == "container" else (m.speed_percent(who) or 100.0)
        total = startup + job_seconds * 100 / speed
        percent = apparent_speed(job_seconds, startup, speed, baseline)
        parts.append(f"{who}: {_format_seconds(total)} in all, <b>{percent:.1f} %</b> of host speed")
    return "<br>".join(parts)


def speed_widget(m: Measurements):
    """A slider for the job length, and what it costs in a container and in the VM."""
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=1.0, base=10, min=-3, max=3, step=0.05,
                                    description="job (s)", readout_format=".3g",
                                    layout=widgets.Layout(width="480px"))
    text = widgets.HTML(speed_sentence(m, slider.value))

    def update(change):
        text.value = speed_sentence(m, change["new"])

    slider.observe(update, names="value")
    return widgets.VBox([slider, text])


# ---- 3. virtualenv against container ---------------------------------------------------------

# Both probes print the same key=value lines. Run with: PROBE MARKER_PATH NOTEBOOK_PID.
# The memory limit comes from the process's own cgroup (v1: the memory controller's line of
# /proc/self/cgroup; v2: the "0::" line), falling back to the cgroup mount's root, which is what
# a container sees when its cgroup is mounted at /sys/fs/cgroup.
PY_PROBE = r'''
import os, socket, sys

marker, notebook_pid = sys.argv[1], sys.argv[2]


def say(key, value):
    print(f"{key}={value}")


def memory_limit():
    lines = open("/proc/self/cgroup").read().splitlines()
    v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory"]
    if v1:
        candidates = [f"/sys/fs/cgroup/memory{v1[0]}/memory.limit_in_bytes",
                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    else:
        path = [line[3:] for line in lines if line.startswith("0::")][0]
        candidates = [f"/sys/fs/cgroup{path}/memory.max", "/sys/fs/cgroup/memory.max"]
    for candidate in candidates:
        try:
            return open(candidate).read().strip()
        except OSError:
            pass
    return "unknown"


try:
    from importlib import metadata
    packages = len({dist.metadata["Name"] for dist in metadata.distributions()})
except Exception:
    packages = "unknown"
try:
    import teachdock  # noqa: F401
    has_teachdock = "yes"
except ImportError:
    has_teachdock = "no"
pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
say("python", sys.prefix)
say("packages", packages)
say("teachdock", has_teachdock)
say("marker", "yes" if os.path.exists(marker) else "no")
say("processes", len(pids))
say("notebook_pid", "yes" if notebook_pid in pids else "no")
say("hostname", socket.gethostname())
say("interfaces", " ".join(sorted(line.split(":")[0].strip()
                                  for line in open("/proc/net/dev") if ":" in line)))
say("uid", os.getuid())
say("mount_ns", os.readlink("/proc/self/ns/mnt"))
say("mounts", len(open("/proc/self/mountinfo").read().splitlines()))
say("memory_limit", memory_limit())
'''

# The memory-limit part of SH_PROBE, on its own: it prints the limit of the cgroup the shell is in.
MEMORY_LIMIT_COMMAND = r'''
limit=unknown
cg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
if [ -n "$cg" ]; then
    files="/sys/fs/cgroup/memory$cg/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.limit_in_bytes"
else
    cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
    files="/sys/fs/cgroup$cg/memory.max /sys/fs/cgroup/memory.max"
fi
for f in $files; do
    if [ -r "$f" ]; then limit=$(cat "$f"); break; fi
done
echo "$limit"
'''.strip() + "\n"

SH_PROBE = r'''
echo "python=$(command -v python3 || echo none)"
echo "packages=none"
echo "teachdock=no"
if [ -e "$1" ]; then echo marker=yes; else echo marker=no; fi
echo "processes=$(ls /proc | grep -c '^[0-9]')"
if [ -d "/proc/$2" ]; then echo notebook_pid=yes; else echo notebook_pid=no; fi
echo "hostname=$(hostname)"
echo "interfaces=$(cut -s -d: -f1 /proc/net/dev | tr -d ' ' | sort | tr '\n' ' ')"
echo "uid=$(id -u)"
echo "mount_ns=$(readlink /proc/self/ns/mnt)"
echo "mounts=$(wc -l < /proc/self/mountinfo)"
echo "memory_limit=$(sh -c "$MEMORY_LIMIT_COMMAND")"
'''.strip() + "\n"

PROBE_KEYS = ("python", "packages", "teachdock", "marker", "processes", "notebook_pid", "hostname",
              "interfaces", "uid", "mount_ns", "mounts", "memory_limit")


def parse_probe(text: str) -> dict[str, str]:
    """The key=value lines either probe printed, checked for completeness."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in PROBE_KEYS:
            values[key] = value.strip()
    missing = [key for key in PROBE_KEYS if key not in values]
    if missing:
        raise ValueError(f"the probe did not report {', '.join(missing)}; it printed:\n{text}")
    return values


UNLIMITED_V1 = 2**62  # cgroup v1 writes "no limit" as a huge page-aligned number (0x7FFFFFFFFFFFF000)


def describe_memory_limit(raw: str) -> str:
    """'67108864' -> '64 MiB'; v1's huge number and v2's 'max' -> 'unlimited'."""
    if raw == "max":
        return "unlimited"
    try:
        number = int(raw)
    except ValueError:
        return raw
    if number >= UNLIMITED_V1:
        return "unlimited"
    return f"{number / 2**20:g} MiB"


def is_real_interpreter(path: str | os.PathLike) -> bool:
    """True for an executable ELF file; False for a wrapper script such as a pyenv shim.

    A pyenv shim is a bash script that finds the real interpreter on every start (about 150 ms
    here): fine for typing commands, wrong for timing or for making a virtualenv from.
    """
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF" and os.access(path, os.X_OK)
    except OSError:
        return False


def base_python() -> str:
    """The real interpreter under this notebook's Python (which may itself be a virtualenv)."""
    for candidate in (getattr(sys, "_base_executable", None), sys.executable, "/usr/bin/python3"):
        if candidate and is_real_interpreter(os.path.realpath(candidate)):
            return candidate
    raise RuntimeError("found no real Python interpreter (only wrapper scripts): install python3")


@contextmanager
def temporary_virtualenv(python: str | None = None) -> Iterator[Path]:
    """Create a fresh, empty virtualenv in a temporary directory; yield its python; remove it.

    ``--without-pip`` keeps it fast (about 50 ms instead of several seconds) and empty: not even
    pip is installed in it, so whatever it can import, it found outside its own site-packages.
    """
    python = python or base_python()
    directory = Path(tempfile.mkdtemp(prefix="teachdock-venv-"))
    try:
        subprocess.run([python, "-m", "venv", "--without-pip", str(directory / "venv")],
                       check=True, capture_output=True, text=True)
        yield directory / "venv" / "bin" / "python"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def marker_file() -> Iterator[Path]:
    """A file only the host's filesystem has: who can see it shares the host's files."""
    handle, name = tempfile.mkstemp(prefix="teachdock-marker-")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def probe_python(python: str | os.PathLike, marker: str | os.PathLike) -> dict[str, str]:
    """Run PY_PROBE with this interpreter, from an empty directory (so the cwd adds no packages)."""
    with tempfile.TemporaryDirectory(prefix="teachdock-probe-") as empty:
        script = Path(empty) / "probe.py"
        script.write_text(PY_PROBE)
        completed = subprocess.run([str(python), str(script), str(marker), str(os.getpid())], cwd=empty,
                                   capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the probe failed in {python}: {completed.stderr.strip()}")
    return parse_probe(completed.stdout)


def probe_container(rootfs, marker: str | os.PathLike, **options):
    """Run SH_PROBE in a fresh container; (its answers, the RunResult)."""
    from teachdock.runtime import run

    env = {"PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "MEMORY_LIMIT_COMMAND": MEMORY_LIMIT_COMMAND}
    result = run(["sh", "-c", SH_PROBE, "probe", str(marker), str(os.getpid())], rootfs=str(rootfs),
                 env=env, timeout=30, **options)
    if result.exit_code != 0:
        raise RuntimeError(f"the probe failed in the container ({result.exit_code}): {result.stderr.strip()}")
    return parse_probe(result.stdout), result


# (fact, how it is shown, the key that decides "same" or "different").
ISOLATION_ROWS = (
    ("Python packages", lambda p: _packages(p), "packages"),
    ("files (a marker file in the host's /tmp)", lambda p: "visible" if p["marker"] == "yes" else "not there",
     "marker"),
    ("processes", lambda p: f"{p['processes']} visible, the notebook "
                            f"{'among them' if p['notebook_pid'] == 'yes' else 'not among them'}", "notebook_pid"),
    ("hostname", lambda p: p["hostname"], "hostname"),
    ("network interfaces", lambda p: p["interfaces"] or "(none)", "interfaces"),
    ("mounts (mount namespace)", lambda p: f"{p['mounts']} in {p['mount_ns']}", "mount_ns"),
    ("memory limit", lambda p: describe_memory_limit(p["memory_limit"]), "memory_limit"),
    ("user id", lambda p: p["uid"], "uid"),
)

# The names learners may use for each fact in exercise 1 (lower case).
FACT_NAMES = {
    "packages": "Python packages", "python packages": "Python packages", "sys.path": "Python packages",
    "files": "files", "filesystem": "files", "processes": "processes", "pids": "processes",
    "hostname": "hostname", "network": "network interfaces", "network interfaces": "network interfaces",
    "interfaces": "network interfaces", "mounts": "mounts", "memory": "memory limit",
    "memory limit": "memory limit", "user": "user id", "uid": "user id", "user id": "user id",
}


def _packages(probe: dict[str, str]) -> str:
    if probe["python"] == "none":
        return "no Python at all"
    teachdock = "teachdock among them" if probe["teachdock"] == "yes" else "no teachdock"
    return f"{probe['packages']} ({teachdock}), in {probe['python']}"


def _fact_key(fact: str) -> str:
    """The short name of a row, as FACT_NAMES maps to it ('files (a marker...)' -> 'files')."""
    return fact.split(" (")[0]


def isolated_facts(host: dict[str, str], other: dict[str, str] | None) -> set[str]:
    """The facts (row names, short form) on which ``other`` differs from the host."""
    if other is None:
        return set()
    return {_fact_key(fact) for fact, _show, key in ISOLATION_ROWS if other[key] != host[key]}


def isolation_table(host: dict[str, str], venv: dict[str, str] | None,
                    container: dict[str, str] | None) -> TextAndHTML:
    """One row per fact; a cell is highlighted where the answer differs from this notebook's."""
    columns = [("this notebook's Python", host), ("a fresh virtualenv", venv), ("a container", container)]
    head = "".join(f"<th style='text-align:left'>{escape(name)}</th>" for name, _ in columns)
    rows, text_rows = [], []
    for fact, show, key in ISOLATION_ROWS:
        cells, texts = [], []
        for name, probe in columns:
            if probe is None:
                cells.append("<td style='text-align:left;color:#777'>not measured</td>")
                texts.append("not measured")
                continue
            shown = show(probe)
            differs = probe is not host and probe[key] != host[key]
            style = "text-align:left" + (";background:#fff1cc" if differs else "")
            cells.append(f"<td style='{style}'>{escape(shown)}</td>")
            texts.append(shown + (" *" if differs else ""))
        rows.append(f"<tr><td style='text-align:left'><b>{escape(fact)}</b></td>{''.join(cells)}</tr>")
        text_rows.append(f"{fact:<42} " + " | ".join(texts))
    html = (f"<table><thead><tr><th style='text-align:left'>question</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            "<small>Highlighted: different from this notebook's own answer, i.e. isolated.</small>")
    return TextAndHTML(html, "\n".join(text_rows) + "\n(* = different from this notebook's answer)")


# ---- 4. exercise checks ----------------------------------------------------------------------


# -- exercise 1: what does a virtualenv isolate? -------------------------------------------------


def _as_facts(answer) -> tuple[set[str], list[str]] | None:
    """The learner's words mapped to row names, and the words we did not understand."""
    if isinstance(answer, str):
        words = [word.strip() for word in answer.split(",")]
    else:
        try:
            words = [str(word).strip() for word in answer]
        except TypeError:
            return None
    facts, unknown = set(), []
    for word in words:
        if not word:
            continue
        fact = FACT_NAMES.get(word.lower())
        if fact is None:
            unknown.append(word)
        else:
            facts.add(_fact_key(fact))
    return facts, unknown


def judge_virtualenv_isolates(answer, host: dict[str, str], venv: dict[str, str],
                              container: dict[str, str] | None = None) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    parsed = _as_facts(answer)
    if parsed is None:
        return CheckResult(False, f'Answer with a list of names, like ["hostname", "files"] (you gave {answer!r}).')
    facts, unknown = parsed
    if unknown:
        names = ", ".join(sorted(set(FACT_NAMES.values())))
        return CheckResult(False, f"I don't know {', '.join(map(repr, unknown))}. Use the table's row names: {names}.")
    truth = isolated_facts(host, venv)
    if facts == truth:
        return CheckResult(True, f"Right: only {', '.join(sorted(truth))}. A virtualenv is a directory with its "
                                 "own site-packages and a pyvenv.cfg that tells Python to use it. It is an "
                                 "ordinary process of the host in every other way: same files, processes, "
                                 "network, hostname, limits and user.")
    if not facts:
        return CheckResult(False, "One row does differ for the virtualenv: look at what its Python can import.")
    wrong = sorted(facts - truth)
    if wrong:
        examples = []
        for fact, show, _key in ISOLATION_ROWS:
            if _fact_key(fact) in wrong:
                examples.append(f"{_fact_key(fact)}: the virtualenv answered {show(venv)!r}, like this notebook")
        from_container = container is not None and facts <= isolated_facts(host, container)
        lead = ("That is the container's list. " if from_container and len(facts) > 1 else "")
        return CheckResult(False, lead + "The virtualenv does not isolate " + "; ".join(examples) + ". "
                                  "No namespace and no cgroup is involved: it is a plain host process.")
    return CheckResult(False, f"Missing: {', '.join(sorted(truth - facts))}. Look for the highlighted cells in the "
                              "virtualenv's column.")


def check_virtualenv_isolates(answer, host: dict[str, str] | None = None, venv: dict[str, str] | None = None,
                              container: dict[str, str] | None = None) -> CheckResult:
    """Exercise: which facts does a virtualenv isolate? Probes now when no probe results are given."""
    if not_answered(answer):
        return NOT_ANSWERED
    if host is None or venv is None:
        try:
            with marker_file() as marker, temporary_virtualenv() as python:
                host = probe_python(sys.executable, marker)
                venv = probe_python(python, marker)
        except Exception as error:
            return CheckResult(False, f"Could not make a virtualenv to check your answer ({type(error).__name__}: "
                                      f"{error}).")
    return judge_virtualenv_isolates(answer, host, venv, container)


# -- exercise 2: a container with a 48 MiB memory limit ---------------------------------------------

EXERCISE_LIMIT = 48 * 2**20


def judge_memory_limit(answer, expected: int = EXERCISE_LIMIT) -> CheckResult:
    """``answer`` is the RunResult of a container that printed its own memory limit."""
    if not_answered(answer):
        return NOT_ANSWERED
    if not all(hasattr(answer, name) for name in ("exit_code", "stdout", "metrics", "oom_killed")):
        return CheckResult(False, "Put the RunResult in answer: answer = run([...], rootfs=rootfs, memory=...). "
                                  f"You gave a {type(answer).__name__}.")
    metrics = answer.metrics
    limit = metrics.memory_limit_bytes if metrics is not None else None
    if answer.oom_killed or answer.exit_code == 137:
        size = f" ({limit} bytes)" if limit else ""
        return CheckResult(False, f"The kernel killed the container for using too much memory: its limit{size} was "
                                  "tiny. A bare number means bytes; write \"48m\" (or 48 * 2**20).")
    if answer.exit_code != 0:
        return CheckResult(False, f"The container exited with {answer.exit_code}: {answer.stderr.strip()[:200]}")
    if limit is None:
        if metrics is None:
            return CheckResult(False, "This container had no cgroup to limit it (a rootless run?). Run it as root.")
        return CheckResult(False, "This container had no memory limit at all: pass memory=... to run().")
    printed = answer.stdout.strip().splitlines()[-1:] or [""]
    if printed[0] != str(limit) and describe_memory_limit(printed[0]) != describe_memory_limit(str(limit)):
        return CheckResult(False, "The limit is set, but the container did not print it. Run "
                                  "[\"sh\", \"-c\", MEMORY_LIMIT_COMMAND] so the container reads its own cgroup.")
    if limit == expected:
        return CheckResult(True, f"Right: {limit:,} bytes = 48 MiB, read by the container from its own cgroup "
                                 "(memory.limit_in_bytes on cgroup v1, memory.max on v2). The kernel enforces it "
                                 "on every process inside; a virtualenv has no such knob.")
    if abs(limit - 48 * 10**6) < 8192:
        return CheckResult(False, f"{limit:,} bytes is 48 MB in powers of ten, not 48 MiB. teachdock's \"m\", "
                                  "like Docker's, means 2**20 bytes: write \"48m\" or 48 * 2**20.")
    if abs(limit - 48 * 2**30) < 8192 or abs(limit - 48 * 2**10) < 8192:
        unit = "GiB" if limit > expected else "KiB"
        return CheckResult(False, f"That is 48 {unit}: check the unit letter (k, m or g).")
    return CheckResult(False, f"The container's limit is {limit:,} bytes ({limit / 2**20:g} MiB), not 48 MiB "
                              f"({expected:,} bytes).")


def check_memory_limit(answer) -> CheckResult:
    """Exercise: run a container limited to 48 MiB that prints the limit it sees from inside."""
    return judge_memory_limit(answer)


# -- exercise 3: how long must a job be to reach "98 % of bare metal"? ------------------------------


def judge_break_even(answer, container_startup: float, process_startup: float = 0.0) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    seconds = as_number(answer)
    if seconds is None:
        return CheckResult(False, f"Answer with a number of seconds, like 2.5 (you gave {answer!r}).")
    truth = break_even_seconds(container_startup, process_startup)
    simple = 49 * container_startup  # the same, ignoring the plain process's own start-up
    if seconds <= 0:
        return CheckResult(False, "A job of no length is all start-up: 0 % of host speed, not 98 %.")
    if abs(seconds - truth) <= 0.25 * truth or abs(seconds - simple) <= 0.25 * simple:
        return CheckResult(True, f"Right: about {_format_seconds(truth)}, i.e. 49 times the container's start-up "
                                 f"of {_format_seconds(container_startup)}. Start-up must be 2 % of the total, so the "
                                 "job must be 98 %: 49 times as long. Any shorter job shows less than 98 %.")
    if abs(seconds - truth * 1000) <= 0.25 * truth * 1000:
        return CheckResult(False, "That looks like milliseconds: the answer is in seconds.")
    if abs(seconds - container_startup) <= 0.3 * container_startup:
        return CheckResult(False, "A job as long as the start-up spends half its time starting: that is 50 %, "
                                  "not 98 %.")
    if seconds < container_startup:
        return CheckResult(False, "Shorter than the start-up itself: such a job spends most of its time starting. "
                                  "Did you divide where you should multiply? Start-up is 2 % of the total.")
    if abs(seconds - 99 * container_startup) <= 0.2 * 99 * container_startup:
        return CheckResult(False, "Close to 100 times the start-up: that gives 99 %. For 98 % the start-up "
                                  "is 2 parts in 100, so the job is 98 parts: 49 times the start-up.")
    return CheckResult(False, f"Not quite. Use the container's median start-up, {_format_seconds(container_startup)}: "
                              "for 98 % of host speed the start-up may take only 2 % of the whole run.")


def check_break_even(answer, m: Measurements | None = None) -> CheckResult:
    """Exercise: the job length at which the container reaches 98 % of host speed, start-up included."""
    if not_answered(answer):
        return NOT_ANSWERED
    startup = m.median("startup", "container") if m is not None else None
    if startup is None:
        return CheckResult(False, "The container's start-up was not measured (section 2 needs root), so there is "
                                  "nothing to check against. Use a start-up of 20 ms and work it out on paper.")
    return judge_break_even(answer, startup, m.median("startup", "process") or 0.0)


# -- exercise 4: predict the loop's speed under cpus=0.5 ---------------------------------------------

EXERCISE_CPUS = 0.5
EXERCISE_ITERATIONS = 400_000  # long enough (about 0.35 s here) to span several 100 ms quota periods


def judge_cpu_limit(answer, truth_percent: float, cpus: float = EXERCISE_CPUS) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    percent = as_number(answer)
    if percent is None:
        return CheckResult(False, f"Answer with a percentage, like 75 (you gave {answer!r}).")
    if abs(percent - truth_percent) <= 12:
        return CheckResult(True, f"Right: measured just now, {truth_percent:.0f} %. cpus={cpus} writes a CFS quota "
                                 f"({int(cpus * 100_000)} µs per 100,000 µs period: cpu.cfs_quota_us on cgroup v1, cpu.max on "
                                 "v2): the loop runs "
                                 "at full speed until the quota is used up, then waits for the next period. "
                                 "A limit, not an overhead.")
    if percent > 100:
        return CheckResult(False, "Percent of the host's speed: a limit can only make the loop slower, so the "
                                  "answer is below 100.")
    if percent >= 90:
        return CheckResult(False, f"Without a limit the loop runs at host speed, but cpus={cpus} caps it: for each "
                                  f"100 ms period the kernel lets it run {int(cpus * 100)} ms, then pauses it "
                                  f"(measured: {truth_percent:.0f} %).")
    if abs(percent - cpus) < 0.01 or percent < 5:
        return CheckResult(False, "Answer in percent (e.g. 75 for three quarters), not as a fraction.")
    return CheckResult(False, f"Not quite: {percent:.0f} %. The loop uses one CPU fully; how much of one CPU "
                              f"does cpus={cpus} allow?")


def measure_cpu_limit(rootfs, cpus: float = EXERCISE_CPUS, iterations: int = EXERCISE_ITERATIONS,
                      rounds: int = 2) -> float:
    """Loop speed in a container with ``cpus``, in percent of the same loop on the host (medians)."""
    from teachdock.runtime import run

    script = loop_script(iterations)
    host, limited = [], []
    for _ in range(rounds):
        host.append(parse_loop_output(time_host_process([BUSYBOX, "sh", "-c", script])[1]).seconds)
        result = run(["sh", "-c", script], rootfs=str(rootfs), cpus=cpus, timeout=60)
        if result.exit_code != 0:
            raise RuntimeError(f"the loop exited with {result.exit_code}: {result.stderr.strip()}")
        limited.append(parse_loop_output(result.stdout).seconds)
    return 100 * statistics.median(host) / statistics.median(limited)


def check_cpu_limit(answer, rootfs=None) -> CheckResult:
    """Exercise: at what % of host speed does the loop run in a container with cpus=0.5? Measured live."""
    if not_answered(answer):
        return NOT_ANSWERED
    if as_number(answer) is None:
        return judge_cpu_limit(answer, 0.0)
    try:
        if rootfs is None:
            from teachdock.lab.views import busybox_rootfs

            rootfs = busybox_rootfs()
        truth = measure_cpu_limit(rootfs)
    except Exception as error:  # the check must explain, not crash the exercise cell
        return CheckResult(False, f"Could not start a container to check your answer ({type(error).__name__}: "
                                  f"{error}). Starting containers needs root.")
    return judge_cpu_limit(answer, truth)


# ---- clean-up --------------------------------------------------------------------------------


def leftover_children(names: tuple[str, ...] = ("qemu-system-x86", "busybox", "sh")) -> list[tuple[int, str]]:
    """(pid, name) of this process's direct children with one of these command names (should be none)."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        parent = stat[stat.rindex(")") + 2:].split()[1]
        if parent == me and name.startswith(names):
            found.append((int(entry), name))
    return found
