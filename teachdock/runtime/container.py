"""Container lifecycle: create, start, state, kill, delete — runc's verbs, in Python.

Three processes take part, as in runc and containerd-shim:

```
 caller (notebook kernel, CLI, daemon)   never changes its own namespaces            container.py
   └─ monitor   (the "shim")             host namespaces; child subreaper;           monitor.py
        │                                records the exit
        └─ stage-1  unshare(user?), then unshare(pid, mount, uts, ipc, net);         init.py
             │      fork; exit
             └─ container init  = PID 1 in the new PID namespace:                    init.py
                                  mounts, pivot_root,                                rootfs.py
                                  hostname, capabilities, user                       identity.py
                                  -> waits for "start" -> execve(process.args)
```

Why the middle process? ``unshare(CLONE_NEWPID)`` only puts the *children* of the caller
into the new PID namespace, so someone has to unshare and then fork. Stage 1 exits at
once; its child is adopted by the monitor because the monitor is a *child subreaper*.

This module is the caller's side: :class:`Container` and its verbs. The caller reads
config.json and works out a :class:`~teachdock.runtime.plan.Plan` (which namespaces to
create, which to join, the stdio) before the first fork; the forked processes carry it out.

The monitor holds the container's exit status. Everything else talks to it through
files in the state directory (``/run/teachdock/runtime/<id>/``, see
:mod:`teachdock.runtime.state`), so ``teachdock runtime start`` from another shell works
exactly like ``runc start``. Messages between monitor and the container's processes travel
over a SOCK_SEQPACKET socket pair as small JSON objects (:mod:`teachdock.runtime.plan`).

The container gets exactly what config.json says: the runtime adds no mounts of its own.
Docker's own /etc/hostname, /etc/hosts and /etc/resolv.conf are the spec's business
(``make_spec(etc_directory=...)``, as dockerd lists them in config.json); only when this
module makes the spec itself (``Container.create(rootfs=..., args=...)``) does it ask
``make_spec`` for them, kept in the state directory.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from pathlib import Path

from teachdock import paths
from teachdock.errors import Conflict, ContainerStartError, InvalidConfig, NotFound, TeachdockError
from teachdock.runtime import cgroups, seccomp
from teachdock.runtime.init import cgroup_dirs
from teachdock.runtime.monitor import monitor_main
from teachdock.runtime.plan import Plan, make_plan
from teachdock.runtime.processes import reap, reap_if_our_child, start_time
from teachdock.runtime.spec import check_container_id, load_bundle, make_spec, rootfs_path, validate
from teachdock.runtime.state import (make_state_dir, now, read_state, remove_state_dir, state_age, write_config,
                                     write_state)

PIPE = -1  #: like subprocess.PIPE: give the caller a pipe to this stream
DEVNULL = -3  #: like subprocess.DEVNULL


def stdio_choices(owner, stdin, stdout, stderr) -> tuple[list[int], list[int], list[int]]:
    """Turn stdin/stdout/stderr choices (None: inherit ours, PIPE, DEVNULL, or an fd) into
    (the child's fds 0-2, fds to close once the child has them, our ends of pipes); each
    pipe's end of ours is also set on ``owner`` as ``.stdin``, ``.stdout`` or ``.stderr``."""
    stdio, theirs, ours = [], [], []
    for number, choice in enumerate((stdin, stdout, stderr)):
        if choice is None:
            stdio.append(number)
        elif choice == DEVNULL:
            stdio.append(os.open(os.devnull, os.O_RDWR))
            theirs.append(stdio[-1])
        elif choice == PIPE:
            read_end, write_end = os.pipe()
            child_end, our_end = (read_end, write_end) if number == 0 else (write_end, read_end)
            stdio.append(child_end)
            theirs.append(child_end)
            ours.append(our_end)
            setattr(owner, ("stdin", "stdout", "stderr")[number], our_end)
        else:
            stdio.append(int(choice))
    return stdio, theirs, ours


def apply_resources(cgroup: cgroups.Cgroup, resources: cgroups.Resources, config: dict) -> None:
    """Write the limits; where cgroup v2 cannot take the device rules (no BPF), go on only if
    the container could not make a device node anyway (``may_make_device_nodes``), and
    otherwise refuse: a container with CAP_MKNOD and unenforced rules could open the host's disk."""
    try:
        cgroup.apply(resources)
    except cgroups.DeviceFilterError as gap:
        if cgroups.may_make_device_nodes(config):
            raise ContainerStartError(
                f"{gap}. Refusing to create a container that has CAP_MKNOD in the host's user namespace: "
                "it could make a node for the host's disk and open it. Run as root on a kernel with "
                "CONFIG_CGROUP_BPF, drop CAP_MKNOD (--cap-drop MKNOD), or give the container a user "
                "namespace.") from None


# --- the container object the API hands out ----------------------------------------------------
class Container:
    """One container, identified by its id under a state root.

    ``Container.create`` builds it; ``Container.load`` finds one created by another
    process (the CLI's ``start`` after ``create``). Both work on the same files.
    """

    def __init__(self, container_id: str, state_root=None):
        self.id = check_container_id(container_id)
        self.state_root = Path(state_root or paths.state_root())
        self.state_dir = self.state_root / container_id
        self._report: int | None = None  # pipe from our own monitor, when we created the container
        self._report_buffer = b""
        self._monitor: int | None = None  # pid of that monitor when it is our child
        self._exit: dict | None = None
        self._cgroup: cgroups.Cgroup | None = None  # opened on first use (see the cgroup property)
        self.stdin: int | None = None
        self.stdout: int | None = None
        self.stderr: int | None = None

    def __repr__(self) -> str:
        return f"<Container {self.id} {self.status}>"

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc) -> None:
        if self.state_dir.exists():  # the body may have deleted it already
            self.delete(force=True)

    # --- create --------------------------------------------------------------------------------
    @classmethod
    def create(cls, container_id: str, bundle=None, *, config: dict | None = None, state_root=None,
               stdin=None, stdout=None, stderr=None, detach: bool = False, kill_on_caller_exit: bool = False,
               console_socket: int | None = None, rootfs=None, args=None, **spec_options) -> "Container":
        """Create a container: namespaces, cgroup and root filesystem ready, program not started.

        Give a ``bundle`` directory (``config.json`` + rootfs), a ``config`` dict, or
        ``rootfs`` and ``args`` (plus :func:`make_spec` keywords such as ``memory="64m"``).
        The container gets what the config says; with ``rootfs`` and ``args`` the spec made
        here also gives it its own /etc/hostname, hosts and resolv.conf, kept in the state
        directory (``etc_directory=None`` leaves it the rootfs's own).
        stdin/stdout/stderr: None inherits ours, PIPE gives us a pipe, an int is a fd.
        ``kill_on_caller_exit``: the container dies with the thread that created it (a notebook
        kernel that crashes takes its CPU burners along); by default it outlives us, like Docker's.
        ``console_socket`` (with ``terminal=True``): a Unix socket fd on which the container's
        process sends back the master side of its terminal (see :mod:`teachdock.runtime.terminal`).
        """
        if bundle is not None:
            config, root = load_bundle(bundle)
            bundle_path = str(Path(bundle).absolute())
        elif config is not None:
            validate(config)
            root, bundle_path = rootfs_path(config), ""
        elif rootfs is None or args is None:
            raise TeachdockError("create needs a bundle, a config, or rootfs= and args=")
        container = cls(container_id, state_root)
        make_state_dir(container.state_root, container_id)
        ours: list[int] = []  # our ends of the stdio pipes
        theirs: list[int] = []  # fds only the container needs; closed here once it has them
        joins: list[tuple[int, int]] = []
        cgroup = None
        try:
            if config is None:
                # We make the spec, so we play dockerd's part: the container's own hostname, hosts
                # and resolv.conf, written beside its state and listed in config.json's mounts.
                spec_options.setdefault("etc_directory", container.state_dir / "etc")
                config = make_spec(args, rootfs, **spec_options)
                root, bundle_path = rootfs_path(config), ""
            if bool(config["process"].get("terminal")) != (console_socket is not None):
                raise InvalidConfig("process.terminal=true needs a console_socket (a Unix socket the terminal's "
                                    "master side is sent back on, as runc's --console-socket), and a "
                                    "console_socket needs process.terminal=true")
            resources = cgroups.Resources.from_oci(config.get("linux", {}).get("resources"))
            seccomp_filter = seccomp.filter_for(config)  # here, not after the fork: see runtime/seccomp.py
            linux = config.get("linux", {})
            wanted = cgroups.open_cgroup(linux.get("cgroupsPath") or f"/teachdock/{container_id}",
                                         version=None if os.geteuid() == 0 else "none")
            if wanted.exists():  # not ours: the clean-up below must leave it alone
                raise Conflict(f"cgroup {wanted.path} already exists: another container uses it, or a crash "
                               "left it behind (`teachdock runtime cleanup` removes leftovers)")
            cgroup = wanted
            write_config(container.state_dir, config)
            os.mkfifo(container.state_dir / "exec.fifo", 0o600)
            write_state(container.state_dir, {
                "ociVersion": config["ociVersion"], "id": container_id, "status": "creating",
                "bundle": bundle_path, "rootfs": str(root), "created": now(),
                "annotations": config.get("annotations", {}), "cgroupsPath": cgroup.path,
                "cgroupVersion": cgroup.version, "owner": "",
            })
            cgroup.create()
            apply_resources(cgroup, resources, config)
            stdio, theirs, ours = stdio_choices(container, stdin, stdout, stderr)
            plan = make_plan(container_id, config, str(root), container.state_dir, cgroup, detach, stdio)
            plan.kill_on_caller_exit = kill_on_caller_exit and not detach
            plan.console_socket = console_socket
            plan.seccomp = seccomp_filter
            joins = plan.joins
            container._spawn_monitor(plan)
            container._cgroup = cgroup
        except BaseException:
            for fd in ours:
                os.close(fd)
            container.stdin = container.stdout = container.stderr = None
            container._cleanup_after_failed_create(cgroup)
            raise
        finally:
            for fd in theirs + [fd for fd, _ in joins]:
                os.close(fd)
        return container

    def _cleanup_after_failed_create(self, cgroup) -> None:
        """Leave nothing behind when create fails half-way: processes, cgroup, state."""
        if cgroup is not None and cgroup.exists():
            cgroup.kill_all(signal.SIGKILL)
            cgroup.destroy()
        if self._monitor:
            reap(self._monitor)
        if self._report is not None:
            os.close(self._report)
            self._report = None
        remove_state_dir(self.state_dir)

    def _spawn_monitor(self, plan: Plan) -> None:
        report_read, report_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # ---- in the monitor (or the short-lived launcher when detaching) ----
            os.close(report_read)
            if plan.detach:
                os.setsid()
                if os.fork():
                    os._exit(0)  # the launcher exits; the monitor is adopted by init
            monitor_main(plan, report_write)  # never returns
        os.close(report_write)
        self._report = report_read
        if plan.detach:
            reap(pid)  # the launcher
        else:
            self._monitor = pid
        message = self._next_report()
        if message is None:
            raise ContainerStartError(f"container {self.id}: the monitor process died during create")
        if "error" in message:
            raise ContainerStartError(f"container {self.id}: {message['error']}")

    def _next_report(self, timeout: float | None = None) -> dict | None:
        """Read one JSON line from our monitor (None at end-of-file or timeout)."""
        while b"\n" not in self._report_buffer:
            if self._report is None:
                return None
            if timeout is not None and not select.select([self._report], [], [], timeout)[0]:
                return None
            chunk = os.read(self._report, 4096)
            if not chunk:
                os.close(self._report)
                self._report = None
                return None
            self._report_buffer += chunk
        line, _, self._report_buffer = self._report_buffer.partition(b"\n")
        return json.loads(line)

    # --- start, state, kill ------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the container's program (it must be ``created``)."""
        status = self.status
        if status != "created":
            raise Conflict(f"container {self.id} is {status}, not created: only a created container can be started")
        try:
            fifo = os.open(self.state_dir / "exec.fifo", os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            raise ContainerStartError(f"container {self.id}: its monitor is not waiting for start ({error.strerror})") from None
        try:
            os.write(fifo, b"0")
        finally:
            os.close(fifo)
        if self._report is not None:
            message = self._next_report()
            if message is None:
                raise ContainerStartError(f"container {self.id}: the monitor died during start")
            if "error" in message:
                self._exit = self._next_report()
                raise ContainerStartError(f"container {self.id}: {message['error']}")
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # another process's container: watch the state file
            state = self._read_state()
            if state["status"] != "created":
                if state.get("error"):
                    raise ContainerStartError(f"container {self.id}: {state['error']}")
                return
            time.sleep(0.002)
        raise ContainerStartError(f"container {self.id}: no answer from its monitor after start")

    def _read_state(self) -> dict:
        return read_state(self.state_dir)

    def state(self) -> dict:
        """The OCI state: id, status (creating, created, running, stopped), pid, bundle, and more.

        A container whose processes died without the monitor noticing (say the monitor
        was SIGKILLed) is reported ``stopped``: the kernel is the source of truth.
        """
        state = self._read_state()
        if state["status"] in ("created", "running"):
            pid = state.get("pid", 0)
            if not pid or start_time(pid) != state.get("pidStartTime"):
                state["status"] = "stopped"
            elif state["status"] == "running" and self.cgroup.frozen():
                state["status"] = "paused"  # as runc reports a frozen container
        return state

    @property
    def status(self) -> str:
        return self.state()["status"]

    @property
    def pid(self) -> int | None:
        """Host PID of the container's first process (its PID 1)."""
        return self.state().get("pid")

    @property
    def cgroup(self) -> cgroups.Cgroup:
        """The container's cgroup, opened once: ``state()`` asks it whether the container is
        frozen on every call, and opening a v1 cgroup means reading /proc/self/mountinfo."""
        if self._cgroup is None:
            state = self._read_state()
            self._cgroup = cgroups.open_cgroup(state["cgroupsPath"], version=state.get("cgroupVersion"))
        return self._cgroup

    def metrics(self) -> cgroups.Metrics:
        """Memory, CPU and pids figures of the container's cgroup, readable while it runs."""
        return self.cgroup.metrics()

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal to the container's PID 1 (only while created or running)."""
        state = self.state()
        if state["status"] not in ("created", "running", "paused"):
            raise Conflict(f"container {self.id} is {state['status']}: only a created or running container can be signalled")
        try:
            os.kill(state["pid"], sig)
        except ProcessLookupError:
            pass
        if state["status"] == "paused" and sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self.cgroup.thaw()  # a frozen process cannot act on (or die of) its signal

    def pause(self) -> None:
        """Freeze every process of the container (``runc pause``): its cgroup's freezer."""
        status = self.status
        if status != "running":
            raise Conflict(f"container {self.id} is {status}: only a running container can be paused")
        self.cgroup.freeze()

    def resume(self) -> None:
        """Thaw a paused container (``runc resume``)."""
        status = self.status
        if status != "paused":
            raise Conflict(f"container {self.id} is {status}, not paused")
        self.cgroup.thaw()

    # --- wait, delete ----------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the container's PID 1 exits; return its exit code (137 after an OOM kill).

        None means nobody could record the code: the monitor itself was killed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._exit is None and self._report is not None:  # our own monitor tells us
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._next_report(left)
            if message is None and self._report is not None:
                raise TimeoutError(f"container {self.id} still running after {timeout} s")
            if message and "exited" in message:
                self._exit = message
        if self._monitor:
            reap(self._monitor)
            self._monitor = None
        while True:  # someone else's container: watch the state file and the monitor
            state = self.state()
            if state["status"] == "stopped":
                if "exitCode" in state or start_time(state.get("monitorPid") or 0) is None:
                    return state.get("exitCode")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"container {self.id} still running after {timeout} s")
            time.sleep(0.005)

    def poll(self) -> int | None:
        """The exit code if the container has stopped, else None; never blocks."""
        try:
            return self.wait(timeout=0)
        except TimeoutError:
            return None

    @property
    def exit_code(self) -> int | None:
        return self._read_state().get("exitCode")

    @property
    def oom_killed(self) -> bool:
        return bool(self._read_state().get("oomKilled"))

    def delete(self, force: bool = False) -> None:
        """Remove a stopped container: its cgroup and state. ``force`` kills a running one first."""
        if not self.state_dir.exists():
            raise NotFound(f"no such container: {self.id}")
        state = self.state()
        cgroup = self.cgroup
        if state["status"] in ("running", "paused") and not force:
            raise Conflict(f"container {self.id} is {state['status']}: stop it first (kill) or use force")
        if state["status"] in ("created", "running", "paused", "creating"):
            cgroup.kill_all(signal.SIGKILL)
            if state["status"] == "paused":
                cgroup.thaw()  # frozen processes die of SIGKILL only once thawed
            if state.get("pid"):
                try:
                    os.kill(state["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.wait(timeout=5)
            except TimeoutError:
                pass
        if self._monitor:
            reap(self._monitor)
            self._monitor = None
        elif state.get("monitorPid"):
            reap_if_our_child(state["monitorPid"])
        for fd in (self._report, self.stdin, self.stdout, self.stderr):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._report = self.stdin = self.stdout = self.stderr = None
        cgroup.destroy()
        remove_state_dir(self.state_dir)

    @classmethod
    def load(cls, container_id: str, state_root=None) -> "Container":
        """Find an existing container by id (created by this or another process)."""
        container = cls(container_id, state_root)
        container._read_state()
        return container


def list_containers(state_root=None) -> list[dict]:
    """The state of every container under a state root."""
    root = Path(state_root or paths.state_root())
    states = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            states.append(Container.load(entry.name, root).state())
        except (TeachdockError, ValueError, OSError):
            continue
    return states


def cleanup(state_root=None, *, dry_run: bool = False) -> list[str]:
    """Remove what dead or forgotten containers left: stopped containers, half-created ones,
    and empty cgroups under /teachdock that no container of this state root owns.

    A cgroup that still holds processes is never touched: it may belong to a container of
    another state root (another daemon, a test run).
    """
    done = []
    owned = set()
    for state in list_containers(state_root):
        owned.add(state.get("cgroupsPath"))
        age = state_age(Path(state_root or paths.state_root()) / state["id"])
        if state["status"] == "stopped" or (state["status"] == "creating" and age > 30):
            done.append(f"{'would remove' if dry_run else 'removed'} {state['status']} container {state['id']}")
            if not dry_run:
                Container.load(state["id"], state_root).delete(force=True)
    for path in _child_cgroups("/teachdock"):
        if path in owned:
            continue
        cgroup = cgroups.open_cgroup(path)
        busy = cgroup.processes()
        if busy:
            done.append(f"kept cgroup {path}: processes {busy[:5]} still run in it (another state root's container?)")
            continue
        done.append(f"{'would remove' if dry_run else 'removed'} empty cgroup {path}")
        if not dry_run:
            cgroup.destroy()
    return done or ["nothing to clean up"]


def _child_cgroups(parent: str) -> list[str]:
    """Paths of the cgroups directly under ``parent``, in any hierarchy."""
    names = set()
    for directory in cgroup_dirs(cgroups.open_cgroup(parent)).values():
        if os.path.isdir(directory):
            names.update(entry.name for entry in os.scandir(directory) if entry.is_dir())
    return [f"{parent}/{name}" for name in sorted(names)]
