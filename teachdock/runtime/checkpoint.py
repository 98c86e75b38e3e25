"""Checkpoint and restore a running container with CRIU: runc's ``checkpoint`` and ``restore``.

CRIU ("checkpoint/restore in userspace", Debian's ``criu``) freezes a process tree, writes
everything the kernel knows about it (memory, registers, open files, namespaces, mounts,
cgroups) into an *images directory*, and can later build the same tree again from those
files, on this machine or another one with the same root filesystem::

    checkpoint(container, "/tmp/ck")            criu dump   --tree <PID 1> --images-dir /tmp/ck ...
    restore("copy", "/tmp/ck", config=...)      criu restore --images-dir /tmp/ck --root <rootfs> ...

What this module passes to criu, and why (runc passes the same, see its criu_opts):

- ``--external mnt[DEST]:DEST`` for every bind mount of the config: its source is a host
  path criu must not (and cannot) dump; at restore ``--external mnt[DEST]:SOURCE`` names the
  new source (the restoring container's own /etc/hosts, say). The same for /sys/fs/cgroup,
  a bind of the container's own cgroup directory: at restore, the new container's. The rootfs is given with
  ``--root``; /proc, the /dev tmpfs and the like are made again by criu itself.
- ``--manage-cgroups=soft --cgroup-root <cgroup>``: the restored processes go into the new
  container's cgroup, made (with its limits) before criu runs.
- ``--network-lock nftables``: while it dumps, criu blocks the container's network traffic
  (packets would change what it is writing down); its default does so with the
  iptables-restore program, the nftables way needs only the kernel and libnftables.
- ``--restore-detached --restore-sibling``: the restored PID 1 becomes a child of the process
  that ran criu, the new container's monitor, as if it had forked it (the monitor is a child
  subreaper and records the exit code as it does for a created container).
- ``--inherit-fd fd[N]:pipe:[INODE]``: the stdio pipes of the dumped container led to the
  old monitor's reader; at restore they are replaced by the new caller's pipes.
  ``descriptors.json`` in the images directory records what fds 0-2 were at dump time.

Why the criu *command line* and not its RPC (``criu swrk``, protobuf over a socket pair, which
runc uses): the command line takes the very options a learner reads in ``criu --help`` and
can type again by hand, its log sits next to the images, and no protobuf library is needed.

Where CRIU cannot work (no criu, not root, a kernel ``criu check`` rejects), every verb raises
:class:`CriuUnavailable` with criu check's own words: there is no pretend checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from teachdock import kernel
from teachdock.errors import Conflict, InvalidConfig, TeachdockError
from teachdock.runtime import cgroups
from teachdock.runtime.container import Container, stdio_choices
from teachdock.runtime.processes import close_inherited_fds, exit_code, reap, reap_until, start_time
from teachdock.runtime.spec import check_container_id, rootfs_path, validate
from teachdock.runtime.state import make_state_dir, now, read_state, remove_state_dir, write_config, write_state

DESCRIPTORS = "descriptors.json"  #: what fds 0-2 of the container's PID 1 were, at dump time
DUMP_LOG = "dump.log"
RESTORE_LOG = "restore.log"
CRIU_TIMEOUT = 120  #: seconds a dump or a restore may take before criu is killed
#: criu's own fd numbers for the new stdio at restore (above 2: criu's stdio is its own)
INHERIT_BASE = 10


class CriuError(TeachdockError):
    """criu ran and failed: the message holds the error lines of its log."""


class CriuUnavailable(TeachdockError):
    """CRIU cannot work here at all: no criu, no root, or a kernel criu check rejects."""

    status = 501


# --- can criu work here? --------------------------------------------------------------------------
_check_cache: dict[str, str | None] = {}


def why_criu_cannot_run(*, refresh: bool = False) -> str | None:
    """None when ``criu check`` passes; otherwise why not, in criu check's own words.

    The answer depends on the kernel and the criu binary only, so it is asked once per process.
    """
    if os.geteuid() != 0:
        return "CRIU needs root: it reads and writes other processes' memory and namespaces (run as root)"
    binary = shutil.which("criu")
    if binary is None:
        return "criu is not installed (Debian: `apt-get install criu`)"
    if refresh or binary not in _check_cache:
        try:
            done = subprocess.run([binary, "check"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            _check_cache[binary] = f"`criu check` could not run: {error}"
        else:
            words = (done.stdout + done.stderr).strip()
            if done.returncode == 0 and "Looks good" in words:
                _check_cache[binary] = None
            else:
                errors = [line for line in words.splitlines() if line.startswith("Error")] or words.splitlines()[-3:]
                _check_cache[binary] = "`criu check` fails on this kernel ({}): {}".format(
                    os.uname().release, " / ".join(errors))
    return _check_cache[binary]


def require_criu() -> str:
    """The criu binary, or :class:`CriuUnavailable` with the reason."""
    reason = why_criu_cannot_run()
    if reason is not None:
        raise CriuUnavailable(reason)
    return shutil.which("criu") or "criu"


# --- the arguments --------------------------------------------------------------------------------
def bind_mounts(config: dict) -> list[dict]:
    """The config's bind mounts: host paths criu treats as external."""
    return [mount for mount in config.get("mounts", [])
            if mount.get("type") == "bind" or {"bind", "rbind"} & set(mount.get("options", []))]


def cgroup_mounts(config: dict, cgroup: cgroups.Cgroup) -> dict[str, str]:
    """{path in the container: host directory} of the binds that show a container its cgroup
    (teachdock.runtime.rootfs: one of the whole directory on v2, one per controller on v1)."""
    binds = {}
    for mount in config.get("mounts", []):
        if mount.get("type") == "cgroup":
            if cgroup.version == "v2":
                binds[mount["destination"]] = cgroup.dir
            else:
                binds.update({f"{mount['destination']}/{name}": directory
                              for name, directory in sorted(cgroup.dirs.items())})
    return binds


def dump_arguments(pid: int, images_dir, config: dict, cgroup_binds: dict[str, str], *,
                   leave_running: bool = False) -> list[str]:
    """``criu dump`` arguments for the container whose PID 1 is ``pid`` (without the binary)."""
    arguments = ["dump", "--tree", str(pid), "--images-dir", os.fspath(images_dir),
                 "--log-file", DUMP_LOG, "-v4", "--manage-cgroups=soft", "--network-lock", "nftables"]
    for destination in [mount["destination"] for mount in bind_mounts(config)] + list(cgroup_binds):
        arguments += ["--external", f"mnt[{destination}]:{destination}"]
    if leave_running:
        arguments.append("--leave-running")
    return arguments


def restore_arguments(images_dir, work_dir, config: dict, cgroup_path: str, cgroup_binds: dict[str, str],
                      pidfile, inherit: list[tuple[int, str]]) -> list[str]:
    """``criu restore`` arguments: into ``config``'s rootfs and mounts, ``cgroup_path``, and with
    ``inherit``'s (criu fd, dumped resource) pairs standing in for the dumped stdio."""
    arguments = ["restore", "--images-dir", os.fspath(images_dir), "--work-dir", os.fspath(work_dir),
                 "--log-file", RESTORE_LOG, "-v4", "--root", str(rootfs_path(config)),
                 "--restore-detached", "--restore-sibling", "--pidfile", os.fspath(pidfile),
                 "--manage-cgroups=soft", "--cgroup-root", cgroup_path, "--network-lock", "nftables"]
    sources = {mount["destination"]: mount["source"] for mount in bind_mounts(config)} | cgroup_binds
    for destination, source in sources.items():
        arguments += ["--external", f"mnt[{destination}]:{source}"]
    for fd, resource in inherit:
        arguments += ["--inherit-fd", f"fd[{fd}]:{resource}"]
    return arguments


def inherited_stdio(descriptors: list[str]) -> list[tuple[int, str]]:
    """(criu fd, resource) for each dumped stdio fd that was a pipe or socket: those are the
    caller's to replace; a file or /dev/null is reopened by criu itself."""
    pairs, seen = [], set()
    for number, target in enumerate(descriptors[:3]):
        if re.fullmatch(r"(pipe|socket):\[\d+\]", target or "") and target not in seen:
            pairs.append((INHERIT_BASE + number, target))
            seen.add(target)
    return pairs


def criu_log_errors(log: Path, limit: int = 6) -> str:
    """The Error lines of a criu log (what to tell the caller), or its last lines."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log})"
    errors = [line.strip() for line in lines if "Error" in line]
    return " / ".join((errors or lines)[-limit:])


# --- checkpoint -----------------------------------------------------------------------------------
def checkable(container: Container) -> tuple[dict, dict]:
    """(state, config) of a container criu can dump, or the reason it cannot (Conflict, InvalidConfig)."""
    state = container.state()
    if state["status"] != "running":
        raise Conflict(f"container {container.id} is {state['status']}: only a running container can be "
                       "checkpointed")
    config = json.loads((container.state_dir / "config.json").read_text())
    if config.get("process", {}).get("terminal"):
        raise InvalidConfig(f"container {container.id} has a terminal (-t): teachdock does not checkpoint "
                            "terminals (criu would need --shell-job and the terminal's other side)")
    kinds = {entry["type"]: entry for entry in config.get("linux", {}).get("namespaces", [])}
    for kind in ("pid", "mount", "network"):
        if kind not in kinds or kinds[kind].get("path"):
            raise InvalidConfig(f"container {container.id} shares a {kind} namespace with another process: "
                                "teachdock checkpoints only containers with namespaces of their own")
    if os.getsid(state["pid"]) != state["pid"]:
        raise InvalidConfig(f"container {container.id} was created in the foreground, in its caller's session: "
                            "criu dumps only a process tree that holds its session leader (create it detached)")
    interfaces = network_interfaces(state["pid"])
    if set(interfaces) - {"lo"}:
        raise InvalidConfig(f"container {container.id} has network interfaces {sorted(set(interfaces) - {'lo'})}:"
                            " teachdock checkpoints only containers without a network (--network none); "
                            "a veth's other end lies outside the container")
    return state, config


def network_interfaces(pid: int) -> list[str]:
    """The interfaces of the network namespace ``pid`` lives in (from /proc/<pid>/net/dev)."""
    with open(f"/proc/{pid}/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.readlines()[2:]]


def checkpoint(container: Container, images_dir, *, leave_running: bool = False) -> Path:
    """Dump ``container`` into ``images_dir`` (made if missing, must be empty); return it.

    Without ``leave_running`` the container is stopped by the dump (criu kills it, its exit
    code reads 137), as ``runc checkpoint`` and ``docker checkpoint create`` do.
    """
    state, config = checkable(container)
    binary = require_criu()
    images = Path(images_dir)
    images.mkdir(parents=True, exist_ok=True)
    if any(images.iterdir()):
        raise Conflict(f"checkpoint directory {images} is not empty")
    pid = state["pid"]
    descriptors = [os.readlink(f"/proc/{pid}/fd/{number}") if os.path.lexists(f"/proc/{pid}/fd/{number}")
                   else "" for number in range(3)]
    (images / DESCRIPTORS).write_text(json.dumps(descriptors))
    try:
        done = subprocess.run([binary, *dump_arguments(pid, images, config, cgroup_mounts(config, container.cgroup),
                                                              leave_running=leave_running)],
                              capture_output=True, text=True, timeout=CRIU_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CriuError(f"criu dump of container {container.id} did not finish within {CRIU_TIMEOUT} s "
                        f"and was killed (its log: {images / DUMP_LOG})") from None
    if done.returncode != 0:
        said = done.stderr.strip() or criu_log_errors(images / DUMP_LOG)
        raise CriuError(f"criu dump of container {container.id} failed: {said} (whole log: {images / DUMP_LOG})")
    return images


# --- restore --------------------------------------------------------------------------------------
def restore(container_id: str, images_dir, *, config: dict, state_root=None, stdin=None, stdout=None,
            stderr=None) -> Container:
    """A new container ``container_id`` running the processes dumped in ``images_dir``.

    ``config`` is the new container's (rootfs, mounts, cgroup and limits); its rootfs must hold
    the same files the dumped processes had open. stdin/stdout/stderr as in
    :meth:`Container.create`: they replace the dumped container's stdio pipes. The monitor is
    detached, as for a daemon's container; :meth:`Container.wait` reads the exit from the state.
    """
    check_container_id(container_id)
    validate(config)
    binary = require_criu()
    images = Path(images_dir)
    try:
        descriptors = json.loads((images / DESCRIPTORS).read_text())
    except (OSError, ValueError):
        raise InvalidConfig(f"{images} is not a teachdock checkpoint (no readable {DESCRIPTORS})") from None
    container = Container(container_id, state_root)
    make_state_dir(container.state_root, container_id)
    cgroup = None
    ours: list[int] = []
    theirs: list[int] = []
    try:
        cgroup = cgroups.open_cgroup(config.get("linux", {}).get("cgroupsPath") or f"/teachdock/{container_id}")
        if cgroup.exists():
            raise Conflict(f"cgroup {cgroup.path} already exists: another container uses it")
        write_config(container.state_dir, config)
        write_state(container.state_dir, {
            "ociVersion": config["ociVersion"], "id": container_id, "status": "creating", "bundle": "",
            "rootfs": str(rootfs_path(config)), "created": now(), "annotations": config.get("annotations", {}),
            "cgroupsPath": cgroup.path, "cgroupVersion": cgroup.version, "owner": "", "restoredFrom": str(images),
        })
        cgroup.create()
        cgroup.apply(cgroups.Resources.from_oci(config.get("linux", {}).get("resources")))
        stdio, theirs, ours = stdio_choices(container, stdin, stdout, stderr)
        inherit = inherited_stdio(descriptors)
        arguments = [binary, *restore_arguments(images, container.state_dir, config, cgroup.path,
                                                cgroup_mounts(config, cgroup), container.state_dir / "restore.pid",
                                                inherit)]
        _spawn_restore_monitor(container, arguments, {fd: stdio[fd - INHERIT_BASE] for fd, _ in inherit})
    except BaseException:
        for fd in ours:
            os.close(fd)
        container.stdin = container.stdout = container.stderr = None
        if cgroup is not None and cgroup.exists():
            cgroup.kill_all(signal.SIGKILL)
            cgroup.destroy()
        remove_state_dir(container.state_dir)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    return container


def wait_for_criu(pid: int, timeout: float) -> int | None:
    """criu's wait status, or None after killing it when it took longer than ``timeout`` seconds:
    a damaged checkpoint can leave ``criu restore`` waiting forever, and the caller with it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _spawn_restore_monitor(container: Container, arguments: list[str], fds: dict[int, int]) -> None:
    """Fork the detached monitor, which runs criu and then watches the restored PID 1; wait for
    its first word (running, or the error)."""
    report_read, report_write = os.pipe()
    launcher = os.fork()
    if launcher == 0:
        os.close(report_read)
        os.setsid()
        if os.fork():
            os._exit(0)
        restore_monitor_main(container.id, container.state_dir, arguments, fds, report_write)  # never returns
    os.close(report_write)
    reap(launcher)
    with os.fdopen(report_read, "rb") as report:
        line = report.readline()
    message = json.loads(line) if line else {"error": "the monitor died while criu restored the container"}
    if "error" in message:
        raise CriuError(f"criu restore of container {container.id} failed: {message['error']}")


def restore_monitor_main(container_id: str, state_dir: Path, arguments: list[str], fds: dict[int, int],
                         report_fd: int) -> None:
    """The restored container's monitor: run criu restore, adopt the restored PID 1, record its exit."""
    pid = 0
    try:
        kernel.set_process_name(f"td-shim {container_id}")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        close_inherited_fds([report_fd, *fds.values()])
        kernel.set_child_subreaper()
        criu = os.fork()
        if criu == 0:  # criu's own stdio go to a file; the new container's stdio wait at fds 10-12
            try:
                moved = {target: os.dup(source) for target, source in fds.items()}
                for target, copy in moved.items():
                    os.dup2(copy, target)
                output = os.open(state_dir / "criu.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(output, 1)
                os.dup2(output, 2)
                close_inherited_fds(list(fds))
                os.execvp(arguments[0], arguments)
            finally:
                os._exit(127)
        for fd in set(fds.values()):
            if fd > 2:
                os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        for number in range(3):
            os.dup2(null, number)
        os.close(null)
        status = wait_for_criu(criu, CRIU_TIMEOUT)
        if status is None:
            raise CriuError(f"criu restore did not finish within {CRIU_TIMEOUT} s and was killed "
                            f"(its log: {state_dir / RESTORE_LOG})")
        if exit_code(status) != 0:
            said = (state_dir / "criu.out").read_text(errors="replace").strip()
            raise CriuError(said or criu_log_errors(state_dir / RESTORE_LOG))
        pid = int((state_dir / "restore.pid").read_text().split()[0])
        state = read_state(state_dir)
        state.update(status="running", pid=pid, pidStartTime=start_time(pid), monitorPid=os.getpid(),
                     startedAt=now())
        write_state(state_dir, state)
        os.write(report_fd, json.dumps({"running": pid}).encode() + b"\n")
        os.close(report_fd)
        code = reap_until(pid)
        state.update(status="stopped", exitCode=code, oomKilled=False, finishedAt=now())
        write_state(state_dir, state)
        os._exit(0)
    except BaseException as error:  # noqa: BLE001 - a forked child must never return into the caller's code
        try:
            if pid:
                os.kill(pid, signal.SIGKILL)
            os.write(report_fd, json.dumps({"error": str(error)}).encode() + b"\n")
        finally:
            os._exit(1)
