"""Chapter 01's measurements: one workload run as a process, in a container and in a tiny VM.

One CPU-bound workload, ``loop_script()``: a busybox ``sh`` arithmetic loop that times itself
with its own clock (``$EPOCHREALTIME``) and reports its own peak memory (``VmHWM``). The same
busybox binary runs it on the host, in a container and in the VM, so the only thing that
changes is *where* it runs. ``Measurements`` collects the figures (``measure_process``,
``measure_container``, ``measure_vm``); teachdock.lab.virtualization.figures draws them.
``leftover_children()`` makes sure none of the runs left a process behind.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from teachdock.lab.common.language import say

# Okabe-Ito colours, readable by colour-blind learners; host blue and container orange as in views.py.
COLOURS = {"process": "#0072B2", "container": "#E69F00", "VM": "#CC79A7"}
CONTENDERS = ("process", "container", "VM")  # keys; contender_name() shows them


def contender_name(who: str) -> str:
    """A contender as the learner reads it (the keys above stay English: the notebook indexes by them)."""
    return {"process": say("process"), "container": say("container"), "VM": "VM"}.get(who, who)  # VM: the same


def display_width(text: str) -> int:
    """Columns a terminal or a monospace cell gives ``text``: Hangul takes two."""
    return sum(2 if "\uac00" <= ch <= "\ud7a3" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))

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
        raise ValueError(say("iterations must be a positive whole number, not {iterations!r}", iterations=iterations))
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
    raise ValueError(say("no complete 'loop start=... end=... peak_kib=...' line in the output:\n{text}", text=text))


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
        lines = [say("Measured on this machine ({host}, {cpus} CPUs, kernel {kernel}), loop of {iterations:,} "
                     "iterations:", host=socket.gethostname(), cpus=os.cpu_count(), kernel=os.uname().release,
                     iterations=self.iterations),
                 pad("", 11) + pad(say("start-up (median)"), 30) + pad(say("peak memory"), 13)
                 + pad(say("loop (fastest run)"), 28) + say("speed")]
        for who in CONTENDERS:
            name = pad(contender_name(who), 11)
            if who in self.missing:
                lines.append(name + say("not measured: {reason}", reason=self.missing[who]))
                continue
            startup, memory, loop = self.startup.get(who), self.memory.get(who), self.compute.get(who)
            speed = self.speed_percent(who)
            lines.append(name
                         + pad(_spread(startup, statistics.median) if startup else "-", 30)
                         + pad(_format_bytes(max(memory)) if memory else "-", 13)
                         + pad(_spread(loop, min) if loop else "-", 28)
                         + (f"{speed:.0f} %" if speed is not None else "-"))
        return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.1f} ms"


def _format_bytes(count: float) -> str:
    return f"{count / 2**20:.1f} MiB"


def _spread(values: list[float], pick) -> str:
    """'24 ms (19–31 ms, 7 runs)': one figure, then the range, so the noise stays visible."""
    chosen = format_seconds(pick(values))
    if len(values) == 1:
        return say("{value} (1 run)", value=chosen)
    low, high = format_seconds(min(values)), format_seconds(max(values))
    low_number, low_unit = low.split()
    if low_unit == high.split()[1]:
        low = low_number  # "19–31 ms" rather than "19 ms–31 ms"
    return say("{value} ({low}–{high}, {runs} runs)", value=chosen, low=low, high=high, runs=len(values))


def time_host_process(args: list[str]) -> tuple[float, str]:
    """Run a plain host process; (wall-clock seconds from spawn to exit, its stdout)."""
    started = time.perf_counter()
    completed = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(say("{command} exited with {code}: {stderr}", command=" ".join(args),
                               code=completed.returncode, stderr=completed.stderr.strip()))
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
            raise RuntimeError(say("`true` in a container exited with {code}: {stderr}", code=result.exit_code,
                                   stderr=result.stderr.strip()))
        m.add("container", startup=elapsed)
    for _ in range(max(1, repeats // 2)):
        _, output = time_host_process([BUSYBOX, "sh", "-c", script])  # the host's turn
        loop = parse_loop_output(output)
        m.add("process", memory=loop.peak_rss_bytes, compute=loop.seconds)
        result = run(["sh", "-c", script], rootfs=str(rootfs), timeout=60)
        m.container_ids.append(result.id)
        if result.exit_code != 0:
            raise RuntimeError(say("the loop in a container exited with {code}: {stderr}", code=result.exit_code,
                                   stderr=result.stderr.strip()))
        peak = result.metrics.memory_peak_bytes if result.metrics else None
        if peak is None:
            m.gaps["memory:container"] = say("no cgroup (rootless)")
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
            raise RuntimeError(say("the loop in the VM exited with {code}: {output}", code=result.exit_status,
                                   output=result.output))
        m.add("VM", startup=result.seconds_to_marker, memory=result.qemu_peak_rss_bytes,
              compute=parse_loop_output(result.output).seconds)


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
