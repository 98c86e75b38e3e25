"""Chapter 01, virtualization: where Docker came from (history: the timeline),
one application packed, moved and run the same elsewhere (shipping), one command's system calls
on the host and in a container (syscalls, by strace), four ways to run a program drawn (stacks),
one workload measured as a process, in a container and in a VM (measurements, figures), a
virtualenv against a container (isolation), and the exercises (checks).
"""

from teachdock.lab.virtualization.checks import (
    check_break_even,
    check_cpu_limit,
    check_makes_directory,
    check_memory_limit,
    check_virtualenv_isolates,
)
from teachdock.lab.virtualization.figures import plot_apparent_speed, plot_measurements, speed_widget
from teachdock.lab.virtualization.history import TIMELINE, plot_timeline, timeline, timeline_rows
from teachdock.lab.virtualization.isolation import (
    MEMORY_LIMIT_COMMAND,
    SH_PROBE,
    base_python,
    isolation_table,
    marker_file,
    probe_container,
    probe_python,
    temporary_virtualenv,
)
from teachdock.lab.virtualization.measurements import (
    Measurements,
    leftover_children,
    loop_script,
    measure_container,
    measure_process,
    measure_vm,
)
from teachdock.lab.virtualization.shipping import (
    APP_COMMAND,
    APP_SCRIPT,
    build_application,
    pack_application,
    unpack_application,
)
from teachdock.lab.virtualization.stacks import plot_stacks
from teachdock.lab.virtualization.syscalls import (
    TRACED_COMMAND,
    StraceUnavailable,
    compare,
    overlap,
    plot_syscall_counts,
    trace_in_container,
    trace_on_host,
)

__all__ = [
    "APP_COMMAND",
    "APP_SCRIPT",
    "MEMORY_LIMIT_COMMAND",
    "Measurements",
    "SH_PROBE",
    "StraceUnavailable",
    "TIMELINE",
    "TRACED_COMMAND",
    "build_application",
    "base_python",
    "check_break_even",
    "check_cpu_limit",
    "check_makes_directory",
    "check_memory_limit",
    "check_virtualenv_isolates",
    "compare",
    "isolation_table",
    "leftover_children",
    "loop_script",
    "marker_file",
    "measure_container",
    "measure_process",
    "measure_vm",
    "overlap",
    "pack_application",
    "plot_apparent_speed",
    "plot_measurements",
    "plot_stacks",
    "plot_syscall_counts",
    "plot_timeline",
    "probe_container",
    "probe_python",
    "speed_widget",
    "temporary_virtualenv",
    "timeline",
    "timeline_rows",
    "trace_in_container",
    "trace_on_host",
    "unpack_application",
]
