"""cgroup namespace: the container sees its own cgroup as the root "/" of every hierarchy."""

import os

import pytest

from teachdock.errors import TeachdockError
from teachdock.runtime.cgroups import detect_version

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WITH_CGROUP = ("pid", "mount", "uts", "ipc", "network", "cgroup")
#: The /proc/<pid>/cgroup key of the memory controller: its name on v1, "" on v2 (the unified line "0::").
try:
    MEMORY = "memory" if detect_version() == "v1" else ""
except TeachdockError:  # no cgroup filesystem at all: every test here needs root and skips anyway
    MEMORY = "memory"


def cgroup_paths(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup lines "id:controllers:path" -> {controllers: path}."""
    return {line.split(":")[1]: line.split(":", 2)[2] for line in text.splitlines()}


def test_proc_self_cgroup_shows_root_paths(box):
    result = box("cat /proc/self/cgroup", namespaces=WITH_CGROUP)
    assert result.exit_code == 0, result.stderr
    paths = cgroup_paths(result.stdout)
    assert MEMORY in paths
    assert set(paths.values()) == {"/"}


def test_without_a_cgroup_namespace_the_host_path_shows(box, new_id):
    result = box("cat /proc/self/cgroup")
    paths = cgroup_paths(result.stdout)
    container_id = f"{new_id.prefix}-0"
    assert paths[MEMORY] == f"/teachdock/{container_id}"


def test_the_host_still_sees_the_real_path(running, finish):
    with running("echo ready; read x; echo bye", namespaces=WITH_CGROUP) as container:
        with open(f"/proc/{container.pid}/cgroup") as f:
            paths = cgroup_paths(f.read())
        assert paths[MEMORY] == f"/teachdock/{container.id}"
        assert os.readlink(f"/proc/{container.pid}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")
        assert finish(container) == (0, "bye\n")


@pytest.mark.skipif(MEMORY != "memory", reason="checks the cgroup v1 layout (memory/, pids/); this host uses v2")
def test_the_container_reads_its_own_limits_under_sys_fs_cgroup(box):
    """/sys/fs/cgroup inside shows the container's own cgroup, read-only."""
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
              "echo 1 > /sys/fs/cgroup/pids/pids.max; echo exit=$?")
    result = box(script, namespaces=WITH_CGROUP, memory="64m", pids_limit=30)
    assert result.stdout.splitlines() == [str(64 << 20), "30", "exit=1"]
    assert "Read-only file system" in result.stderr
