"""Run a learner's ``run_container`` where it can do no harm, and watch it from outside.

The learner's function unshares namespaces, mounts, pivots its root and sets the hostname.
Called in the notebook's own process it would change the notebook (and, with a mistake, the
host). So every run goes through ``run_sandboxed``, which forks twice:

    notebook (this process: watches, never changes a namespace)
     └─ sandbox   new mount, UTS, network, IPC and PID namespaces (and, without root, a user
        │         namespace where the learner is root); / is made a slave of the host (nothing
        │         flows back out) and then shared again, so a forgotten MS_PRIVATE behaves as
        │         on a real host, but a leaked mount lands in the sandbox, where the check sees it
        └─ runner PID 1 of the sandbox's PID namespace: calls run_container(name, argv, rootfs,
                  memory, bridge) with stdin, stdout and stderr on pipes

Killing the runner ends every process below it (the kernel kills a PID namespace with its
PID 1), and the sandbox's namespaces - with every mount, bridge and veth made in them -
disappear with their last process. That is how a check cleans up after any mistake, and a
timeout can always end a run. The memory cgroup (L5) is the one thing on the host; the
check removes it.

The probe (``PROBE``) is a busybox shell script: it prints what it sees inside as
``key=value`` lines, says ``ready`` and waits for a line on stdin. While it waits, the
notebook inspects it from outside (``inspect`` below); then it exits with code 7.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time

from teachdock import kernel
from teachdock.kernel.mountinfo import parse_mountinfo
from teachdock.lab.filesystems.child import become_root_in_user_namespace

#: The probe's exit code: run_container must return it.
PROBE_EXIT = 7
PROBE = f"""\
echo "pid=$$"
echo "hostname=$(hostname)"
read -r own_stat < /proc/self/stat && echo "procself=${{own_stat%% *}}"
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
echo "links=$(cut -s -d: -f1 /proc/net/dev | tr -d ' ' | tr '\\n' ' ')"
echo "root=$(ls / | tr '\\n' ' ')"
echo ready
read -r go
exit {PROBE_EXIT}
"""
PROBE_ARGV = ["sh", "-c", PROBE]
SANDBOX_HOSTNAME = "capstone-sandbox"
_MOUNTS_KEPT = 12  # the last mount(2) calls a report carries: enough to tell which step was missing


def run_sandboxed(runtime, argv, *, name: str, rootfs: str, memory: int | None = None,
                  bridge: str | None = None, on_ready=None, wait_for_ready: bool = True,
                  timeout: float = 20.0) -> dict:
    """Run ``runtime(name, argv, rootfs, memory, bridge)`` in a sandbox; return what happened.

    The program is looked up in the rootfs's /bin first (PATH), so the same busybox runs
    before the learner changes the root (levels 1-3) and after. ``on_ready(run)`` is called
    once the program printed ``ready``, with the run's dict so far (pids, output); it looks
    from outside while the program waits for its ``go`` line. Without ``wait_for_ready`` the
    program's stdin is closed at once (any program, not the probe).

    The result: ``stdout``, ``stderr``, ``reports`` (what the runner and the sandbox said),
    ``timed_out``, ``returned_early`` (run_container returned before the program was let go),
    ``inspected`` (what on_ready returned), the pids.
    """
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()
    if bridge:
        import pyroute2  # noqa: F401 - imported before the fork, so the child only uses it

    sandbox_pid = os.fork()
    if sandbox_pid == 0:
        for fd in (stdin_w, out_r, err_r, report_r):
            os.close(fd)
        _sandbox(report_w, (stdin_r, out_w, err_w), runtime, argv, name, rootfs, memory, bridge)
    for fd in (stdin_r, out_w, err_w, report_w):
        os.close(fd)
    if not wait_for_ready:
        os.close(stdin_w)
    run = {"sandbox_pid": sandbox_pid, "runner_pid": None, "stdout": "", "stderr": "", "reports": [],
           "timed_out": False, "returned_early": False, "inspected": None, "released": False}
    buffers = {out_r: b"", err_r: b"", report_r: b""}
    deadline = time.monotonic() + timeout
    run["released"] = not wait_for_ready
    try:
        while buffers:
            left = deadline - time.monotonic()
            if left <= 0:
                run["timed_out"] = True
                break
            readable, _, _ = select.select(list(buffers), [], [], min(left, 0.5))
            for fd in readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    del buffers[fd]
                    continue
                buffers[fd] += chunk
                _take(run, fd, buffers, out_r, err_r, report_r)
            if not run["released"] and "\nready\n" in "\n" + run["stdout"]:
                if on_ready is not None:
                    run["inspected"] = on_ready(run)
                run["released"] = True
                _write_quietly(stdin_w, b"go\n")
            if out_r not in buffers and err_r not in buffers and _exited(run):
                _drain(run, buffers, out_r, err_r, report_r)  # the sandbox's last report (leaked mounts)
                break
    finally:
        if wait_for_ready:
            os.close(stdin_w)
        _end(run)
        for fd in (out_r, err_r, report_r):
            os.close(fd)
    return run


def _drain(run, buffers, out_r, err_r, report_r) -> None:
    """Read what the reports pipe still holds once every writer has gone."""
    while report_r in buffers and select.select([report_r], [], [], 1.0)[0]:
        chunk = os.read(report_r, 65536)
        if not chunk:
            break
        buffers[report_r] += chunk
        _take(run, report_r, buffers, out_r, err_r, report_r)


def _take(run, fd, buffers, out_r, err_r, report_r) -> None:
    if fd == out_r:
        run["stdout"] = buffers[fd].decode(errors="replace")
    elif fd == err_r:
        run["stderr"] = buffers[fd].decode(errors="replace")
    else:
        *lines, buffers[fd] = buffers[fd].split(b"\n")
        for line in lines:
            message = json.loads(line)
            run["reports"].append(message)
            if "runner" in message:
                run["runner_pid"] = message["runner"]
            if message.get("where") == "runtime" and not run["released"]:
                run["returned_early"] = True  # run_container came back while the program still waited


def _write_quietly(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:  # the program has gone already: nothing reads
        pass


def _exited(run: dict) -> bool:
    """Reap the sandbox if it has exited (once)."""
    if not run.get("reaped") and os.waitpid(run["sandbox_pid"], os.WNOHANG)[0] == run["sandbox_pid"]:
        run["reaped"] = True
    return bool(run.get("reaped"))


def _end(run: dict) -> None:
    """Kill what is left (the runner takes its PID namespace with it) and reap the sandbox."""
    if run.get("reaped"):
        return  # the sandbox has exited, and the runner (its child, pdeathsig) with it
    for pid in (run["runner_pid"], run["sandbox_pid"]):
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.waitpid(run["sandbox_pid"], 0)
    run["reaped"] = True


# --- in the sandbox (a forked child: never returns) ---------------------------------------------
def _report(fd: int, **message) -> None:
    """One JSON line to the notebook. The writers take turns (the child reports before it exits,
    run_container after waitpid, the sandbox after the runner), so lines do not interleave."""
    try:
        os.write(fd, json.dumps(message, default=repr).encode() + b"\n")
    except OSError:
        pass


def _sandbox(report_w, stdio, runtime, argv, name, rootfs, memory, bridge) -> None:
    status = 1
    try:
        kernel.set_pdeathsig(signal.SIGKILL)
        if os.geteuid() != 0:
            become_root_in_user_namespace()
        kernel.unshare(kernel.CLONE_NEWNS | kernel.CLONE_NEWUTS | kernel.CLONE_NEWNET | kernel.CLONE_NEWIPC
                       | kernel.CLONE_NEWPID)
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_SLAVE)   # nothing flows back to the host
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_SHARED)  # shared again, as on most hosts
        kernel.sethostname(SANDBOX_HOSTNAME)
        kernel.set_link_up("lo")
        if bridge:
            _make_bridge(bridge)
        mount_table = open("/proc/self/mountinfo")  # kept open: a leaked proc may hide /proc/self later
        before = _mount_keys(mount_table)
        runner = os.fork()
        if runner == 0:
            _runner(report_w, stdio, runtime, argv, name, rootfs, memory, bridge)
        for fd in stdio:
            os.close(fd)
        _report(report_w, where="sandbox", runner=runner)
        _, wait_status = os.waitpid(runner, 0)
        after = _mount_keys(mount_table)
        leaked = sorted(label for mount_id, label in after.items() if mount_id not in before)
        _report(report_w, where="sandbox", runner_status=os.waitstatus_to_exitcode(wait_status), leaked=leaked)
        status = 0
    except BaseException as error:  # noqa: BLE001 - told to the notebook, never raised there
        _report(report_w, where="sandbox", error=_describe(error))
    finally:
        os._exit(status)


def _mount_keys(mount_table) -> dict[int, str]:
    """{mount id: "mount point (type)"}: a new mount has a new id, even over an old mount point."""
    mount_table.seek(0)
    return {m.mount_id: f"{m.mount_point} ({m.fs_type})" for m in parse_mountinfo(mount_table.read())}


def _make_bridge(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        ip.link("add", ifname=name, kind="bridge")
        ip.link("set", index=ip.link_lookup(ifname=name)[0], state="up")


def _runner(report_w, stdio, runtime, argv, name, rootfs, memory, bridge) -> None:
    status = 1
    forked = []
    try:
        kernel.set_pdeathsig(signal.SIGKILL)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
            os.close(fd)
        os.environ["PATH"] = f"{rootfs}/bin:/bin:/sbin:/usr/bin:/usr/sbin"  # busybox before and after pivot_root
        os.register_at_fork(after_in_child=lambda: forked.append(True))
        mounts = []
        with kernel.watch_mounts(lambda *call: mounts.append(_mount_text(*call))):
            try:
                value = runtime(name, list(argv), str(rootfs), memory, bridge)
            except BaseException as error:  # noqa: BLE001
                _report(report_w, where="child" if forked else "runtime", error=_describe(error), mounts=mounts[-_MOUNTS_KEPT:])
                status = 127 if forked else 1
            else:
                _report(report_w, where="child" if forked else "runtime", returned=value, mounts=mounts[-_MOUNTS_KEPT:])
                status = 127 if forked else 0
    finally:
        os._exit(status)


def _mount_text(source, target, fstype, flags, data) -> dict:
    names = [n for n in ("MS_BIND", "MS_REC", "MS_PRIVATE", "MS_SLAVE", "MS_SHARED", "MS_REMOUNT", "MS_MOVE")
             if flags & getattr(kernel, n)]
    return {"source": None if source is None else os.fsdecode(source),
            "target": None if target is None else os.fsdecode(target), "fstype": fstype, "flags": names}


def _describe(error: BaseException) -> dict:
    return {"kind": type(error).__name__, "message": str(error)[:800], "errno": getattr(error, "errno", None),
            "call": getattr(error, "call", None)}
