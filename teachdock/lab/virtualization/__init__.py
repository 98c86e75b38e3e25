"""Chapter 01, virtualization: four ways to run a program drawn (stacks), one workload measured as a
process, in a container and in a VM (measurements, figures), a virtualenv against a container
(isolation), and the exercises (checks).
"""

from teachdock.lab.virtualization.checks import (
    check_break_even,
    check_cpu_limit,
    check_memory_limit,
    check_virtualenv_isolates,
)
from teachdock.lab.virtualization.figures import plot_apparent_speed, plot_measurements, speed_widget
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
from teachdock.lab.virtualization.stacks import plot_stacks

__all__ = [
    "MEMORY_LIMIT_COMMAND",
    "Measurements",
    "SH_PROBE",
    "base_python",
    "check_break_even",
    "check_cpu_limit",
    "check_memory_limit",
    "check_virtualenv_isolates",
    "isolation_table",
    "leftover_children",
    "loop_script",
    "marker_file",
    "measure_container",
    "measure_process",
    "measure_vm",
    "plot_apparent_speed",
    "plot_measurements",
    "plot_stacks",
    "probe_container",
    "probe_python",
    "speed_widget",
    "temporary_virtualenv",
]
