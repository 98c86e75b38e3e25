"""Device rules on cgroup v2, checked inside the test VM (tests/vm/test_devices_vm.py runs it).

The guest's /sys/fs/cgroup is a real cgroup2 root, so a container there gets its device rules
as an eBPF program (teachdock.runtime.cgroups.devices_bpf). With Docker's list, a container
may make any node (the ``m`` rules: CAP_MKNOD is in Docker's default set) but open only the
harmless ones. The file name does not start with ``test_``: the host never collects it.
"""

import os
import secrets
import socket
import time

import pytest

from teachdock.image import busybox
from teachdock.errors import ContainerStartError
from teachdock.runtime import PIPE, Container, exec_in, run
from teachdock.runtime.cgroups import CGROUP_ROOT, detect_version, devices_bpf
from teachdock.runtime.spec import DEFAULT_CAPABILITIES
from teachdock.runtime.terminal import receive_terminal

pytestmark = pytest.mark.skipif(os.environ.get("TEACHDOCK_IN_VM") != "1",
                                reason="runs only inside teachdock's test VM (a cgroup v2 kernel)")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return busybox.build_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


def in_container(rootfs, tmp_path, script: str):
    return run(["sh", "-c", script], rootfs=rootfs, state_root=tmp_path, container_id=f"dev-{secrets.token_hex(4)}",
               timeout=30)


def test_the_guest_is_cgroup_v2():
    assert detect_version() == "v2"


def test_mknod_of_dev_mem_works_and_opening_it_does_not(rootfs, tmp_path):
    """/dev/mem also needs CAP_SYS_RAWIO, which the container lacks, so it alone would prove
    little: /dev/sda (no such disk in the guest: ENXIO without the program) and a write to
    /dev/kmsg (no capability needed: it works without the program) show the program's EPERM."""
    result = in_container(rootfs, tmp_path, "mknod /dev/mem c 1 1 && echo made; "
                                            "(exec 3</dev/mem) 2>&1; "
                                            "mknod /dev/sda b 8 0 && echo made; (exec 3</dev/sda) 2>&1; "
                                            "mknod /dev/kmsg c 1 11 && echo made; (echo td-test > /dev/kmsg) 2>&1; "
                                            "mknod /dev/null2 c 1 3 && echo x > /dev/null2 && echo control")
    assert result.stdout.splitlines() == [
        "made", "sh: can't open /dev/mem: Operation not permitted",
        "made", "sh: can't open /dev/sda: Operation not permitted",
        "made", "sh: can't create /dev/kmsg: Operation not permitted",
        "control"], result.stderr


def test_the_harmless_devices_open(rootfs, tmp_path):
    result = in_container(rootfs, tmp_path, "head -c5 /dev/zero | wc -c; head -c5 /dev/urandom | wc -c; "
                                            "head -c5 /dev/random | wc -c; echo x > /dev/null && echo null; "
                                            "echo x > /dev/full; echo full=$?")
    assert result.stdout.split() == ["5", "5", "5", "null", "full=1"], result.stderr
    assert "No space left on device" in result.stderr  # /dev/full opened, then refused the write


def test_the_pty_works(rootfs, tmp_path):
    """A terminal: the container's PID 1 opens /dev/ptmx (5:2) and /dev/pts/0 (136:0) under the program."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        container = Container.create(f"dev-{secrets.token_hex(4)}", rootfs=rootfs, state_root=tmp_path,
                                     args=["sh", "-c", "tty && echo hi > /dev/tty && echo done"],
                                     terminal=True, console_socket=theirs.fileno())
        master = receive_terminal(ours)
    with container:
        container.start()
        output = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the program has closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        assert container.wait(10) == 0
    assert output.replace(b"\r\n", b"\n") == b"/dev/pts/0\nhi\ndone\n"


def test_the_containers_cgroup_holds_one_program_and_loses_it_on_delete(rootfs, tmp_path):
    container = Container.create(f"dev-{secrets.token_hex(4)}", rootfs=rootfs, args=["sh", "-c", "read x"],
                                 state_root=tmp_path, stdin=PIPE, stdout=PIPE)
    try:
        directory = container.cgroup.dir
        assert directory.startswith(CGROUP_ROOT)
        (program_id,) = devices_bpf.attached_program_ids(directory)
        assert devices_bpf.program_exists(program_id)
    finally:
        container.delete(force=True)
    assert not os.path.exists(directory)
    deadline = time.monotonic() + 10  # the kernel frees a dead cgroup's programs from a worker, soon after
    while devices_bpf.program_exists(program_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not devices_bpf.program_exists(program_id)


def test_an_exec_meets_the_same_program(rootfs, tmp_path):
    """docker exec: the new process joins the container's cgroup, so the rules hold for it too."""
    container = Container.create(f"dev-{secrets.token_hex(4)}", rootfs=rootfs, args=["sh", "-c", "read x"],
                                 state_root=tmp_path, stdin=PIPE, stdout=PIPE)
    with container:
        container.start()
        execution = exec_in(container, ["sh", "-c", "mknod /dev/kmsg c 1 11 && echo x > /dev/kmsg; echo opened=$?; "
                                                    "head -c2 /dev/zero | wc -c"], stdout=PIPE, stderr=PIPE)
        try:
            out, err = read_all(execution.stdout), read_all(execution.stderr)
            assert execution.wait(timeout=10) == 0
        finally:
            execution.close()
    assert out.split() == ["opened=1", "2"] and "Operation not permitted" in err, (out, err)


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture
def parent_forbidding_programs():
    """A cgroup with an allow-all device program attached exclusively (flags 0): the kernel then
    refuses (EPERM) any device program below it, as where BPF cannot be used at all."""
    parent = f"/td-noattach-{secrets.token_hex(3)}"
    directory = os.path.join(CGROUP_ROOT, parent.lstrip("/"))
    os.mkdir(directory)
    program_fd = devices_bpf.load(devices_bpf.device_filter([]))
    try:
        devices_bpf.attach(program_fd, directory, flags=0)
    finally:
        os.close(program_fd)
    yield parent
    if os.path.isdir(directory):  # the runtime removes a container's empty parents itself
        os.rmdir(directory)


def test_rules_it_cannot_enforce_refuse_a_container_with_cap_mknod(rootfs, tmp_path, parent_forbidding_programs):
    container_id = f"dev-{secrets.token_hex(4)}"
    with pytest.raises(ContainerStartError) as refused:
        Container.create(container_id, rootfs=rootfs, args=["true"], state_root=tmp_path,
                         cgroups_path=f"{parent_forbidding_programs}/{container_id}")
    message = str(refused.value)
    assert "cannot enforce device rules on cgroup v2: bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE) was refused (EPERM)" \
        in message and "Refusing to create a container that has CAP_MKNOD" in message, message
    assert not os.path.exists(os.path.join(CGROUP_ROOT, parent_forbidding_programs.lstrip("/"), container_id))
    assert not (tmp_path / container_id).exists()  # nothing left behind


def test_without_cap_mknod_the_same_container_may_run(rootfs, tmp_path, parent_forbidding_programs):
    """It cannot make a node; the nodes in its /dev are the harmless ones the runtime made."""
    container_id = f"dev-{secrets.token_hex(4)}"
    result = run(["sh", "-c", "mknod /dev/mem c 1 1; echo made=$?"], rootfs=rootfs, state_root=tmp_path,
                 container_id=container_id, cgroups_path=f"{parent_forbidding_programs}/{container_id}",
                 capabilities=[c for c in DEFAULT_CAPABILITIES if c != "CAP_MKNOD"], timeout=30)
    assert result.stdout == "made=1\n" and "Operation not permitted" in result.stderr, result
