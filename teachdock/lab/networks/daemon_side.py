"""The daemon's side of chapter 08: the real docker CLI against teachdockd (section 2).

``docker(*args)`` runs Docker's own CLI with ``DOCKER_HOST`` pointing at teachdockd (the
default socket, or ``$DOCKER_HOST``); ``ensure_daemon()`` starts teachdockd there first if
nobody answers (``teachdock.client`` does that). Everything the chapter makes is named
``tdlab-…``: ``lab_objects()`` lists it and ``remove_lab_objects()`` removes it, containers
first, then networks.

``container_netns(name)`` is a container's network namespace as a path
(``/proc/<pid>/ns/net``), which the sniffer, the topology and the measurements join.
"""

from __future__ import annotations

import os
import subprocess

from teachdock.lab.common.language import say
from teachdock.lab.networks.byhand import PREFIX
from teachdock.paths import DEFAULT_SOCKET


class DockerFailed(RuntimeError):
    """The docker CLI exited non-zero; the message is its stderr (dockerd's words)."""


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def docker_path() -> str | None:
    from teachdock.lab.client_and_daemon import docker_cli

    return docker_cli()


def daemon_reachable() -> bool:
    """Whether the docker CLI is here and teachdockd's socket exists (nothing is started)."""
    host = docker_host()
    return docker_path() is not None and (not host.startswith("unix://") or os.path.exists(host[len("unix://"):]))


def ensure_daemon():
    """A client of teachdockd at ``docker_host()``, started if nobody answers; its version."""
    from teachdock.client import Client

    client = Client(docker_host())
    return client.version()


def docker(*args: str, check: bool = True, timeout: float = 120, input: str | None = None):  # noqa: A002
    """``docker ARGS`` against teachdockd; returns the CompletedProcess (text)."""
    path = docker_path()
    if path is None:
        raise DockerFailed(say("the docker CLI is not installed here (apt-get install docker.io)"))
    done = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout, input=input,
                          env={**os.environ, "DOCKER_HOST": docker_host()},
                          stdin=None if input is not None else subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise DockerFailed(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done


def container_pid(name: str) -> int:
    pid = int(docker("inspect", "--format", "{{.State.Pid}}", name).stdout.strip() or 0)
    if pid <= 0:
        raise DockerFailed(say("container {name} is not running", name=name))
    return pid


def container_netns(name: str) -> str:
    return f"/proc/{container_pid(name)}/ns/net"


def container_address(name: str, network: str | None = None) -> str:
    """The container's IPv4 address on ``network`` (or on its only/first network)."""
    import json

    networks = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", name).stdout)
    if network is not None:
        return networks[network]["IPAddress"]
    return next(iter(networks.values()))["IPAddress"]


def lab_objects() -> tuple[list[str], list[str]]:
    """(containers, networks) of teachdockd named tdlab-…."""
    containers = docker("ps", "-a", "--filter", f"name={PREFIX}", "--format", "{{.Names}}").stdout.split()
    networks = docker("network", "ls", "--filter", f"name={PREFIX}", "--format", "{{.Name}}").stdout.split()
    return ([name for name in containers if name.startswith(PREFIX)],
            [name for name in networks if name.startswith(PREFIX)])


def remove_lab_objects() -> list[str]:
    """Remove the chapter's containers, then its networks; returns what was removed."""
    containers, networks = lab_objects()
    if containers:
        docker("rm", "--force", *containers)
    for network in networks:
        docker("network", "rm", network)
    return ([say("container {name}", name=name) for name in containers]
            + [say("network {name}", name=name) for name in networks])


def daemon_sources() -> list[tuple[str, str | None]]:
    """For the topology: the host's namespace and each running container's (label, netns path)."""
    sources: list[tuple[str, str | None]] = [("host", None)]
    listing = docker("ps", "--format", "{{.Names}}").stdout.split()
    for name in listing:
        try:
            sources.append((name, container_netns(name)))
        except (DockerFailed, ValueError):
            continue   # stopped between the two questions
    return sources


def http_get(url: str, *, timeout: float = 5) -> str:
    """The body of ``url`` (urllib, from the host), or the error as text."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:   # noqa: S310 — loopback only
            return answer.read().decode(errors="replace")
    except OSError as error:
        return f"error: {error}"
