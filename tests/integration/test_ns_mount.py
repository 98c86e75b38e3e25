"""Mount namespace: mounts made inside a container stay inside it."""

import os
import secrets

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WITH_SYS_ADMIN = ["CAP_SYS_ADMIN"]  # mount(2) needs it; Docker's default set leaves it out


def test_a_mount_made_inside_is_invisible_outside(running, finish, host):
    source = f"td-mark-{secrets.token_hex(4)}"  # the tmpfs's "device" name, easy to find in mountinfo
    with running(f"mount -t tmpfs {source} /mnt && echo ready; read x; echo bye",
                 capabilities=WITH_SYS_ADMIN) as container:
        inside = [line for line in host.mountinfo(container.pid) if source in line]
        assert len(inside) == 1 and " /mnt " in inside[0]  # the mount exists, in the container's namespace
        assert not [line for line in host.mountinfo() if source in line]  # and not in ours
        assert finish(container) == (0, "bye\n")


def test_the_container_has_its_own_mount_namespace(running, finish):
    with running("echo ready; read x; echo bye") as container:
        assert os.readlink(f"/proc/{container.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert finish(container) == (0, "bye\n")


def test_the_container_sees_only_its_own_mounts(box, host):
    """No host mount point shows up inside: only what config.json asked for."""
    result = box("cut -d' ' -f5 /proc/self/mountinfo")
    assert result.exit_code == 0, result.stderr
    inside = set(result.stdout.split())
    assert {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
            "/tmp", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} <= inside
    host_only = {line.split()[4] for line in host.mountinfo()} - inside
    assert host_only  # the host has mounts the container does not, e.g. the host's cgroup hierarchies
    assert not [point for point in inside if point.startswith(("/work", "/home", "/boot"))]


def test_the_rootfs_is_read_only_but_tmp_is_writable(box):
    result = box("touch /etc/x; echo $?; touch /tmp/x && echo tmp-ok")
    assert result.stdout == "1\ntmp-ok\n"
    assert "Read-only file system" in result.stderr
