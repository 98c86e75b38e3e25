"""teachdock's OCI runtime: a bundle (config.json + rootfs) in, a running container out.

This is teachdock's runc. The notebooks use two entry points:

- :func:`run` — one call: start a command in a rootfs with chosen namespaces and limits,
  wait for it, and get back its exit code, output and resource figures;
- :class:`Container` — the lifecycle one step at a time (create, start, state, kill,
  delete), for watching a container while it runs;
- :func:`exec_in` — one more program inside a running container (``docker exec``).

The CLI ``teachdock runtime`` offers the same verbs as ``runc``.
"""

from __future__ import annotations

import os
import selectors
import signal
import time

from teachdock import paths
from teachdock.errors import TeachdockError
from teachdock.runtime.cgroups import Metrics
from teachdock.runtime.container import DEVNULL, PIPE, Container, list_containers
from teachdock.runtime.exec_process import ExecProcess, exec_in
from teachdock.runtime.spec import load_bundle, make_spec, write_bundle

__all__ = ["run", "RunResult", "Container", "Metrics", "make_spec", "load_bundle", "write_bundle",
           "list_containers", "PIPE", "DEVNULL", "exec_in", "ExecProcess"]


class RunResult:
    """What one container run produced: how it ended, what it printed, what it used.

    A plain class rather than a dataclass: importing dataclasses costs ~11 ms (inspect, ast,
    dis), paid by every program that imports the runtime (`teachdock runtime run` too).
    """

    __slots__ = ("id", "exit_code", "stdout", "stderr", "oom_killed", "metrics", "duration")

    def __init__(self, id: str, exit_code: int | None, stdout: str, stderr: str, oom_killed: bool,  # noqa: A002
                 metrics: Metrics | None, duration: float):
        self.id = id
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.oom_killed = oom_killed
        self.metrics = metrics  # None for a rootless container: it has no cgroup to measure
        self.duration = duration  # seconds from create to exit

    def __eq__(self, other) -> bool:
        if type(other) is not RunResult:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return "RunResult(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__) + ")"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run(args, rootfs=None, *, container_id: str | None = None, input: bytes | str | None = None,
        timeout: float | None = None, bundle=None, state_root=None, **spec_options) -> RunResult:
    """Run ``args`` in a fresh container and wait for it, like ``docker run --rm``.

    ``rootfs`` is a directory (e.g. the busybox base built by
    ``teachdock store bootstrap busybox``); keywords such as ``memory="64m"``, ``cpus=0.5``,
    ``pids_limit=20``, ``namespaces=("pid", "uts")``, ``hostname``, ``user``, ``env`` and
    ``init`` are those of :func:`teachdock.runtime.make_spec`. A ``timeout`` kills the
    container (exit code 137) when it runs too long.
    """
    container_id = container_id or f"run-{os.urandom(6).hex()}"
    started = time.monotonic()
    if bundle is not None:
        container = Container.create(container_id, bundle, state_root=state_root,
                                     stdin=PIPE, stdout=PIPE, stderr=PIPE)
    else:
        if rootfs is None:
            rootfs = paths.default_rootfs_path()  # the usual base
        container = Container.create(container_id, rootfs=rootfs, args=args, state_root=state_root,
                                     stdin=PIPE, stdout=PIPE, stderr=PIPE, **spec_options)
    try:
        container.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        stdout, stderr = _communicate(container, input, timeout)
        try:  # the program may close its output and run on: the deadline still holds
            exit_code = container.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            _kill_everything(container)
            exit_code = container.wait()
        metrics = container.metrics() if container.cgroup.version != "none" else None
        return RunResult(container_id, exit_code, stdout, stderr, container.oom_killed,
                         metrics, time.monotonic() - started)
    finally:
        container.delete(force=True)


def _kill_everything(container: Container) -> None:
    """SIGKILL every process of the container (its PID 1 too: rootless ones have no cgroup)."""
    container.cgroup.kill_all(signal.SIGKILL)
    try:
        container.kill(signal.SIGKILL)
    except TeachdockError:
        pass  # it has stopped already


def _communicate(container: Container, data, timeout: float | None) -> tuple[str, str]:
    """Feed stdin and collect stdout and stderr until both close (like subprocess.communicate)."""
    if isinstance(data, str):
        data = data.encode()
    pending = memoryview(data or b"")
    chunks: dict[int, list[bytes]] = {container.stdout: [], container.stderr: []}
    selector = selectors.DefaultSelector()
    for fd in chunks:
        selector.register(fd, selectors.EVENT_READ)
    stdin_fd, container.stdin = container.stdin, None
    if pending:
        os.set_blocking(stdin_fd, False)
        selector.register(stdin_fd, selectors.EVENT_WRITE)
    else:
        os.close(stdin_fd)
        stdin_fd = None
    deadline = None if timeout is None else time.monotonic() + timeout
    open_readers = 2
    while open_readers:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            _kill_everything(container)
            deadline = None  # keep reading what is left until the pipes close
            continue
        for key, _ in selector.select(left):
            if key.events == selectors.EVENT_WRITE:
                try:
                    written = os.write(key.fd, pending[:65536])
                except BrokenPipeError:
                    written = len(pending)
                pending = pending[written:]
                if not pending:
                    selector.unregister(stdin_fd)
                    os.close(stdin_fd)
                    stdin_fd = None
                continue
            chunk = os.read(key.fd, 65536)
            if chunk:
                chunks[key.fd].append(chunk)
            else:
                selector.unregister(key.fd)
                open_readers -= 1
    if stdin_fd is not None:  # the program exited without reading all its input
        selector.unregister(stdin_fd)
        os.close(stdin_fd)
    selector.close()
    decode = lambda parts: b"".join(parts).decode(errors="replace")  # noqa: E731
    return decode(chunks[container.stdout]), decode(chunks[container.stderr])
