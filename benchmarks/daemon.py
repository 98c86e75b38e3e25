"""How long does `run --rm busybox true` take through a daemon? teachdockd against dockerd and podman.

One run prints one table, medians first (hyperfine, `-N`, 3 warm-ups):

  teachdock run -> teachdockd   `teachdock -H unix://S run --rm --network none busybox true`
  docker run -> teachdockd      the real docker CLI against teachdockd
  docker run -> dockerd         the same CLI against a private dockerd 20.10 (containerd, runc)
  podman run                    `podman run --rm --network none ... busybox true` (no daemon; conmon, runc)
  docker version -> teachdockd  the docker CLI's own cost: one request, no container
  python -c pass                the floor under the teachdock CLI row

and the daemons' memory (VmRSS) right after they start and after all the runs.

All four container rows run the same image: the busybox:latest that teachdock bootstraps, saved
as a docker-archive and loaded into dockerd (`docker load`) and into a podman store of its own
(`podman --root/--runroot` in the work directory, so the machine's podman store is untouched).
teachdockd and dockerd are private ones too (own data root, exec root, socket, cgroup parent),
started by tests/support/daemons.py and tests/support/dockerd.py. Everything they
start is stopped by pid and removed at the end.

Run as root with the venv's python or /usr/bin/python3, never through a pyenv shim:
    /work/main/.venv/bin/python benchmarks/daemon.py --runs 30 [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))  # the repository root, for tests.support
from startup import WARMUP, compile_package, failed, hyperfine, print_goals, print_table, teachdock_cli  # noqa: E402,I001

TEACHDOCK_TO_DOCKERD_GOAL = 0.25  # teachdock CLI -> teachdockd, against docker CLI -> dockerd
DOCKER_CLI_GOAL = 0.4             # docker CLI -> teachdockd, against docker CLI -> dockerd
IDLE_RSS_GOAL_MB = 60
PODMAN_FLAGS = ["--cgroup-manager=cgroupfs", "--events-backend=file"]
# the peers' notes: without CAP_SYS_RESOURCE podman's default rlimits fail; crun refuses hybrid cgroups
PODMAN_RUN_FLAGS = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                    "--runtime", "runc"]


def rss_mb(pid: int) -> float | None:
    """VmRSS of one process in MB, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children (dockerd starts its own containerd)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def docker_env(socket_path: str, config: Path) -> dict:
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "DOCKER_CLI_HINTS": "false",
           "DOCKER_CONFIG": str(config)}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("DOCKER_API_VERSION", None)
    return env


@contextlib.contextmanager
def environment(env: dict):
    """hyperfine runs its commands with our environment: set it for the duration of one row."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def check_once(name: str, command: list[str], env: dict, workdir: Path) -> dict | None:
    """Run the command once before timing it: a row that cannot work is reported as failed."""
    done = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)
    if done.returncode != 0:
        return failed(name, " ".join(command), (done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1])
    return None


def row(name: str, command: list[str], env: dict, runs: int, workdir: Path) -> dict:
    if shutil.which(command[0]) is None and not os.path.exists(command[0]):
        return failed(name, " ".join(command), f"{command[0]} is not installed")
    problem = check_once(name, command, env, workdir)
    if problem:
        return problem
    with environment(env):
        return hyperfine(name, command, runs, workdir)


# --- podman with a store of its own --------------------------------------------------------------------
def podman_base(workdir: Path) -> list[str]:
    return ["podman", "--root", str(workdir / "podman-root"), "--runroot", str(workdir / "podman-run"),
            "--tmpdir", str(workdir / "podman-tmp"), *PODMAN_FLAGS]


def podman_load(workdir: Path, archive: Path) -> str | None:
    """Load busybox into the private store; the reason when it cannot."""
    if shutil.which("podman") is None:
        return "podman is not installed"
    done = subprocess.run([*podman_base(workdir), "load", "-i", str(archive)], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["podman load failed"])[-1]


def podman_cleanup(workdir: Path, cgroups_before: set[str]) -> None:
    """Remove the private store (podman unmounts its overlay layers first) and any empty
    libpod cgroups podman made for these runs (it leaves libpod_parent behind)."""
    if shutil.which("podman") and (workdir / "podman-root").exists():
        subprocess.run([*podman_base(workdir), "rm", "-af"], capture_output=True)
        subprocess.run([*podman_base(workdir), "system", "reset", "-f"], capture_output=True)
    for directory in sorted(libpod_cgroups() - cgroups_before, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def libpod_cgroups() -> set[str]:
    found = set()
    for controller in Path("/sys/fs/cgroup").iterdir():
        for directory, _subdirs, _files in os.walk(controller / "libpod_parent") if controller.is_dir() else []:
            found.add(directory)
    return found


def unmount_under(directory: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(f"{directory}/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


# --- goals -----------------------------------------------------------------------------------------------
def goals(rows: list[dict], memory: dict) -> list[dict]:
    medians = {r["name"]: r["median_s"] for r in rows if "error" not in r}
    ours_cli, docker_ours = medians.get("teachdock run -> teachdockd"), medians.get("docker run -> teachdockd")
    docker_dockerd = medians.get("docker run -> dockerd")
    verdicts = []

    def verdict(text: str, value: float | None, limit: float, shown: str) -> None:
        if value is None:
            verdicts.append({"goal": text, "value": None, "verdict": "unknown (a row failed)"})
        else:
            verdicts.append({"goal": text, "value": value, "verdict": "PASS" if value <= limit else "MISS",
                             "shown": shown})

    ratio = ours_cli / docker_dockerd if ours_cli and docker_dockerd else None
    verdict(f"teachdock run / docker run -> dockerd <= {TEACHDOCK_TO_DOCKERD_GOAL}", ratio, TEACHDOCK_TO_DOCKERD_GOAL,
            f"{ratio:.2f}" if ratio else "")
    ratio = docker_ours / docker_dockerd if docker_ours and docker_dockerd else None
    verdict(f"docker run -> teachdockd / docker run -> dockerd <= {DOCKER_CLI_GOAL}", ratio, DOCKER_CLI_GOAL,
            f"{ratio:.2f}" if ratio else "")
    for when in ("after start", "after the runs"):
        value = memory.get(f"teachdockd {when}")
        verdict(f"teachdockd idle RSS {when} <= {IDLE_RSS_GOAL_MB} MB", value, IDLE_RSS_GOAL_MB,
                f"{value:.1f} MB" if value else "")
    for name in ("dockerd + containerd after start", "dockerd + containerd after the runs"):
        if memory.get(name):
            verdicts.append({"goal": f"{name} RSS (for comparison, no goal)", "value": memory[name],
                             "verdict": "info", "shown": f"{memory[name]:.1f} MB"})
    return verdicts


# --- main ------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per row (default 30), after 3 warm-ups")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the daemons create namespaces, cgroups and overlay mounts")
    compile_package()
    from tests.support.daemons import DaemonProcess  # noqa: PLC0415 - after compile_package
    from tests.support.dockerd import DockerdProcess, docker_cli, dockerd_missing  # noqa: PLC0415

    from teachdock.image import archive  # noqa: PLC0415
    from teachdock.image.images import Images  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-daemon-"))
    workdir.chmod(0o755)
    rows, memory = [], {}
    teachdockd = dockerd = None
    podman_cgroups = libpod_cgroups()
    docker = docker_cli()
    true = ["run", "--rm", "--network", "none", "busybox", "true"]
    try:
        teachdockd = DaemonProcess(str(workdir))
        teachdockd.bootstrap_busybox()
        teachdockd.start()
        time.sleep(1)
        memory["teachdockd after start"] = rss_mb(teachdockd.pid)
        busybox_tar = workdir / "busybox.tar"
        archive.save(Images(teachdockd.data_root).store, ["busybox:latest"], busybox_tar)

        print(f"run --rm busybox true through a daemon, {arguments.runs} runs per row after {WARMUP} warm-ups "
              f"(python {platform.python_version()} at {sys.executable})\n")
        ours_env = docker_env(teachdockd.socket_path, workdir / "cli-ours")
        ours_env["TEACHDOCK_HOST"] = f"unix://{teachdockd.socket_path}"
        rows.append(row("teachdock run -> teachdockd", [*teachdock_cli(), "-H", f"unix://{teachdockd.socket_path}",
                                                         *true], ours_env, arguments.runs, workdir))
        if docker:
            rows.append(row("docker run -> teachdockd", [docker, *true], ours_env, arguments.runs, workdir))
            rows.append(row("docker version -> teachdockd", [docker, "version", "--format", "{{.Server.Version}}"],
                            ours_env, arguments.runs, workdir))
        else:
            rows.append(failed("docker run -> teachdockd", "docker " + " ".join(true), "no docker CLI installed"))
        memory["teachdockd after the runs"] = rss_mb(teachdockd.pid)

        missing = dockerd_missing()
        if missing:
            rows.append(failed("docker run -> dockerd", "docker " + " ".join(true), missing))
        else:
            dockerd = DockerdProcess(str(workdir))
            dockerd.start()
            loaded = dockerd.docker("load", "-i", str(busybox_tar), timeout=120)
            time.sleep(1)
            memory["dockerd + containerd after start"] = sum(
                rss_mb(pid) or 0 for pid in [dockerd.pid, *children(dockerd.pid)])
            if loaded.returncode != 0:
                rows.append(failed("docker run -> dockerd", "docker " + " ".join(true), loaded.stderr.strip()))
            else:
                rows.append(row("docker run -> dockerd", [docker, *true], dockerd.env, arguments.runs, workdir))
            memory["dockerd + containerd after the runs"] = sum(
                rss_mb(pid) or 0 for pid in [dockerd.pid, *children(dockerd.pid)])

        problem = podman_load(workdir, busybox_tar)
        if problem:
            rows.append(failed("podman run", "podman " + " ".join(true), problem))
        else:
            rows.append(row("podman run", [*podman_base(workdir), "run", "--rm", *PODMAN_RUN_FLAGS, "busybox", "true"], dict(os.environ), arguments.runs, workdir))
        rows.append(row("python -c pass", [sys.executable, "-c", "pass"], dict(os.environ), arguments.runs, workdir))
    finally:
        if teachdockd is not None:
            leaks = teachdockd.close()
            if leaks:
                print(f"warning: teachdockd's containers left: {leaks}", file=sys.stderr)
        if dockerd is not None:
            dockerd.close()
        podman_cleanup(workdir, podman_cgroups)
        unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(rows)
    print()
    for name, value in memory.items():
        print(f"RSS {name:<36} {value:6.1f} MB" if value else f"RSS {name:<36} -")
    verdicts = goals(rows, memory)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "warmup": WARMUP,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "load": os.getloadavg(),
                  "python": sys.executable, "rows": rows, "memory_mb": memory, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
