"""User namespace: root in the container is an unprivileged uid (100000 by default) on the host."""

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WITH_USER = ("pid", "mount", "uts", "ipc", "network", "user")


def host_ids(pid: int) -> tuple[list[str], list[str]]:
    """(Uid, Gid) lines of /proc/<pid>/status: real, effective, saved, filesystem ids as the host sees them."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return fields["Uid"].split(), fields["Gid"].split()


def test_root_inside_is_uid_100000_outside(running, finish):
    with running("echo ready; read x; id -u", namespaces=WITH_USER) as container:
        assert host_ids(container.pid) == (["100000"] * 4, ["100000"] * 4)  # the host's view, while it runs
        assert finish(container) == (0, "0\n")  # the container's own view of the same process


def test_the_container_believes_it_is_root(box):
    result = box("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map", namespaces=WITH_USER)
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [["0"], ["0"], ["0", "100000", "65536"], ["0", "100000", "65536"]]


def test_another_host_range(running, finish):
    with running("echo ready; read x; echo bye", namespaces=WITH_USER, uid_map=(0, 200000, 1000)) as container:
        assert host_ids(container.pid) == (["200000"] * 4, ["200000"] * 4)
        assert finish(container) == (0, "bye\n")


def test_host_root_files_belong_to_nobody_inside(box):
    """The rootfs is owned by host uid 0, which has no mapping: the kernel shows the overflow id 65534."""
    result = box("stat -c '%u %g' /bin/busybox", namespaces=WITH_USER)
    assert result.stdout == "65534 65534\n"


@pytest.fixture
def host_secret(scratch_dir):
    """A file only the host's root may read (mode 0600, owner 0), in a directory uid 100000 can traverse."""
    path = scratch_dir / "secret-for-root-only"
    path.write_text("host secret\n")
    path.chmod(0o600)
    yield path
    path.unlink()


def secret_mount(path):
    return [{"destination": "/tmp/secret", "type": "bind", "source": str(path), "options": ["bind"]}]


def test_container_root_cannot_read_a_host_root_file(box, host_secret):
    result = box("id -u; cat /tmp/secret", namespaces=WITH_USER, mounts=secret_mount(host_secret))
    assert result.stdout == "0\n"
    assert result.stderr == "cat: can't open '/tmp/secret': Permission denied\n"
    assert result.exit_code == 1


def test_without_a_user_namespace_container_root_is_host_root(box, host_secret):
    """The control: the same bind-mounted file is readable when root inside is root outside."""
    result = box("cat /tmp/secret", mounts=secret_mount(host_secret))
    assert (result.exit_code, result.stdout) == (0, "host secret\n")
