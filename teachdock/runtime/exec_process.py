"""``exec``: start one more program inside a running container (``runc exec``, ``docker exec``).

A container is not a thing you can "enter"; it is a set of namespaces plus a cgroup. To
run a second program in it we make a process that *joins* them, one ``setns(2)`` per
namespace, and moves into the container's cgroup:

```
 caller (the daemon, the CLI)
   └─ td-exec <id>     setns(user, ipc, uts, net, cgroup, pid, time)
        └─ program     forked after those: only children enter a PID or time namespace.
                       Joins the container's cgroup (while it still sees the host's
                       /sys/fs/cgroup), then setns(mnt); capabilities, user, environment
                       and seccomp filter as the container's config.json says; execve.
```

Why the middle process stays: it is the program's parent, so it can wait for it and
exit with its status, which is what the caller waits for. It also passes SIGTERM, SIGINT
and SIGHUP on, so ``kill`` reaches the program. It stays *outside* the container's cgroup:
only the program counts against the container's pids limit, as with runc. The program's PID inside the container
is not 1: when the container's PID 1 exits, the kernel kills every exec'd process too.

``setns(CLONE_NEWNS)`` puts the caller at the root of the container's mount namespace —
its pivoted root — so the program sees the container's files and nothing of the host.
Joining a mount namespace needs a single-threaded process: a freshly forked child is one.
"""

from __future__ import annotations

import json
import os
import signal

from teachdock import kernel
from teachdock.errors import Conflict, ContainerStartError, InvalidConfig
from teachdock.runtime import capabilities as capability_sets, seccomp, terminal
from teachdock.runtime.container import Container, stdio_choices
from teachdock.runtime.identity import set_identity
from teachdock.runtime.init import exec_error, reset_signals
from teachdock.runtime.processes import close_inherited_fds, exit_code, start_time, wait_child
from teachdock.runtime.state import read_config
from teachdock.runtime.users import home_directory, resolve_user

# The order to join in: the user namespace first (it grants the rights to join the others),
# the mount namespace last (after it, /proc/<pid>/ns paths would resolve in the container).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "pid", "time", "mount")


class ExecProcess:
    """A program started in a container by :func:`exec_in`; wait for it or signal it."""

    def __init__(self, container_id: str, helper_pid: int, report_fd: int):
        self.container_id = container_id
        self._helper = helper_pid  # td-exec, our child: its exit status is the program's
        self._report = report_fd
        self.pid: int | None = None  # the program's host PID
        self.exit_code: int | None = None
        self.stdin: int | None = None
        self.stdout: int | None = None
        self.stderr: int | None = None

    def __repr__(self) -> str:
        return f"<ExecProcess pid={self.pid} in {self.container_id} exit={self.exit_code}>"

    def _handshake(self) -> None:
        """The helper writes {"pid": N} once the program is forked, then the program's
        pipe closes on a successful execve, or {"error": ...} arrives."""
        buffer = b""
        while True:
            chunk = os.read(self._report, 4096)
            if not chunk:
                break
            buffer += chunk
        os.close(self._report)
        self._report = None
        error = None
        for line in buffer.splitlines():
            message = json.loads(line)
            self.pid = message.get("pid", self.pid)
            error = message.get("error", error)
        if error:
            self.wait()
            raise ContainerStartError(error)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the program exits; return its exit code (128+N after signal N)."""
        if self.exit_code is not None:
            return self.exit_code
        self.exit_code = wait_child(self._helper, timeout, f"exec in {self.container_id}: td-exec")
        return self.exit_code

    def poll(self) -> int | None:
        try:
            return self.wait(timeout=0)
        except TimeoutError:
            return None

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Signal the program itself (its host PID; the helper would only pass it on)."""
        if self.exit_code is None and self.pid:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Close our ends of the program's pipes."""
        for name in ("stdin", "stdout", "stderr"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)


def exec_in(container: Container, args: list[str], *, env: dict | None = None, cwd: str | None = None,
            user=None, stdin=None, stdout=None, stderr=None, privileged: bool = False,
            console_socket: int | None = None, console_size: tuple[int, int] | None = None) -> ExecProcess:
    """Start ``args`` inside the running ``container``; return at once with an :class:`ExecProcess`.

    ``env`` adds to (and overrides) the container's environment; ``cwd`` and ``user``
    ("name", "uid", "name:group", "uid:gid", looked up in the container's /etc/passwd and
    /etc/group, or a (uid, gid) pair) default to the container's. stdin/stdout/stderr:
    None inherits ours, PIPE gives us a pipe (``.stdin``, ``.stdout``...), an int is a fd.
    ``privileged`` keeps every capability (``docker exec --privileged``). ``console_socket``:
    give the program a terminal of the container's own (``exec -t``); its master side is
    sent back on this Unix socket (see :mod:`teachdock.runtime.terminal`); ``console_size``
    is its (rows, columns).
    """
    if isinstance(args, str) or not args:
        raise InvalidConfig("exec needs the program as a list such as ['sh', '-c', 'echo hi']")
    state = container.state()
    if state["status"] != "running":
        raise Conflict(f"container {container.id} is {state['status']}: exec needs a running container")
    config = read_config(container.state_dir)
    process = dict(config["process"], args=list(args), terminal=console_socket is not None)
    if console_size:
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    if cwd:
        process["cwd"] = cwd
    if user not in (None, ""):
        uid, gid = user if isinstance(user, tuple) else resolve_user(state["rootfs"], user)
        process["user"] = {"uid": uid, "gid": gid}
    environment = dict(item.split("=", 1) for item in process.get("env", []))
    environment.update(env or {})
    if privileged:
        every = capability_sets.available()  # what this machine's bounding set still grants, as for --privileged
        process["capabilities"] = {key: every for key in ("bounding", "effective", "permitted")}
    seccomp_filter = seccomp.filter_for(config)  # the container's filter, as runc exec: compiled before the fork
    namespaces = _namespace_fds(state["pid"], config)
    cgroup = container.cgroup
    execution = ExecProcess(container.id, 0, -1)
    stdio, theirs, ours = stdio_choices(execution, stdin, stdout, stderr)
    report_read, report_write = os.pipe()
    try:
        helper = os.fork()
        if helper == 0:  # ---- td-exec ----
            os.close(report_read)
            _helper_main(container.id, cgroup, namespaces, process, environment, stdio, report_write, console_socket,
                         seccomp_filter)
    except BaseException:
        for fd in ours + [report_read]:
            os.close(fd)
        raise
    finally:
        os.close(report_write)
        for fd in theirs + [fd for fd, _ in namespaces]:
            os.close(fd)
    execution._helper, execution._report = helper, report_read
    try:
        execution._handshake()
    except BaseException:
        execution.close()
        raise
    if start_time(state["pid"]) != state.get("pidStartTime"):  # PID 1 died meanwhile: we may have joined nothing
        execution.kill(signal.SIGKILL)
    return execution


def _namespace_fds(pid: int, config: dict) -> list[tuple[int, int]]:
    """Open /proc/<pid>/ns/<kind> for each namespace the container has and we are not in already."""
    kinds = {entry["type"] for entry in config.get("linux", {}).get("namespaces", [])}
    opened = []
    try:
        for kind in JOIN_ORDER:
            if kind not in kinds:
                continue
            flag, name = kernel.NAMESPACES[kind]
            target = f"/proc/{pid}/ns/{name}"
            if os.stat(target).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue  # e.g. the host's network with --network host: nothing to join
            opened.append((os.open(target, os.O_RDONLY | os.O_CLOEXEC), flag))
    except OSError as error:
        for fd, _ in opened:
            os.close(fd)
        raise Conflict(f"cannot open the container's namespaces ({error.strerror}): did it just exit?") from None
    return opened


def _helper_main(container_id, cgroup, namespaces, process, environment, stdio, report_fd, console_socket,
                 seccomp_filter) -> None:
    """td-exec: join the cgroup and the namespaces, fork the program, wait, exit with its status."""
    try:
        kernel.set_process_name(f"td-exec {container_id[:12]}")
        # The caller's other fds (its ends of these pipes, other programs' pipes, a daemon's
        # sockets) must not live on in us: a stdin pipe would then never reach end-of-file.
        console = [] if console_socket is None else [console_socket]
        close_inherited_fds([report_fd, *stdio, *(fd for fd, _ in namespaces), *console])
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        mount_namespace = None
        for fd, flag in namespaces:
            if flag == kernel.CLONE_NEWNS:
                mount_namespace = fd  # the program joins it, after its cgroup
                continue
            kernel.setns(fd, flag)
            os.close(fd)
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
        program = os.fork()
        if program == 0:
            os.close(ready_read)
            _program_main(cgroup, mount_namespace, process, environment, stdio, ready_write, console_socket,
                          seccomp_filter)
        os.close(ready_write)
        if console_socket is not None:
            os.close(console_socket)
        if mount_namespace is not None:
            os.close(mount_namespace)
        for fd in set(stdio):
            if fd > 2:
                os.close(fd)
        os.write(report_fd, json.dumps({"pid": program}).encode() + b"\n")
        error = b""
        while chunk := os.read(ready_read, 4096):  # end-of-file: execve succeeded (close-on-exec)
            error += chunk
        if error:
            os.write(report_fd, error)
        os.close(report_fd)

        def forward(number, _frame):
            try:
                os.kill(program, number)
            except ProcessLookupError:
                pass

        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(number, forward)
        while True:
            try:
                pid, status = os.waitpid(program, 0)
            except InterruptedError:
                continue
            if pid == program:
                code = exit_code(status)
                os._exit(code)
    except BaseException as error:  # noqa: BLE001 - a forked child must never return into the caller
        try:
            os.write(report_fd, json.dumps({"error": f"exec in {container_id}: {error}"}).encode() + b"\n")
        finally:
            os._exit(126)


def _program_main(cgroup, mount_namespace, process: dict, environment: dict, stdio: list[int], ready_fd: int,
                  console_socket: int | None, seccomp_filter) -> None:
    """Into the cgroup and the mount namespace; then stdio, identity, working directory, execve.

    The container's seccomp filter as in its init: before the identity without no_new_privs
    (loading then needs CAP_SYS_ADMIN), otherwise just before execve.
    """
    try:
        if cgroup.version != "none":
            cgroup.join_self()  # single-threaded: a fresh child
        if mount_namespace is not None:
            kernel.setns(mount_namespace, kernel.CLONE_NEWNS)
            os.close(mount_namespace)
        for number, fd in enumerate(stdio):
            if fd != number:
                os.dup2(fd, number)
        close_inherited_fds([ready_fd] + ([console_socket] if console_socket is not None else []))
        if console_socket is not None:  # in the container's mount namespace: its own /dev/pts
            terminal.open_terminal_inside(console_socket, process.get("user", {}).get("uid", 0),
                                          process.get("consoleSize"))
        if "HOME" not in environment:
            environment["HOME"] = home_directory("/", process.get("user", {}).get("uid", 0))
        no_new_privileges = bool(process.get("noNewPrivileges"))
        if seccomp_filter is not None and not no_new_privileges:
            seccomp_filter.load()
        set_identity(process)
        try:
            os.chdir(process.get("cwd") or "/")
        except OSError as error:
            raise ContainerStartError(f"cwd {process.get('cwd')}: {error.strerror} inside the container") from None
        os.umask(0o022)
        reset_signals()
        if seccomp_filter is not None and no_new_privileges:
            seccomp_filter.load()
        args = process["args"]
        try:
            os.execvpe(args[0], args, environment)
        except OSError as error:
            raise ContainerStartError(exec_error(args[0], error)) from None
    except BaseException as error:  # noqa: BLE001
        try:
            message = str(error) if isinstance(error, ContainerStartError) else f"{type(error).__name__}: {error}"
            os.write(ready_fd, json.dumps({"error": message}).encode() + b"\n")
        finally:
            os._exit(127 if "not found" in str(error) or "no such file" in str(error) else 126)
