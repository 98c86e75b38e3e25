"""Run a program inside a network namespace: ``python nsexec.py NETNS -- ARGV``.

NETNS is a path to a namespace file: ``/run/netns/tdlab-red`` (a named namespace, as
``ip netns add`` makes it) or ``/proc/<pid>/ns/net`` (a container's). The process joins it
with ``setns(2)`` and then runs ARGV — what ``ip netns exec`` and ``nsenter --net`` do. A
fresh process is single-threaded, so joining is safe; the notebook's own process never
changes its namespace (a Jupyter kernel has threads).

Two small tools come with it, so a lab step needs no program the host may lack:

- ``--whoami PORT [COUNT]``: a TCP server that answers each of COUNT connections with one
  line, ``you are <peer ip>:<port>, I am <own ip>:<port>``: who did the server see?
It runs as a script (by its path), not with ``-m``: ``-m`` would import the whole
``teachdock.lab.networks`` package first, and a measurement's client should start fast.

- ``--timed``: run ARGV and print its wall time in seconds as the last line on stderr
  (``elapsed=0.0123``), measured here, after the namespace switch, so Python's start-up and
  ``setns`` are not counted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from teachdock import kernel

NETNS_DIR = "/run/netns"   # where ``ip netns add`` (and pyroute2's netns.create) pin named namespaces


def netns_path(netns: str | None) -> str | None:
    """``"tdlab-red"`` -> ``/run/netns/tdlab-red``; a path stays a path; None is the host."""
    if netns is None or netns.startswith("/"):
        return netns
    return f"{NETNS_DIR}/{netns}"


def nsexec_argv(netns: str | None, argv: list[str], *, timed: bool = False) -> list[str]:
    """The command line that runs ``argv`` inside ``netns`` (None: here, as it is)."""
    if netns is None:
        return list(argv)
    return [sys.executable, __file__, netns_path(netns),
            *(["--timed"] if timed else []), "--", *argv]


def already_in(netns_path: str) -> bool:
    """The namespace at ``netns_path`` is this process's own (the host's, when measuring loopback)."""
    here, there = os.stat("/proc/self/ns/net"), os.stat(netns_path)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def join(netns_path: str) -> None:
    """Move this (single-threaded) process into the network namespace at ``netns_path``.

    Joining the namespace it is already in is skipped: ``setns`` would ask for
    CAP_SYS_ADMIN even then, and the loopback measurement runs without root.
    """
    if already_in(netns_path):
        return
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        kernel.setns(fd, kernel.CLONE_NEWNET)
    finally:
        os.close(fd)


def whoami_server(port: int, count: int) -> None:
    """Answer ``count`` connections with the peer's and our own address, then exit."""
    with socket.create_server(("0.0.0.0", port), reuse_port=False) as server:
        # the tool's own log, on a pipe nobody reads (its answers are the protocol, parsed by the checks)
        print(f"listening on port {port}", flush=True)  # the same in every language
        for _ in range(count):
            connection, (peer, peer_port) = server.accept()
            with connection:
                own, own_port = connection.getsockname()[:2]
                connection.sendall(f"you are {peer}:{peer_port}, I am {own}:{own_port}\n".encode())
                print(f"accepted {peer}:{peer_port}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    join(argv[0])
    rest = argv[1:]
    if rest[0] == "--whoami":
        whoami_server(int(rest[1]), int(rest[2]) if len(rest) > 2 else 1)
        return 0
    timed = rest[0] == "--timed"
    if timed:
        rest = rest[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    started = time.perf_counter()
    code = subprocess.call(rest)
    if timed:
        print(f"elapsed={time.perf_counter() - started:.6f}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
