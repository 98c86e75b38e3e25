"""The cgroup monitor's figures: samples of a container's cgroup turned into curves, final
figures and a three-panel plot.

All plain functions and classes (``series``, ``cpu_rate``, ``summarize``, ``plot_samples``,
``MonitorPlot``), testable without a container; teachdock.lab.cgroups.monitor takes the samples
and shows the plot in its widget.
"""

from __future__ import annotations

import io
import math
import signal
from dataclasses import dataclass
from html import escape

from teachdock.lab.common.language import say
from teachdock.runtime.cgroups import Metrics

MIB = 1024 * 1024

# Okabe-Ito colours: readable for colour-blind eyes, and distinct in greyscale.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7"


# --------------------------------------------------------------------------------------------
# Samples -> curves (pure functions)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The cgroup's figures at ``t`` seconds after the container started."""

    t: float
    metrics: Metrics


def cpu_rate(times: list[float], usage_ns: list[int | None], window: float = 0.5) -> tuple[list[float], list[float]]:
    """CPU in use, in cores, from the cumulative cpu_usage_ns counter.

    The rate at a sample is the growth since the sample ``window`` seconds earlier (or the
    first one) divided by the time between them. A window of several CFS periods (100 ms)
    smooths the saw-tooth of run-then-throttle.
    """
    rate_t, rate = [], []
    for i, (t, used) in enumerate(zip(times, usage_ns)):
        if used is None:
            continue
        earlier = None  # the latest known sample at least `window` before, else the earliest known
        for k in range(i - 1, -1, -1):
            if usage_ns[k] is not None:
                earlier = k
                if times[k] <= t - window:
                    break
        if earlier is None or t <= times[earlier]:
            continue
        rate_t.append(t)
        rate.append(max(0.0, (used - usage_ns[earlier]) / 1e9 / (t - times[earlier])))
    return rate_t, rate


def _since_first(values: list[int | None]) -> list[float]:
    """A cumulative counter relative to its first known value (NaN where unknown)."""
    first = next((v for v in values if v is not None), None)
    return [math.nan if v is None or first is None else float(v - first) for v in values]


def _mib(value: int | None) -> float:
    return math.nan if value is None else value / MIB


@dataclass
class Series:
    """The curves the three panels draw, in display units (MiB, cores, counts)."""

    t: list[float]
    memory_mib: list[float]
    memory_limit_mib: float | None
    cpu_t: list[float]
    cpu_cores: list[float]
    throttled_periods: list[float]  # cumulative, since the first sample
    pids: list[float]
    pids_limit: int | None
    fork_failures: list[float]  # cumulative, since the first sample
    oom_at: float | None  # when the OOM counter first went up
    oom_memory_mib: float | None  # the memory in use just before


def series(samples: list[Sample], window: float = 0.5) -> Series:
    """Turn samples into the curves of the plot."""
    t = [s.t for s in samples]
    m = [s.metrics for s in samples]
    cpu_t, cpu_cores = cpu_rate(t, [x.cpu_usage_ns for x in m], window)
    limits = [x.memory_limit_bytes for x in m if x.memory_limit_bytes is not None]
    pids_limits = [x.pids_limit for x in m if x.pids_limit is not None]
    oom_at = oom_memory = None
    first_ooms = next((x.oom_kills for x in m if x.oom_kills is not None), 0)
    for i, x in enumerate(m):
        if x.oom_kills is not None and x.oom_kills > first_ooms:
            oom_at = t[i]
            before = [y.memory_bytes for y in m[:i] if y.memory_bytes is not None]
            oom_memory = _mib(max(before)) if before else None
            break
    return Series(
        t=t,
        memory_mib=[_mib(x.memory_bytes) for x in m],
        memory_limit_mib=_mib(limits[-1]) if limits else None,
        cpu_t=cpu_t,
        cpu_cores=cpu_cores,
        throttled_periods=_since_first([x.cpu_throttled_periods for x in m]),
        pids=[math.nan if x.pids_current is None else float(x.pids_current) for x in m],
        pids_limit=pids_limits[-1] if pids_limits else None,
        fork_failures=_since_first([x.pids_max_events for x in m]),
        oom_at=oom_at,
        oom_memory_mib=oom_memory,
    )


# --------------------------------------------------------------------------------------------
# The final figures
# --------------------------------------------------------------------------------------------


def load_label(load: str) -> str:
    """The name a learner reads for a load ("memory", "cpu", "forkbomb")."""
    labels = {"memory": say("memory hog"), "cpu": say("CPU burner"), "forkbomb": say("fork bomb")}
    return labels.get(load, load)


@dataclass
class MonitorResult:
    """How one monitored container ended, and what it used."""

    load: str
    container_id: str
    exit_code: int | None  # 137 = killed by SIGKILL (an OOM kill, or Stop)
    oom_killed: bool
    stopped: bool  # ended by Stop or the time limit, not by itself
    duration: float  # seconds from start to the end
    memory_limit_bytes: int | None
    peak_memory_bytes: int | None
    cpu_limit: float | None  # cores (quota / period); None: no quota
    cpu_seconds: float | None
    periods: int | None  # CFS periods in which the container wanted CPU
    throttled_periods: int | None  # ... and ran out of quota
    throttled_seconds: float | None
    pids_limit: int | None
    pids_peak: int | None  # the most processes seen at one sample
    fork_failures: int | None  # fork() calls refused at the pids limit
    stderr_tail: str = ""  # the container's last error line, e.g. "sh: can't fork: ..."

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs for the table under the plot."""
        code = "—" if self.exit_code is None else str(self.exit_code)
        if self.exit_code is not None and self.exit_code > 128:
            try:
                code += f" = 128 + {self.exit_code - 128} ({signal.Signals(self.exit_code - 128).name})"
            except ValueError:
                pass
        if self.oom_killed:
            ended = say("OOM-killed by the kernel after {seconds:.1f} s", seconds=self.duration)
        elif self.stopped:
            ended = say("stopped by you (SIGKILL) after {seconds:.1f} s", seconds=self.duration)
        else:
            ended = say("exited by itself after {seconds:.1f} s", seconds=self.duration)
        rows = [(say("ended"), ended), (say("exit code"), code),
                (say("OOM kill"), say("yes: the kernel killed it") if self.oom_killed else say("no OOM kill"))]
        peak = "—" if self.peak_memory_bytes is None else f"{_mib(self.peak_memory_bytes):.1f} MiB"
        if self.memory_limit_bytes is None:
            rows.append((say("peak memory"), say("{peak} (no memory limit)", peak=peak)))
        else:
            rows.append((say("peak memory"), say("{peak} (limit {limit:.0f} MiB)", peak=peak,
                                                 limit=_mib(self.memory_limit_bytes))))
        if self.cpu_seconds is not None:
            average = self.cpu_seconds / self.duration if self.duration > 0 else 0.0
            if self.cpu_limit is None:
                used = say("{seconds:.2f} s = {average:.2f} cores on average (no quota)", seconds=self.cpu_seconds,
                           average=average)
            else:
                used = say("{seconds:.2f} s = {average:.2f} cores on average (quota {quota:g} CPU)",
                           seconds=self.cpu_seconds, average=average, quota=self.cpu_limit)
            rows.append((say("CPU time"), used))
        if self.throttled_periods is not None and self.periods:
            rows.append((say("throttled"), say("{throttled} of {periods} periods, {seconds:.2f} s in all",
                                               throttled=self.throttled_periods, periods=self.periods,
                                               seconds=self.throttled_seconds or 0)))
        if self.pids_peak is not None:
            if self.pids_limit is None:
                most = say("at most {peak} at once (no pids limit)", peak=self.pids_peak)
            else:
                most = say("at most {peak} at once (limit {limit})", peak=self.pids_peak, limit=self.pids_limit)
            rows.append((say("processes"), most))
        if self.fork_failures is not None:
            rows.append((say("fork failures"), say("{count} fork() calls refused", count=self.fork_failures)))
        if self.stderr_tail:
            rows.append((say("last error line"), self.stderr_tail))
        return rows

    def __repr__(self) -> str:
        return "\n".join(f"{name:>16}: {value}" for name, value in self.rows())

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td style='text-align:left;padding-right:1em'><b>{escape(name)}</b></td>"
                        f"<td style='text-align:left'>{escape(value)}</td></tr>" for name, value in self.rows())
        return f"<table>{cells}</table>"


def _delta(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return known[-1] - known[0] if known else None


def summarize(load: str, container_id: str, samples: list[Sample], *, exit_code: int | None, oom_killed: bool,
              stopped: bool, cpu_limit: float | None, stderr_tail: str = "") -> MonitorResult:
    """The final figures of a run, from its samples (the last one taken after the end)."""
    m = [s.metrics for s in samples]
    last = m[-1] if m else Metrics()
    peaks = [x.memory_peak_bytes for x in m if x.memory_peak_bytes is not None]
    memory = [x.memory_bytes for x in m if x.memory_bytes is not None]
    pids = [x.pids_current for x in m if x.pids_current is not None]
    throttled_ns = [x.cpu_throttled_ns for x in m]
    return MonitorResult(
        load=load,
        container_id=container_id,
        exit_code=exit_code,
        oom_killed=oom_killed,
        stopped=stopped and not oom_killed,
        duration=samples[-1].t if samples else 0.0,
        memory_limit_bytes=last.memory_limit_bytes,
        peak_memory_bytes=max(peaks) if peaks else (max(memory) if memory else None),
        cpu_limit=cpu_limit,
        cpu_seconds=None if last.cpu_usage_ns is None else last.cpu_usage_ns / 1e9,
        periods=_delta([x.cpu_periods for x in m]),
        throttled_periods=_delta([x.cpu_throttled_periods for x in m]),
        throttled_seconds=None if _delta(throttled_ns) is None else _delta(throttled_ns) / 1e9,
        pids_limit=last.pids_limit,
        pids_peak=max(pids) if pids else None,
        fork_failures=_delta([x.pids_max_events for x in m]),
        stderr_tail=stderr_tail,
    )


# --------------------------------------------------------------------------------------------
# The plot
# --------------------------------------------------------------------------------------------


class MonitorPlot:
    """One figure with three panels, built once; ``update()`` moves the curves.

    Re-using the figure matters for a live plot: building a new one costs about three
    times as much as redrawing, and the drawing happens on the notebook's event loop.
    """

    def __init__(self):
        from matplotlib.figure import Figure  # noqa: PLC0415 - heavy, only needed to draw

        fig = Figure(figsize=(7.6, 6.4), dpi=90, layout="constrained")
        self.figure = fig
        self.ax_memory, self.ax_cpu, self.ax_pids = fig.subplots(3, 1, sharex=True)
        self.ax_throttled = self.ax_cpu.twinx()
        self.ax_failures = self.ax_pids.twinx()

        def panel(ax, title, ylabel):
            ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", color="#e5e5e5")
            ax.spines["top"].set_visible(False)

        panel(self.ax_memory, say("memory"), "MiB")
        panel(self.ax_cpu, "CPU", say("cores in use"))
        panel(self.ax_pids, say("processes"), say("processes"))
        self.ax_pids.set_xlabel(say("seconds since start"))
        for twin, colour, label in ((self.ax_throttled, PURPLE, say("throttled periods")),
                                    (self.ax_failures, PURPLE, say("fork failures"))):
            twin.set_ylabel(label, color=colour)
            twin.tick_params(axis="y", colors=colour)
            twin.spines["top"].set_visible(False)
            twin.spines["right"].set_color(colour)

        self.memory_line, = self.ax_memory.plot([], [], color=BLUE, lw=2, label=say("in use"))
        self.memory_limit = self.ax_memory.axhline(0, color=VERMILLION, ls="--", lw=1.5, label=say("limit"))
        self.oom_line = self.ax_memory.axvline(0, color="black", ls=":", lw=1.5)
        self.oom_mark, = self.ax_memory.plot([], [], "X", color="black", ms=11, label=say("OOM kill"))
        self.oom_text = self.ax_memory.annotate("", (0, 0), xytext=(-10, -42), textcoords="offset points",
                                                ha="right", va="top", fontsize=9, fontweight="bold",
                                                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "black",
                                                      "lw": 0.6})
        self.cpu_line, = self.ax_cpu.plot([], [], color=ORANGE, lw=2, label=say("in use"))
        self.cpu_limit = self.ax_cpu.axhline(0, color=VERMILLION, ls="--", lw=1.5, label=say("quota"))
        self.throttled_line, = self.ax_throttled.step([], [], where="post", color=PURPLE, lw=1.3,
                                                      label=say("throttled periods (right scale)"))
        self.pids_line, = self.ax_pids.step([], [], where="post", color=GREEN, lw=2, label=say("in the cgroup"))
        self.pids_limit = self.ax_pids.axhline(0, color=VERMILLION, ls="--", lw=1.5, label="pids.max")
        self.failures_line, = self.ax_failures.step([], [], where="post", color=PURPLE, lw=1.3,
                                                    label=say("fork failures (right scale)"))
        self._legends()

    def _legends(self) -> None:
        for ax, twin in ((self.ax_memory, None), (self.ax_cpu, self.ax_throttled), (self.ax_pids, self.ax_failures)):
            handles = [h for h in ax.get_lines() + (twin.get_lines() if twin else [])
                       if h.get_visible() and not h.get_label().startswith("_")]
            (twin or ax).legend(handles=handles, loc="upper left", fontsize=8, frameon=False,
                                ncol=len(handles))

    @staticmethod
    def _top(values, limit, floor) -> float:
        finite = [v for v in values if not math.isnan(v)]
        top = max([floor] + finite)
        if limit is not None:
            top = max(top, limit)
        return top * 1.25

    def update(self, data: Series, *, cpu_limit: float | None = None, title: str = "") -> None:
        """Draw ``data``; ``cpu_limit`` is the quota in cores (the cgroup's Metrics do not carry it)."""
        s = data
        self.figure.suptitle(title, fontsize=11)
        self.memory_line.set_data(s.t, s.memory_mib)
        self.cpu_line.set_data(s.cpu_t, s.cpu_cores)
        self.throttled_line.set_data(s.t, s.throttled_periods)
        self.pids_line.set_data(s.t, s.pids)
        self.failures_line.set_data(s.t, s.fork_failures)
        for line, value in ((self.memory_limit, s.memory_limit_mib), (self.cpu_limit, cpu_limit),
                            (self.pids_limit, s.pids_limit)):
            line.set_visible(value is not None)
            if value is not None:
                line.set_ydata([value, value])
        if s.memory_limit_mib is not None:
            self.memory_limit.set_label(say("limit {value:g} MiB", value=s.memory_limit_mib))
        if cpu_limit is not None:
            self.cpu_limit.set_label(say("quota {value:g} CPU", value=cpu_limit))
        if s.pids_limit is not None:
            self.pids_limit.set_label(f"pids.max {s.pids_limit:g}")
        oom = s.oom_at is not None
        for artist in (self.oom_line, self.oom_mark, self.oom_text):
            artist.set_visible(oom)
        if oom:
            y = s.oom_memory_mib if s.oom_memory_mib is not None else (s.memory_limit_mib or 0)
            self.oom_line.set_xdata([s.oom_at, s.oom_at])
            self.oom_mark.set_data([s.oom_at], [y])
            self.oom_text.xy = (s.oom_at, y)
            self.oom_text.set_text(say("OOM kill: exit 137"))
        end = max([5.0] + s.t)
        self.ax_pids.set_xlim(0, end * 1.02)
        self.ax_memory.set_ylim(0, self._top(s.memory_mib, s.memory_limit_mib, 1.0))
        self.ax_cpu.set_ylim(0, self._top(s.cpu_cores, cpu_limit, 1.0 / 1.25))
        self.ax_pids.set_ylim(0, self._top(s.pids, s.pids_limit, 4.0))
        self.ax_throttled.set_ylim(0, self._top(s.throttled_periods, None, 4.0))
        self.ax_failures.set_ylim(0, self._top(s.fork_failures, None, 4.0))
        self._legends()

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


def plot_samples(samples: list[Sample], *, cpu_limit: float | None = None, title: str = ""):
    """A matplotlib Figure of ``samples`` (returned from a cell, Jupyter shows it once)."""
    plot = MonitorPlot()
    plot.update(series(samples), cpu_limit=cpu_limit, title=title)
    return plot.figure
