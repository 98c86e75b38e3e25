"""Chapter 03, cgroups: the live monitor (a container under limits, its cgroup read ten times a
second), cgroup v2 seen in a VM, and the exercises.
"""

from teachdock.lab.cgroups.checks import (
    TEN_SLEEPS,
    cgroup_file,
    check_cpu_seconds,
    check_cpu_update,
    check_docker_memory,
    check_memory_limit,
    check_pids_limit,
    cpu_quota_files,
    delete_containers,
    limit_files,
)
from teachdock.lab.cgroups.monitor import CgroupMonitor, load_command
from teachdock.lab.cgroups.v2_vm import host_cgroup_sentence, show_v2_in_vm

__all__ = [
    "CgroupMonitor",
    "TEN_SLEEPS",
    "cgroup_file",
    "check_cpu_seconds",
    "check_cpu_update",
    "check_docker_memory",
    "check_memory_limit",
    "check_pids_limit",
    "cpu_quota_files",
    "delete_containers",
    "host_cgroup_sentence",
    "limit_files",
    "load_command",
    "show_v2_in_vm",
]
