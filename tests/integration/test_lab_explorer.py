"""The isolation explorer and the namespace exercise checks on the real kernel (root).

Clicking Run must give a container exactly the namespaces ticked: isolated where ticked
(plus mount, which is always new), shared everywhere else, and the evidence must agree
with the inodes. The probe container and the host's IPC object must be gone afterwards.
The exercise checks must pass the chapter's solutions and give the written hint for the
usual mistakes, judged from real containers.
"""

from __future__ import annotations

import os

import pytest

from teachdock.errors import TeachdockError
from teachdock.lab.namespaces import explorer as ex
from teachdock.lab.namespaces import checks as nc
from teachdock.runtime import Container, make_spec

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

NAMESPACE_SETS = [
    (),
    ("pid",),
    ("uts", "ipc"),
    ("pid", "network", "user"),
    ("cgroup", "time"),
    ex.DOCKER_DEFAULT,
    ex.KINDS,
]


def shm_keys() -> set[int]:
    with open("/proc/sysvipc/shm") as f:
        return {int(line.split()[0]) for line in f.read().splitlines()[1:] if line.split()}


def assert_nothing_left(result, state_root):
    assert os.listdir(state_root) == [], "the probe's state directory is still there"
    assert result.ipc_key not in shm_keys(), "the host's shared memory segment was not removed"
    for directory, subdirs, _ in os.walk("/sys/fs/cgroup"):
        assert result.container_id not in subdirs, f"the probe's cgroup is left in {directory}"


@pytest.mark.parametrize("ticked", NAMESPACE_SETS, ids=lambda kinds: "+".join(kinds) or "mount-only")
def test_click_gives_exactly_the_ticked_namespaces(ticked, rootfs, state_root):
    widget = ex.isolation_explorer(rootfs, state_root=state_root)
    widget.select(*ticked)
    widget.run_button.click()
    assert widget.error is None, widget.error
    result = widget.result
    expected = set(ticked) | {"mount"}
    assert result.isolated == expected
    assert result.shared == set(ex.KINDS) - expected
    assert result.as_asked
    assert bytes(widget.image.value).startswith(b"\x89PNG") and "exactly as asked" in widget.status.value
    assert_nothing_left(result, state_root)


@pytest.mark.parametrize("ticked", [(), ex.KINDS], ids=["nothing-ticked", "everything-ticked"])
def test_the_evidence_agrees_with_the_inodes(ticked, rootfs, state_root):
    result = ex.explore(ticked, rootfs, state_root=state_root)
    inside, host = result.container, result.host
    isolated = set(ticked)
    assert (inside.own_pid == 1) == ("pid" in isolated)
    assert (inside.own_pid == result.init_host_pid) == ("pid" not in isolated)
    assert inside.processes < host.processes if "pid" in isolated else inside.processes > 10
    assert (inside.hostname == "probe") == ("uts" in isolated)
    assert inside.hostname == (host.hostname if "uts" not in isolated else "probe")
    assert host.ipc_visible and inside.ipc_visible == ("ipc" not in isolated)
    assert (inside.interfaces == ["lo"]) == ("network" in isolated)
    if "user" in isolated:
        assert inside.uid_map == "0 100000 65536" and "probe runs as uid 100000" in result.row("user").host_sees
    else:
        assert inside.uid_map == host.uid_map == "0 0 4294967295"
    cgroup_path = inside.cgroup.split(":", 1)[1]
    assert (cgroup_path == "/") == ("cgroup" in isolated)
    if "cgroup" not in isolated:
        assert cgroup_path.endswith(result.container_id)
    assert inside.time_offsets == "monotonic 0 0; boottime 0 0"  # the probe asks for no offsets
    assert abs(inside.uptime - host.uptime) < 5
    assert_nothing_left(result, state_root)


def test_a_probe_that_cannot_start_is_reported_and_cleaned_up(tmp_path, state_root):
    empty_rootfs = tmp_path / "empty"
    empty_rootfs.mkdir()
    before = shm_keys()
    widget = ex.isolation_explorer(empty_rootfs, state_root=state_root)
    widget.run_button.click()
    assert widget.result is None and "did not run" in widget.status.value
    assert 'exec: "sh"' in widget.error
    assert os.listdir(state_root) == [] and shm_keys() <= before
    with pytest.raises(TeachdockError):
        ex.explore(("pid",), empty_rootfs, state_root=state_root)
    assert os.listdir(state_root) == [] and shm_keys() <= before


def test_user_without_pid_is_refused_and_explained(rootfs, state_root):
    widget = ex.isolation_explorer(rootfs, state_root=state_root)
    widget.select("user", "network")
    widget.run_button.click()
    assert widget.result is None
    assert "a new user namespace needs a new pid namespace too" in widget.error
    assert ex.user_without_pid() in widget.error
    assert "Tick pid as well" in widget.status.value
    assert os.listdir(state_root) == []


# ---- the exercise checks on real containers ------------------------------------------------


def test_exercise_1_shared_kinds(rootfs):
    right = nc.check_shared_kinds({"pid", "ipc", "network", "user", "cgroup", "time"}, rootfs=rootfs)
    assert right.passed, right.message
    wrong = nc.check_shared_kinds({"pid", "ipc", "network"}, rootfs=rootfs)
    assert not wrong.passed and "Also shared: user, cgroup, time" in wrong.message


def host_pid_by_cmdline(*args: str) -> int:
    """The chapter's solution to exercise 2: search /proc for the command line."""
    wanted = list(args)
    return next(int(pid) for pid in os.listdir("/proc") if pid.isdigit()
                and _cmdline(pid)[:len(wanted) + 1] == [*wanted, ""])


def _cmdline(pid: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().split("\0")
    except OSError:
        return []


def test_exercise_2_host_pid(rootfs, state_root, new_id):
    marker = str(40000 + os.getpid() % 10000)  # a sleep no other test runs
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", marker], state_root=state_root) as box:
        box.start()
        answer = host_pid_by_cmdline("sleep", marker)
        assert nc.check_host_pid(answer, box).passed
        assert "inside its own PID namespace" in nc.check_host_pid(1, box).message
        assert "the container's monitor" in nc.check_host_pid(nc.parent_pid(answer), box).message


def test_exercise_3_host_network_own_hostname(rootfs, state_root, new_id):
    container_id = new_id()
    assert not nc.check_host_network_own_hostname(container_id, state_root).answered
    with Container.create(container_id, rootfs=rootfs, args=["sleep", "600"], state_root=state_root,
                          namespaces=("pid", "mount", "uts", "ipc"), hostname="web") as c:
        c.start()
        right = nc.check_host_network_own_hostname(container_id, state_root)
        assert right.passed, right.message
    with Container.create(container_id, rootfs=rootfs, args=["sleep", "600"], state_root=state_root) as c:
        c.start()
        wrong = nc.check_host_network_own_hostname(c)
        assert not wrong.passed and '"network" is still in namespaces=' in wrong.message
    with Container.create(container_id, rootfs=rootfs, args=["true"], state_root=state_root,
                          namespaces=("pid", "mount", "uts", "ipc"), hostname="web") as c:
        c.start()
        c.wait(10)
        ended = nc.check_host_network_own_hostname(c)
        assert not ended.passed and "has ended (stopped)" in ended.message


def test_exercise_4_root_is_host_uid(rootfs, state_root, new_id):
    userns = ("pid", "mount", "uts", "ipc", "network", "user")
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root,
                          namespaces=userns, uid_map=(0, 100000, 65536)) as c:
        c.start()
        right = nc.check_root_is_host_uid(c)
        assert right.passed, right.message
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root,
                          namespaces=userns, uid_map=(0, 200000, 65536)) as c:
        c.start()
        assert "uid 200000 on the host, not 100000" in nc.check_root_is_host_uid(c).message
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root) as c:
        c.start()
        assert "shares the host's user namespace" in nc.check_root_is_host_uid(c).message


def test_exercise_5_shared_network(rootfs, state_root, new_id):
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root) as first:
        first.start()
        spec = make_spec(["sleep", "600"], rootfs, namespaces=("pid", "mount", "uts", "ipc"), hostname="b")
        spec["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{first.pid}/ns/net"})
        with Container.create(new_id(), config=spec, state_root=state_root) as second:
            second.start()
            right = nc.check_shared_network(first, second)
            assert right.passed, right.message
        with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root) as own:
            own.start()
            assert "Each has a network namespace of its own" in nc.check_shared_network(first, own).message
        with Container.create(new_id(), rootfs=rootfs, args=["sleep", "600"], state_root=state_root,
                              namespaces=("pid", "mount", "uts", "ipc"), hostname="c") as on_host:
            on_host.start()
            assert "in the host's network namespace" in nc.check_shared_network(first, on_host).message


def test_remove_exercise_containers(rootfs, state_root, new_id):
    ids = (new_id(), new_id())
    c = Container.create(ids[0], rootfs=rootfs, args=["sleep", "600"], state_root=state_root)
    c.start()
    assert nc.remove_exercise_containers(ids, state_root) == [ids[0]]
    assert os.listdir(state_root) == []
