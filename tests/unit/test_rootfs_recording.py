"""rootfs.prepare driven with a recording kernel: the exact system calls, in order, without root.

``RecordingKernel`` stands in for ``teachdock.kernel``: it writes down every call that would
change the mount table, the root or the container's files, and makes none of them. What
exists inside the container after pivot_root (for the masked and read-only paths) is told
to it up front. The rootfs is a temporary directory, so the mount points prepare creates
before pivot_root are real; these tests run as any user.
"""

import os
import stat
from types import SimpleNamespace

import pytest

from teachdock import kernel
from teachdock.errors import KernelError
from teachdock.kernel import (
    MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT,
    MS_SHARED, MS_SLAVE, MS_STRICTATIME,
)
from teachdock.runtime import rootfs as rootfs_setup
from teachdock.runtime.spec import DEFAULT_MASKED_PATHS, make_spec


class RecordingKernel:
    """The calls rootfs.prepare makes through ``kernel=``, recorded as tuples instead of made."""

    def __init__(self, container_files: dict[str, str] | None = None, mount_flags: dict[str, int] | None = None):
        self.calls: list[tuple] = []
        self.container_files = container_files or {}  # path after pivot_root -> "dir", "file" or "link"
        self.mount_flags = mount_flags or {}  # path -> the flags statvfs reports for its mount

    def mount(self, source, target, fstype=None, flags=0, data=None):
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount2(self, target, flags=0):
        self.calls.append(("umount2", target, flags))

    def pivot_root(self, new_root, put_old):
        self.calls.append(("pivot_root", new_root, put_old))

    def chdir(self, path):
        self.calls.append(("chdir", path))

    def mkdir(self, path, mode=0o777):
        self.calls.append(("mkdir", path))

    def mknod(self, path, mode, device):
        self.calls.append(("mknod", path, mode, device))

    def chmod(self, path, mode):
        self.calls.append(("chmod", path, mode))

    def chown(self, path, uid, gid):
        self.calls.append(("chown", path, uid, gid))

    def symlink(self, target, path):
        self.calls.append(("symlink", target, path))

    # Questions, not changes: answered from what the test said exists, not recorded.
    def lstat(self, path):
        kind = self.container_files.get(path)
        if kind is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        mode = {"dir": stat.S_IFDIR | 0o555, "file": stat.S_IFREG | 0o444, "link": stat.S_IFLNK | 0o777}[kind]
        return os.stat_result((mode, 0, 0, 1, 0, 0, 0, 0, 0, 0))

    def statvfs(self, path):
        return SimpleNamespace(f_flag=self.mount_flags.get(path, 0))


# What a Linux host's /proc and /sys hold of the masked and read-only paths (others are absent).
CONTAINER_FILES = {"/proc/acpi": "dir", "/proc/kcore": "file", "/proc/keys": "file", "/proc/timer_list": "file",
                   "/proc/scsi": "dir", "/sys/firmware": "dir", "/proc/sysrq-trigger": "file",
                   "/proc/bus": "dir", "/proc/fs": "dir", "/proc/irq": "dir", "/proc/sys": "dir"}
PROC_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return str(root)


def prepare(config, rootfs, *, cgroup_dirs, in_user_namespace=False, container_files=CONTAINER_FILES):
    recorder = RecordingKernel(container_files, {path: PROC_FLAGS for path in container_files})
    rootfs_setup.prepare(config, rootfs, cgroup_dirs=cgroup_dirs,
                         in_user_namespace=in_user_namespace, kernel=recorder)
    return recorder.calls


def devpts_data():
    # make_spec leaves out gid=5 without root: the tty group is not mapped then (as `runc spec --rootless`)
    return "newinstance,ptmxmode=0666,mode=0620" + (",gid=5" if os.geteuid() == 0 else "")


def test_a_docker_like_config_makes_these_calls_in_this_order(rootfs):
    config = make_spec(["sh"], rootfs)
    cgroup = "/sys/fs/cgroup/teachdock/box"
    calls = prepare(config, rootfs, cgroup_dirs={"unified": cgroup})
    r = rootfs
    dev = f"{r}/dev"
    assert calls == [
        # 1. nothing done here may leak to the host; 2. pivot_root needs the rootfs to be a mount
        ("mount", None, "/", None, MS_REC | MS_PRIVATE, None),
        ("mount", r, r, None, MS_BIND | MS_REC, None),
        # 3. config.json's mounts, in order, options split into flags and data
        ("mount", "proc", f"{r}/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, None),
        ("mount", "tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        ("mount", "devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, devpts_data()),
        ("mount", "shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k"),
        ("mount", "mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, None),
        ("mount", "sysfs", f"{r}/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, None),
        # cgroup v2: the container's own cgroup, bound and made read-only (a bind takes flags on remount only)
        ("mount", cgroup, f"{r}/sys/fs/cgroup", None, MS_BIND, None),
        ("mount", None, f"{r}/sys/fs/cgroup", None,
         MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY | MS_REMOUNT | MS_BIND, None),
        ("mount", "tmpfs", f"{r}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k"),
        # 4. /dev's nodes (mknod honours the umask, hence chmod) and links
        *[call for name, major, minor in rootfs_setup.DEFAULT_DEVICES for call in (
            ("mknod", f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor)),
            ("chmod", f"{dev}/{name}", 0o666))],
        ("symlink", "/proc/self/fd", f"{dev}/fd"),
        ("symlink", "/proc/self/fd/0", f"{dev}/stdin"),
        ("symlink", "/proc/self/fd/1", f"{dev}/stdout"),
        ("symlink", "/proc/self/fd/2", f"{dev}/stderr"),
        ("symlink", "pts/ptmx", f"{dev}/ptmx"),
        # 5. into the rootfs; the old root, stacked on "/", is cut off from the host and detached
        ("chdir", r),
        ("pivot_root", ".", "."),
        ("mount", None, ".", None, MS_SLAVE | MS_REC, None),
        ("umount2", ".", MNT_DETACH),
        ("chdir", "/"),
        # 6. masked paths: directories under an empty read-only tmpfs, files under /dev/null
        ("mount", "tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY, None),
        ("mount", "/dev/null", "/proc/kcore", None, MS_BIND, None),
        ("mount", "/dev/null", "/proc/keys", None, MS_BIND, None),
        ("mount", "/dev/null", "/proc/timer_list", None, MS_BIND, None),
        ("mount", "tmpfs", "/proc/scsi", "tmpfs", MS_RDONLY, None),
        ("mount", "tmpfs", "/sys/firmware", "tmpfs", MS_RDONLY, None),
        # read-only paths: bound onto themselves, remounted read-only keeping nosuid, nodev, noexec, relatime
        *[call for path in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger") for call in (
            ("mount", path, path, None, MS_BIND | MS_REC, None),
            ("mount", None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | PROC_FLAGS, None))],
        # root.readonly
        ("mount", None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),
    ]
    # The mount points made before pivot_root are real directories in the rootfs.
    assert all(os.path.isdir(f"{r}{path}") for path in ("/proc", "/dev/pts", "/sys/fs/cgroup", "/tmp"))


def test_cgroup_v1_gets_a_tmpfs_with_one_read_only_bind_per_controller(rootfs):
    config = make_spec(["sh"], rootfs)
    dirs = {"memory": "/sys/fs/cgroup/memory/teachdock/box", "pids": "/sys/fs/cgroup/pids/teachdock/box"}
    calls = prepare(config, rootfs, cgroup_dirs=dirs)
    target = f"{rootfs}/sys/fs/cgroup"
    start = calls.index(("mount", "tmpfs", target, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME,
                         "mode=755"))
    bind_ro = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    assert calls[start + 1:start + 8] == [
        ("mkdir", f"{target}/memory"),
        ("mount", dirs["memory"], f"{target}/memory", None, MS_BIND, None),
        ("mount", None, f"{target}/memory", None, bind_ro, None),
        ("mkdir", f"{target}/pids"),
        ("mount", dirs["pids"], f"{target}/pids", None, MS_BIND, None),
        ("mount", None, f"{target}/pids", None, bind_ro, None),
        ("mount", None, target, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME, None),
    ]


def test_in_a_user_namespace_device_nodes_are_bound_from_the_host(rootfs):
    calls = prepare(make_spec(["sh"], rootfs), rootfs, cgroup_dirs={}, in_user_namespace=True)
    assert not [call for call in calls if call[0] in ("mknod", "chmod")]
    binds = [call for call in calls if call[0] == "mount" and call[1] and call[1].startswith("/dev/") and call[2] != "/"
             and call[2].startswith(rootfs)]
    assert binds == [("mount", f"/dev/{name}", f"{rootfs}/dev/{name}", None, MS_BIND, None)
                     for name, _major, _minor in rootfs_setup.DEFAULT_DEVICES]
    assert all(os.path.isfile(f"{rootfs}/dev/{name}") for name, _, _ in rootfs_setup.DEFAULT_DEVICES)


def test_rootfs_propagation_other_than_rprivate_is_set_before_pivot_root(rootfs):
    config = make_spec(["sh"], rootfs, readonly=False)
    config["linux"]["rootfsPropagation"] = "shared"
    calls = prepare(config, rootfs, cgroup_dirs={})
    assert calls[calls.index(("chdir", rootfs)) - 1] == ("mount", None, rootfs, None, MS_SHARED, None)
    assert calls[-1] != ("mount", None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)  # root stays writable


def test_masked_symlinks_are_covered_by_dev_null_and_absent_paths_are_skipped(rootfs):
    config = make_spec(["sh"], rootfs, readonly_paths=[])
    calls = prepare(config, rootfs, cgroup_dirs={}, container_files={"/proc/kcore": "link", "/proc/acpi": "dir"})
    after_pivot = calls[calls.index(("chdir", "/")) + 1:]
    assert after_pivot == [
        ("mount", "tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY, None),
        ("mount", "/dev/null", "/proc/kcore", None, MS_BIND, None),
        ("mount", None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),
    ]
    assert len(DEFAULT_MASKED_PATHS) > 2  # the other masked paths were asked about and skipped


def test_a_symlink_in_the_image_cannot_point_a_mount_at_the_host(rootfs):
    os.symlink("/etc", f"{rootfs}/proc")  # the image says /proc -> /etc: resolved inside the rootfs
    calls = prepare(make_spec(["sh"], rootfs), rootfs, cgroup_dirs={})
    assert ("mount", "proc", f"{rootfs}/etc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, None) in calls


# --- kernel.watch_mounts: the public hook the lab uses to see and refuse mounts -----------------


def test_watch_mounts_sees_each_mount_and_can_refuse_it(tmp_path):
    seen = []

    def refuse(source, target, fstype, flags, data):
        seen.append((source, target, fstype, flags, data))
        raise PermissionError("refused by the watcher")

    with kernel.watch_mounts(refuse):
        with pytest.raises(PermissionError, match="refused by the watcher"):
            kernel.mount("tmpfs", str(tmp_path), "tmpfs", MS_NOSUID, "size=1m")
    assert seen == [("tmpfs", str(tmp_path), "tmpfs", MS_NOSUID, "size=1m")]
    assert not os.path.ismount(tmp_path)


def test_watchers_run_in_order_and_stop_at_the_end_of_the_block():
    seen = []
    missing = "/nonexistent/teachdock-watch-mounts-test"
    with kernel.watch_mounts(lambda *args: seen.append("first")):
        with kernel.watch_mounts(lambda *args: seen.append("second")):
            with pytest.raises(KernelError):  # the real mount(2) runs after the watchers, and fails
                kernel.mount(None, missing, None, MS_PRIVATE)
        assert seen == ["first", "second"]
    with pytest.raises(KernelError):
        kernel.mount(None, missing, None, MS_PRIVATE)
    assert seen == ["first", "second"]
