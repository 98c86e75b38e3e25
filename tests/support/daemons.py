"""A teachdockd of the test's own, run as a subprocess, and a raw HTTP client for its socket.

Used by the daemon, client and lab tests in tests/integration, the compat tests in
tests/compat (``from tests.support.daemons import running_daemon``) and benchmarks/daemon.py.
Each daemon gets a fresh directory with its data root (busybox
bootstrapped into it), exec root, socket and pidfile, and a cgroup parent of its own, so it
never touches /var/lib/teachdock, /run/teachdock or another daemon's containers.

``leaks()`` lists what the daemon's containers left on the host: mounts under its root,
cgroups under its cgroup parent, processes in them, monitors (``td-shim``) and log writers.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from teachdock import kernel
from teachdock.image.images import Images
from teachdock.image.overlay import mount_points

CGROUP_ROOT = "/sys/fs/cgroup"

# The real docker CLI, the client the compat tests drive teachdockd with (None: not installed).
# /usr/local/bin first: a newer CLI installed by hand wins over Debian's docker.io.
DOCKER = next((path for path in ("/usr/local/bin/docker", "/usr/bin/docker") if os.access(path, os.X_OK)),
              None) or shutil.which("docker")


def docker_cli(socket_path: str, config_dir, **extra_env):
    """``run(*args, input=None, timeout=60, stdin=DEVNULL, binary=False)`` -> CompletedProcess:
    the docker CLI talking to this socket only (own config dir, no hints, the legacy builder,
    no context or API version from the caller's environment). ``run.env`` is its environment."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CLI_HINTS": "false", "DOCKER_CONFIG": str(config_dir), **extra_env}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("DOCKER_API_VERSION", None)

    def run(*args, input: str | None = None, timeout: float = 120, stdin=subprocess.DEVNULL,
            binary: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=not binary, timeout=timeout,
                              input=input, stdin=None if input is not None else stdin)

    run.env = env
    return run


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket (the docker SDK does the same with requests)."""

    def __init__(self, socket_path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def demultiplex(data: bytes) -> list[tuple[int, bytes]]:
    """Split Docker's multiplexed stream into (stream id, payload) frames."""
    frames = []
    while data:
        assert len(data) >= 8, f"a truncated frame header: {data!r}"
        stream, length = struct.unpack(">BxxxI", data[:8])
        frames.append((stream, data[8:8 + length]))
        data = data[8 + length:]
    return frames


class DaemonProcess:
    """``start()``, ``request()``, ``stop()``, ``restart()``; ``close()`` removes everything."""

    def __init__(self, parent_dir: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="teachdockd-", dir=parent_dir))
        self.dir.chmod(0o755)
        self.data_root = self.dir / "data"
        self.exec_root = self.dir / "exec"
        self.socket_path = str(self.dir / "teachdock.sock")
        self.pidfile = self.dir / "teachdockd.pid"
        self.cgroup_parent = f"tdd-{secrets.token_hex(4)}"
        # its own default bridge, so that daemons side by side never share addresses (dockerd's -b, --bip)
        self.bridge = f"tdb{secrets.token_hex(4)}"
        self.bip = free_bip()
        self.log_path = self.dir / "teachdockd.log"
        self.process: subprocess.Popen | None = None
        self.container_ids: set[str] = set()
        self.extra_args: list[str] = []  # more teachdockd flags, e.g. ["-H", "tcp://...", "--insecure-tcp"]

    def bootstrap_busybox(self) -> None:
        Images(self.data_root).bootstrap_busybox()

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "teachdock.daemon", "-H", f"unix://{self.socket_path}",
             "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
             "--pidfile", str(self.pidfile), "--cgroup-parent", self.cgroup_parent,
             *(["--bridge", self.bridge, "--bip", self.bip] if os.geteuid() == 0 else []), *self.extra_args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"teachdockd exited with {self.process.returncode}: {self.log()}")
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"teachdockd did not answer within {timeout} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def stop(self) -> None:
        """SIGTERM by the pid in the pidfile, as an init system would; then wait for the exit."""
        if self.process is None:
            return
        if self.pidfile.exists():
            os.kill(self.pid, signal.SIGTERM)
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- HTTP ----------------------------------------------------------------------------------------
    def connection(self, timeout: float = 30) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.socket_path, timeout)

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request on a fresh connection: (status, headers, body bytes)."""
        connection = self.connection(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            all_headers = {"Content-Type": "application/json"} if data is not None else {}
            all_headers.update(headers or {})
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body=None, expect: int = 200):
        status, _, data = self.request(method, path, body)
        assert status == expect, f"{method} {path}: {status} {data!r}"
        return json.loads(data) if data else None

    def create(self, cmd: list[str], *, name: str | None = None, image: str = "busybox", **config) -> str:
        path = "/v1.45/containers/create" + (f"?name={name}" if name else "")
        body = {"Image": image, "Cmd": cmd, "AttachStdout": True, "AttachStderr": True, "Tty": False, **config}
        container_id = self.json("POST", path, body, expect=201)["Id"]
        self.container_ids.add(container_id)
        return container_id

    def remove_all(self) -> None:
        for summary in self.json("GET", "/v1.45/containers/json?all=1"):
            self.request("DELETE", f"/v1.45/containers/{summary['Id']}?force=1")

    # --- what is left ------------------------------------------------------------------------------
    def leaks(self, settle: float = 10.0) -> list[str]:
        """What is left, re-checked for up to ``settle`` seconds: a monitor exits a moment
        after it has recorded the exit status that ``rm`` waits for."""
        deadline = time.monotonic() + settle
        while True:
            problems = self._leaks_now()
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.05)

    def _leaks_now(self) -> list[str]:
        daemon_pid = self.process.pid if self.process is not None else None
        problems = [f"mount {point}" for point in mount_points() if point.startswith(f"{self.dir}/")]
        problems += [f"veth {name} on {self.bridge}" for name in _links().ports_of(self.bridge)]
        for directory, subdirs, _files in os.walk(CGROUP_ROOT):
            if os.path.basename(directory) == self.cgroup_parent and subdirs:
                problems.append(f"cgroups {directory}/{subdirs}")
        for pid in _pids():
            try:
                cgroups = Path(f"/proc/{pid}/cgroup").read_text()
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                continue
            if f"/{self.cgroup_parent}/" in cgroups:
                problems.append(f"process {pid} ({comm}) in a container cgroup")
            elif comm.startswith("td-shim ") and any(i.startswith(comm[8:]) for i in self.container_ids):
                problems.append(f"monitor {pid} ({comm})")
            elif any(fd.startswith(f"{self.dir}/") for fd in fds) and pid not in (os.getpid(), daemon_pid):
                problems.append(f"process {pid} ({comm}) holds files of the daemon: {fds}")
        return problems

    def close(self) -> list[str]:
        """Remove the containers, stop the daemon, report leaks, then remove everything anyway."""
        if self.process is not None:
            try:
                self.remove_all()
            except (OSError, AssertionError):
                pass
            self.stop()
        leaks = self.leaks()
        for point in sorted((p for p in mount_points() if p.startswith(f"{self.dir}/")), reverse=True):
            kernel.umount2(point, kernel.MNT_DETACH)
        for directory, _subdirs, _files in sorted(os.walk(CGROUP_ROOT), reverse=True):
            if f"/{self.cgroup_parent}" in directory:
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
        _links().delete_link(self.bridge)  # the default bridge stays with dockerd (docker0); a test's goes
        if os.geteuid() == 0:  # and so does its daemon's nftables table (ip_forward put back when it is the last)
            from teachdock.daemon.firewall import Firewall, table_name  # noqa: PLC0415

            Firewall(table_name(self.bridge)).sweep(set(), set())
        shutil.rmtree(self.dir, ignore_errors=True)
        return leaks


def _links():
    """teachdock.daemon.links, imported when first needed: it needs pyroute2, which the cgroup v2
    VM's guest (tests/vm) does not have, and it imports this module through the integration
    conftest without ever starting a daemon."""
    from teachdock.daemon import links  # noqa: PLC0415

    return links


def free_bip() -> str:
    """A gateway/subnet for a test daemon's default bridge: a /24 of 172.28.0.0/16 (clear of the real
    default, teachdock0's 172.29.0.0/16, and of user networks' 172.30.0.0/16) that no interface has."""
    if os.geteuid() != 0:
        return "172.28.1.1/24"
    taken = _links().host_networks()
    free = [n for n in ipaddress.ip_network("172.28.0.0/16").subnets(new_prefix=24)
            if n.network_address.packed[2] and not any(n.overlaps(other) for other in taken)]
    if not free:
        raise RuntimeError("no free /24 in 172.28.0.0/16 for a test daemon's bridge: remove leftover tdb* bridges")
    return f"{secrets.choice(free).network_address + 1}/24"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


@contextlib.contextmanager
def running_daemon(parent_dir: str | None = None):
    """A started teachdockd with busybox:latest in its store; stopped when the block ends, and
    an AssertionError if its containers left anything behind. Skips without a static busybox."""
    import pytest  # noqa: PLC0415 - only the tests use this helper

    from teachdock.errors import TeachdockError  # noqa: PLC0415
    from teachdock.image import busybox  # noqa: PLC0415

    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    process = DaemonProcess(parent_dir)
    try:
        process.bootstrap_busybox()
        process.start()
        yield process
    finally:
        leaks = process.close()
    assert not leaks, f"the daemon's containers left resources behind: {leaks}"

