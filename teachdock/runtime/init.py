"""Stage 1 and the container's init: the code that runs *inside* the new namespaces.

Both are forked by the monitor (:mod:`teachdock.runtime.monitor`) and never return: they
either ``execve`` the container's program or report an error to the monitor and exit.

```
 stage 1   (only with a user namespace)
   setns(joined namespaces); unshare(user); wait for the monitor to write uid_map/gid_map;
   unshare(pid, mount, uts, ipc, net...); fork PID 1; report its pid; exit
 init = PID 1
   join the cgroup; unshare what PID 1 owns (mount, uts, ipc, net; cgroup after joining)
   stdio; close inherited fds; rootfs.prepare (mounts, pivot_root); terminal
   lo up; hostname; rlimits; [seccomp without no_new_privs]; identity (capabilities, groups,
   user, no_new_privs); cwd; "ready" -> wait for "start" -> HOME -> [seccomp with no_new_privs]
   -> execve(process.args)
                                       (or, with init: fork the program, reap, forward signals)
```

Every privileged call of the set-up goes through ``kernel`` (the real :mod:`teachdock.kernel`
by default), so a unit test can run the sequence with a recording stand-in as an ordinary user.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat

from teachdock import kernel as linux
from teachdock.errors import ContainerStartError
from teachdock.runtime import cgroups, rootfs as rootfs_setup, terminal
from teachdock.runtime.identity import set_identity
from teachdock.runtime.plan import Plan, describe, receive, send
from teachdock.runtime.processes import close_inherited_fds, exit_code
from teachdock.runtime.users import home_directory


# --- stage 1 ------------------------------------------------------------------------------------
def stage1_main(plan: Plan, sock: socket.socket) -> None:
    """With a user namespace: create it first, so it owns every namespace made after it,
    then create the others and fork the process that will be PID 1."""
    try:
        for fd, flag in plan.joins:
            linux.setns(fd, flag)
            os.close(fd)
        if plan.new_user:
            linux.unshare(linux.CLONE_NEWUSER)
            send(sock, userns=True)
            if receive(sock) is None:  # the monitor writes our uid and gid maps meanwhile
                os._exit(1)
        linux.unshare(plan.children_namespaces | plan.own_namespaces)
        write_time_offsets(plan.config)
        pid = os.fork()
        if pid:
            send(sock, pid=pid)
            os._exit(0)
        if receive(sock) is None:  # the monitor has put us into the cgroup
            os._exit(1)
        init_main(plan, sock)
    except BaseException as error:  # noqa: BLE001
        fail_in_child(sock, error)


def write_time_offsets(config: dict) -> None:
    """Set the clocks of a new time namespace before its first process exists (time_namespaces(7)).

    The offsets can only be written between unshare(CLONE_NEWTIME) and the first fork.
    """
    offsets = config.get("linux", {}).get("timeOffsets")
    if offsets:
        lines = "".join(f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n"
                        for clock, value in offsets.items())
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)


def fail_in_child(sock: socket.socket, error: BaseException) -> None:
    """Report a set-up error to the monitor and exit: a forked child must never return."""
    try:
        send(sock, error=describe(error))
    finally:
        os._exit(1)


# --- the container's init (PID 1) --------------------------------------------------------------------
def init_main(plan: Plan, sock: socket.socket) -> None:
    """PID 1 of the container: finish the set-up, wait for start, then become the program."""
    try:
        init_setup(plan, sock)
    except BaseException as error:  # noqa: BLE001
        fail_in_child(sock, error)


def init_setup(plan: Plan, sock: socket.socket) -> None:
    config = plan.config
    process = config["process"]
    enter_namespaces(plan)
    for number, fd in enumerate(plan.stdio):
        if fd != number:
            os.dup2(fd, number)
    close_inherited_fds([sock.fileno()] + ([plan.console_socket] if plan.console_socket is not None else []))
    rootfs_setup.prepare(config, plan.rootfs, cgroup_dirs=cgroup_dirs(plan.cgroup),
                         in_user_namespace=plan.new_user)
    reopen_dev_null()
    if process.get("terminal"):  # now that /dev/pts is the container's own
        terminal.open_terminal_inside(plan.console_socket, process.get("user", {}).get("uid", 0),
                                      process.get("consoleSize"))
    elif plan.detach:
        # A detached container's PID 1 leads a session of its own, as runc's does (nsexec calls
        # setsid): CRIU dumps only a tree whose session leader is inside it. A foreground one
        # stays in the caller's session, so that the terminal's Ctrl-C reaches it.
        os.setsid()
    configure_process(config, plan.own_namespaces, seccomp_filter=plan.seccomp)
    try:
        os.chdir(process["cwd"])
    except OSError as error:
        raise ContainerStartError(f"process.cwd {process['cwd']}: {error.strerror} inside the container") from None
    os.umask(0o022)
    send(sock, ready=True)
    if receive(sock) is None:  # the monitor died or the container was deleted before start
        os._exit(1)
    environment = dict(item.split("=", 1) for item in process.get("env", []))
    if "HOME" not in environment:  # as runc: the user's home from the container's /etc/passwd
        environment["HOME"] = home_directory("/", process.get("user", {}).get("uid", 0))
    if plan.seccomp is not None and process.get("noNewPrivileges"):
        plan.seccomp.load()  # as late as possible (runc): every syscall from here on passes the filter
    if plan.init:
        run_as_init(process["args"], environment, sock)
    exec_program(process["args"], environment, sock)


def reopen_dev_null() -> None:
    """stdio that is the host's /dev/null becomes the container's own, as runc's init does: else
    the container holds a file of a mount outside its root, which CRIU cannot checkpoint."""
    null = None
    for number in range(3):
        try:
            info = os.fstat(number)
        except OSError:
            continue
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3):
            if null is None:
                try:
                    null = os.open("/dev/null", os.O_RDWR)
                except OSError:
                    return  # a rootfs without /dev/null keeps the host's
            os.dup2(null, number)
    if null is not None:
        os.close(null)


def enter_namespaces(plan: Plan, *, kernel=linux) -> None:
    """Join the cgroup, then the namespaces PID 1 makes or joins itself (stage 1 made the
    others); a new cgroup namespace last, so that our own cgroup becomes its root."""
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
        kernel.setresgid(0)
        kernel.setresuid(0)


def configure_process(config: dict, own_namespaces: int, *, seccomp_filter=None, kernel=linux) -> None:
    """After pivot_root: ``lo`` up, hostname and domain name, rlimits, then the identity.

    Names and limits first: setting them needs capabilities the identity may drop. Without
    no_new_privs a seccomp filter is loaded before the identity, since loading it then needs
    CAP_SYS_ADMIN (runc does the same); with it, init loads the filter just before execve.
    """
    if own_namespaces & kernel.CLONE_NEWNET:
        kernel.set_link_up("lo")
    if config.get("hostname"):
        kernel.sethostname(config["hostname"])
    if config.get("domainname"):
        kernel.setdomainname(config["domainname"])
    process = config["process"]
    for rlimit in process.get("rlimits", []):
        kernel.setrlimit(rlimit["type"], rlimit["soft"], rlimit["hard"])
    if seccomp_filter is not None and not process.get("noNewPrivileges"):
        seccomp_filter.load(kernel=kernel)
    set_identity(process, kernel=kernel)


def cgroup_dirs(cgroup: cgroups.Cgroup) -> dict[str, str]:
    """{name: host directory} of a container's own cgroup, to show it at /sys/fs/cgroup."""
    return {"unified": cgroup.dir} if cgroup.version == "v2" else dict(cgroup.dirs)


def exec_program(args: list[str], environment: dict, sock: socket.socket) -> None:
    """execve the program; on failure tell the monitor why (on success the socket just closes)."""
    reset_signals()
    try:
        os.execvpe(args[0], args, environment)
    except OSError as error:
        send(sock, error=exec_error(args[0], error))
        os._exit(127)


def reset_signals() -> None:
    """The program starts with every signal at its default action, whatever we had set."""
    for number in range(1, 32):
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def exec_error(program: str, error: OSError) -> str:
    """Why execve failed, in runc's words."""
    reason = {errno.ENOENT: "executable file not found in $PATH" if "/" not in program else "no such file or directory",
              errno.EACCES: "permission denied"}.get(error.errno, error.strerror)
    return f'exec: "{program}": {reason}'


def run_as_init(args: list[str], environment: dict, sock: socket.socket) -> None:
    """Be a proper PID 1 (like ``docker run --init``): run the program as PID 2, pass signals
    on to it, and reap every orphan, so no zombie piles up."""
    child = os.fork()
    if child == 0:
        exec_program(args, environment, sock)
    sock.close()
    linux.set_process_name("teachdock-init")

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
            os._exit(exit_code(wait_status))
