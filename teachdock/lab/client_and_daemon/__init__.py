"""Chapter 07, client and daemon: the architecture drawn, the socket, HTTP by hand, the daemon's
files, daemons of the chapter's own (daemon_lab), the Engine API tracer, and the exercises.
"""

from teachdock.lab.client_and_daemon.api_tracer import ApiTracer
from teachdock.lab.client_and_daemon.checks import (
    check_call_count,
    check_docker_host,
    check_log_file,
    check_name_conflict,
)
from teachdock.lab.client_and_daemon.trace_explorer import TraceExplorer
from teachdock.lab.client_and_daemon.daemon_lab import (
    LabDaemons,
    disk_map,
    docker_cli,
    plot_architecture,
    raw_request,
    run_docker,
    socket_info,
    tree,
)

__all__ = [
    "ApiTracer",
    "LabDaemons",
    "TraceExplorer",
    "check_call_count",
    "check_docker_host",
    "check_log_file",
    "check_name_conflict",
    "disk_map",
    "docker_cli",
    "plot_architecture",
    "raw_request",
    "run_docker",
    "socket_info",
    "tree",
]
