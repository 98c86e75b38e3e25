"""A private dockerd (Debian's docker.io) to compare teachdockd with: the oracle.

Started as in /work/shared/reference/peers-on-this-machine.md: its own data root, exec
root, socket and pidfile, no iptables and no bridge (so containers need ``--network none``),
and a cgroup parent of its own, so it never meets the machine's or another test's dockerd.
With ``bridge=True`` it keeps dockerd's defaults instead (docker0, iptables, docker-proxy) but
runs in a network namespace of its own (``unshare --net``): its docker0, veths and iptables
chains live and die there, so the host's interfaces and rules are never touched.
busybox:latest is the image teachdock bootstraps, saved as a docker-archive and loaded with
``docker load``: both daemons run the very same bytes.

Used by tests/compat/test_dockerd_oracle.py and benchmarks/daemon.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
CGROUP_ROOT = "/sys/fs/cgroup"


def docker_cli() -> str | None:
    """The docker CLI the project's compat tests use (the 28.x one first, as in PATH)."""
    for path in ("/usr/local/bin/docker", "/usr/bin/docker"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("docker")


def dockerd_missing() -> str | None:
    """Why a private dockerd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    if not os.access(DOCKERD, os.X_OK):
        return f"{DOCKERD} is not installed (apt-get install docker.io)"
    if docker_cli() is None:
        return "no docker CLI installed"
    return None


class DockerdProcess:
    """``start()``, ``docker(*args)``, ``load_busybox(data_root)``, ``close()``."""

    def __init__(self, parent_dir: str | None = None, *, bridge: bool = False):
        # short: containerd puts Unix sockets under the exec root (108-byte path limit)
        self.dir = Path(tempfile.mkdtemp(prefix="dkd-", dir=parent_dir or "/tmp"))
        self.socket_path = str(self.dir / "docker.sock")
        self.pidfile = self.dir / "docker.pid"
        self.log_path = self.dir / "dockerd.log"
        self.cgroup_parent = f"dockerd-{secrets.token_hex(4)}"
        self.bridge = bridge
        self.process: subprocess.Popen | None = None
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket_path}", "DOCKER_BUILDKIT": "0",
                    "DOCKER_CLI_HINTS": "false", "DOCKER_CONFIG": str(self.dir / "cli-config")}
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.pop("DOCKER_API_VERSION", None)

    def start(self, timeout: float = 60) -> None:
        (self.dir / "daemon.json").write_text("{}\n")
        log = open(self.log_path, "ab")
        if self.bridge:  # its default network, in a network namespace that dies with it
            prefix, network = ["unshare", "--net", "--"], []
        else:
            prefix, network = [], ["--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
                                   "--userland-proxy=false"]
        self.process = subprocess.Popen(
            [*prefix, DOCKERD, "--config-file", str(self.dir / "daemon.json"), "-H", f"unix://{self.socket_path}",
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "--pidfile", str(self.pidfile), "--cgroup-parent", f"/{self.cgroup_parent}",
             *network, "--storage-driver", "overlay2"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}: {self.log()[-3000:]}")
            if self.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within {timeout} s: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def docker(self, *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([docker_cli(), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def load_busybox(self, data_root: str | os.PathLike) -> None:
        """``docker load`` the busybox:latest that teachdock bootstraps into ``data_root``."""
        from teachdock.image import archive  # noqa: PLC0415
        from teachdock.image.images import Images  # noqa: PLC0415

        images = Images(data_root)
        images.bootstrap_busybox()
        tarball = self.dir / "busybox.tar"
        archive.save(images.store, ["busybox:latest"], tarball)
        result = self.docker("load", "-i", str(tarball), timeout=120)
        tarball.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"docker load into dockerd failed: {result.stderr}")

    def stop(self) -> None:
        """SIGTERM by pid (dockerd stops its containerd itself), SIGKILL after 30 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def close(self) -> None:
        """Remove the containers, stop dockerd, unmount and remove whatever it left."""
        if self.process is not None and self.process.poll() is None:
            ids = self.docker("ps", "-aq", timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=60)
            # A user network is a Linux bridge (br-<id>); without bridge=True it lives in the host's
            # namespace and outlives dockerd (a test that sends dockerd "../evil" as a network name
            # left one per run).
            self.docker("network", "prune", "-f", timeout=30)
        self.stop()
        for point in sorted(_mount_points(), reverse=True):
            if point.startswith(f"{self.dir}/"):
                subprocess.run(["umount", "-l", point], capture_output=True)
        # dockerd leaves empty cgroups behind (its parent, and 'docker' in some hierarchies)
        for directory, _subdirs, _files in sorted(os.walk(CGROUP_ROOT), reverse=True):
            if f"/{self.cgroup_parent}" in directory:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        shutil.rmtree(self.dir, ignore_errors=True)


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@contextlib.contextmanager
def running_dockerd(busybox_data_root: str | os.PathLike | None = None):
    """A started private dockerd with busybox:latest loaded; everything removed afterwards."""
    process = DockerdProcess()
    scratch = None
    try:
        process.start()
        if busybox_data_root is None:
            scratch = tempfile.mkdtemp(prefix="dkd-busybox-")
            busybox_data_root = scratch
        process.load_busybox(busybox_data_root)
        yield process
    finally:
        process.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
