"""Everything the notebooks call: the machine check, views, plots, widgets and exercise checks.

The widgets (container_launcher, CgroupMonitor, isolation_explorer, layer_viewer, and
api_tracer's TraceExplorer) are here; each chapter's helpers and checks live in their own
module: virtualization, explorer, monitor, filesystems, layers_view, registry_lab,
daemon_lab (chapter 07: the architecture drawn, the socket, HTTP by hand, daemons of the
chapter's own), api_tracer (a proxy that records each Engine API call), and *_checks.

This is the top layer: it may import any part of teachdock, and nothing imports it.
Heavy libraries (matplotlib, IPython) are imported only by the functions that draw.
"""

from teachdock.lab.checks import CheckResult, check_interfaces, check_own_pid, check_ps_count
from teachdock.lab.doctor import doctor
from teachdock.lab.explorer import explore, isolation_explorer
from teachdock.lab.launcher import container_launcher
from teachdock.lab.layers_view import layer_viewer
from teachdock.lab.monitor import CgroupMonitor
from teachdock.lab.views import (
    PROBE_SCRIPT,
    View,
    busybox_rootfs,
    compare_table,
    container_view,
    host_view,
    plot_comparison,
)

__all__ = [
    "CgroupMonitor",
    "CheckResult",
    "PROBE_SCRIPT",
    "View",
    "busybox_rootfs",
    "check_interfaces",
    "check_own_pid",
    "check_ps_count",
    "compare_table",
    "container_launcher",
    "container_view",
    "doctor",
    "explore",
    "host_view",
    "isolation_explorer",
    "layer_viewer",
    "plot_comparison",
]
