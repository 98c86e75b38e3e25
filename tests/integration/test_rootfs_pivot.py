"""pivot_root: the container's root is its rootfs, and the host's root is gone, not merely hidden.

chroot(2) only changes where path lookups start; the host's root stays in the mount
namespace, and a process with CAP_SYS_CHROOT can climb back out (the "classic chroot
escape": chroot into a subdirectory while the working directory stays outside it, then
`cd ..` past the new root, then chroot("."). pivot_root(2) plus detaching the old root
removes the host's tree from the container's mount namespace, so there is nothing above
"/" to climb to. These tests show both halves: the escape works against a plain chroot on
the host, and fails inside a container that has CAP_SYS_CHROOT (Docker's default set).
"""

import os
import secrets
import shutil
import subprocess

import pytest

from teachdock.runtime.spec import DEFAULT_MASKED_PATHS

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

ESCAPE_C = r"""
/* The classic chroot escape: chroot into a subdirectory without chdir'ing into it,
 * climb past the new root with "..", chroot there, and list "/". */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    mkdir(argv[1], 0755);
    if (chroot(argv[1]) != 0) { perror("chroot"); return 1; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 1; }
    DIR *dir = opendir("/");
    if (!dir) { perror("opendir"); return 1; }
    for (struct dirent *entry; (entry = readdir(dir)); )
        if (entry->d_name[0] != '.') puts(entry->d_name);
    return 0;
}
"""


def visible(names) -> list[str]:
    """What `ls /` prints: sorted, no dot files."""
    return sorted(name for name in names if not name.startswith("."))


@pytest.fixture(scope="module")
def escape_program(scratch_dir):
    """The escape as a static binary, to bind-mount into the busybox container."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("the chroot-escape probe is a small C program and needs gcc (apt-get install gcc)")
    source = scratch_dir / "escape.c"
    binary = scratch_dir / "escape"
    source.write_text(ESCAPE_C)
    result = subprocess.run([compiler, "-static", "-O", "-o", str(binary), str(source)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot build a static C program here (is libc6-dev installed?): {result.stderr.strip()}")
    return binary


def test_cd_dot_dot_from_root_stays_at_the_container_root(box, rootfs):
    result = box("cd /; cd ..; cd ../..; pwd; ls /")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "/"
    assert lines[1:] == visible(os.listdir(rootfs))
    assert lines[1:] != visible(os.listdir("/"))


def test_proc_1_root_is_the_container_root(box):
    result = box("readlink /proc/1/root; ls /proc/1/root/ | tr '\\n' ' '")
    assert result.stdout.splitlines()[0] == "/"
    assert "linuxrc" in result.stdout.split()  # a busybox-rootfs entry the host's / does not have


def test_a_host_file_cannot_be_found_inside(box, scratch_dir):
    marker = scratch_dir / f"host-only-{secrets.token_hex(4)}"
    marker.write_text("on the host\n")
    try:
        result = box(f"find / -name {marker.name} 2>/dev/null; echo searched")
    finally:
        marker.unlink()
    assert result.stdout == "searched\n"


def test_only_one_root_mount_inside(box):
    """The old root was detached after pivot_root: no second "/" and no host path is mounted."""
    result = box("cut -d' ' -f5 /proc/self/mountinfo")
    mount_points = result.stdout.split()
    assert mount_points.count("/") == 1
    assert not [point for point in mount_points if point.startswith(("/work", "/home", "/root", "/oldroot"))]


def test_the_classic_chroot_escape_works_against_a_plain_chroot(rootfs):
    """The control: a chroot'ed root process climbs out to the host's "/"."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: chroot like chroot(1), then the escape
        try:
            os.close(read_end)
            os.chroot(rootfs)
            os.chdir("/")
            os.chroot("tmp")  # the working directory ("/" of the rootfs) is now outside the root
            for _ in range(64):
                os.chdir("..")
            os.chroot(".")
            os.write(write_end, "\n".join(os.listdir("/")).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        escaped_to = pipe.read().split("\n")
    os.waitpid(pid, 0)
    assert visible(escaped_to) == visible(os.listdir("/"))  # the host's root
    assert visible(escaped_to) != visible(os.listdir(rootfs))


def test_the_classic_chroot_escape_fails_inside_the_container(box, rootfs, escape_program):
    mount = {"destination": "/tmp/escape", "type": "bind", "source": str(escape_program), "options": ["bind", "ro"]}
    result = box("grep CapEff /proc/self/status; /tmp/escape /tmp/jail", mounts=[mount])
    assert result.exit_code == 0, result.stderr
    cap_line, *escaped_to = result.stdout.splitlines()
    assert int(cap_line.split()[1], 16) >> 18 & 1  # CAP_SYS_CHROOT (18) is there: the attempt is real
    assert sorted(escaped_to) == visible(os.listdir(rootfs))  # still the container's root
    assert sorted(escaped_to) != visible(os.listdir("/"))


# --- what else the rootfs setup puts in place -----------------------------------------------------------
def test_masked_paths_show_nothing(box):
    """Docker's masked paths: files read as empty (/dev/null on top), directories as empty (tmpfs)."""
    present = [path for path in DEFAULT_MASKED_PATHS if os.path.exists(path)]  # kernels differ
    assert any(os.path.isfile(p) for p in present) and any(os.path.isdir(p) for p in present), present
    script = "; ".join(f"echo {p} $(cat {p} | wc -c)" if os.path.isfile(p) else f"echo {p} $(ls -A {p} | wc -l)"
                       for p in present)
    result = box(script)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{p} 0" for p in present]
    host_sizes = {p: _first_bytes(p) if os.path.isfile(p) else len(os.listdir(p)) for p in present}
    assert any(host_sizes.values())  # the host does have something there to hide


def _first_bytes(path: str) -> int:
    """How much of a file there is to read, up to 4 KiB (/proc/kcore is as large as the RAM)."""
    with open(path, "rb") as f:
        return len(f.read(4096))


def test_read_only_paths_cannot_be_written(box):
    result = box("echo 1 > /proc/sys/vm/drop_caches; echo exit=$?")
    assert result.stdout == "exit=1\n"
    assert result.stderr == "sh: can't create /proc/sys/vm/drop_caches: Read-only file system\n"


def test_dev_holds_only_the_standard_nodes(box):
    result = box("ls /dev; echo x > /dev/full; echo exit=$?; head -c 4 /dev/zero | wc -c")
    lines = result.stdout.splitlines()
    assert lines[:-2] == ["fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                          "stdin", "stdout", "tty", "urandom", "zero"]
    assert lines[-2:] == ["exit=1", "4"]  # /dev/full is the real device: writes fail with ENOSPC
    assert "No space left on device" in result.stderr


def test_etc_hosts_names_the_container(box):
    result = box("cat /etc/hosts /etc/hostname", hostname="web")
    assert "127.0.0.1\tlocalhost\n" in result.stdout
    assert "127.0.1.1\tweb\n" in result.stdout
    assert result.stdout.endswith("web\n")


@pytest.fixture
def private_rootfs(rootfs, scratch_dir):
    """A copy of the busybox rootfs this test may change (the session one is shared)."""
    copy = scratch_dir / f"rootfs-{secrets.token_hex(4)}"
    shutil.copytree(rootfs, copy, symlinks=True)
    yield copy
    shutil.rmtree(copy)


def test_a_symlink_in_the_image_cannot_aim_a_mount_at_the_host(box, private_rootfs, scratch_dir):
    """An image with /evil -> <host dir>/newdir: the mount lands inside the rootfs, and nothing
    is created on the host (destinations are resolved with the rootfs as "/")."""
    host_side = scratch_dir / f"host-side-{secrets.token_hex(4)}"
    host_side.mkdir()
    try:
        (private_rootfs / "evil").symlink_to(host_side / "newdir")
        (private_rootfs / "evil2").symlink_to("../../../../../../.." + str(host_side / "reldir"))
        mounts = [{"destination": "/evil", "type": "tmpfs", "source": "tmpfs"},
                  {"destination": "/evil2", "type": "tmpfs", "source": "tmpfs"}]
        result = box("touch /evil/inside /evil2/inside && echo ok", rootfs=private_rootfs, readonly=False,
                     mounts=mounts)
        assert (result.exit_code, result.stdout) == (0, "ok\n"), result.stderr
        assert os.listdir(host_side) == []
        assert (private_rootfs / str(host_side).lstrip("/") / "newdir").is_dir()
        assert (private_rootfs / str(host_side).lstrip("/") / "reldir").is_dir()
    finally:
        shutil.rmtree(host_side)
