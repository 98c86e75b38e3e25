"""Start a teachdockd from the client: the "embedded" daemon a notebook or a first command gets.

``start_daemon(host, data_root)`` runs ``python -m teachdock.daemon`` detached (a session of
its own, so closing the notebook or the shell does not signal it), logging to a file next to
the socket, and returns once ``/_ping`` answers. The daemon then lives on its own, as dockerd
does; ``EmbeddedDaemon.stop()`` ends it by its pid.

This module sits below ``api`` (the Client imports it to autostart): what it asks the daemon
(``/_ping``, its containers, their removal) it asks with the transport alone, one
request per connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from teachdock.client.transport import Connection, DaemonUnavailable, Response, parse_host
from teachdock.errors import InvalidConfig
from teachdock.paths import DEFAULT_EXEC_ROOT, DEFAULT_SOCKET


def side_files(socket_path: str) -> tuple[str, str]:
    """The pidfile and the log of a daemon on ``socket_path``: same directory, same stem."""
    stem = socket_path[:-5] if socket_path.endswith(".sock") else socket_path
    return stem + ".pid", stem + ".log"


def ask(host: str, method: str, path: str, timeout: float = 2.0) -> Response:
    """One request on a connection of its own, the answer read whole (DaemonUnavailable or
    OSError when no daemon answers)."""
    connection = Connection(host, timeout)
    try:
        connection.send_request(method, path)
        response = connection.read_response(method)
        response.body  # noqa: B018 - read it before the connection closes
        return response
    finally:
        connection.close()


def ping(host: str, timeout: float = 2.0) -> bool:
    try:
        response = ask(host, "GET", "/_ping", timeout)
    except (DaemonUnavailable, OSError):
        return False
    return response.status == 200 and response.body == b"OK"


class EmbeddedDaemon:
    """A daemon this process started: ``host``, ``pid``, ``log_path``; ``stop()`` ends it."""

    def __init__(self, host: str, pid: int, log_path: str, process: subprocess.Popen | None = None):
        self.host = host
        self.pid = pid
        self.log_path = log_path
        self._process = process

    def __repr__(self) -> str:
        return f"EmbeddedDaemon(host={self.host!r}, pid={self.pid})"

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, *, remove_containers: bool = True, timeout: float = 20) -> None:
        """Remove its containers (unless ``remove_containers=False``: dockerd with live-restore
        leaves them running), then SIGTERM by pid and wait for the exit (SIGKILL after ``timeout``)."""
        if not self.running():
            return
        if remove_containers:
            try:
                for summary in ask(self.host, "GET", "/containers/json?all=1", timeout).json():
                    ask(self.host, "DELETE", f"/containers/{summary['Id']}?force=1", timeout)
            except Exception:  # noqa: BLE001 - stopping must go on even if the daemon is unwell
                pass
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                if self._process is not None:
                    self._process.wait()
                break
            time.sleep(0.02)


def start_daemon(host: str, data_root, *, exec_root=None, cgroup_parent: str | None = None,
                 bridge: str | None = None, bip: str | None = None, timeout: float = 30) -> EmbeddedDaemon:
    """Start ``teachdockd -H host --data-root data_root`` detached and wait until it answers.

    ``exec_root`` (runtime state) defaults to /run/teachdock for the default socket and to
    ``exec`` next to any other socket, so that two daemons never share their containers' state.
    ``bridge``/``bip``: the default network's Linux bridge and gateway/subnet (dockerd's ``-b``,
    ``--bip``); a second daemon needs its own, or both hand out the same addresses on one bridge.
    """
    kind, socket_path = parse_host(host)
    if kind != "unix":
        raise InvalidConfig(f"only a unix:// daemon can be started from the client, not {host}")
    socket_dir = os.path.dirname(socket_path)
    if exec_root is None:
        exec_root = DEFAULT_EXEC_ROOT if socket_path == DEFAULT_SOCKET else os.path.join(socket_dir, "exec")
    pidfile, log_path = side_files(socket_path)
    os.makedirs(socket_dir, exist_ok=True)
    command = [sys.executable, "-m", "teachdock.daemon", "-H", host, "--data-root", str(data_root),
               "--exec-root", str(exec_root), "--pidfile", pidfile]
    if cgroup_parent:
        command += ["--cgroup-parent", cgroup_parent]
    if bridge:
        command += ["--bridge", bridge]
    if bip:
        command += ["--bip", bip]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            if ping(host):  # another client started one on this socket a moment before us
                return EmbeddedDaemon(host, _read_pid(pidfile) or 0, log_path)
            raise DaemonUnavailable(f"teachdockd exited with status {process.returncode} while starting on {host}; "
                                    f"the end of its log ({log_path}):\n{_tail(log_path)}")
        if ping(host):
            return EmbeddedDaemon(host, process.pid, log_path, process)
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise DaemonUnavailable(f"teachdockd did not answer on {host} within {timeout:.0f} s; "
                                    f"the end of its log ({log_path}):\n{_tail(log_path)}")
        time.sleep(0.02)


def _read_pid(pidfile: str) -> int | None:
    try:
        with open(pidfile) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip() or "(empty)"
    except OSError as error:
        return f"(cannot read it: {error})"
