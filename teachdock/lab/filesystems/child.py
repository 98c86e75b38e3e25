"""A forked child that reports back: how every experiment of chapter 04 runs.

The notebook's own process must never chroot, unshare or setns (teachdock.lab.filesystems.
experiments says why), so each experiment forks a ``Child``, the child changes *its* root or
namespaces, and it reports what it saw as JSON over a socket pair. ``run_in_child`` is the
one-call form. ``become_root_in_user_namespace`` lets a child without root be root in a user
namespace of its own, which is how the experiments run for a learner without root.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time

from teachdock import kernel
from teachdock.errors import KernelError, TeachdockError
from teachdock.lab.common.language import say


class ChildFailed(TeachdockError):
    """The forked child of an experiment failed in a way that is not a system call's errno."""


class Child:
    """Fork a child that runs ``work(channel, *args)``; talk to it with JSON messages.

    In the child, ``channel.send(**message)`` and ``channel.receive()`` talk to the parent.
    Whatever ``work`` returns is sent as ``{"result": ...}``; an exception is sent as
    ``{"failed": {"error": ..., "errno": ...}}`` and raised again in the parent by ``receive()``
    (a KernelError when it carries an errno). The child always ends with ``os._exit``, so
    it never runs the notebook's code. Use it as a context manager: on exit the channel is
    closed and the child reaped (killed after a few seconds if it hangs).
    """

    def __init__(self, work, *args, timeout: float = 10.0):
        self.timeout = timeout
        self._reaped = False
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # ---- the child: never returns ----
            status = 1
            self.pid, self.timeout = 0, None  # the child waits for its parent as long as it takes
            try:
                parent_end.close()
                kernel.set_pdeathsig(signal.SIGKILL)  # the notebook's kernel died: so do we
                self._sock = child_end
                self.send(result=work(self, *args))
                status = 0
            except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
                try:
                    self.send(failed={"error": str(error) or type(error).__name__, "kind": type(error).__name__,
                                      "errno": getattr(error, "errno", None), "call": getattr(error, "call", None)})
                except BaseException:  # noqa: BLE001 - the parent has gone; nothing to tell
                    pass
            finally:
                os._exit(status)
        child_end.close()
        self.pid = pid
        self._sock = parent_end

    def send(self, **message) -> None:
        self._sock.send(json.dumps(message).encode())

    def receive(self) -> dict:
        """The next message; raises what the child raised, or ChildFailed when it died silently."""
        if self.timeout is not None and not select.select([self._sock], [], [], self.timeout)[0]:
            self.close(grace=0)
            raise ChildFailed(say("the experiment's child process gave no answer within {seconds} s; it was stopped",
                                  seconds=self.timeout))
        data = self._sock.recv(1 << 20)
        if not data:
            raise ChildFailed(say("the experiment's child process exited without an answer"))
        message = json.loads(data)
        failed = message.get("failed")
        if failed:
            if failed["errno"]:
                raise KernelError(failed["call"] or "child", failed["errno"], failed["error"])
            raise ChildFailed(f"{failed['kind']}: {failed['error']}")
        return message

    def result(self):
        """Wait for the value ``work`` returned."""
        while True:
            message = self.receive()
            if "result" in message:
                return message["result"]

    def close(self, grace: float = 5.0) -> None:
        """Close the channel (a waiting child then gets end-of-file) and reap the child;
        SIGKILL it if it has not exited after ``grace`` seconds."""
        if self._reaped:
            return
        self._sock.close()
        deadline = time.monotonic() + grace
        while not os.waitpid(self.pid, os.WNOHANG)[0]:
            if time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.002)
        self._reaped = True

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_in_child(work, *args, timeout: float = 10.0):
    """Run ``work(channel, *args)`` in a forked child and return its result (or raise its error)."""
    with Child(work, *args, timeout=timeout) as child:
        return child.result()


def become_root_in_user_namespace() -> None:
    """In a child without root: a user namespace of our own, where we are uid 0 with all
    capabilities over the namespaces we create next. This is how the chroot and mount
    experiments run for a learner without root (user_namespaces(7))."""
    uid, gid = os.geteuid(), os.getegid()
    kernel.unshare(kernel.CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")  # required before an unprivileged process may write gid_map
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def user_namespace_wanted(user_namespace: bool | None) -> bool:
    return os.geteuid() != 0 if user_namespace is None else user_namespace


def root_identity(path: str = "/") -> tuple[int, int]:
    """(device, inode): two processes have the same root exactly when these match."""
    info = os.stat(path)
    return info.st_dev, info.st_ino
