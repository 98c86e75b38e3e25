"""Exec instances: ``docker exec`` as the daemon keeps it.

``docker exec c1 ls /`` is three requests: ``POST /containers/c1/exec`` records what to
run and answers an exec id; ``POST /exec/<id>/start`` runs it (the runtime's
:func:`~teachdock.runtime.exec_in`) and streams its output on a hijacked connection;
``GET /exec/<id>/json`` then tells the CLI the exit code it exits with.

Exec instances live in the daemon's memory only, as in dockerd: a restarted daemon
forgets them (the programs themselves keep running inside their container).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading

from teachdock.daemon.containers import ContainerRecord
from teachdock.daemon.oci import env_dict
from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.runtime import DEVNULL, PIPE, ExecProcess, exec_in, terminal


class ExecInstance:
    """One ``docker exec``: what to run, and once started, its process and exit code."""

    def __init__(self, container: ContainerRecord, config: dict):
        self.id = secrets.token_hex(32)
        self.container = container
        self.config = config
        self.process: ExecProcess | None = None
        self.running = False
        self.exit_code: int | None = None
        self.finished = threading.Event()
        self.tty_fd: int | None = None  # with -t: the terminal's master side, while the program runs

    def inspect(self) -> dict:
        """``GET /exec/<id>/json``, dockerd's shape."""
        config = self.config
        return {
            "ID": self.id, "ContainerID": self.container.id, "Running": self.running,
            "ExitCode": self.exit_code, "Pid": self.process.pid if self.process else 0,
            "OpenStdin": config["AttachStdin"], "OpenStdout": config["AttachStdout"],
            "OpenStderr": config["AttachStderr"], "CanRemove": False, "DetachKeys": "",
            "ProcessConfig": {"tty": config["Tty"], "entrypoint": config["Cmd"][0], "arguments": config["Cmd"][1:],
                              "privileged": config["Privileged"], "user": config["User"]},
        }


class ExecManager:
    """Create, start and look up exec instances."""

    def __init__(self, containers, events):
        self.containers = containers
        self.events = events
        self._instances: dict[str, ExecInstance] = {}
        self._lock = threading.Lock()

    def create(self, record: ContainerRecord, body: dict) -> ExecInstance:
        """``POST /containers/<id>/exec``: check, record, answer an id; nothing runs yet."""
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not all(isinstance(item, str) for item in cmd):
            raise InvalidConfig("No exec command specified")
        for field in ("Env",):
            if body.get(field) is not None and not isinstance(body[field], list):
                raise InvalidConfig(f"{field} must be a list of strings")
        size = body.get("ConsoleSize")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and
                                     all(isinstance(v, int) and 0 <= v < 65536 for v in size)):
            raise InvalidConfig("ConsoleSize must be [height, width]")
        if not record.running:
            raise Conflict(f"Container {record.id} is not running")
        if record.status == "paused":
            raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
        config = {
            "Cmd": list(cmd), "Env": list(body.get("Env") or []), "User": body.get("User") or "",
            "WorkingDir": body.get("WorkingDir") or "", "Privileged": bool(body.get("Privileged")),
            "AttachStdin": bool(body.get("AttachStdin")), "AttachStdout": bool(body.get("AttachStdout")),
            "AttachStderr": bool(body.get("AttachStderr")), "Tty": bool(body.get("Tty")),
            "ConsoleSize": body.get("ConsoleSize") or [0, 0],
        }
        instance = ExecInstance(record, config)
        with self._lock:
            self._instances[instance.id] = instance
        self._event(instance, "exec_create")
        return instance

    def get(self, exec_id: str) -> ExecInstance:
        with self._lock:
            instance = self._instances.get(exec_id)
        if instance is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    def start(self, instance: ExecInstance, *, attached: bool) -> ExecInstance:
        """Run the program. ``attached``: stdin/stdout/stderr become pipes for the caller to
        copy to and from the client; otherwise output goes nowhere, as with ``exec -d``."""
        record, config = instance.container, instance.config
        with self._lock:
            if instance.process is not None or instance.finished.is_set():
                raise Conflict(f"Error: Exec command {instance.id} has already run")
            instance.running = True
        if not record.running or record.runtime is None:
            instance.running = False
            raise Conflict(f"Container {record.id} is not running")
        user = config["User"] or record.data["Config"].get("User") or ""
        console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if config["Tty"] else None
        if console:  # -t: the program makes a pty in the container's /dev/pts and sends us its master
            stdio = {"stdin": DEVNULL, "stdout": DEVNULL, "stderr": DEVNULL, "console_socket": console[1].fileno(),
                     "console_size": config["ConsoleSize"]}
        else:
            stdio = {"stdin": PIPE if attached and config["AttachStdin"] else DEVNULL,
                     "stdout": PIPE if attached and config["AttachStdout"] else DEVNULL,
                     "stderr": PIPE if attached and config["AttachStderr"] else DEVNULL}
        try:
            instance.process = exec_in(
                record.runtime, config["Cmd"], env=env_dict(config["Env"]),
                cwd=config["WorkingDir"] or None, user=user or None,
                privileged=config["Privileged"], **stdio)
            if console:
                console[1].close()
                instance.tty_fd = terminal.receive_terminal(console[0])
        except Exception:
            if instance.process is not None:
                instance.process.kill(signal.SIGKILL)
            instance.running = False
            instance.exit_code = 126
            instance.finished.set()
            close_quietly(instance.tty_fd)
            instance.tty_fd = None
            raise
        finally:
            for end in console or ():
                end.close()
        if console and not attached:  # exec -dt: nobody reads; keep the terminal drained
            threading.Thread(target=_drain, args=(instance.tty_fd,), daemon=True).start()
        self._event(instance, "exec_start")
        threading.Thread(target=self._wait, args=(instance,), daemon=True, name=f"exec-{instance.id[:12]}").start()
        return instance

    def forget(self, instance: ExecInstance) -> None:
        """Drop a finished (or abandoned) instance: the health checker's probes would otherwise
        pile up here, one per probe, for the daemon's lifetime."""
        with self._lock:
            self._instances.pop(instance.id, None)

    def resize(self, instance: ExecInstance, height: int, width: int) -> None:
        if instance.tty_fd is not None:
            terminal.set_window_size(instance.tty_fd, height, width)

    def _wait(self, instance: ExecInstance) -> None:
        code = instance.process.wait()
        instance.exit_code = code
        instance.running = False
        self._event(instance, "exec_die", exitCode=code)  # first: a health probe's verdict comes after it
        instance.finished.set()

    def _event(self, instance: ExecInstance, action: str, **extra) -> None:
        record = instance.container
        command = " ".join(instance.config["Cmd"])  # unquoted, as dockerd writes it: "exec_create: sh -c exit 1"
        self.events.publish("container", f"{action}: {command}" if action != "exec_die" else action, record.id,
                            image=record.data["Config"]["Image"], name=record.name.lstrip("/"),
                            execID=instance.id, **extra)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass  # EIO: the program and its children have closed the terminal


def close_quietly(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
