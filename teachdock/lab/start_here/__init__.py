"""Chapter 00, start here: the machine check, a first container seen from both sides, the
launcher, and the first exercises.

machine.py probes this machine (``teachdock doctor`` prints the same report), doctor.py draws
it; the host and container views come from teachdock.lab.common.views.
"""

from teachdock.lab.common.views import (
    PROBE_SCRIPT,
    compare_table,
    container_view,
    host_view,
    plot_comparison,
)
from teachdock.lab.start_here.checks import check_host_network, check_pid1_without_pid_namespace, check_ps_count
from teachdock.lab.start_here.doctor import doctor
from teachdock.lab.start_here.launcher import container_launcher

__all__ = [
    "PROBE_SCRIPT",
    "check_host_network",
    "check_pid1_without_pid_namespace",
    "check_ps_count",
    "compare_table",
    "container_launcher",
    "container_view",
    "doctor",
    "host_view",
    "plot_comparison",
]
