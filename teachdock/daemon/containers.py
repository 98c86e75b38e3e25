"""Containers as the daemon sees them: Docker's objects on top of the runtime's processes.

The runtime (teachdock.runtime, our runc) knows only processes, namespaces and cgroups.
The daemon adds what ``docker`` shows: a name, the image, the config the user asked for,
the time it was created, its logs, and a state that outlives each run of the program.

On disk, one directory per container under ``<data root>/daemon/containers/<id>/``::

    container.json       Docker-shaped record: Id, Name, Created, Image, Config, HostConfig, State
    <id>-json.log        stdout and stderr (see logs.py)

The root filesystem is an overlay snapshot of the image (``Images.prepare``), made at
``create``. The runtime container is made at ``start``, detached, so its monitor (the
shim) and the log writer keep going if the daemon stops. A daemon that starts again reads
the records back, finds which runtime containers still run, and watches them again.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError
from teachdock.files import write_json_atomically
from teachdock.daemon import container_config, logs, oci, volumes
from teachdock.daemon.container_networks import ContainerNetworking
from teachdock.daemon.events import EventLog
from teachdock.daemon.networks import NetworkManager
from teachdock.daemon.volumes import VolumeManager
from teachdock.image.images import Images
from teachdock.image.reference import parse_reference
from teachdock.image.store import ImageNotFound
from teachdock.runtime import DEVNULL, Container, make_spec, terminal
from teachdock.runtime.cgroups import swap_accounting
from teachdock.runtime.checkpoint import restore
from teachdock.runtime.spec import write_etc_files
from teachdock.runtime.users import supplementary_groups

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJECTIVES = ["brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "lucid", "merry", "quiet", "tidy", "witty"]
_SCIENTISTS = ["curie", "hopper", "lovelace", "noether", "turing", "shannon", "dijkstra", "ritchie", "thompson", "liskov"]


def now_iso() -> str:
    return logs.timestamp()


def unix_seconds(stamp: str) -> int:
    """'2026-11-28T00:40:01.123456789Z' -> unix seconds; 0 for Docker's zero time or no time."""
    if not stamp or stamp.startswith("0001-"):
        return 0
    try:
        return int(datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return 0


class ContainerRecord:
    """One container: its Docker-shaped record plus what only this daemon process knows.

    ``changed`` is a condition variable: ``wait`` and ``logs -f`` sleep on it, the
    supervisor thread wakes them when the container exits or is removed.
    """

    def __init__(self, directory: Path, data: dict):
        self.directory = directory
        self.data = data
        self.changed = threading.Condition()
        self.exits = 0           # how many times it has exited since this daemon started
        self.removed = False
        self.runtime: Container | None = None
        self.writer = None       # the log writer's Popen, when this daemon started it
        # stdin (docker run -i): the pipe's write end while the program runs, and what an
        # attached client sent before ``start`` (the CLI sends piped input that early)
        self.stdin_fd: int | None = None
        self.pending_stdin = bytearray()
        self.stdin_closed = False
        self.stdin_lock = threading.Lock()  # one writer at a time, and no close in the middle of a write
        self.tty_fd: int | None = None  # the terminal's master side (docker run -t), while it runs

    @property
    def id(self) -> str:
        return self.data["Id"]

    @property
    def name(self) -> str:
        return self.data["Name"]

    @property
    def status(self) -> str:
        return self.data["State"]["Status"]

    @property
    def running(self) -> bool:
        """Running or paused: a paused container's processes exist, frozen (Docker's Running too)."""
        return self.status in ("running", "paused")

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.id}-json.log"

    def save(self) -> None:
        """Write container.json atomically and durably: a crash leaves the old or the new."""
        write_json_atomically(self.directory / "container.json", self.data)


class ContainerManager:
    """Create, start, stop, kill, wait for and remove containers; find them again after a restart."""

    def __init__(self, data_root: Path, exec_root: Path, *, images: Images, volumes: VolumeManager,
                 networks: NetworkManager, events: EventLog, cgroup_parent: str = "teachdock",
                 firewall=None, resolver=None):
        self.root = Path(data_root) / "daemon" / "containers"
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_root = Path(exec_root) / "runtime"  # the runtime's state (runc's /run/runc)
        self.images = images     # root filesystems: a snapshot of the image per container
        self.volumes = volumes   # what -v NAME:/dst mounts
        self.networks = networks  # what --network NAME plugs the container into
        # a container's networks, ports and names: create records them, start plugs them in
        self.networking = ContainerNetworking(networks, firewall=firewall, resolver=resolver, find_container=self.get)
        self.events = events
        self.listeners: list = []  # listener(record, action) after each event: the health checker's hook
        self.cgroup_parent = cgroup_parent.strip("/")
        self.swap_accounting = swap_accounting()  # can --memory-swap be enforced here? (dockerd's SwapLimit)
        self._lock = threading.RLock()
        self._records: dict[str, ContainerRecord] = {}
        self.restore()

    # --- finding containers ---------------------------------------------------------------------
    def list(self) -> list[ContainerRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.data["Created"], reverse=True)

    def get(self, name_or_id: str) -> ContainerRecord:
        """By full id, name (with or without '/'), or unique id prefix, as Docker resolves them."""
        with self._lock:
            if name_or_id in self._records:
                return self._records[name_or_id]
            wanted = "/" + name_or_id.lstrip("/")
            for record in self._records.values():
                if record.name == wanted:
                    return record
            matches = [r for r in self._records.values() if name_or_id and r.id.startswith(name_or_id)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidConfig(f"multiple IDs found with provided prefix: {name_or_id}")
        raise NotFound(f"No such container: {name_or_id}")

    # --- create ------------------------------------------------------------------------------------
    def create(self, body: dict, name: str | None = None) -> ContainerRecord:
        """``POST /containers/create``: record the config and prepare the root filesystem.

        No process exists yet; the runtime container is made at ``start``, as Docker
        makes the containerd task at start.
        """
        container_config.check_types(body)
        image_text = body.get("Image") or ""
        if not image_text:
            raise InvalidConfig("no image given: Config.Image is empty")
        try:
            image = self.images.get(image_text)
        except ImageNotFound:
            # The CLI and the SDK pull when they read exactly this (404 + "No such image").
            raise ImageNotFound(f"No such image: {_familiar(image_text)}") from None
        host_config = container_config.host_config(body.get("HostConfig") or {},
                                                   swap_accounting=self.swap_accounting)
        volumes.requested_mounts(host_config, body.get("Volumes"))  # a bad -v is a 400 now, not a failed start
        network_settings = self.networking.configure(host_config, body.get("NetworkingConfig"))
        entrypoint, cmd = container_config.command(body, image.config)
        container_id = secrets.token_hex(32)
        with self._lock:
            name = self._unique_name(name, container_id)
            config = container_config.config(body, image.config, container_id, entrypoint, cmd)
            directory = self.root / container_id
            directory.mkdir()
            record = ContainerRecord(directory, {
                "Id": container_id, "Name": name, "Created": now_iso(),
                "Path": (entrypoint + cmd)[0], "Args": (entrypoint + cmd)[1:],
                "Image": image.id, "Config": config, "HostConfig": host_config,
                "State": {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                          "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                          "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
                "RestartCount": 0, "Driver": self.images.snapshots.driver, "Platform": "linux",
                "LogPath": "", "Rootfs": "", "NetworkSettings": {"Networks": network_settings, "Ports": {}},
            })
            record.data["LogPath"] = str(record.log_path)
            try:
                snapshot = self.images.prepare(image, container_id)
                record.data["Rootfs"] = str(snapshot.rootfs)
                record.log_path.touch(mode=0o640)
                record.save()
            except BaseException:
                self.images.release(container_id) if (self.images.snapshots.containers_dir / container_id).exists() else None
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._records[container_id] = record
        self._event(record, "create")
        return record

    def rename(self, record: ContainerRecord, new_name: str) -> None:
        """``docker rename``: a new unique name; the id, and everything keyed by it, stay."""
        with self._lock:  # the name is unique the moment it is taken
            old_name = record.name
            record.data["Name"] = self._unique_name(new_name, record.id)
            self.networks.rename(record.id, old_name, record.name)
        with record.changed:  # not nested in _lock: remove() takes them the other way round
            if not record.removed:
                record.save()
        self._event(record, "rename", oldName=old_name)

    def restart(self, record: ContainerRecord, timeout: float | None = None) -> None:
        """``docker restart``: stop (grace period ``timeout``), then start again."""
        self.stop(record, timeout)
        self.start(record)
        self._event(record, "restart")

    def publish(self, record: ContainerRecord, action: str, **extra) -> None:
        """A container event from outside the manager (the health checker's ``health_status``)."""
        self._event(record, action, **extra)

    def _event(self, record: ContainerRecord, action: str, **extra) -> None:
        labels = record.data["Config"].get("Labels") or {}  # dockerd's attributes: labels, image, name
        self.events.publish("container", action, record.id, **{**labels, "image": record.data["Config"]["Image"],
                            "name": record.name.lstrip("/"), **extra})
        for listener in self.listeners:  # after the event: e.g. "start" starts the probes
            listener(record, action)

    def _unique_name(self, name: str | None, container_id: str) -> str:
        if name:
            if not _NAME.match(name):
                raise InvalidConfig(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = "/" + name.lstrip("/")
            for other in self._records.values():
                if other.name == name:
                    raise Conflict(f'Conflict. The container name "{name}" is already in use by container '
                                   f'"{other.id}". You have to remove (or rename) that container to be able '
                                   "to reuse that name.")
            return name
        taken = {r.name for r in self._records.values()}
        while True:
            name = f"/{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SCIENTISTS)}"
            if name not in taken:
                return name

    # --- start ---------------------------------------------------------------------------------------
    def start(self, record: ContainerRecord, restore_from: Path | None = None) -> bool:
        """Run the container's program; False when it was running already (HTTP 304).

        stdout and stderr become pipes read by the log writer; the runtime container is
        detached, so neither depends on this daemon process staying alive. ``restore_from``:
        a checkpoint's directory whose processes run instead of a new program (checkpoints.py).
        """
        with record.changed:
            if record.removed:
                raise NotFound(f"No such container: {record.id}")
            if record.running:
                return False
            rootfs, config = record.data["Rootfs"], record.data["Config"]
            groups = supplementary_groups(rootfs, config["User"])
            runtime, in_write, failure = None, None, None
            try:
                # the addresses (leased now), resolvers, and the namespace of --network container:X
                etc, network_namespace = self.networking.prepare(record)
                # Docker's own /etc/hostname, hosts and resolv.conf, kept with the record (as dockerd
                # keeps them in /var/lib/docker/containers/<id>/); oci.py makes them bind mounts.
                etc_files = write_etc_files(record.directory, rootfs, config["Hostname"], **etc)
                # config.json, as dockerd writes it for runc: the record's settings in OCI terms
                options = oci.spec_options(record.data, user=config["User"] or None, additional_gids=groups,
                                           mounts=self._mounts(record), cgroup_parent=self.cgroup_parent,
                                           etc_files=etc_files, network_namespace=network_namespace)
                spec = make_spec([record.data["Path"], *record.data["Args"]], rootfs, **options)
                runtime, in_write = self._create_runtime(record, spec, restore_from)
            except TeachdockError as error:
                failure = error
            if runtime is not None:
                try:
                    self.networking.attach(record, runtime.pid)  # veths, ports, names: before the program runs
                    try:
                        if restore_from is None:  # a restored container runs already
                            runtime.start()
                    except BaseException:
                        self.networking.detach(record)
                        raise
                    failure = None
                except TeachdockError as error:
                    runtime.delete(force=True)
                    failure = error
            if failure is not None:
                if in_write is not None:
                    os.close(in_write)
                self._close_terminal(record)
                if record.writer is not None:  # the pipes are closed now, so it ends
                    record.writer.wait()
                    record.writer = None
                # As dockerd: a container whose program never ran stays "created", with the
                # exit code the CLI reports (127: not found, 126: not executable) and the reason.
                self._set_state(record, Status="created", ExitCode=_start_failure_code(str(failure)),
                                Error=str(failure))
                record.exits += 1  # a failed start counts as an exit: `wait` must not hang on it
                record.changed.notify_all()
            else:
                record.runtime = runtime
                record.stdin_fd = in_write
                self._set_state(record, Status="running", Running=True, Pid=runtime.pid or 0, ExitCode=0, Error="",
                                OOMKilled=False, StartedAt=now_iso(), FinishedAt="0001-01-01T00:00:00Z")
        if failure is not None:
            if record.data["HostConfig"].get("AutoRemove"):
                self.remove(record)  # `docker run --rm` of a missing program leaves nothing behind
            raise failure
        self._event(record, "start")
        self._supervise(record, runtime)
        if in_write is not None:
            self.write_stdin(record, b"")  # hand over what arrived before start
        return True

    def _mounts(self, record: ContainerRecord) -> list[dict]:
        """The OCI mounts for ``-v``/``--mount``/VOLUME: volumes and host directories are made
        now if missing, and ``Mounts`` (what inspect shows) is recorded with the container."""
        image_volumes = None
        try:
            image_volumes = (self.images.get(record.data["Image"]).config.get("config") or {}).get("Volumes")
        except TeachdockError:
            pass  # the image was removed meanwhile: its VOLUME list is gone with it
        requests = volumes.requested_mounts(record.data["HostConfig"], record.data["Config"].get("Volumes"),
                                            image_volumes)
        try:
            mounts, shown = volumes.resolve(self.volumes, requests, record.data["Rootfs"], record.data.get("Mounts"))
        except OSError as error:
            raise InvalidConfig(f"cannot prepare the container's mounts: {error}") from None
        record.data["Mounts"] = shown
        return mounts

    # --- stdin ---------------------------------------------------------------------------------------
    def write_stdin(self, record: ContainerRecord, data: bytes, *, end: bool = False) -> None:
        """Feed the container's stdin; before ``start`` keep it; ``end`` closes stdin (StdinOnce).

        ``stdin_lock`` is held while writing, ``changed`` is not: a program that does not
        read its stdin blocks only the client feeding it, never ``wait`` or ``ps``.
        """
        with record.stdin_lock:
            with record.changed:
                record.pending_stdin += data
                record.stdin_closed |= end
                fd = record.stdin_fd
                if fd is None:
                    return  # not started yet: start() calls us again
                pending, record.pending_stdin = bytes(record.pending_stdin), bytearray()
                closing = record.stdin_closed
                if closing:
                    record.stdin_fd = None
            try:
                if pending:
                    _write_all(fd, pending)
            except BrokenPipeError:
                pass  # the program does not read its stdin (any more)
            finally:
                if closing:
                    os.close(fd)

    def _create_runtime(self, record: ContainerRecord, spec: dict, restore_from: Path | None = None
                        ) -> tuple[Container, int | None]:
        """The runtime container made from ``spec``, created (not started), its output going to a log writer.

        Without a terminal: three pipes; the writer reads stdout and stderr, we keep stdin's
        write end (``-i``). With one (``-t``): the container's process makes a pty in its own
        /dev/pts and sends us the master side (runc's console socket); the writer reads a
        copy of it, we keep it for stdin and /resize. Returns (container, our stdin fd or None).
        """
        config = record.data["Config"]
        if config.get("Tty"):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                runtime = Container.create(record.id, config=spec, state_root=self.state_root, detach=True,
                                           console_socket=theirs.fileno(), stdin=DEVNULL, stdout=DEVNULL,
                                           stderr=DEVNULL)
                theirs.close()
                try:
                    record.tty_fd = terminal.receive_terminal(ours)
                    copy = os.dup(record.tty_fd)
                    try:
                        record.writer = logs.spawn_writer(record.log_path, copy)
                    finally:
                        os.close(copy)
                except BaseException:
                    runtime.delete(force=True)
                    self._close_terminal(record)
                    raise
            finally:
                ours.close()
                theirs.close()
            return runtime, os.dup(record.tty_fd) if config.get("OpenStdin") else None
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        in_read, in_write = os.pipe() if config.get("OpenStdin") else (DEVNULL, None)
        try:
            record.writer = logs.spawn_writer(record.log_path, out_read, err_read)
            if restore_from is None:
                runtime = Container.create(record.id, config=spec, state_root=self.state_root, detach=True,
                                           stdin=in_read, stdout=out_write, stderr=err_write)
            else:
                runtime = restore(record.id, restore_from, config=spec, state_root=self.state_root,
                                  stdin=in_read, stdout=out_write, stderr=err_write)
        except BaseException:
            if in_write is not None:
                os.close(in_write)
            raise
        finally:
            for fd in (out_read, out_write, err_read, err_write, in_read):
                if fd != DEVNULL:
                    os.close(fd)  # the writer and the container hold their own copies
        return runtime, in_write

    def resize(self, record: ContainerRecord, height: int, width: int) -> None:
        """``docker run -it`` tells us the size of the user's terminal; the kernel then sends
        SIGWINCH to the program, so a shell or an editor redraws at the new size."""
        if not record.data["Config"].get("Tty"):
            return  # no terminal: nothing to resize (dockerd ignores it too)
        if record.tty_fd is None:
            record.data["HostConfig"]["ConsoleSize"] = [height, width]  # applied at start
            return
        terminal.set_window_size(record.tty_fd, height, width)

    def _close_terminal(self, record: ContainerRecord) -> None:
        fd, record.tty_fd = record.tty_fd, None
        if fd is not None:
            os.close(fd)

    def _supervise(self, record: ContainerRecord, runtime: Container) -> None:
        """One thread per running container waits for its exit (the runtime's monitor tells it)."""
        threading.Thread(target=self._watch, args=(record, runtime), daemon=True,
                         name=f"watch-{record.id[:12]}").start()

    def _watch(self, record: ContainerRecord, runtime: Container) -> None:
        try:
            code = runtime.wait()
            oom = runtime.oom_killed
        except TeachdockError:
            code, oom = None, False
        self._finish(record, runtime, code, oom)

    def _finish(self, record: ContainerRecord, runtime: Container | None, code: int | None, oom: bool) -> None:
        """The program has exited: record how, free its cgroup, and remove it if AutoRemove asks."""
        if runtime is not None:
            try:
                runtime.delete(force=True)
            except TeachdockError:
                pass  # already gone
        if record.writer is not None:
            record.writer.wait()  # ends by itself once the pipes are closed
            record.writer = None
        with record.stdin_lock:
            if record.stdin_fd is not None:
                os.close(record.stdin_fd)
                record.stdin_fd = None
            record.stdin_closed = False  # a later start gets a fresh stdin
            record.pending_stdin.clear()
        self._close_terminal(record)
        self.networking.detach(record)
        with record.changed:
            record.runtime = None
            if not record.removed:
                self._set_state(record, Status="exited", Running=False, Pid=0,
                                ExitCode=255 if code is None else code, OOMKilled=oom, FinishedAt=now_iso())
            record.exits += 1
            record.changed.notify_all()
        self._event(record, "die", exitCode=record.data["State"]["ExitCode"])
        if record.data["HostConfig"].get("AutoRemove"):
            try:
                self.remove(record)
            except TeachdockError:
                pass

    def _set_state(self, record: ContainerRecord, **changes) -> None:
        state = record.data["State"]
        state.update(changes)
        state["Running"] = state["Status"] in ("running", "paused")
        state["Paused"] = state["Status"] == "paused"
        if not record.removed:
            record.save()

    # --- stop, kill, wait, remove --------------------------------------------------------------------------
    def kill(self, record: ContainerRecord, sig: int = signal.SIGKILL) -> None:
        """``docker kill``: signal PID 1; 409 when the container is not running. A paused
        container is thawed after SIGKILL/SIGTERM/SIGINT (the runtime does it), as dockerd does."""
        with record.changed:
            if not record.running or record.runtime is None:
                raise Conflict(f"Cannot kill container: {record.id}: Container {record.id} is not running")
            record.runtime.kill(sig)
            if record.status == "paused" and not record.runtime.cgroup.frozen():
                self._set_state(record, Status="running")
        self._event(record, "kill", signal=sig)

    def pause(self, record: ContainerRecord) -> None:
        """``docker pause``: freeze every process of the container (the freezer cgroup)."""
        with record.changed:
            if record.status == "paused":
                raise Conflict(f"Container {record.id} is already paused")
            if not record.running or record.runtime is None:
                raise Conflict(f"Container {record.id} is not running")
            record.runtime.pause()
            self._set_state(record, Status="paused")
        self._event(record, "pause")

    def unpause(self, record: ContainerRecord) -> None:
        """``docker unpause``: let them run on, from where they stood."""
        with record.changed:
            if record.status != "paused" or record.runtime is None:
                raise Conflict(f"Container {record.id} is not paused")
            record.runtime.resume()
            self._set_state(record, Status="running")
        self._event(record, "unpause")

    def stop(self, record: ContainerRecord, timeout: float | None = None, sig: int | None = None) -> bool:
        """``docker stop``: the stop signal, then SIGKILL after the grace period. False if not running."""
        if not record.running:
            return False
        if timeout is None:
            configured = record.data["Config"].get("StopTimeout")
            timeout = 10 if configured is None else configured
        try:
            self.kill(record, sig or parse_signal(record.data["Config"].get("StopSignal") or "SIGTERM"))
        except Conflict:
            return True  # it exited meanwhile
        if self.wait_exit(record, timeout) is None:
            try:
                self.kill(record, signal.SIGKILL)
            except Conflict:
                pass
            self.wait_exit(record, None)
        self._event(record, "stop")
        return True

    def wait_exit(self, record: ContainerRecord, timeout: float | None, *, next_exit: bool = False,
                  cancelled=lambda: False) -> int | None:
        """Block until the container is not running (``next_exit``: until it exits once more).

        Returns the exit code, or None on timeout or when ``cancelled()`` says the client left.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with record.changed:
            seen = record.exits
            while (record.exits == seen) if next_exit else record.running:
                if record.removed or cancelled():
                    return record.data["State"]["ExitCode"] if record.removed else None
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    return None
                record.changed.wait(left)
            return record.data["State"]["ExitCode"]

    def wait_removed(self, record: ContainerRecord, cancelled=lambda: False) -> int | None:
        with record.changed:
            while not record.removed:
                if cancelled():
                    return None
                record.changed.wait(0.5)
            return record.data["State"]["ExitCode"]

    def remove(self, record: ContainerRecord, force: bool = False, remove_volumes: bool = False) -> None:
        """``docker rm [-f] [-v]``: kill if forced, then delete the snapshot, the logs and the record;
        ``remove_volumes`` (``-v``, and ``--rm``) also removes the container's anonymous volumes."""
        if record.running:
            if not force:
                raise Conflict(f'cannot remove container "{record.name}": container is running: stop the '
                               "container before removing or force remove")
            try:
                self.kill(record, signal.SIGKILL)
            except Conflict:
                pass
            self.wait_exit(record, None)
        with record.changed:
            if record.removed:
                return
            record.removed = True
            self.networking.release(record)  # its endpoints and its addresses
            try:
                self.images.release(record.id)
            except NotFound:
                pass
            shutil.rmtree(record.directory, ignore_errors=True)
            if remove_volumes or record.data["HostConfig"].get("AutoRemove"):
                self._remove_anonymous_volumes(record)
            with self._lock:  # last: once the container is gone from the API, all of it is gone
                self._records.pop(record.id, None)
            record.changed.notify_all()
        self._event(record, "destroy")

    def _remove_anonymous_volumes(self, record: ContainerRecord) -> None:
        still_used = set()
        for other in self.list():
            if other is not record:
                still_used |= volumes.volume_names(other.data)
        for mount in record.data.get("Mounts") or []:
            name = mount.get("Name")
            if mount.get("Type") != "volume" or not name or name in still_used:
                continue
            try:
                if volumes.ANONYMOUS_LABEL in (self.volumes.get(name).get("Labels") or {}):
                    self.volumes.remove(name, [])
            except TeachdockError:
                pass  # removed meanwhile

    # --- after a restart ------------------------------------------------------------------------------------
    def restore(self) -> None:
        """Read every record back; watch the containers whose runtime container still runs.

        A container whose monitor is gone (killed, or the machine rebooted) is marked exited:
        the runtime's state.json has the exit code when the monitor recorded one.
        """
        for directory in sorted(self.root.iterdir()):
            try:
                data = json.loads((directory / "container.json").read_text())
            except (OSError, ValueError):
                continue  # a create that crashed half-way; `system prune` will sweep it
            record = ContainerRecord(directory, data)
            self._records[record.id] = record
            if record.status == "created":
                self._discard_half_started(record)
            if not record.running:
                continue
            try:
                runtime = Container.load(record.id, self.state_root)
                state = runtime.state()
            except TeachdockError:
                self._finish(record, None, None, False)
                continue
            if state["status"] in ("running", "paused"):
                record.runtime = runtime
                self.networking.restore(record)
                self._supervise(record, runtime)
            else:
                self._finish(record, runtime, state.get("exitCode"), bool(state.get("oomKilled")))
        # what belonged to containers that are gone: endpoints, leases, veths, firewall rules
        self.networks.sweep({r.id for r in self._records.values() if r.running}, set(self._records))

    # --- docker network connect / disconnect ---------------------------------------------------------------
    def connect_network(self, record: ContainerRecord, network: str, endpoint_config: dict | None) -> None:
        with record.changed:
            self.networking.connect(record, network, endpoint_config)
            record.save()

    def disconnect_network(self, record: ContainerRecord, network: str) -> None:
        with record.changed:
            self.networking.disconnect(record, network)
            record.save()

    def _discard_half_started(self, record: ContainerRecord) -> None:
        """A daemon killed inside ``start`` may leave a runtime container that waits for a
        start nobody will send: delete it, so that its cgroup and monitor do not linger."""
        try:
            Container.load(record.id, self.state_root).delete(force=True)
        except TeachdockError:
            pass  # none: the usual case


# --- small helpers -----------------------------------------------------------------------------------------
def parse_signal(value) -> int:
    """'SIGTERM', 'TERM', '15' or 15 -> 15 (what ``docker kill -s`` and ``stop -s`` accept)."""
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    try:
        return signal.Signals[text if text.startswith("SIG") else "SIG" + text].value
    except KeyError:
        raise InvalidConfig(f"Invalid signal: {value}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _familiar(text: str) -> str:
    try:
        return parse_reference(text).familiar
    except TeachdockError:
        return text


def _start_failure_code(message: str) -> int:
    """The exit status the docker CLI gives for a failed start (cli/command/container/run.go)."""
    if "executable file not found" in message or "no such file or directory" in message.lower():
        return 127
    if "permission denied" in message.lower():
        return 126
    return 125
