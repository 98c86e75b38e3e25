"""Chapter 01's first picture: four ways to run a program, drawn as stacks of boxes.

``plot_stacks()`` draws bare metal, type-1 and type-2 hypervisors and containers as stacks of
boxes (hardware, kernels, hypervisor, apps), from the data in ``ARCHITECTURES`` (made by
``architectures()`` in the learner's language when read). matplotlib is imported only when it draws.
"""

from __future__ import annotations

from dataclasses import dataclass

from teachdock.lab.common.language import MadeWhenRead, say

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


def architectures() -> tuple[Architecture, ...]:
    hardware, app, guest_kernel, vm = say("hardware"), say("app"), say("guest\nkernel"), "VM"  # VM: the same
    return (
        Architecture(say("bare metal"), say("one OS on the machine"), (
            Box(0, 1, 0, hardware, "hardware"),
            Box(0, 1, 1, say("kernel"), "kernel"),
            Box(0, 0.5, 2, app, "app"),
            Box(0.5, 0.5, 2, app, "app"),
        ), say("1 kernel")),
        Architecture(say("type-1 hypervisor"), "Xen, VMware ESXi, Hyper-V, KVM", (  # the same in every language
            Box(0, 1, 0, hardware, "hardware"),
            Box(0, 1, 1, say("hypervisor"), "hypervisor"),
            Box(0, 0.5, 2, guest_kernel, "kernel"),
            Box(0.5, 0.5, 2, guest_kernel, "kernel"),
            Box(0, 0.5, 3, app, "app"),
            Box(0.5, 0.5, 3, app, "app"),
            Box(0, 0.5, 2, vm, "vm", height=2),
            Box(0.5, 0.5, 2, vm, "vm", height=2),
        ), say("hypervisor + 2 guest kernels")),
        Architecture(say("type-2 hypervisor"), "VirtualBox, VMware Workstation, QEMU (TCG)", (  # the same
            Box(0, 1, 0, hardware, "hardware"),
            Box(0, 1, 1, say("host kernel"), "kernel"),
            Box(0, 0.7, 2, say("hypervisor\n(a process)"), "hypervisor"),
            Box(0.7, 0.3, 2, app, "app"),
            Box(0, 0.35, 3, guest_kernel, "kernel"),
            Box(0.35, 0.35, 3, guest_kernel, "kernel"),
            Box(0, 0.35, 4, app, "app"),
            Box(0.35, 0.35, 4, app, "app"),
            Box(0, 0.35, 3, vm, "vm", height=2),
            Box(0.35, 0.35, 3, vm, "vm", height=2),
        ), say("1 host + 2 guest kernels")),
        Architecture(say("containers"), "Docker, podman, teachdock", (  # the same in every language
            Box(0, 1, 0, hardware, "hardware"),
            Box(0, 1, 1, say("host kernel\nnamespaces + cgroups"), "kernel"),
            Box(0, 0.5, 2, say("app +\nits files"), "container"),
            Box(0.5, 0.5, 2, say("app +\nits files"), "container"),
        ), say("1 kernel, shared")),
    )


ARCHITECTURES = MadeWhenRead(architectures)


KIND_STYLE = {  # fill colour, edge colour, line style
    "hardware": ("#d9d9d9", "#555555", "-"),
    "kernel": ("#cde6f7", "#0072B2", "-"),
    "hypervisor": ("#f6d5c1", "#D55E00", "-"),
    "app": ("#c8eadf", "#009E73", "-"),
    "container": ("#fbe7bf", "#E69F00", "--"),
    "vm": ("none", "#CC79A7", "--"),
}


def plot_stacks(stacks=None):
    """The four architectures as stacks of boxes, hardware at the bottom.

    Built with matplotlib's object API (no pyplot), so returning it from a cell shows it once.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    stacks = architectures() if stacks is None else stacks
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, len(stacks))
    top = max(box.level + box.height for arch in stacks for box in arch.boxes)
    for ax, arch in zip(axes, stacks):
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
    fig.suptitle(say("Four ways to run a program: what sits between the app and the hardware"), fontsize=12)
    return fig

