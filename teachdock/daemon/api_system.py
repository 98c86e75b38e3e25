"""System routes: ``/_ping``, ``/version``, ``/info`` — what every client asks first.

The CLI starts each command with ``HEAD /_ping`` and reads the ``Api-Version`` header to
pick the API version; the docker SDK starts with ``GET /version`` and needs ``ApiVersion``.
"""

from __future__ import annotations

import os
import platform
import socket
import sys

from teachdock import __version__
from teachdock.daemon.routes import API_VERSION, MIN_API_VERSION


def ping(daemon, request) -> None:
    request.handler.send_bytes(200, b"" if request.method == "HEAD" else b"OK", "text/plain; charset=utf-8",
                               {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                                "Builder-Version": "1", "Swarm": "inactive"})


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version(daemon, request) -> None:
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": _arch(),
               "GitCommit": "teachdock", "GoVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
               "KernelVersion": platform.release(), "BuildTime": ""}
    request.handler.send_json(200, {
        "Platform": {"Name": "teachdock Engine"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__, **details,
    })


def info(daemon, request) -> None:
    containers = daemon.containers.list()
    running = sum(1 for c in containers if c.running)
    request.handler.send_json(200, {
        "ID": daemon.daemon_id, "Name": socket.gethostname(),
        "Containers": len(containers), "ContainersRunning": running, "ContainersPaused": 0,
        "ContainersStopped": len(containers) - running, "Images": len(daemon.images.list()),
        "Driver": daemon.images.snapshots.driver, "DriverStatus": [], "ServerVersion": __version__,
        "OperatingSystem": _os_name(), "OSType": "linux", "Architecture": platform.machine(),
        "NCPU": os.cpu_count(), "MemTotal": _mem_total(), "KernelVersion": platform.release(),
        "DockerRootDir": str(daemon.data_root), "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "LoggingDriver": "json-file", "SecurityOptions": ["name=seccomp,profile=builtin"], "Warnings": [],
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False},
        "Plugins": {"Volume": [], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
        # who makes NAT, isolation and published ports (dockerd 28 says "iptables" or "nftables" here)
        "FirewallBackend": {"Driver": daemon.firewall.backend if daemon.firewall is not None else "none"},
        "IndexServerAddress": "https://index.docker.io/v1/", "Runtimes": {"teachdock": {"path": "teachdock.runtime"}},
        "DefaultRuntime": "teachdock", "ExperimentalBuild": False, "Labels": [],
    })


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def register(router) -> None:
    router.add("GET", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
