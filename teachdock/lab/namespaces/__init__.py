"""Chapter 02, namespaces: the isolation explorer (what each namespace kind hides, probed in real
containers) and the exercises.
"""

from teachdock.lab.namespaces.checks import (
    EXERCISE_IDS,
    check_host_network_own_hostname,
    check_host_pid,
    check_root_is_host_uid,
    check_shared_kinds,
    check_shared_network,
    remove_exercise_containers,
)
from teachdock.lab.namespaces.explorer import host_ipc_object, isolation_explorer

__all__ = [
    "EXERCISE_IDS",
    "check_host_network_own_hostname",
    "check_host_pid",
    "check_root_is_host_uid",
    "check_shared_kinds",
    "check_shared_network",
    "host_ipc_object",
    "isolation_explorer",
    "remove_exercise_containers",
]
