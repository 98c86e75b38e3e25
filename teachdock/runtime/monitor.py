"""The monitor (containerd's "shim"): the parent of the container, for as long as it lives.

Forked by the caller in ``Container.create`` (through a short-lived launcher when detached,
so that it outlives the caller). It stays in the host's namespaces and:

1. becomes a *child subreaper*, so the container's PID 1 is its child even though stage 1
   (or nobody) forked it from here;
2. forks stage 1 (with a user namespace: then writes its uid_map/gid_map and moves PID 1
   into the cgroup) or unshares the PID and time namespaces and forks PID 1 itself;
3. records ``created`` in state.json and tells the caller over the report pipe;
4. waits for ``start`` (a byte in exec.fifo), tells init to exec, records ``running``;
5. reaps every process it adopts, records the exit code (and the OOM kill) of PID 1, exits.

The code that runs inside the container's namespaces is in :mod:`teachdock.runtime.init`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket

from teachdock import kernel
from teachdock.errors import ContainerStartError, TeachdockError
from teachdock.runtime.init import init_main, stage1_main, write_time_offsets
from teachdock.runtime.plan import Plan, describe, receive, send
from teachdock.runtime.processes import close_inherited_fds, exit_code, reap, reap_until, start_time
from teachdock.runtime.state import now, read_state, write_state


def monitor_main(plan: Plan, report_fd: int) -> None:
    """The shim: start the container's processes, hand the caller its answer, record the exit."""
    state_dir = plan.state_dir
    container_pid = 0
    try:
        kernel.set_process_name(f"td-shim {plan.container_id}")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the caller's terminal is the container's business
        if plan.kill_on_caller_exit:
            signal.signal(signal.SIGTERM, _caller_gone)
            kernel.set_pdeathsig(signal.SIGTERM)
            if os.getppid() != plan.caller_pid:  # it died before we asked
                _caller_gone(signal.SIGTERM, None)
        fifo = os.open(state_dir / "exec.fifo", os.O_RDWR | os.O_CLOEXEC)
        console = [plan.console_socket] if plan.console_socket is not None else []
        close_inherited_fds([report_fd, fifo, *plan.stdio, *(fd for fd, _ in plan.joins), *console])
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
            stage1 = fork_into(stage1_main)
        else:
            # PID and time namespaces take effect for children: unshare here, then fork PID 1.
            for fd, flag in plan.joins:
                if flag in (kernel.CLONE_NEWPID, kernel.CLONE_NEWTIME):
                    kernel.setns(fd, flag)
            kernel.unshare(plan.children_namespaces)
            write_time_offsets(plan.config)
            container_pid = fork_into(init_main)
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
            message = receive(ours)
            if message and message.get("userns"):
                write_id_maps(stage1, plan.config["linux"])
                send(ours, ok="maps")
                message = receive(ours)
            if not message or "pid" not in message:
                raise ContainerStartError((message or {}).get("error") or "setting up namespaces failed")
            container_pid = message["pid"]
            reap(stage1)
            # Inside a user namespace PID 1 cannot write the host's cgroup files: we move it.
            plan.cgroup.add_process(container_pid)
            send(ours, ok="cgroup")
        message = receive(ours)
        if not message or not message.get("ready"):
            raise ContainerStartError((message or {}).get("error") or "container init died during set-up")
        state = read_state(state_dir)
        state.update(status="created", pid=container_pid, pidStartTime=start_time(container_pid),
                     monitorPid=os.getpid())
        write_state(state_dir, state)
        report(created=container_pid)

        # Wait for `start` (a byte in exec.fifo), unless init dies first.
        readable = []
        while not readable:
            readable = select.select([fifo, ours], [], [], 1.0)[0]
            if not readable and not (state_dir / "state.json").exists():  # deleted behind our back
                raise ContainerStartError("the state directory was removed before start")
        if fifo in readable:
            os.read(fifo, 1)
            send(ours, ok="start")
            message = receive(ours)  # end-of-file: execve succeeded and closed the socket
            if message and "error" in message:
                state.update(status="stopped", error=message["error"])
                write_state(state_dir, state)
                report(error=message["error"])
            else:
                state.update(status="running", startedAt=now())
                write_state(state_dir, state)
                report(running=True)
        os.close(fifo)
        ours.close()

        code = reap_until(container_pid)  # everything adopted is reaped; the container ends with its PID 1
        oom = False
        if code == 128 + signal.SIGKILL:  # the OOM killer uses SIGKILL: only then ask the cgroup
            try:
                oom = plan.cgroup.metrics().oom_kills > 0
            except (OSError, TeachdockError):
                pass
        state.update(status="stopped", exitCode=code, oomKilled=oom, finishedAt=now())
        write_state(state_dir, state)
        report(exited=code, oom=oom)
        os._exit(0)
    except BaseException as error:  # noqa: BLE001 - a forked child must never return into the caller's code
        try:
            plan.cgroup.kill_all(signal.SIGKILL)
            if container_pid:
                os.kill(container_pid, signal.SIGKILL)
                _record_forced_stop(plan, container_pid, describe(error))
            os.write(report_fd, json.dumps({"error": describe(error)}).encode() + b"\n")
        finally:
            os._exit(1)


def write_id_maps(pid: int, linux: dict) -> None:
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


def _record_forced_stop(plan: Plan, container_pid: int, reason: str) -> None:
    """After killing a created or running container, write down how it ended."""
    try:
        _, wait_status = os.waitpid(container_pid, 0)
        state = read_state(plan.state_dir)
    except (ChildProcessError, OSError, ValueError, TeachdockError):
        return
    if state.get("status") in ("created", "running"):
        state.update(status="stopped", exitCode=exit_code(wait_status), oomKilled=False,
                     finishedAt=now(), error=reason)
        write_state(plan.state_dir, state)


class _CallerGone(Exception):
    """The process that created the container died, and asked us to take the container along."""


def _caller_gone(_number, _frame) -> None:
    raise _CallerGone("the process that created this container exited")
