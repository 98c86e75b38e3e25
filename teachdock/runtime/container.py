"""Container lifecycle: create, start, state, kill, delete — runc's verbs, in Python.

Three processes take part, as in runc and containerd-shim:

```
 caller (notebook kernel, CLI, daemon)      never changes its own namespaces
   └─ monitor   (the "shim")                host namespaces; child subreaper; records the exit
        └─ stage-1  unshare(user?), then unshare(pid, mount, uts, ipc, net); fork; exit
             └─ container init  = PID 1 in the new PID namespace:
                                  mounts, pivot_root, hostname, capabilities -> waits for
                                  "start" -> execve(process.args)
```

Why the middle process? ``unshare(CLONE_NEWPID)`` only puts the *children* of the caller
into the new PID namespace, so someone has to unshare and then fork. Stage 1 exits at
once; its child is adopted by the monitor because the monitor is a *child subreaper*.

The monitor holds the container's exit status. Everything else talks to it through
files in the state directory (``/run/teachdock/runtime/<id>/``), so ``teachdock runtime
start`` from another shell works exactly like ``runc start``:

- ``state.json``  the OCI state (status, pid, bundle) plus exit code and OOM flag;
- ``exec.fifo``   ``start`` writes one byte into it; the monitor then tells init to exec;
- ``config.json`` the config the container was created from;
- ``etc/``        the container's own hostname, hosts and resolv.conf, bind-mounted in.

Messages between monitor and the container's processes travel over a SOCK_SEQPACKET
socket pair as small JSON objects. The socket is close-on-exec, so when init calls
``execve`` successfully the monitor simply sees end-of-file.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from teachdock import kernel, paths
from teachdock.errors import Conflict, ContainerStartError, InvalidConfig, KernelError, NotFound, TeachdockError
from teachdock.runtime import cgroups, rootfs as rootfs_setup, terminal
from teachdock.runtime.spec import check_container_id, load_bundle, make_spec, rootfs_path, validate

PIPE = -1  #: like subprocess.PIPE: give the caller a pipe to this stream
DEVNULL = -3  #: like subprocess.DEVNULL

_MAX_MESSAGE = 65536


# --- small helpers ---------------------------------------------------------------------------------
def _send(sock: socket.socket, **message) -> None:
    sock.send(json.dumps(message).encode())


def _receive(sock: socket.socket) -> dict | None:
    data = sock.recv(_MAX_MESSAGE)
    return json.loads(data) if data else None


def _write_json_atomically(path: Path, data: dict) -> None:
    """Readers see the old file or the new one, never half of one (rename is atomic).

    No fsync: the state root is runtime state (normally on the /run tmpfs) that is
    meaningless after a reboot, and an fsync per state change would cost milliseconds.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w") as f:
        json.dump(data, f)
    os.replace(temporary, path)


def _now() -> str:
    """UTC time in RFC 3339 form, as runc writes it."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def _exit_code(wait_status: int) -> int:
    """A shell's view of how a process ended: its exit code, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _etc_files(directory: Path, hostname: str | None) -> dict[str, str]:
    """Write the container's own /etc/hostname, /etc/hosts and /etc/resolv.conf, as Docker does."""
    directory.mkdir()
    name = hostname or "localhost"
    files = {
        "/etc/hostname": f"{name}\n",
        "/etc/hosts": ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                       "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                       f"ff02::2\tip6-allrouters\n127.0.1.1\t{name}\n"),
        "/etc/resolv.conf": "# teachdock: this container has no route to the outside world, so no nameserver.\n",
    }
    written = {}
    for destination, content in files.items():
        path = directory / os.path.basename(destination)
        path.write_text(content)
        written[destination] = str(path)
    return written


@dataclass
class _Plan:
    """Everything the forked processes need, prepared by the caller before any fork."""

    container_id: str
    config: dict
    rootfs: str
    state_dir: Path
    cgroup: cgroups.Cgroup
    etc_files: dict[str, str]
    children_namespaces: int  # CLONE_NEWPID/CLONE_NEWTIME: unshared by the parent, they apply to its children
    own_namespaces: int  # mount, uts, ipc, network: unshared by the process that becomes PID 1
    new_user: bool
    new_cgroupns: bool
    joins: list[tuple[int, int]]  # (open fd of /proc/<pid>/ns/<kind>, clone flag)
    stdio: list[int]  # fds to become the container's 0, 1, 2
    init: bool
    detach: bool
    kill_on_caller_exit: bool = False
    caller_pid: int = field(default_factory=os.getpid)
    console_socket: int | None = None  # with a terminal: where init sends the pty's master

    @property
    def needs_stage1(self) -> bool:
        """A user namespace must exist before the PID namespace it will own, which takes one more fork."""
        return self.new_user or any(flag == kernel.CLONE_NEWUSER for _, flag in self.joins)


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
        stdin/stdout/stderr: None inherits ours, PIPE gives us a pipe, an int is a fd.
        ``kill_on_caller_exit``: the container dies with the thread that created it (a notebook
        kernel that crashes takes its CPU burners along); by default it outlives us, like Docker's.
        ``console_socket`` (with ``terminal=True``): a Unix socket fd on which the container's
        process sends back the master side of its terminal (see :mod:`teachdock.runtime.terminal`).
        """
        if bundle is not None:
            config, root = load_bundle(bundle)
            bundle_path = str(Path(bundle).absolute())
        else:
            if config is None:
                if rootfs is None or args is None:
                    raise TeachdockError("create needs a bundle, a config, or rootfs= and args=")
                config = make_spec(args, rootfs, **spec_options)
            validate(config)
            root = rootfs_path(config)
            bundle_path = ""
        if bool(config["process"].get("terminal")) != (console_socket is not None):
            raise InvalidConfig("process.terminal=true needs a console_socket (a Unix socket the terminal's master "
                                "side is sent back on, as runc's --console-socket), and a console_socket needs "
                                "process.terminal=true")
        container = cls(container_id, state_root)
        resources = cgroups.Resources.from_oci(config.get("linux", {}).get("resources"))
        container.state_root.mkdir(parents=True, exist_ok=True)
        try:
            container.state_dir.mkdir(mode=0o711)  # searchable: a user-namespaced container binds files from etc/
        except FileExistsError:
            raise Conflict(f"a container with id {container_id!r} already exists "
                           f"(see `teachdock runtime list`; remove it with `teachdock runtime delete {container_id}`)") from None
        ours: list[int] = []  # our ends of the stdio pipes
        theirs: list[int] = []  # fds only the container needs; closed here once it has them
        joins: list[tuple[int, int]] = []
        cgroup = None
        try:
            linux = config.get("linux", {})
            wanted = cgroups.open_cgroup(linux.get("cgroupsPath") or f"/teachdock/{container_id}",
                                         version=None if os.geteuid() == 0 else "none")
            if wanted.exists():  # not ours: the clean-up below must leave it alone
                raise Conflict(f"cgroup {wanted.path} already exists: another container uses it, or a crash "
                               "left it behind (`teachdock runtime cleanup` removes leftovers)")
            cgroup = wanted
            _write_json_atomically(container.state_dir / "config.json", config)
            etc = _etc_files(container.state_dir / "etc", config.get("hostname"))
            os.mkfifo(container.state_dir / "exec.fifo", 0o600)
            container._write_state({
                "ociVersion": config["ociVersion"], "id": container_id, "status": "creating",
                "bundle": bundle_path, "rootfs": str(root), "created": _now(),
                "annotations": config.get("annotations", {}), "cgroupsPath": cgroup.path,
                "cgroupVersion": cgroup.version, "owner": "",
            })
            cgroup.create()
            cgroup.apply(resources)
            stdio, theirs, ours = container._stdio(stdin, stdout, stderr)
            plan = _plan(container_id, config, str(root), container.state_dir, cgroup, etc, detach, stdio)
            plan.kill_on_caller_exit = kill_on_caller_exit and not detach
            plan.console_socket = console_socket
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

    def _stdio(self, stdin, stdout, stderr) -> tuple[list[int], list[int], list[int]]:
        """The container's fds 0-2, fds to close once it has them, and our pipe ends (kept as
        ``self.stdin``/``stdout``/``stderr``)."""
        return stdio_choices(self, stdin, stdout, stderr)

    def _cleanup_after_failed_create(self, cgroup) -> None:
        """Leave nothing behind when create fails half-way: processes, cgroup, state."""
        if cgroup is not None and cgroup.exists():
            cgroup.kill_all(signal.SIGKILL)
            cgroup.destroy()
        if self._monitor:
            _reap(self._monitor)
        if self._report is not None:
            os.close(self._report)
            self._report = None
        _remove_tree(self.state_dir)

    def _spawn_monitor(self, plan: _Plan) -> None:
        report_read, report_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # ---- in the monitor (or the short-lived launcher when detaching) ----
            os.close(report_read)
            if plan.detach:
                os.setsid()
                if os.fork():
                    os._exit(0)  # the launcher exits; the monitor is adopted by init
            _monitor_main(plan, report_write)  # never returns
        os.close(report_write)
        self._report = report_read
        if plan.detach:
            _reap(pid)  # the launcher
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
        try:
            with open(self.state_dir / "state.json") as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound(f"no such container: {self.id}") from None

    def _write_state(self, state: dict) -> None:
        _write_json_atomically(self.state_dir / "state.json", state)

    def state(self) -> dict:
        """The OCI state: id, status (creating, created, running, stopped), pid, bundle, and more.

        A container whose processes died without the monitor noticing (say the monitor
        was SIGKILLed) is reported ``stopped``: the kernel is the source of truth.
        """
        state = self._read_state()
        if state["status"] in ("created", "running"):
            pid = state.get("pid", 0)
            if not pid or _start_time(pid) != state.get("pidStartTime"):
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
            _reap(self._monitor)
            self._monitor = None
        while True:  # someone else's container: watch the state file and the monitor
            state = self.state()
            if state["status"] == "stopped":
                if "exitCode" in state or _start_time(state.get("monitorPid") or 0) is None:
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
            _reap(self._monitor)
            self._monitor = None
        elif state.get("monitorPid"):
            _reap_if_our_child(state["monitorPid"])
        for fd in (self._report, self.stdin, self.stdout, self.stderr):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._report = self.stdin = self.stdout = self.stderr = None
        cgroup.destroy()
        _remove_tree(self.state_dir)

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
        age = time.time() - (Path(state_root or paths.state_root()) / state["id"] / "state.json").stat().st_mtime
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
    for directory in _cgroup_dirs(cgroups.open_cgroup(parent)).values():
        if os.path.isdir(directory):
            names.update(entry.name for entry in os.scandir(directory) if entry.is_dir())
    return [f"{parent}/{name}" for name in sorted(names)]


def _remove_tree(directory: Path) -> None:
    import shutil  # noqa: PLC0415 - shutil is slow to import and only needed here

    shutil.rmtree(directory, ignore_errors=True)


def _reap_if_our_child(pid: int) -> None:
    """A Container loaded by id in the process that created it: its monitor is our child,
    and a child nobody waits for stays a zombie. The container has stopped, so the monitor
    is about to exit: wait for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return  # gone already
    parent = int(data[data.rindex(b")") + 2:].split()[1])
    if parent == os.getpid():
        _reap(pid)


def wait_child(pid: int, timeout: float | None = None, what: str = "process") -> int:
    """Wait for our child ``pid`` to exit and return its exit code (128+N after signal N);
    TimeoutError if it still runs after ``timeout`` seconds (None: as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        if done:
            return _exit_code(status)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} {pid} still running after {timeout} s")
        time.sleep(0.005)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _plan(container_id, config, root, state_dir, cgroup, etc_files, detach, stdio) -> _Plan:
    """Work out which namespaces to create and which to join; open the join targets now."""
    children, own, joins, new_user, new_cgroupns = 0, 0, [], False, False
    for entry in config.get("linux", {}).get("namespaces", []):
        flag = kernel.NAMESPACES[entry["type"]][0]
        if entry.get("path"):
            try:
                fd = os.open(entry["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                raise NotFound(f"cannot join {entry['type']} namespace {entry['path']}: {error.strerror}") from None
            joins.append((fd, flag))
        elif entry["type"] == "user":
            new_user = True
        elif entry["type"] == "cgroup":
            new_cgroupns = True
        elif entry["type"] in ("pid", "time"):
            children |= flag
        else:
            own |= flag
    joins.sort(key=lambda item: item[1] != kernel.CLONE_NEWUSER)  # join the user namespace first
    return _Plan(container_id, config, root, state_dir, cgroup, etc_files, children, own, new_user,
                 new_cgroupns, joins, stdio, config.get("annotations", {}).get("org.teachdock.init") == "true",
                 detach)


# --- the monitor ---------------------------------------------------------------------------------------
def _close_other_fds(keep) -> None:
    """Close every inherited fd except ``keep``: a notebook kernel's sockets must not leak into containers."""
    start = 3
    for fd in sorted(set(keep)):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1
    os.closerange(start, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _monitor_main(plan: _Plan, report_fd: int) -> None:
    """The shim: start the container's processes, hand the caller its answer, record the exit."""
    state_path = plan.state_dir / "state.json"
    container_pid = 0
    try:
        kernel.set_process_name(f"td-shim {plan.container_id}")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the caller's terminal is the container's business
        if plan.kill_on_caller_exit:
            signal.signal(signal.SIGTERM, _caller_gone)
            kernel.set_pdeathsig(signal.SIGTERM)
            if os.getppid() != plan.caller_pid:  # it died before we asked
                _caller_gone(signal.SIGTERM, None)
        fifo = os.open(plan.state_dir / "exec.fifo", os.O_RDWR | os.O_CLOEXEC)
        console = [plan.console_socket] if plan.console_socket is not None else []
        _close_other_fds([report_fd, fifo, *plan.stdio, *(fd for fd, _ in plan.joins), *console])
        kernel.set_child_subreaper()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

        def fork_into(child_main) -> int:
            pid = os.fork()
            if pid == 0:
                ours.close()
                os.close(fifo)
                os.close(report_fd)
                child_main(plan, theirs)  # never returns
            return pid

        if plan.needs_stage1:
            stage1 = fork_into(_stage1_main)
        else:
            # PID and time namespaces take effect for children: unshare here, then fork PID 1.
            for fd, flag in plan.joins:
                if flag in (kernel.CLONE_NEWPID, kernel.CLONE_NEWTIME):
                    kernel.setns(fd, flag)
            kernel.unshare(plan.children_namespaces)
            _write_time_offsets(plan.config)
            container_pid = fork_into(_init_main)
        theirs.close()
        for fd in set(plan.stdio) | set(console):  # one fd may serve as both stdout and stderr
            if fd > 2:
                os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)  # let go of the caller's terminal or pipes
        for number in range(3):
            os.dup2(null, number)
        os.close(null)
        for fd, _ in plan.joins:
            os.close(fd)

        def report(**message):
            try:
                os.write(report_fd, json.dumps(message).encode() + b"\n")
            except OSError:
                pass  # the caller went away (a detached create); the state file still tells

        if plan.needs_stage1:
            message = _receive(ours)
            if message and message.get("userns"):
                _write_id_maps(stage1, plan.config["linux"])
                _send(ours, ok="maps")
                message = _receive(ours)
            if not message or "pid" not in message:
                raise ContainerStartError((message or {}).get("error") or "setting up namespaces failed")
            container_pid = message["pid"]
            _reap(stage1)
            # Inside a user namespace PID 1 cannot write the host's cgroup files: we move it.
            plan.cgroup.add_process(container_pid)
            _send(ours, ok="cgroup")
        message = _receive(ours)
        if not message or not message.get("ready"):
            raise ContainerStartError((message or {}).get("error") or "container init died during set-up")
        state = json.loads(state_path.read_text())
        state.update(status="created", pid=container_pid, pidStartTime=_start_time(container_pid),
                     monitorPid=os.getpid())
        _write_json_atomically(state_path, state)
        report(created=container_pid)

        # Wait for `start` (a byte in exec.fifo), unless init dies first.
        readable = []
        while not readable:
            readable = select.select([fifo, ours], [], [], 1.0)[0]
            if not readable and not state_path.exists():  # deleted behind our back: nobody can start it
                raise ContainerStartError("the state directory was removed before start")
        if fifo in readable:
            os.read(fifo, 1)
            _send(ours, ok="start")
            message = _receive(ours)  # end-of-file: execve succeeded and closed the socket
            if message and "error" in message:
                state.update(status="stopped", error=message["error"])
                _write_json_atomically(state_path, state)
                report(error=message["error"])
            else:
                state.update(status="running", startedAt=_now())
                _write_json_atomically(state_path, state)
                report(running=True)
        os.close(fifo)
        ours.close()

        code = 0
        while True:  # reap everything adopted; the container ends when its PID 1 does
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == container_pid:
                code = _exit_code(wait_status)
                break
        oom = False
        if code == 128 + signal.SIGKILL:  # the OOM killer uses SIGKILL: only then ask the cgroup
            try:
                oom = plan.cgroup.metrics().oom_kills > 0
            except (OSError, TeachdockError):
                pass
        state.update(status="stopped", exitCode=code, oomKilled=oom, finishedAt=_now())
        _write_json_atomically(state_path, state)
        report(exited=code, oom=oom)
        os._exit(0)
    except BaseException as error:  # noqa: BLE001 - a forked child must never return into the caller's code
        try:
            plan.cgroup.kill_all(signal.SIGKILL)
            if container_pid:
                os.kill(container_pid, signal.SIGKILL)
                _record_forced_stop(state_path, container_pid, _describe(error))
            os.write(report_fd, json.dumps({"error": _describe(error)}).encode() + b"\n")
        finally:
            os._exit(1)


def _record_forced_stop(state_path: Path, container_pid: int, reason: str) -> None:
    """After killing a created or running container, write down how it ended."""
    try:
        _, wait_status = os.waitpid(container_pid, 0)
        state = json.loads(state_path.read_text())
    except (ChildProcessError, OSError, ValueError):
        return
    if state.get("status") in ("created", "running"):
        state.update(status="stopped", exitCode=_exit_code(wait_status), oomKilled=False,
                     finishedAt=_now(), error=reason)
        _write_json_atomically(state_path, state)


class _CallerGone(Exception):
    """The process that created the container died, and asked us to take the container along."""


def _caller_gone(_number, _frame) -> None:
    raise _CallerGone("the process that created this container exited")


def _describe(error: BaseException) -> str:
    if isinstance(error, TeachdockError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _write_time_offsets(config: dict) -> None:
    """Set the clocks of a new time namespace before its first process exists (time_namespaces(7)).

    The offsets can only be written between unshare(CLONE_NEWTIME) and the first fork.
    """
    offsets = config.get("linux", {}).get("timeOffsets")
    if offsets:
        lines = "".join(f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n"
                        for clock, value in offsets.items())
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)


def _cgroup_dirs(cgroup: cgroups.Cgroup) -> dict[str, str]:
    """{name: host directory} of the container's own cgroup, to show it at /sys/fs/cgroup."""
    return {"unified": cgroup.dir} if cgroup.version == "v2" else dict(cgroup.dirs)


def _write_id_maps(pid: int, linux: dict) -> None:
    """Write uid_map and gid_map of a process that just created a user namespace (user_namespaces(7)).

    Without root the kernel allows only a map of our own id, and only after setgroups has
    been switched off (otherwise dropping groups could grant access: CVE-2014-8989).
    """
    if os.geteuid() != 0:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    for field_name, file_name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux[field_name])
        with open(f"/proc/{pid}/{file_name}", "w") as f:
            f.write(lines)


# --- stage 1 and the container's init ---------------------------------------------------------------
def _stage1_main(plan: _Plan, sock: socket.socket) -> None:
    """With a user namespace: create it first, so it owns every namespace made after it,
    then create the others and fork the process that will be PID 1."""
    try:
        for fd, flag in plan.joins:
            kernel.setns(fd, flag)
            os.close(fd)
        if plan.new_user:
            kernel.unshare(kernel.CLONE_NEWUSER)
            _send(sock, userns=True)
            if _receive(sock) is None:  # the monitor writes our uid and gid maps meanwhile
                os._exit(1)
        kernel.unshare(plan.children_namespaces | plan.own_namespaces)
        _write_time_offsets(plan.config)
        pid = os.fork()
        if pid:
            _send(sock, pid=pid)
            os._exit(0)
        if _receive(sock) is None:  # the monitor has put us into the cgroup
            os._exit(1)
        _init_main(plan, sock)
    except BaseException as error:  # noqa: BLE001
        _fail_in_child(sock, error)


def _fail_in_child(sock: socket.socket, error: BaseException) -> None:
    """Report a set-up error to the monitor and exit: a forked child must never return."""
    try:
        _send(sock, error=_describe(error))
    finally:
        os._exit(1)


def _init_main(plan: _Plan, sock: socket.socket) -> None:
    """PID 1 of the container: finish the set-up, wait for start, then become the program."""
    try:
        _init_setup(plan, sock)
    except BaseException as error:  # noqa: BLE001
        _fail_in_child(sock, error)


def _init_setup(plan: _Plan, sock: socket.socket) -> None:
    config = plan.config
    process = config["process"]
    if not plan.needs_stage1:
        # Join our cgroup ourselves: a single-threaded process moving itself skips the
        # kernel's global cgroup lock, which costs milliseconds per container otherwise.
        plan.cgroup.join_self()
        for fd, flag in plan.joins:
            if flag not in (kernel.CLONE_NEWPID, kernel.CLONE_NEWTIME):
                kernel.setns(fd, flag)
        kernel.unshare(plan.own_namespaces)
    if plan.new_cgroupns:
        kernel.unshare(kernel.CLONE_NEWCGROUP)  # after joining the cgroup: it becomes our "/"
    if plan.new_user:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    for number, fd in enumerate(plan.stdio):
        if fd != number:
            os.dup2(fd, number)
    _close_other_fds([sock.fileno()] + ([plan.console_socket] if plan.console_socket is not None else []))
    rootfs_setup.prepare(config, plan.rootfs, etc_files=plan.etc_files,
                         cgroup_dirs=_cgroup_dirs(plan.cgroup), in_user_namespace=plan.new_user)
    if process.get("terminal"):  # now that /dev/pts is the container's own
        terminal.open_terminal_inside(plan.console_socket, process.get("user", {}).get("uid", 0),
                                      process.get("consoleSize"))
    if plan.own_namespaces & kernel.CLONE_NEWNET:
        kernel.set_link_up("lo")
    if config.get("hostname"):
        kernel.sethostname(config["hostname"])
    if config.get("domainname"):
        kernel.setdomainname(config["domainname"])
    for rlimit in process.get("rlimits", []):
        resource.setrlimit(getattr(resource, rlimit["type"]), (rlimit["soft"], rlimit["hard"]))
    _set_identity(process)
    try:
        os.chdir(process["cwd"])
    except OSError as error:
        raise ContainerStartError(f"process.cwd {process['cwd']}: {error.strerror} inside the container") from None
    os.umask(0o022)
    _send(sock, ready=True)
    if _receive(sock) is None:  # the monitor died or the container was deleted before start
        os._exit(1)
    environment = dict(item.split("=", 1) for item in process.get("env", []))
    if "HOME" not in environment:  # as runc: the user's home from the container's /etc/passwd
        environment["HOME"] = _home_directory(process.get("user", {}).get("uid", 0))
    if plan.init:
        _run_as_init(process["args"], environment, sock)
    _exec(process["args"], environment, sock)


def _home_directory(uid: int) -> str:
    """The home of ``uid`` in the container's /etc/passwd, or / when it has none."""
    try:
        with open("/etc/passwd") as passwd:
            for line in passwd:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _set_identity(process: dict) -> None:
    """Capabilities, groups, user and no_new_privs, in the order the kernel requires."""
    caps = process.get("capabilities", {})
    bounding = kernel.capability_bits(caps.get("bounding", []))
    for number in range(kernel.last_capability() + 1):
        if not bounding >> number & 1 and kernel.in_bounding_set(number):
            kernel.drop_bounding_capability(number)  # needs CAP_SETPCAP: do it while still root
    user = process.get("user", {})
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = user.get("additionalGids", [])
    if groups or os.getgroups():
        try:
            os.setgroups(groups)
        except PermissionError:  # rootless: setgroups is switched off; we hold no groups that matter
            if groups:
                raise
    if uid != 0:
        kernel.set_keepcaps(True)  # keep the permitted set across setuid(), then set it explicitly
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    kernel.capset(kernel.capability_bits(caps.get("effective", [])),
                  kernel.capability_bits(caps.get("permitted", [])),
                  kernel.capability_bits(caps.get("inheritable", [])))
    kernel.clear_ambient_capabilities()
    for name in caps.get("ambient", []):
        kernel.raise_ambient_capability(kernel.CAP_NUMBER[name])
    if process.get("noNewPrivileges"):
        kernel.set_no_new_privs()


def _exec(args: list[str], environment: dict, sock: socket.socket) -> None:
    """execve the program; on failure tell the monitor why (on success the socket just closes)."""
    for number in range(1, 32):
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    try:
        os.execvpe(args[0], args, environment)
    except OSError as error:
        reason = {errno.ENOENT: "executable file not found in $PATH" if "/" not in args[0] else "no such file or directory",
                  errno.EACCES: "permission denied"}.get(error.errno, error.strerror)
        _send(sock, error=f'exec: "{args[0]}": {reason}')  # runc's words
        os._exit(127)


def _run_as_init(args: list[str], environment: dict, sock: socket.socket) -> None:
    """Be a proper PID 1 (like ``docker run --init``): run the program as PID 2, pass signals
    on to it, and reap every orphan, so no zombie piles up."""
    child = os.fork()
    if child == 0:
        _exec(args, environment, sock)
    sock.close()
    kernel.set_process_name("teachdock-init")

    def forward(number, _frame):
        try:
            os.kill(child, number)
        except ProcessLookupError:
            pass

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT):
        signal.signal(number, forward)
    while True:
        pid, wait_status = os.waitpid(-1, 0)
        if pid == child:
            os._exit(_exit_code(wait_status))


__all__ = ["Container", "PIPE", "DEVNULL", "list_containers", "KernelError"]
