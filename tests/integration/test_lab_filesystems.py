"""The filesystems chapter's experiments against the real kernel (root).

- the classic chroot escape reaches the host's "/" from a plain chroot (as root, in a user
  namespace, and as an unprivileged user), and stays inside a teachdock container;
- a mount in a new mount namespace is invisible to the host; the propagation matrix
  (shared / slave / private) comes out as mount_namespaces(7) says;
- pivot_root fails without a mount point and works after the bind mount;
- the exercise checks pass right answers and fail wrong ones on real state;
- nothing leaks: no mount below a scratch directory, no scratch directory, no child
  process, and the test process itself never changed its root or mount namespace.
"""

import errno
import json
import os
import subprocess
import sys

import pytest

from teachdock import kernel
from teachdock.errors import KernelError, TeachdockError
from teachdock.kernel.mountinfo import parse_mountinfo
from teachdock.lab.filesystems import checks as fc
from teachdock.lab.filesystems import experiments as fs
from teachdock.runtime import PIPE, Container
from teachdock.runtime.spec import DEFAULT_MASKED_PATHS

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check", "no_chapter_leaks")]


@pytest.fixture
def no_chapter_leaks():
    """After each test: no scratch directory or mount of the chapter is left, and this very
    process is still in its own mount namespace with its own root (never chroot'ed)."""
    namespace, root = os.readlink("/proc/self/ns/mnt"), os.stat("/")
    host_root_line = [m for m in fs.read_mounts() if m.mount_point == "/"][-1]
    yield
    directories, mounts = fs.leftovers()
    assert not directories and not mounts, f"left behind: {directories} {mounts}"
    assert not [m.mount_point for m in fs.read_mounts() if fs.SCRATCH_PREFIX in m.mount_point]
    assert os.readlink("/proc/self/ns/mnt") == namespace
    assert (os.stat("/").st_dev, os.stat("/").st_ino) == (root.st_dev, root.st_ino)
    assert [m for m in fs.read_mounts() if m.mount_point == "/"][-1].propagation == host_root_line.propagation


@pytest.fixture
def sleeper(rootfs, state_root, new_id):
    """A started container running sleep; deleted after the test."""
    with Container.create(new_id(), rootfs=str(rootfs), args=["sleep", "60"], state_root=state_root) as box:
        box.start()
        yield box


def host_listing() -> list[str]:
    return sorted(os.listdir("/"))


# ---- chroot and the classic escape ------------------------------------------------------------------------


def test_the_escape_works_from_a_plain_chroot():
    with fs.scratch_directory("it-chroot") as scratch:
        jail = fs.make_jail(scratch)
        attempt = fs.escape_from_chroot(jail, user_namespace=False)
        assert os.listdir(os.path.join(jail, "tmp")) == []  # the hatch was removed again
    assert attempt.before == ["YOU-ARE-IN-THE-JAIL", "bin", "etc", "home", "tmp"]
    assert attempt.reached_host_root and attempt.after == host_listing()


def test_the_escape_works_from_a_chroot_in_a_user_namespace():
    with fs.scratch_directory("it-chroot") as scratch:
        attempt = fs.escape_from_chroot(fs.make_jail(scratch), user_namespace=True)
    assert attempt.reached_host_root and attempt.after == host_listing()


def test_the_escape_works_for_an_unprivileged_user():
    """What a learner without root runs: the helper makes its own user namespace."""
    script = ("import json; from teachdock.lab.filesystems import experiments as fs\n"
              "with fs.scratch_directory('it-nobody') as s:\n"
              "    a = fs.escape_from_chroot(fs.make_jail(s))\n"
              "print(json.dumps([a.reached_host_root, a.after]))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            user=65534, group=65534, cwd="/", env={"PATH": os.environ.get("PATH", "")})
    if "EPERM" in result.stderr and "unshare" in result.stderr:
        pytest.skip(f"unprivileged user namespaces are disabled on this machine: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    reached, after = json.loads(result.stdout)
    assert reached and after == host_listing()


def test_the_escape_stays_inside_a_container(sleeper, rootfs):
    attempt = fs.escape_from_container(sleeper.pid)
    assert not attempt.reached_host_root
    assert attempt.before == attempt.after == sorted(os.listdir(rootfs))
    assert attempt.after != host_listing()
    assert fs.try_writes(sleeper.pid, ["/tmp"]) == {"/tmp": "ok"}  # the container is still fine


def test_the_container_has_one_root_and_no_host_tree(sleeper, rootfs):
    mounts = fs.read_mounts(sleeper.pid)
    roots = [m for m in mounts if m.mount_point == "/"]
    assert len(roots) == 1 and roots[0].root == str(rootfs)
    assert roots[0].parent_id not in {m.mount_id for m in mounts}  # the old root is detached


def test_try_writes_sees_a_read_only_root(sleeper):
    assert fs.try_writes(sleeper.pid, ["/", "/tmp", "/nowhere"]) == {"/": "EROFS", "/tmp": "ok", "/nowhere": "ENOENT"}


# ---- mount namespaces and propagation ----------------------------------------------------------------------


@pytest.mark.parametrize("user_namespace", [False, True])
def test_a_mount_in_a_new_mount_namespace_is_invisible_to_the_host(user_namespace):
    with fs.scratch_directory("it-ns") as scratch:
        target = os.path.join(scratch, "private")
        os.mkdir(target)
        seen = fs.mount_in_new_namespace(target, user_namespace=user_namespace)
        assert os.listdir(target) == []
    assert [(m.fs_type, m.mount_point) for m in seen.inside] == [("tmpfs", target)]
    assert seen.inside_files == ["hello.txt"]
    assert seen.on_host == [] and seen.host_files == []


def test_shared_mount_makes_a_new_peer_group_and_removes_it():
    with fs.scratch_directory("it-shared") as scratch:
        with fs.shared_mount(scratch):
            own = [m for m in fs.read_mounts() if m.mount_point == scratch]
            assert len(own) == 1 and own[0].propagation_type == "shared"
            group = own[0].propagation[0]
            assert not [m for m in fs.read_mounts() if group in m.propagation and m.mount_point != scratch]
        assert fs.mounts_under(scratch) == []


def test_the_propagation_matrix():
    with fs.scratch_directory("it-propagation") as scratch, fs.shared_mount(scratch):
        results = {mode: fs.propagation_experiment(scratch, mode) for mode in ("shared", "slave", "private")}
        assert [m.mount_point for m in fs.mounts_under(scratch)] == [scratch]  # each run removed its mounts
    group = results["shared"].host_tags[0]
    assert group.startswith("shared:")
    assert (results["shared"].child_sees_host_mount, results["shared"].host_sees_child_mount) == (True, True)
    assert results["shared"].child_tags == (group,)
    assert (results["slave"].child_sees_host_mount, results["slave"].host_sees_child_mount) == (True, False)
    assert results["slave"].child_tags == (group.replace("shared:", "master:"),)
    assert (results["private"].child_sees_host_mount, results["private"].host_sees_child_mount) == (False, False)
    assert results["private"].child_tags == ()


def test_the_propagation_experiment_wants_a_shared_mount():
    with fs.scratch_directory("it-propagation") as scratch:
        with pytest.raises(TeachdockError, match="not a shared mount"):
            fs.propagation_experiment(scratch, "shared")
        with fs.shared_mount(scratch), pytest.raises(TeachdockError, match="choose one of"):
            fs.propagation_experiment(scratch, "rshared")


def test_the_explorer_widget_runs_an_experiment_per_click():
    explorer = fs.propagation_explorer()
    for mode in ("private", "shared"):
        explorer.mode.value = mode
        explorer.button.click()
    assert [r.mode for r in explorer.history] == ["private", "shared"]
    assert not explorer.history[0].host_sees_child_mount and explorer.history[1].host_sees_child_mount
    assert "shared:" in explorer.result.value


# ---- pivot_root -------------------------------------------------------------------------------------------


def test_pivot_root_into_a_plain_directory_fails():
    with fs.scratch_directory("it-pivot") as scratch:
        jail = fs.make_jail(scratch)
        with pytest.raises(KernelError) as plain:
            fs.pivot_root_in_child(jail, bind_mount=None)
        with pytest.raises(KernelError) as not_a_mount_point:
            fs.pivot_root_in_child(jail, bind_mount=scratch)
    # EBUSY when the jail is on the root mount itself, EINVAL when on another one (a tmpfs /tmp).
    points = [m.mount_point for m in fs.read_mounts()]
    holder = max((p for p in points if p == "/" or jail.startswith(p + "/")), key=len)
    assert plain.value.errno == (errno.EBUSY if holder == "/" else errno.EINVAL)
    assert not_a_mount_point.value.errno == errno.EINVAL


@pytest.mark.parametrize("user_namespace", [False, True])
def test_pivot_root_after_the_bind_mount(user_namespace):
    with fs.scratch_directory("it-pivot") as scratch:
        jail = fs.make_jail(scratch)
        result = fs.pivot_root_in_child(jail, bind_mount=jail, user_namespace=user_namespace)
    assert result.listing == ["YOU-ARE-IN-THE-JAIL", "bin", "etc", "home", "tmp"]
    assert [(m.mount_point, m.root) for m in result.mounts] == [("/", jail)]
    assert result.steps[-1].startswith('umount2(".", MNT_DETACH)')


# ---- the exercise checks on real state ------------------------------------------------------------------------


@pytest.mark.parametrize("masked_paths, passes, hint", [
    ([*DEFAULT_MASKED_PATHS, "/proc/cpuinfo"], True, "reads 0 bytes"),
    (["/proc/cpuinfo"], False, "visible again"),
    (None, False, "still reads"),
])
def test_check_hidden_cpuinfo_on_a_real_container(rootfs, masked_paths, passes, hint):
    options = {} if masked_paths is None else dict(masked_paths=masked_paths)
    result = fc.check_hidden_cpuinfo(options, rootfs=rootfs)
    assert result.passed is passes and hint in result.message, result.message


DATA_TMPFS = {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}


@pytest.mark.parametrize("options, passes, hint", [
    (dict(readonly=True, mounts=[DATA_TMPFS]), True, "writable tmpfs mount"),
    (dict(readonly=False, mounts=[DATA_TMPFS]), False, "not read-only"),
    (dict(readonly=True), False, "There is no /data"),
    (dict(readonly=True, mounts=[DATA_TMPFS | {"options": ["ro"]}]), False, "a read-only one"),
    (dict(readonly=True, read_only=True), False, "does not take these options"),
])
def test_check_readonly_root_on_real_containers(rootfs, state_root, options, passes, hint):
    before = sorted(os.listdir(rootfs))
    result = fc.check_readonly_root(options, rootfs=rootfs, state_root=state_root)
    assert result.passed is passes and hint in result.message, result.message
    assert sorted(os.listdir(rootfs)) == before  # the shared rootfs got no /data mount point
    assert os.listdir(state_root) == []  # its container is gone


def test_check_readonly_root_with_a_bind_mounted_host_directory(rootfs, state_root, scratch_dir):
    host_dir = scratch_dir / "data-for-the-exercise"
    host_dir.mkdir()
    try:
        data = {"destination": "/data", "type": "bind", "source": str(host_dir), "options": ["rbind"]}
        result = fc.check_readonly_root(dict(mounts=[data]), rootfs=rootfs, state_root=state_root)
        assert result.passed and "/data is a writable" in result.message, result.message
        assert os.listdir(host_dir) == []  # the write probe cleaned up after itself
    finally:
        host_dir.rmdir()


def _private(target):
    kernel.unshare(kernel.CLONE_NEWNS)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount("tmpfs", target, "tmpfs")


def _no_unshare(target):
    kernel.mount("tmpfs", target, "tmpfs")


def _no_private(target):
    kernel.unshare(kernel.CLONE_NEWNS)
    print("mounting now")
    kernel.mount("tmpfs", target, "tmpfs")


def _not_recursive(target):
    kernel.unshare(kernel.CLONE_NEWNS)
    kernel.mount(None, "/", None, kernel.MS_PRIVATE)
    kernel.mount("tmpfs", target, "tmpfs")


def _slave(target):
    kernel.unshare(kernel.CLONE_NEWNS)
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_SLAVE)
    kernel.mount("tmpfs", target, "tmpfs")


@pytest.mark.parametrize("setup, passes, hint", [
    (_private, True, "exists in your child's mount namespace only"),
    (_slave, True, "exists in your child's mount namespace only"),
    (_no_unshare, False, "still in the host's mount namespace"),
    (_no_private, False, "it propagated"),
    (_not_recursive, False, "without MS_REC"),
])
def test_check_private_tmpfs_on_the_real_kernel(setup, passes, hint):
    result = fc.check_private_tmpfs(setup)
    assert result.passed is passes and hint in result.message, result.message
    if setup is _no_private:
        assert "Your function printed: mounting now" in result.message  # captured in the child


def _escape_right():
    os.chroot("tmp")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")


def _escape_like_chroot_1():
    os.chroot("tmp")
    os.chdir("/")
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")


@pytest.mark.parametrize("escape, passes, hint", [
    (_escape_right, True, "root is the host's / again"),
    (fs.classic_escape, False, "The jail is read-only"),
    (_escape_like_chroot_1, False, "closes the door"),
])
def test_check_escape_on_the_real_kernel(escape, passes, hint):
    result = fc.check_escape(escape)
    assert result.passed is passes and hint in result.message, result.message


def test_check_escape_in_a_user_namespace():
    assert fc.check_escape(_escape_right, user_namespace=True).passed


def test_a_learner_function_that_leaves_the_host_namespace_cannot_remount_the_host_root():
    """The guard: a propagation change on "/" while still in the host's namespace is refused."""
    def dangerous(target):
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)

    result = fc.check_private_tmpfs(dangerous)
    assert not result.passed and "still in the host's mount namespace" in result.message


def test_masked_in_reads_a_real_container_mount_table(rootfs, state_root, new_id):
    with Container.create(new_id(), rootfs=str(rootfs), args=["sh", "-c", "cat /proc/self/mountinfo"],
                          state_root=state_root, stdout=PIPE) as box:
        box.start()
        text = b""
        while chunk := os.read(box.stdout, 65536):
            text += chunk
        box.wait(10)
    mounts = parse_mountinfo(text.decode())
    assert fc.masked_in(mounts) >= {p for p in ("/proc/keys", "/sys/firmware") if os.path.exists(p)}
