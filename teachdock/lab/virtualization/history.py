"""Chapter 01's opening: where Docker came from, as a data table and a timeline drawn from it.

``TIMELINE`` holds the milestones, one ``Milestone`` each (year, name, what it brought, kind),
made by ``timeline()`` in the learner's language each time it is read; ``plot_timeline()`` draws
them, ``timeline_rows()`` lists them. matplotlib is imported only when it draws.
"""

from __future__ import annotations

from dataclasses import dataclass

from teachdock.lab.common.language import MadeWhenRead, say

KINDS = {  # kind -> colour; Okabe-Ito colours, as in the chapter's other figures
    "kernel": "#0072B2",
    "tool": "#E69F00",
    "standard": "#009E73",
}


def kind_legend(kind: str) -> str:
    return {
        "kernel": say("a kernel feature"),
        "tool": say("a tool built on the kernel"),
        "standard": say("a standard and its parts"),
    }[kind]


@dataclass(frozen=True)
class Milestone:
    year: int
    name: str
    what: str  # one line: what it brought
    kind: str  # a key of KINDS


def timeline() -> tuple[Milestone, ...]:
    """The milestones, their ``what`` in the learner's language (names are names, but for "mount namespace")."""
    return (
        Milestone(1979, "chroot", say("Version 7 Unix: a process gets its own root directory"), "kernel"),
        Milestone(2000, "FreeBSD jails", say("FreeBSD 4.0: chroot plus its own processes, network address, root user"),
                  "kernel"),
        Milestone(2002, say("mount namespace"), say("Linux 2.4.19: the first namespace, a process's own mount table"),
                  "kernel"),
        Milestone(2007, "cgroups", say("Google's \"process containers\"; merged as cgroups in Linux 2.6.24 (Jan 2008)"),
                  "kernel"),
        Milestone(2008, "LXC", say("Linux Containers: user-space tools over namespaces and cgroups"), "tool"),
        Milestone(2013, "Docker", say("Solomon Hykes, PyCon US, March 2013: images and a client, running on LXC"),
                  "tool"),
        Milestone(2014, "libcontainer", say("Docker 0.9 drives the kernel itself, in Go, instead of through LXC"),
                  "tool"),
        Milestone(2015, "OCI", say("Open Container Initiative: one image format and one runtime spec for all"),
                  "standard"),
        Milestone(2015, "runc", say("libcontainer given to the OCI as its reference runtime"), "standard"),
        Milestone(2016, "containerd", say("Docker 1.11 runs containers through containerd and runc; CNCF in 2017"),
                  "tool"),
    )


TIMELINE = MadeWhenRead(timeline)


def timeline_rows(milestones=None) -> list[tuple[int, str, str]]:
    """(year, name, what) sorted by year: the same data as the figure, as a table."""
    milestones = timeline() if milestones is None else milestones
    return [(m.year, m.name, m.what) for m in sorted(milestones, key=lambda m: m.year)]


def plot_timeline(milestones=None):
    """The milestones on one time axis; each label stands on a stem, staggered so none overlap."""
    from matplotlib.figure import Figure

    milestones = sorted(timeline() if milestones is None else milestones, key=lambda m: m.year)
    if not milestones:
        raise ValueError(say("nothing to draw: the timeline is empty"))
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax = fig.subplots()
    first, last = milestones[0].year, milestones[-1].year
    ax.axhline(0, color="#555555", linewidth=1)
    heights = (1.0, -1.0, 2.0, -2.0)  # above and below the axis, near and far, in turn
    for index, milestone in enumerate(milestones):
        colour = KINDS[milestone.kind]
        height = heights[index % len(heights)]
        ax.vlines(milestone.year, 0, height, color=colour, linewidth=1)
        ax.plot(milestone.year, 0, "o", color=colour)
        ax.annotate(f"{milestone.name}\n{milestone.year}", (milestone.year, height),
                    ha="center", va="bottom" if height > 0 else "top", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": colour})
    for kind, colour in KINDS.items():
        ax.plot([], [], "o", color=colour, label=kind_legend(kind))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_xlim(first - 3, last + 3)
    ax.set_ylim(-3.2, 3.2)
    ax.set_yticks([])
    ax.spines[["left", "right", "top"]].set_visible(False)
    ax.set_title(say("From chroot to containerd: the kernel features came first, the tools on top of them"))
    return fig
