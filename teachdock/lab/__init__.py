"""Everything the notebooks call, one folder per chapter, named like its notebook.

    start_here/         00: the machine check (machine.py probes, doctor.py draws), the
                        container launcher, the first exercises
    virtualization/     01: Docker's timeline, an application shipped as a layer, system
                        calls traced on the host and in a container, the stacks picture, a
                        process, a container and a VM measured, a virtualenv against a
                        container, the exercises
    namespaces/         02: the isolation explorer and the exercises
    cgroups/            03: the live cgroup monitor, cgroup v2 in a VM, the exercises
    filesystems/        04: chroot, mount namespaces, propagation, pivot_root in forked
                        children; the exercises
    images/             05: the layer viewer and plots; the exercises
    registries/         06: a local registry, a token server, the HTTP exchange drawn, skopeo
                        recorded through a proxy
    client_and_daemon/  07: the architecture, the socket, HTTP by hand, the API tracer
    networks/           08: a bridge network by hand, then the daemon's; measured
    applications/       09: compose traced call by call, health watched, containers moved
                        cold and live, two dockerd in a swarm; the exercises
    security/           10: escape attempts, the layer that stops each, a seccomp filter
    capstone/           11: build your own container - the sandbox a learner's
                        run_container runs in, what the checks read from outside, the
                        judges and their hints, the folded solutions of the seven levels
    common/             what several chapters share: the host and container views, the
                        busybox rootfs, TextAndHTML, CheckResult and the exercise helpers,
                        has_root (root.py) and Prediction (predict.py)

A notebook imports from its chapter's package (``from teachdock.lab.namespaces import
isolation_explorer``); ``busybox_rootfs``, ``has_root`` (the guard of every ``needs-root``
cell) and ``Prediction`` (a guess typed before a cell runs), which every chapter needs, also
from here.

This is the top layer but one: it may import any part of teachdock below the CLI, and only the
CLI imports it (``teachdock doctor``). Heavy libraries (matplotlib, IPython, ipywidgets) are
imported only by the functions that draw.
"""

from teachdock.lab.common.language import plot_fonts
from teachdock.lab.common.predict import Prediction
from teachdock.lab.common.root import has_root
from teachdock.lab.common.views import busybox_rootfs

__all__ = ["Prediction", "busybox_rootfs", "has_root"]

plot_fonts()  # in Korean, before any figure is made (a figure's texts take their font when it is made)
