"""The cgroup drivers against fake cgroup trees in tmp_path (no root, no kernel side effects).

A fake tree is plain directories and files. The kernel would create a cgroup's interface
files on mkdir and drop them on rmdir; the helpers ``kernel_adds_files`` and
``kernel_removes_files`` play that part.
"""

import errno
import os
import time
import shutil
import signal
import subprocess

import pytest

from teachdock.errors import CgroupError, InvalidConfig, NotFound
from teachdock.runtime.cgroups import files as cgroup_files
from teachdock.runtime.cgroups import (
    CgroupV1,
    device_rule,
    CgroupV2,
    Metrics,
    Resources,
    cpu_weight_from_shares,
    detect_version,
    find_v1_mounts,
    open_cgroup,
)

MIB = 1 << 20
V1_UNLIMITED = "9223372036854771712\n"


def kernel_adds_files(directory, files):
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)


def kernel_removes_files(directory):
    for entry in os.scandir(directory):
        if entry.is_file():
            os.unlink(entry.path)


def read(path):
    with open(path) as f:
        return f.read()


# ------------------------------------------------------------------------------------------
# cgroup v2
# ------------------------------------------------------------------------------------------

V2_LEAF_FILES = {
    "cgroup.procs": "",
    "memory.max": "max\n",
    "memory.swap.max": "max\n",
    "cpu.max": "max 100000\n",
    "cpu.weight": "100\n",
    "pids.max": "max\n",
}


@pytest.fixture
def v2_root(tmp_path):
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return str(root)


@pytest.fixture
def v2(v2_root):
    """A created v2 cgroup /teachdock/c1 whose interface files the fake kernel has added."""
    cg = CgroupV2("/teachdock/c1", root=v2_root)
    cg.create()
    kernel_adds_files(cg.dir, V2_LEAF_FILES)
    return cg


def test_v2_create_makes_dirs_and_enables_controllers_in_the_root(v2_root):
    cg = open_cgroup("/teachdock/c1", root=v2_root)
    assert isinstance(cg, CgroupV2) and cg.version == "v2"
    cg.create()
    assert os.path.isdir(os.path.join(v2_root, "teachdock", "c1"))
    assert read(os.path.join(v2_root, "cgroup.subtree_control")) == "+memory +pids +cpu"
    # The leaf holds processes: it must not hand controllers down (no-internal-process rule).
    assert not os.path.exists(os.path.join(v2_root, "teachdock", "c1", "cgroup.subtree_control"))


@pytest.fixture
def kernel_mkdir(v2_root, monkeypatch):
    """mkdir that, like cgroupfs, gives a new cgroup cgroup.controllers (what its parent
    enabled for it) and an empty cgroup.subtree_control."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if str(path).startswith(v2_root):
            handed_down = read(os.path.join(os.path.dirname(path), "cgroup.subtree_control"))
            controllers = " ".join(c.lstrip("+") for c in handed_down.split())
            kernel_adds_files(path, {"cgroup.controllers": controllers + "\n", "cgroup.subtree_control": ""})

    monkeypatch.setattr(os, "mkdir", mkdir)


def test_v2_create_hands_controllers_down_every_level_but_the_leaf(v2_root, kernel_mkdir):
    cg = CgroupV2("/teachdock/group/c1", root=v2_root)
    cg.create()
    assert read(os.path.join(v2_root, "cgroup.subtree_control")) == "+memory +pids +cpu"
    assert read(os.path.join(v2_root, "teachdock", "cgroup.subtree_control")) == "+memory +pids +cpu"
    assert read(os.path.join(v2_root, "teachdock", "group", "cgroup.subtree_control")) == "+memory +pids +cpu"
    assert read(os.path.join(cg.dir, "cgroup.controllers")) == "memory pids cpu\n"
    # The leaf holds processes: it must not hand controllers down (no-internal-process rule).
    assert read(os.path.join(cg.dir, "cgroup.subtree_control")) == ""


def test_v2_create_enables_only_available_controllers_in_each_parent(v2_root):
    parent = os.path.join(v2_root, "teachdock")
    os.mkdir(parent)
    kernel_adds_files(parent, {"cgroup.controllers": "memory pids\n", "cgroup.subtree_control": ""})
    with open(os.path.join(v2_root, "cgroup.subtree_control"), "w") as f:
        f.write("memory pids\n")  # memory and pids are on already: only cpu is added

    CgroupV2("/teachdock/c1", root=v2_root).create()

    assert read(os.path.join(v2_root, "cgroup.subtree_control")) == "+cpu"
    assert read(os.path.join(parent, "cgroup.subtree_control")) == "+memory +pids"


def test_v2_create_never_nests_under_a_relative_or_caller_cgroup(v2_root):
    cg = open_cgroup("teachdock/c2", version="v2", root=v2_root)
    assert cg.path == "/teachdock/c2"
    assert cg.dir == os.path.join(v2_root, "teachdock", "c2")


def test_v2_apply_writes_each_limit_file(v2):
    v2.apply(Resources(memory_limit=64 * MIB, cpu_quota=50000, cpu_period=100000,
                       cpu_shares=1024, pids_limit=8))
    assert read(v2._f("memory.max")) == str(64 * MIB)
    assert read(v2._f("memory.swap.max")) == "0"  # no swap given: none at all
    assert read(v2._f("cpu.max")) == "50000 100000"
    assert read(v2._f("cpu.weight")) == "39"
    assert read(v2._f("pids.max")) == "8"


@pytest.mark.parametrize("quota, period, expected", [
    (-1, 100000, "max 100000"),
    (None, 250000, "max 250000"),
    (20000, None, "20000 100000"),
    (2000, 1000, "2000 1000"),
])
def test_v2_cpu_max_format(v2, quota, period, expected):
    v2.apply(Resources(cpu_quota=quota, cpu_period=period))
    assert read(v2._f("cpu.max")) == expected


def test_v2_swap_is_memory_plus_swap_minus_memory(v2):
    v2.apply(Resources(memory_limit=64 * MIB, memory_swap=96 * MIB))
    assert read(v2._f("memory.swap.max")) == str(32 * MIB)
    v2.apply(Resources(memory_limit=64 * MIB, memory_swap=-1))
    assert read(v2._f("memory.swap.max")) == "max"


def test_v2_unlimited_values_write_max(v2):
    v2.apply(Resources(memory_limit=-1, pids_limit=-1))
    assert read(v2._f("memory.max")) == "max"
    assert read(v2._f("pids.max")) == "max"


def test_v2_without_swap_file_a_memory_limit_still_works(v2):
    os.unlink(v2._f("memory.swap.max"))
    v2.apply(Resources(memory_limit=64 * MIB))
    assert read(v2._f("memory.max")) == str(64 * MIB)
    assert not os.path.exists(v2._f("memory.swap.max"))  # never created by us


def test_v2_missing_controller_file_is_a_cgroup_error(v2):
    os.unlink(v2._f("pids.max"))
    with pytest.raises(CgroupError, match=r"pids\.max.*subtree_control"):
        v2.apply(Resources(pids_limit=8))
    assert not os.path.exists(v2._f("pids.max"))


def test_v2_kernel_refusal_names_file_value_and_reason(v2, monkeypatch):
    real_write = os.write

    def busy_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("memory.max"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", busy_write)
    with pytest.raises(CgroupError) as info:
        v2.apply(Resources(memory_limit=8 * MIB))
    message = str(info.value)
    assert "memory.max" in message and str(8 * MIB) in message
    assert "uses more memory" in message


def test_v2_metrics_parsed_from_files(v2):
    kernel_adds_files(v2.dir, {
        "memory.current": "1048576\n",
        "memory.peak": "33554432\n",
        "memory.max": "33554432\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
        "cpu.stat": "usage_usec 1500000\nuser_usec 1400000\nsystem_usec 100000\n"
                    "nr_periods 20\nnr_throttled 15\nthrottled_usec 900000\n",
        "cpu.max": "50000 100000\n",
        "pids.current": "3\n",
        "pids.max": "8\n",
        "pids.events": "max 13\n",
    })
    assert v2.metrics() == Metrics(
        memory_bytes=1048576, memory_peak_bytes=33554432, memory_limit_bytes=33554432,
        cpu_usage_ns=1_500_000_000, cpu_periods=20, cpu_throttled_periods=15,
        cpu_throttled_ns=900_000_000, cpu_quota_us=50000, cpu_period_us=100000,
        pids_current=3, pids_limit=8, oom_kills=1, pids_max_events=13)


def test_v2_metrics_missing_peak_and_unlimited_are_none(v2):
    kernel_adds_files(v2.dir, {"memory.current": "4096\n", "memory.max": "max\n", "pids.max": "max\n"})
    m = v2.metrics()
    assert m.memory_bytes == 4096
    assert m.memory_peak_bytes is None  # memory.peak is missing before kernel 5.19
    assert m.memory_limit_bytes is None and m.pids_limit is None


def test_metrics_of_a_missing_cgroup_is_not_found(v2_root):
    with pytest.raises(NotFound, match="/teachdock/never"):
        CgroupV2("/teachdock/never", root=v2_root).metrics()


def test_v2_add_process_and_processes(v2):
    v2.add_process(4242)
    assert read(v2._f("cgroup.procs")) == "4242"
    assert v2.processes() == [4242]


def test_kill_all_signals_every_listed_process(v2):
    sleepers = [subprocess.Popen(["/bin/busybox", "sleep", "30"]) for _ in range(2)]
    try:
        kernel_adds_files(v2.dir, {"cgroup.procs": "".join(f"{p.pid}\n" for p in sleepers)})
        assert v2.kill_all(signal.SIGTERM) == 2
        assert [p.wait(timeout=10) for p in sleepers] == [-signal.SIGTERM, -signal.SIGTERM]
    finally:
        for p in sleepers:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_v2_destroy_removes_leaf_and_empty_teachdock_parent(v2, v2_root):
    kernel_removes_files(v2.dir)
    v2.destroy()
    assert not v2.exists()
    assert not os.path.exists(os.path.join(v2_root, "teachdock"))
    assert os.path.isdir(v2_root)  # never the root itself
    v2.destroy()  # a second destroy is harmless


def test_v2_destroy_keeps_a_parent_that_still_has_a_sibling(v2, v2_root):
    sibling = CgroupV2("/teachdock/c2", root=v2_root)
    sibling.create()
    kernel_removes_files(v2.dir)
    v2.destroy()
    assert not v2.exists()
    assert sibling.exists()


def test_destroy_of_a_non_empty_dir_is_a_cgroup_error(v2):
    # A fake leaf still holding files stands in for a cgroup the kernel refuses to remove.
    with pytest.raises(CgroupError, match="cannot remove cgroup"):
        v2.destroy()


def test_create_retries_when_a_concurrent_destroy_removes_the_parent(v2_root, monkeypatch):
    parent = os.path.join(v2_root, "teachdock")
    leaf = os.path.join(parent, "c1")
    real_mkdir = os.mkdir
    removed = []

    def racing_mkdir(path, *args, **kwargs):
        if path == leaf and not removed:
            os.rmdir(parent)  # another container's destroy() wins the race once
            removed.append(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    CgroupV2("/teachdock/c1", root=v2_root).create()
    assert removed == [leaf]
    assert os.path.isdir(leaf)


# ------------------------------------------------------------------------------------------
# cgroup v1
# ------------------------------------------------------------------------------------------

V1_FILES = {
    "memory": {"cgroup.procs": "", "memory.limit_in_bytes": V1_UNLIMITED,
               "memory.memsw.limit_in_bytes": V1_UNLIMITED},
    "cpu": {"cgroup.procs": "", "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n",
            "cpu.shares": "1024\n"},
    "pids": {"cgroup.procs": "", "pids.max": "max\n"},
}


@pytest.fixture
def v1_mounts(tmp_path):
    """A fake v1 layout with cpu and cpuacct co-mounted, as on Fedora and Ubuntu."""
    comounted = str(tmp_path / "cpu,cpuacct")
    mounts = {"memory": str(tmp_path / "memory"), "cpu": comounted, "cpuacct": comounted,
              "pids": str(tmp_path / "pids")}
    for directory in set(mounts.values()):
        os.mkdir(directory)
        kernel_adds_files(directory, {"cgroup.procs": ""})
    return mounts


@pytest.fixture
def v1(v1_mounts):
    cg = open_cgroup("/teachdock/c1", version="v1", mounts=v1_mounts)
    cg.create()
    for controller in ("memory", "cpu", "pids"):
        kernel_adds_files(cg.dirs[controller], V1_FILES[controller])
    return cg


def test_v1_create_makes_the_path_in_every_hierarchy_once(v1, v1_mounts):
    assert isinstance(v1, CgroupV1) and v1.version == "v1"
    for controller, mount in v1_mounts.items():
        assert os.path.isdir(os.path.join(mount, "teachdock", "c1")), controller
    assert v1.dirs["cpu"] == v1.dirs["cpuacct"]
    assert len(v1._unique_dirs()) == 3


def test_v1_apply_writes_each_limit_file(v1):
    v1.apply(Resources(memory_limit=32 * MIB, cpu_quota=50000, cpu_period=100000,
                       cpu_shares=512, pids_limit=8))
    memory, cpu, pids = v1.dirs["memory"], v1.dirs["cpu"], v1.dirs["pids"]
    assert read(os.path.join(memory, "memory.limit_in_bytes")) == str(32 * MIB)
    # No swap given: memory+swap equals memory, so an OOM demo never swaps.
    assert read(os.path.join(memory, "memory.memsw.limit_in_bytes")) == str(32 * MIB)
    assert read(os.path.join(cpu, "cpu.cfs_quota_us")) == "50000"
    assert read(os.path.join(cpu, "cpu.cfs_period_us")) == "100000"
    assert read(os.path.join(cpu, "cpu.shares")) == "512"
    assert read(os.path.join(pids, "pids.max")) == "8"


@pytest.fixture
def strict_memsw(v1, monkeypatch):
    """Fail any write that leaves memsw < limit, like the v1 kernel does; record the order."""
    real_write = cgroup_files.write
    order = []

    def as_number(text):
        return float("inf") if int(text) in (-1, int(V1_UNLIMITED)) else int(text)

    def checked_write(path, value):
        real_write(path, value)
        order.append(os.path.basename(path))
        directory = os.path.dirname(path)
        limit = as_number(read(os.path.join(directory, "memory.limit_in_bytes")))
        memsw = as_number(read(os.path.join(directory, "memory.memsw.limit_in_bytes")))
        assert memsw >= limit, f"after writing {value} to {path}: memsw {memsw} < limit {limit}"

    monkeypatch.setattr(cgroup_files, "write", checked_write)
    return order


def test_v1_memory_write_order_keeps_memsw_at_least_limit(v1, strict_memsw):
    v1.apply(Resources(memory_limit=32 * MIB))  # from unlimited down: limit first
    assert strict_memsw == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    strict_memsw.clear()
    v1.apply(Resources(memory_limit=64 * MIB))  # up, above the current memsw: memsw first
    assert strict_memsw == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    strict_memsw.clear()
    v1.apply(Resources(memory_limit=-1))  # unlimited again: memsw first
    assert strict_memsw == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    assert read(os.path.join(v1.dirs["memory"], "memory.limit_in_bytes")) == "-1"


def test_v1_explicit_swap_is_written_as_memory_plus_swap(v1):
    v1.apply(Resources(memory_limit=32 * MIB, memory_swap=48 * MIB))
    assert read(os.path.join(v1.dirs["memory"], "memory.memsw.limit_in_bytes")) == str(48 * MIB)


def test_v1_without_swap_accounting(v1):
    os.unlink(os.path.join(v1.dirs["memory"], "memory.memsw.limit_in_bytes"))
    v1.apply(Resources(memory_limit=32 * MIB))
    assert read(os.path.join(v1.dirs["memory"], "memory.limit_in_bytes")) == str(32 * MIB)
    with pytest.raises(CgroupError, match="swap accounting"):
        v1.apply(Resources(memory_limit=32 * MIB, memory_swap=64 * MIB))


def test_v1_unmounted_controller_is_a_cgroup_error(v1_mounts):
    del v1_mounts["pids"]
    cg = CgroupV1("/teachdock/c1", mounts=v1_mounts)
    cg.create()
    with pytest.raises(CgroupError, match="pids controller is not mounted"):
        cg.apply(Resources(pids_limit=8))


def test_v1_add_process_writes_to_each_hierarchy(v1):
    v1.add_process(4242)
    for directory, _mount in v1._unique_dirs():
        assert read(os.path.join(directory, "cgroup.procs")) == "4242"
    assert v1.processes() == [4242]


def test_v1_metrics_parsed_from_files(v1):
    kernel_adds_files(v1.dirs["memory"], {
        "memory.usage_in_bytes": "30000000\n",
        "memory.max_usage_in_bytes": "33554432\n",
        "memory.limit_in_bytes": "33554432\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    })
    kernel_adds_files(v1.dirs["cpu"], {
        "cpuacct.usage": "1000000000\n",
        "cpu.stat": "nr_periods 20\nnr_throttled 10\nthrottled_time 500000000\nnr_bursts 0\nburst_time 0\n",
    })
    kernel_adds_files(v1.dirs["pids"], {"pids.current": "8\n", "pids.max": "8\n", "pids.events": "max 13\n"})
    assert v1.metrics() == Metrics(
        memory_bytes=30000000, memory_peak_bytes=33554432, memory_limit_bytes=33554432,
        cpu_usage_ns=1_000_000_000, cpu_periods=20, cpu_throttled_periods=10,
        cpu_throttled_ns=500_000_000, cpu_quota_us=None, cpu_period_us=100000,  # quota -1: unlimited
        pids_current=8, pids_limit=8, oom_kills=1, pids_max_events=13)


def test_v1_metrics_huge_limit_is_unlimited(v1):
    assert v1.metrics().memory_limit_bytes is None
    assert v1.metrics().pids_limit is None


def test_v1_destroy_removes_leaf_and_teachdock_in_every_hierarchy(v1, v1_mounts):
    for directory, _mount in v1._unique_dirs():
        kernel_removes_files(directory)
    v1.destroy()
    assert not v1.exists()
    for mount in set(v1_mounts.values()):
        assert os.listdir(mount) == ["cgroup.procs"], mount


# ------------------------------------------------------------------------------------------
# Finding the hierarchies
# ------------------------------------------------------------------------------------------

def write_mountinfo(tmp_path, lines):
    path = tmp_path / "mountinfo"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_find_v1_mounts_handles_comounted_and_escaped_names(tmp_path):
    mountinfo = write_mountinfo(tmp_path, [
        "22 1 0:20 / /sys rw - sysfs sysfs rw",
        "31 22 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755",
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
        "33 31 0:30 / /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory",
        "34 31 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids",
        "35 31 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd",
        "36 31 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
        "37 1 0:34 / /elsewhere/memory rw - cgroup cgroup rw,memory",
    ])
    assert find_v1_mounts("/sys/fs/cgroup", mountinfo=mountinfo) == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "memory": "/sys/fs/cgroup/my memory",
        "pids": "/sys/fs/cgroup/pids",
    }


def test_detect_version_cgroup2_mount_from_mountinfo(tmp_path):
    root = tmp_path / "cg"
    root.mkdir()  # no cgroup.controllers: only mountinfo can say v2
    mountinfo = write_mountinfo(tmp_path, [
        "1 0 8:1 / / rw - ext4 /dev/vda rw",
        f"40 1 0:38 / {os.path.realpath(root)} rw - cgroup2 cgroup2 rw",
    ])
    assert detect_version(str(root), mountinfo=mountinfo) == "v2"


def test_detect_version_hybrid_mountinfo_is_v1(tmp_path):
    root = os.path.realpath(tmp_path)
    mountinfo = write_mountinfo(tmp_path, [
        "1 0 8:1 / / rw - ext4 /dev/vda rw",
        f"31 1 0:28 / {root} rw - tmpfs tmpfs rw",
        f"35 31 0:32 / {root}/memory rw - cgroup cgroup rw,memory",
        f"41 31 0:38 / {root}/unified rw - cgroup2 cgroup2 rw",
    ])
    assert detect_version(root, mountinfo=mountinfo) == "v1"
    assert detect_version(f"{root}/unified", mountinfo=mountinfo) == "v2"


def test_detect_version_fake_trees(tmp_path, v2_root, v1_mounts):
    assert detect_version(v2_root) == "v2"
    assert detect_version(str(tmp_path)) == "v1"  # <tmp>/memory/cgroup.procs from v1_mounts
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CgroupError, match="no cgroup filesystem"):
        detect_version(str(empty))


CGROUP2_SUPER_MAGIC = "63677270"


def _statfs_type(path):
    """statfs()'s f_type in hex, as stat(1) shows it: an oracle independent of the driver."""
    return subprocess.run(["stat", "-f", "-c", "%t", path], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup") or shutil.which("stat") is None,
                    reason="no /sys/fs/cgroup or no stat(1) on this machine")
def test_detect_version_on_this_host():
    expected = "v2" if _statfs_type("/sys/fs/cgroup") == CGROUP2_SUPER_MAGIC else "v1"
    assert detect_version() == expected
    if os.path.isdir("/sys/fs/cgroup/unified"):  # the hybrid layout this dev machine has
        assert expected == "v1"
        assert _statfs_type("/sys/fs/cgroup/unified") == CGROUP2_SUPER_MAGIC
        assert detect_version("/sys/fs/cgroup/unified") == "v2"


@pytest.mark.parametrize("path, message", [
    ("/", "empty"),
    ("", "empty"),
    ("/teachdock/../etc", r"'\.\.'"),
    ("/teachdock//x", "empty"),
    ("system.slice:teachdock:x", "systemd"),
])
def test_bad_cgroup_paths(v2_root, path, message):
    with pytest.raises(InvalidConfig, match=message):
        open_cgroup(path, root=v2_root)


# ------------------------------------------------------------------------------------------
# Resources
# ------------------------------------------------------------------------------------------

def test_from_oci_reads_memory_cpu_pids_devices():
    r = Resources.from_oci({
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 64 * MIB, "swap": 128 * MIB},
        "cpu": {"quota": 50000, "period": 100000, "shares": 512},
        "pids": {"limit": 20},
    })
    assert r == Resources(memory_limit=64 * MIB, memory_swap=128 * MIB, cpu_quota=50000,
                          cpu_period=100000, cpu_shares=512, pids_limit=20,
                          devices=[{"allow": False, "access": "rwm"}])


@pytest.mark.parametrize("rule, line", [
    ({"allow": False, "access": "rwm"}, "a *:* rwm"),
    ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}, "c 1:3 rwm"),
    ({"allow": True, "type": "c", "major": 136, "access": "rw"}, "c 136:* rw"),
    ({"allow": True, "type": "b", "major": -1, "minor": -1, "access": "m"}, "b *:* m"),
])
def test_device_rules_as_the_v1_controller_reads_them(rule, line):
    assert device_rule(rule) == line


@pytest.mark.parametrize("rule", [
    {"access": "rwm"},                                   # allow missing
    {"allow": True, "type": "x", "access": "rwm"},       # no such device type
    {"allow": True, "type": "c", "access": "rwx"},       # x is not an access right
    {"allow": True, "type": "c", "major": "1", "access": "r"},
])
def test_bad_device_rules_are_refused(rule):
    with pytest.raises(InvalidConfig, match=r"devices\[0\]"):
        Resources(devices=[rule])


def test_from_oci_empty_and_unlimited():
    assert Resources.from_oci(None) == Resources()
    assert Resources.from_oci({}) == Resources()
    r = Resources.from_oci({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1, "shares": 0},
                            "pids": {"limit": -1}})
    assert r == Resources(memory_limit=-1, memory_swap=-1, cpu_quota=-1, pids_limit=-1)


@pytest.mark.parametrize("oci, message", [
    ({"memory": {"limit": -5}}, "memory limit -5 is negative"),
    ({"memory": {"limit": 1 * MIB}}, "below the 4 MiB minimum.*OOM-kill"),
    ({"memory": {"limit": 64 * MIB, "swap": 32 * MIB}}, "smaller than the memory limit"),
    ({"memory": {"limit": 64 * MIB, "swap": -7}}, "memory\\+swap limit -7 is negative"),
    ({"memory": {"swap": 64 * MIB}}, "needs a memory limit"),
    ({"memory": {"limit": "64m"}}, "memory.limit must be an integer"),
    ({"cpu": {"quota": 999}}, "cpu quota 999µs is below the kernel's minimum of 1000µs"),
    ({"cpu": {"quota": 50000, "period": 999}}, "cpu period 999µs is outside"),
    ({"cpu": {"period": 1_000_001}}, "cpu period 1000001µs is outside"),
    ({"cpu": {"shares": 1}}, "cpu shares 1 is outside"),
    ({"pids": {"limit": 0}}, "pids limit 0 would forbid even the container's first process"),
    ({"pids": {"limit": -2}}, "pids limit -2 is negative"),
    ({"pids": {"limit": True}}, "pids.limit must be an integer"),
    ({"memory": 5}, "linux.resources.memory must be a JSON object"),
])
def test_from_oci_rejects_impossible_values(oci, message):
    with pytest.raises(InvalidConfig, match=message):
        Resources.from_oci(oci)


def test_resources_constructed_directly_are_checked_too():
    with pytest.raises(InvalidConfig, match="below the 4 MiB minimum"):
        Resources(memory_limit=1000)


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000)])
def test_cpu_weight_from_shares_matches_runc(shares, weight):
    assert cpu_weight_from_shares(shares) == weight


def test_v1_device_rules_are_written_in_order(tmp_path, monkeypatch):
    """Order matters: "deny all" first, then each allowed device (what runc and Docker do)."""
    mounts = {name: str(tmp_path / name) for name in ("memory", "devices")}
    for directory in mounts.values():
        os.mkdir(directory)
        kernel_adds_files(directory, {"cgroup.procs": ""})
    cg = open_cgroup("/teachdock/dev1", version="v1", mounts=mounts)
    cg.create()
    written = []
    monkeypatch.setattr(cgroup_files, "write", lambda path, value: written.append((os.path.basename(path), value)))
    cg.apply(Resources(devices=[{"allow": False, "access": "rwm"},
                                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]))
    assert written == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 1:3 rwm")]


def test_device_rules_without_a_devices_hierarchy_say_so(v1):
    with pytest.raises(CgroupError, match="devices controller is not mounted"):
        v1.apply(Resources(devices=[{"allow": False, "access": "rwm"}]))


# --- the freezer (docker pause) ---------------------------------------------------------------------
def test_v2_freeze_writes_cgroup_freeze_and_waits_for_the_kernel_to_say_frozen(v2, monkeypatch):
    kernel_adds_files(v2.dir, {"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n"})
    reads = []

    def kernel_freezes_after_a_while(seconds):
        reads.append(seconds)
        if len(reads) == 3:  # the kernel takes a moment to stop every task
            open(os.path.join(v2.dir, "cgroup.events"), "w").write("populated 1\nfrozen 1\n")

    monkeypatch.setattr(time, "sleep", kernel_freezes_after_a_while)
    v2.freeze()
    assert read(os.path.join(v2.dir, "cgroup.freeze")) == "1" and len(reads) == 3
    assert v2.frozen()
    v2.thaw()
    assert read(os.path.join(v2.dir, "cgroup.freeze")) == "0" and not v2.frozen()


def test_freeze_that_never_completes_is_a_cgroup_error(v2, monkeypatch):
    kernel_adds_files(v2.dir, {"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n"})
    monkeypatch.setattr("teachdock.runtime.cgroups.files.FREEZE_TIMEOUT", 0.05)
    with pytest.raises(CgroupError, match="to say frozen 1"):
        v2.freeze()


def test_v1_freeze_needs_the_freezer_hierarchy(v1):
    with pytest.raises(CgroupError, match="the freezer controller is not mounted"):
        v1.freeze()
    assert v1.frozen() is False
