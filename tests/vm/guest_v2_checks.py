"""cgroup v2 behaviour the runtime must have, as runc has it: checked inside the test VM only.

The file name does not start with ``test_``, so the host's pytest never collects it;
test_in_vm.py passes it to the guest's pytest by name. In the guest, /sys/fs/cgroup is
a real cgroup2 root and the guest's pytest runs in the leaf cgroup /runner, as a login
shell does on a systemd machine (see teachdock/vm/guest.py). Several checks change the
root cgroup's controllers, which is why they refuse to run anywhere but in that VM.
"""

import os
import secrets
import shutil
import signal

import pytest

from teachdock.errors import CgroupError
from teachdock.image import busybox
from teachdock.kernel.mountinfo import read_mountinfo
from teachdock.runtime import PIPE, Container, run
from teachdock.runtime.cgroups import CGROUP_ROOT, detect_version, open_cgroup

MIB = 1 << 20
CONTROLLERS = {"memory", "pids", "cpu"}
RUNNER = "/runner"  # the guest's leaf cgroup for the test run (teachdock.vm.guest.RUNNER_CGROUP)

pytestmark = pytest.mark.skipif(
    os.environ.get("TEACHDOCK_IN_VM") != "1",
    reason="runs only inside teachdock's test VM: it switches the root cgroup's controllers off and on")


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def subtree_control(directory: str) -> set[str]:
    return set(read(os.path.join(directory, "cgroup.subtree_control")).split())


def own_cgroup(pid="self") -> str:
    """The v2 line of /proc/<pid>/cgroup: "0::/path" -> "/path"."""
    return read(f"/proc/{pid}/cgroup").strip().removeprefix("0::")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return busybox.build_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


@pytest.fixture
def create(rootfs, tmp_path):
    """``create(cgroups_path, script, **options)``: a created container with stdin/stdout pipes."""
    def make(cgroups_path, script, **options):
        return Container.create(f"v2-{secrets.token_hex(4)}", rootfs=rootfs, args=["sh", "-c", script],
                                state_root=tmp_path, stdin=PIPE, stdout=PIPE, cgroups_path=cgroups_path,
                                **options)
    return make


def finish(container) -> int:
    os.close(container.stdin)
    container.stdin = None
    return container.wait(10)


# --- where the VM puts us ------------------------------------------------------------------------
def test_v2_is_read_from_the_mount_itself_not_from_a_distribution_name():
    mounts = {m.mount_point: m.fs_type for m in read_mountinfo()}
    assert mounts[CGROUP_ROOT] == "cgroup2"
    assert not os.path.exists("/etc/os-release")  # the guest has no distribution to ask at all
    assert detect_version() == "v2"
    assert CONTROLLERS <= set(read(f"{CGROUP_ROOT}/cgroup.controllers").split())


def test_the_runtime_has_no_mount_or_ip_binary_to_lean_on():
    """Every container test of this run works with syscalls only: the guest took these away."""
    hidden = os.environ.get("TEACHDOCK_VM_HIDDEN_TOOLS", "").split()
    assert {"mount", "umount", "ip", "nsenter", "unshare", "pivot_root"} <= set(hidden)
    assert [tool for tool in hidden if shutil.which(tool)] == []


def test_the_test_run_sits_in_a_leaf_cgroup_like_a_systemd_session():
    assert own_cgroup() == RUNNER
    assert os.getpid() in map(int, read(f"{CGROUP_ROOT}{RUNNER}/cgroup.procs").split())


# --- the container's cgroup --------------------------------------------------------------------------
def test_an_absolute_cgroups_path_is_taken_from_the_root_with_parents_and_limits(create):
    """/teachdock/<x>/box means /sys/fs/cgroup/teachdock/<x>/box: never under the caller's /runner."""
    parent = f"/teachdock/vmcheck-{secrets.token_hex(3)}"
    container = create(f"{parent}/box", "echo ready; read x; echo bye", memory="48m", pids_limit=12, cpus=0.5)
    try:
        directory = f"{CGROUP_ROOT}{parent}/box"
        assert os.path.isdir(directory)
        assert own_cgroup(container.pid) == f"{parent}/box"
        assert [e.name for e in os.scandir(f"{CGROUP_ROOT}{RUNNER}") if e.is_dir()] == []  # nothing nested under us
        # Every parent hands memory, pids and cpu down, so the leaf has the files to write.
        for above in (CGROUP_ROOT, f"{CGROUP_ROOT}/teachdock", f"{CGROUP_ROOT}{parent}"):
            assert CONTROLLERS <= subtree_control(above), above
        assert read(f"{directory}/memory.max") == f"{48 * MIB}\n"
        assert read(f"{directory}/memory.swap.max") == "0\n"  # no swap: an OOM demo ends in a kill, not a crawl
        assert read(f"{directory}/pids.max") == "12\n"
        assert read(f"{directory}/cpu.max") == "50000 100000\n"
        container.start()
        assert os.read(container.stdout, 100) == b"ready\n"
        assert finish(container) == 0
    finally:
        container.delete(force=True)
    assert not os.path.exists(f"{CGROUP_ROOT}{parent}")  # the empty parent went with it
    assert not os.path.exists(f"{CGROUP_ROOT}/teachdock") or any(
        e.is_dir() for e in os.scandir(f"{CGROUP_ROOT}/teachdock"))


def test_the_runtime_enables_the_controllers_at_the_root_itself(create):
    """Start from a root that hands nothing down (a fresh boot without systemd): the runtime
    writes "+memory +pids +cpu" there, which works although processes sit in the root and in
    /runner, because the root cgroup is exempt from the no-internal-process rule."""
    assert not os.path.exists(f"{CGROUP_ROOT}/teachdock"), "another container's cgroup is still there"
    with open(f"{CGROUP_ROOT}/cgroup.subtree_control", "w") as f:
        f.write("-memory -pids -cpu")
    try:
        assert subtree_control(CGROUP_ROOT) & CONTROLLERS == set()
        container = create(None, "echo ready; read x", memory="32m", pids_limit=9)
        try:
            assert CONTROLLERS <= subtree_control(CGROUP_ROOT)
            assert container.metrics().pids_limit == 9
            assert container.metrics().memory_limit_bytes == 32 * MIB
        finally:
            container.delete(force=True)
    finally:
        with open(f"{CGROUP_ROOT}/cgroup.subtree_control", "w") as f:
            f.write("+memory +pids +cpu")


def test_a_cgroup_under_one_that_holds_processes_is_refused_with_the_reason():
    """What nesting under the caller's own cgroup would give: EBUSY, explained."""
    cgroup = open_cgroup(f"{RUNNER}/nested-{secrets.token_hex(3)}", version="v2")
    try:
        with pytest.raises(CgroupError, match="holds processes of its own"):
            cgroup.create()
    finally:
        if cgroup.exists():
            os.rmdir(cgroup.dir)
    assert subtree_control(f"{CGROUP_ROOT}{RUNNER}") == set()


# --- what a container and the notebooks see ----------------------------------------------------------
def test_the_container_reads_its_own_v2_limits_read_only(rootfs, tmp_path):
    """The v2 counterpart of test_ns_cgroup's v1 check: /sys/fs/cgroup inside is its own cgroup."""
    script = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; cat /proc/self/cgroup; "
              "echo 1 > /sys/fs/cgroup/pids.max; echo exit=$?")
    result = run(["sh", "-c", script], rootfs=rootfs, state_root=tmp_path, container_id=f"v2-{secrets.token_hex(4)}",
                 namespaces=("pid", "mount", "uts", "ipc", "network", "cgroup"), memory="64m", pids_limit=30,
                 timeout=30)
    assert result.stdout.splitlines() == [str(64 * MIB), "30", "0::/", "exit=1"]
    assert "Read-only file system" in result.stderr


def test_metrics_follow_a_running_container(create):
    """The figures the cgroups chapter plots, read while a container works and after it is killed."""
    container = create(None, "echo ready; read x; x=a; while true; do x=$x$x; done", memory="24m", cpus=0.5,
                       pids_limit=6)
    try:
        container.start()
        assert os.read(container.stdout, 100) == b"ready\n"
        idle = container.metrics()
        assert (idle.memory_limit_bytes, idle.pids_limit, idle.pids_current, idle.oom_kills) == (24 * MIB, 6, 1, 0)
        assert 0 < idle.memory_bytes < 24 * MIB
        os.close(container.stdin)  # `read x` returns: the string doubles until the OOM killer ends it
        container.stdin = None
        assert container.wait(60) == 128 + signal.SIGKILL
        final = container.metrics()
        assert final.oom_kills == 1
        assert 16 * MIB < final.memory_peak_bytes <= 24 * MIB
        assert final.cpu_usage_ns > 0 and final.cpu_periods > 0
        assert final.pids_current == 0
        assert container.state()["oomKilled"] is True
    finally:
        container.delete(force=True)
