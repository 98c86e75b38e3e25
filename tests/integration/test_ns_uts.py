"""UTS namespace: the container has its own hostname; changing it never renames the host."""

import socket

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WITH_SYS_ADMIN = ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID"]  # sethostname(2) needs CAP_SYS_ADMIN


def test_the_container_gets_the_hostname_it_asked_for(box):
    host_name = socket.gethostname()
    result = box("hostname; cat /etc/hostname; echo $HOSTNAME", hostname="box-one")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["box-one", "box-one", "box-one"]
    assert socket.gethostname() == host_name


def test_renaming_inside_is_invisible_outside(running, finish):
    host_name = socket.gethostname()
    with running("hostname renamed-inside && echo ready; read x; hostname",
                 hostname="box-two", capabilities=WITH_SYS_ADMIN) as container:
        assert socket.gethostname() == host_name  # while the container runs with its new name
        with open(f"/proc/{container.pid}/root/etc/hostname") as f:
            assert f.read() == "box-two\n"  # the file was written at create; only the kernel's name changed
        assert finish(container) == (0, "renamed-inside\n")
    assert socket.gethostname() == host_name


def test_renaming_needs_cap_sys_admin(box):
    """With Docker's default capabilities the container may not rename itself."""
    result = box("hostname other; hostname", hostname="box-three")
    assert result.exit_code == 0
    assert result.stdout == "box-three\n"
    assert "hostname: sethostname: Operation not permitted" in result.stderr


def test_without_a_hostname_the_container_starts_with_the_hosts_name(box):
    """A new UTS namespace is a copy of the parent's, so the name is inherited."""
    result = box("hostname", hostname=None)
    assert result.stdout == f"{socket.gethostname()}\n"
