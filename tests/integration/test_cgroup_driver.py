"""The cgroup drivers on the real kernel: limits really bite (needs root).

Each test makes a cgroup /teachdock/pytest-<random>, forks a child that waits on a pipe,
moves the child in with add_process, and only then lets it exec the load, so every page
and every fork of the load is counted. The cgroup is destroyed in ``finally`` and the
test checks that its directories are gone.

The v1 cases run on a cgroup v1 host (this dev machine); the v2 cases run where
/sys/fs/cgroup is a cgroup2 root with memory, pids and cpu (for example in the tiny VM
described in /work/shared/reference/cgroup-v2-in-a-vm.md).
"""

import os
import secrets
import signal
import threading
import time

import pytest

from teachdock.errors import CgroupError
from teachdock.runtime.cgroups import CGROUP_ROOT, Resources, detect_version, find_v1_mounts, open_cgroup

MIB = 1 << 20
PYTHON = "/usr/bin/python3"  # the real interpreter, not a pyenv shim
BUSYBOX = "/bin/busybox"

pytestmark = [
    pytest.mark.root,
]


def skip_reason(version):
    """Why the real ``version`` hierarchy cannot be tested here, or None when it can."""
    try:
        host = detect_version()
    except CgroupError as e:
        return f"no usable cgroup filesystem: {e}"
    if version == "v1":
        if host != "v1":
            return f"this host uses cgroup {host}, not v1"
        missing = {"memory", "cpu", "cpuacct", "pids"} - set(find_v1_mounts())
        return f"cgroup v1 controllers not mounted: {sorted(missing)}" if missing else None
    if host != "v2":
        return ("this host mounts memory, cpu and pids on cgroup v1; the v2 mount at "
                "/sys/fs/cgroup/unified has no such controllers, so the v2 driver cannot be "
                "tried on the real kernel here (use the tiny VM)")
    with open(os.path.join(CGROUP_ROOT, "cgroup.controllers")) as f:
        missing = {"memory", "cpu", "pids"} - set(f.read().split())
    return f"cgroup v2 root lacks controllers {sorted(missing)}" if missing else None


@pytest.fixture(params=["v1", "v2"])
def version(request):
    reason = skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def new_cgroup(version):
    cg = open_cgroup(f"/teachdock/pytest-{secrets.token_hex(4)}", version=version)
    cg.create()
    return cg


def destroy_and_check(cg):
    """Kill what is left, destroy, and check no directory of this cgroup remains."""
    cg.kill_all(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while cg.processes() and time.monotonic() < deadline:  # orphans wait for PID 1 to reap them
        time.sleep(0.02)
    cg.destroy()
    dirs = list(cg.dirs.values()) if cg.version == "v1" else [cg.dir]
    for directory in dirs:
        assert not os.path.exists(directory), f"{directory} left behind"
        parent = os.path.dirname(directory)  # .../teachdock: gone, unless another test's cgroup is in it
        if os.path.isdir(parent):
            assert [e for e in os.scandir(parent) if e.is_dir()], f"empty {parent} left behind"


def start_held(argv, stderr_path):
    """Fork a child that waits on a pipe before exec'ing argv; returns (pid, go_fd)."""
    read_fd, go_fd = os.pipe()
    err_fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:  # the child: no Python-level work beyond this before exec
        try:
            os.close(go_fd)
            os.dup2(err_fd, 2)
            if os.read(read_fd, 1) == b"g":
                os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(read_fd)
    os.close(err_fd)
    return pid, go_fd


def run_in(cg, argv, tmp_path, timeout=60):
    """Run argv inside cg, sampling metrics every 10 ms. Returns (wait status, samples, stderr)."""
    stderr_path = tmp_path / "stderr"
    pid, go_fd = start_held(argv, stderr_path)
    try:
        cg.add_process(pid)
        assert pid in cg.processes()
        os.write(go_fd, b"g")
        os.close(go_fd)
        go_fd = None
        samples = []
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            samples.append(cg.metrics())
            if done:
                return status, samples, stderr_path.read_text()
            assert time.monotonic() < deadline, f"{argv} still running after {timeout} s"
            time.sleep(0.01)
    finally:
        if go_fd is not None:
            os.close(go_fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_memory_limit_oom_kills_a_hog(version, tmp_path):
    limit = 32 * MIB
    cg = new_cgroup(version)
    try:
        cg.apply(Resources(memory_limit=limit))
        # b"x" * n writes every byte: untouched zero pages would not count.
        status, _samples, stderr = run_in(cg, [PYTHON, "-c", "b = b'x' * (200 << 20)"], tmp_path)
        m = cg.metrics()
        print(f"\n[{version}] OOM: status={status:#x} oom_kills={m.oom_kills} "
              f"peak={m.memory_peak_bytes / MIB if m.memory_peak_bytes else None} MiB limit={limit / MIB} MiB")
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (status, stderr)
        assert m.oom_kills >= 1
        assert m.memory_limit_bytes == limit
        if m.memory_peak_bytes is not None:  # memory.peak is missing before kernel 5.19 (v2)
            assert 0.75 * limit <= m.memory_peak_bytes <= limit
    finally:
        destroy_and_check(cg)


def test_pids_limit_makes_forks_fail(version, tmp_path):
    cg = new_cgroup(version)
    try:
        cg.apply(Resources(pids_limit=8))
        script = "i=0; while [ $i -lt 20 ]; do sleep 3 & i=$((i+1)); done; wait"
        status, samples, stderr = run_in(cg, [BUSYBOX, "sh", "-c", script], tmp_path)
        m = cg.metrics()
        highest = max(s.pids_current for s in samples)
        print(f"\n[{version}] pids: status={status:#x} max_events={m.pids_max_events} "
              f"highest pids_current={highest} left={m.pids_current} stderr={stderr.strip()!r}")
        assert m.pids_limit == 8
        assert m.pids_max_events >= 1          # the kernel refused at least one fork
        assert "can't fork" in stderr          # ... and the shell saw it (and gave up)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0
        assert 7 <= highest <= 8               # 7 sleeps + the shell, never more
        assert all(s.pids_current <= 8 for s in samples)
    finally:
        destroy_and_check(cg)


# Spin for 2 s of wall time, reading the clock from /proc/uptime (centiseconds) with the
# shell's builtin read: no fork, and busybox starts in a blink, so nearly all the CPU time
# the cgroup counts is the loop's (a Python loop would add the interpreter's start-up, which
# is ~1 s of CPU under QEMU's emulation).
BUSY_LOOP_2S = """
read t0 rest < /proc/uptime; t0=${t0%.*}${t0#*.}
while :; do
  read t rest < /proc/uptime; t=${t%.*}${t#*.}
  [ $((t - t0)) -ge 200 ] && break
done
"""


def test_cpu_quota_halves_a_busy_loop(version, tmp_path):
    cg = new_cgroup(version)
    try:
        cg.apply(Resources(cpu_quota=50000, cpu_period=100000))
        status, _samples, stderr = run_in(cg, [BUSYBOX, "sh", "-c", BUSY_LOOP_2S], tmp_path)
        m = cg.metrics()
        print(f"\n[{version}] cpu: used {m.cpu_usage_ns / 1e9:.3f} s of a 2 s loop at 50 % "
              f"(ratio {m.cpu_usage_ns / 2e9:.3f}); periods={m.cpu_periods} "
              f"throttled={m.cpu_throttled_periods} throttled_time={m.cpu_throttled_ns / 1e9:.3f} s")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, stderr
        assert 0.8e9 <= m.cpu_usage_ns <= 1.2e9
        assert m.cpu_throttled_periods > 0
        assert m.cpu_throttled_ns > 0
    finally:
        destroy_and_check(cg)


def test_limit_below_usage_is_refused_with_a_reason(version, tmp_path):
    if version == "v2":
        pytest.skip("cgroup v2 does not refuse: lowering memory.max below usage OOM-kills instead")
    cg = new_cgroup(version)
    pid, go_fd = start_held([PYTHON, "-c", "b = b'x' * (64 << 20)\nimport time\ntime.sleep(60)"],
                            tmp_path / "stderr")
    try:
        cg.add_process(pid)
        os.write(go_fd, b"g")
        deadline = time.monotonic() + 30
        while cg.metrics().memory_bytes < 64 * MIB:
            assert time.monotonic() < deadline, "the hog never reached 64 MiB"
            time.sleep(0.02)
        with pytest.raises(CgroupError) as info:
            cg.apply(Resources(memory_limit=16 * MIB))
        print(f"\n[{version}] refusal: {info.value}")
        assert "memory.limit_in_bytes" in str(info.value) and str(16 * MIB) in str(info.value)
        assert "uses more memory" in str(info.value)
    finally:
        os.close(go_fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        destroy_and_check(cg)


def test_kill_all_and_bad_pid(version, tmp_path):
    cg = new_cgroup(version)
    children = []
    try:
        for _ in range(2):
            pid, go_fd = start_held([BUSYBOX, "sleep", "60"], tmp_path / "stderr")
            children.append(pid)
            cg.add_process(pid)
            os.write(go_fd, b"g")
            os.close(go_fd)
        assert sorted(cg.processes()) == sorted(children)
        assert cg.kill_all(signal.SIGTERM) == 2
        for pid in children:
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        children.clear()
        assert cg.processes() == []
        with pytest.raises(CgroupError, match="no process with that PID"):
            cg.add_process(2 ** 22 + 1)  # above pid_max's ceiling: never a live process
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        destroy_and_check(cg)


def test_siblings_created_while_the_parent_is_being_removed(version):
    """Several containers come and go at once: one's destroy() removes the empty teachdock/
    parent just as another's create() is about to mkdir inside it. Both must still work."""
    prefix = f"pytest-{secrets.token_hex(4)}"
    errors, created = [], []

    def come_and_go(n):
        for _ in range(200):
            cg = open_cgroup(f"/teachdock/{prefix}-{n}", version=version)
            try:
                cg.create()
                created.append(cg.exists())
                cg.destroy()
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))
                destroy_and_check(cg)

    threads = [threading.Thread(target=come_and_go, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert created == [True] * 800
    for n in range(4):
        assert not open_cgroup(f"/teachdock/{prefix}-{n}", version=version).exists()
