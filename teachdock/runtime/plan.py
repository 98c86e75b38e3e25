"""The plan: what the caller works out before the first fork, and how the processes talk.

The caller reads config.json once and decides which namespaces are created by whom (PID
and time namespaces by the parent of PID 1, the others by PID 1 itself, a user namespace
first of all, in stage 1), which are joined, and which fds become the container's stdio.
The monitor, stage 1 and init only carry the plan out: forked children inherit it.

Once forked, the monitor and the container's processes exchange small JSON objects over a
SOCK_SEQPACKET socket pair (one message per packet). The socket is close-on-exec, so when
init's ``execve`` succeeds the monitor simply reads end-of-file.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from teachdock import kernel
from teachdock.errors import NotFound, TeachdockError
from teachdock.runtime import cgroups

MAX_MESSAGE = 65536


class Plan:
    """Everything the forked processes need, prepared by the caller before any fork.

    A plain class rather than a dataclass: importing dataclasses costs ~11 ms (inspect, ast,
    dis), paid on every `teachdock runtime run`.
    """

    def __init__(self, container_id: str, config: dict, rootfs: str, state_dir: Path, cgroup: cgroups.Cgroup,
                 children_namespaces: int, own_namespaces: int, new_user: bool, new_cgroupns: bool,
                 joins: list[tuple[int, int]], stdio: list[int], init: bool, detach: bool):
        self.container_id = container_id
        self.config = config
        self.rootfs = rootfs
        self.state_dir = state_dir
        self.cgroup = cgroup
        self.children_namespaces = children_namespaces  # CLONE_NEWPID/CLONE_NEWTIME: unshared by the parent,
        #                                                 they apply to its children
        self.own_namespaces = own_namespaces  # mount, uts, ipc, network: unshared by the process that becomes PID 1
        self.new_user = new_user
        self.new_cgroupns = new_cgroupns
        self.joins = joins  # (open fd of /proc/<pid>/ns/<kind>, clone flag)
        self.stdio = stdio  # fds to become the container's 0, 1, 2
        self.init = init
        self.detach = detach
        self.kill_on_caller_exit = False
        self.caller_pid = os.getpid()
        self.console_socket: int | None = None  # with a terminal: where init sends the pty's master
        self.seccomp = None  # linux.seccomp compiled before the fork (a seccomp.Filter), or None

    @property
    def needs_stage1(self) -> bool:
        """A user namespace must exist before the PID namespace it will own, which takes one more fork."""
        return self.new_user or any(flag == kernel.CLONE_NEWUSER for _, flag in self.joins)


def make_plan(container_id, config, root, state_dir, cgroup, detach, stdio) -> Plan:
    """Work out which namespaces to create and which to join; open the join targets now."""
    children, own, joins, new_user, new_cgroupns = 0, 0, [], False, False
    for entry in config.get("linux", {}).get("namespaces", []):
        flag = kernel.NAMESPACES[entry["type"]][0]
        if entry.get("path"):
            try:
                fd = os.open(entry["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                raise NotFound(f"cannot join {entry['type']} namespace {entry['path']}: {error.strerror}") from None
            joins.append((fd, flag))
        elif entry["type"] == "user":
            new_user = True
        elif entry["type"] == "cgroup":
            new_cgroupns = True
        elif entry["type"] in ("pid", "time"):
            children |= flag
        else:
            own |= flag
    joins.sort(key=lambda item: item[1] != kernel.CLONE_NEWUSER)  # join the user namespace first
    return Plan(container_id, config, root, state_dir, cgroup, children, own, new_user, new_cgroupns, joins, stdio,
                config.get("annotations", {}).get("org.teachdock.init") == "true", detach)


def send(sock: socket.socket, **message) -> None:
    sock.send(json.dumps(message).encode())


def receive(sock: socket.socket) -> dict | None:
    """The next message, or None at end-of-file (the other side exec'd or died)."""
    data = sock.recv(MAX_MESSAGE)
    return json.loads(data) if data else None


def describe(error: BaseException) -> str:
    """An error as the caller should read it: our own errors speak for themselves."""
    if isinstance(error, TeachdockError):
        return str(error)
    return f"{type(error).__name__}: {error}"
