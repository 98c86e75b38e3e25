"""The busybox rootfs really works as a root filesystem: a shell runs in it, its applets
answer, its /etc is understood, and /tmp is usable by an unprivileged user.

chroot (not a container) keeps this test about the tree alone; the runtime's own tests
pivot_root into the same tree.
"""

import os
import subprocess

import pytest

from teachdock.errors import TeachdockError
from teachdock.image import busybox

pytestmark = [
    pytest.mark.root,
]


@pytest.fixture(scope="module")
def static_busybox():
    try:
        return busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox: {error}")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory, static_busybox):
    return busybox.build_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs", static_busybox)


def chroot(rootfs, script, *, user=None):
    """Run `sh -c script` inside the tree; returns the completed process."""
    command = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(rootfs), "/bin/sh", "-c", script]
    return subprocess.run(command, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/bin:/sbin:/usr/bin:/usr/sbin"})


def test_a_shell_runs_inside(rootfs):
    result = chroot(rootfs, "echo ok")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_every_applet_has_a_link_to_busybox(rootfs, static_busybox):
    listed = subprocess.run([str(static_busybox), "--list-full"], capture_output=True,
                            text=True, check=True).stdout.split()
    missing = [path for path in listed if path != "bin/busybox"
               and os.readlink(rootfs / path) != "/bin/busybox"]
    assert missing == []
    assert len(listed) > 100


def test_applets_and_etc_work_inside(rootfs):
    result = chroot(rootfs, "id -un; id nobody; ls / | tr '\\n' ' '; echo; . /etc/os-release; echo $ID")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "root"
    assert lines[1] == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    assert {"bin", "etc", "proc", "sys", "dev", "tmp", "root"} <= set(lines[2].split())
    assert lines[3] == "teachdock-busybox"


def test_tmp_is_writable_by_an_unprivileged_user(rootfs):
    result = chroot(rootfs, "echo hi > /tmp/by-nobody && cat /tmp/by-nobody && rm /tmp/by-nobody",
                    user="65534:65534")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    result = chroot(rootfs, "touch /etc/by-nobody", user="65534:65534")
    assert result.returncode != 0  # but /etc is root's


def test_second_build_leaves_the_tree_untouched(rootfs, static_busybox):
    before = {path: os.lstat(path) for path in [rootfs, rootfs / "bin" / "busybox", rootfs / busybox.MARKER]}
    assert busybox.build_busybox_rootfs(rootfs, static_busybox) == rootfs
    for path, info in before.items():
        after = os.lstat(path)
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == (info.st_ino, info.st_mtime_ns, info.st_size), path
    assert chroot(rootfs, "echo still ok").stdout == "still ok\n"
