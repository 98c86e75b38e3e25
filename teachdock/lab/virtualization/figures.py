"""Chapter 01's figures: the measurements side by side, and what start-up costs a short job.

``plot_measurements()`` draws start-up, memory and compute of the process, the container and
the VM; ``apparent_speed()`` and ``break_even_seconds()`` say how much of a job's time start-up
eats, ``plot_apparent_speed()`` and ``speed_widget()`` show it. Heavy libraries (matplotlib,
ipywidgets) are imported only by the functions that draw.
"""

from __future__ import annotations

import math
import statistics

from teachdock.lab.common.language import say
from teachdock.lab.virtualization.measurements import COLOURS, CONTENDERS, Measurements, contender_name, format_seconds

# ---- the figures -------------------------------------------------------------------------


def panels() -> tuple[tuple[str, str, bool], ...]:
    """(table, title, log scale); bars: median start-up, highest memory peak, fastest loop."""
    return (
        ("startup", say("start-up (median, log scale)"), True),
        ("memory", say("peak memory (log scale)"), True),
        ("compute", say("CPU-bound loop (fastest run)"), False),
    )


def meters() -> dict[str, str]:
    """What each memory bar measures, written under its name."""
    return {
        "process": say("shell's RSS"),
        "container": say("cgroup peak"),
        "VM": say("QEMU's RSS"),
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
    for ax, (table, title, log) in zip(axes, panels()):
        shown = []
        for x, who in zip(positions, CONTENDERS):
            values = _panel_values(m, table, who)
            if not values:
                reason = m.gaps.get(f"{table}:{who}") or _short_reason(m.missing.get(who, ""))
                ax.text(x, 0.5, say("not measured\n({reason})", reason=reason) if reason else say("not measured"),
                        ha="center",
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
            measured_by = meters()
            ax.set_xticklabels([f"{contender_name(who)}\n({measured_by[who]})" for who in CONTENDERS], fontsize=9)
        else:
            ax.set_xticklabels([contender_name(who) for who in CONTENDERS])
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
    axes[0].set_ylabel(say("seconds (start to ready)"))
    axes[1].set_ylabel("MiB")
    axes[2].set_ylabel(say("% of the host's speed"))
    fig.suptitle(say("Measured on this machine: one process, one container, one VM ({iterations:,}-step loop)",
                     iterations=m.iterations), fontsize=12)
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
        return format_seconds(value)
    if table == "memory":
        return f"{value:.1f} MiB" if value < 100 else f"{value:.0f} MiB"
    return f"{value:.0f} %"


def _short_reason(reason: str) -> str:
    return say("needs root") if "root" in reason else say("see above") if reason else ""


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
        raise ValueError(say("job length and start-up must be >= 0 and the compute speed > 0"))
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
        raise ValueError(say("target_percent must be between 0 and 100"))
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
                linewidth=2.2, label=say("{who}: starts in {startup}, computes at {speed:.0f} %", who=contender_name(who),
                                         startup=format_seconds(startup), speed=speed))
    ax.axhline(target_percent, color="#555555", linestyle=":", linewidth=1)
    ax.text(1.2e-3, target_percent - 1.5, say('"{percent:.0f} % of bare metal"', percent=target_percent), va="top",
            fontsize=9, color="#555555")
    container_startup = m.median("startup", "container")
    if container_startup is not None:
        even = break_even_seconds(container_startup, baseline, target_percent)
        ax.axvline(even, color=COLOURS["container"], linestyle="--", linewidth=1)
        ax.annotate(say("container reaches {percent:.0f} %\nfor jobs of {seconds} or more", percent=target_percent,
                        seconds=format_seconds(even)),
                    (even, 50), xytext=(8, 0), textcoords="offset points", fontsize=9,
                    color="#8a5a00", va="center")
    loop = m.median("compute", "process")
    if loop is not None:
        ax.axvline(loop, color=COLOURS["process"], linestyle=":", linewidth=1)
        ax.annotate(say("our loop\n({seconds})", seconds=format_seconds(loop)), (loop, 8), xytext=(-6, 0),
                    textcoords="offset points", ha="right", fontsize=9, color=COLOURS["process"])
    ax.set_xscale("log")
    ax.set_xlim(jobs[0], jobs[-1])
    ax.set_ylim(0, 105)
    ax.set_xlabel(say("length of the job as a plain process on the host (seconds, log scale)"))
    ax.set_ylabel(say("% of host speed, start-up included"))
    ax.set_title(say("The same work, start-up included: short jobs pay for the start, long jobs don't"))
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    ax.legend(loc="center right", bbox_to_anchor=(1, 0.62), frameon=False, fontsize=9)
    return fig


def speed_sentence(m: Measurements, job_seconds: float) -> str:
    """What a job of this length costs in each contender, start-up included (for the widget)."""
    baseline = m.median("startup", "process") or 0.0
    parts = [say("A job that takes <b>{seconds}</b> as a plain process:", seconds=format_seconds(job_seconds))]
    for who in ("container", "VM"):
        startup = m.median("startup", who)
        if startup is None:
            parts.append(say("{who}: not measured", who=contender_name(who)))
            continue
        speed = 100.0 if who == "container" else (m.speed_percent(who) or 100.0)
        total = startup + job_seconds * 100 / speed
        percent = apparent_speed(job_seconds, startup, speed, baseline)
        parts.append(say("{who}: {total} in all, <b>{percent:.1f} %</b> of host speed", who=contender_name(who),
                         total=format_seconds(total), percent=percent))
    return "<br>".join(parts)


def speed_widget(m: Measurements):
    """A slider for the job length, and what it costs in a container and in the VM."""
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=1.0, base=10, min=-3, max=3, step=0.05,
                                    description=say("job (s)"), readout_format=".3g",
                                    layout=widgets.Layout(width="480px"))
    text = widgets.HTML(speed_sentence(m, slider.value))

    def update(change):
        text.value = speed_sentence(m, change["new"])

    slider.observe(update, names="value")
    return widgets.VBox([slider, text])

