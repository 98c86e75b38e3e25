"""The cgroup v2 device program in the real kernel, on this host.

The host runs cgroup v1, but a "hybrid" host also mounts the unified (v2) hierarchy, at
/sys/fs/cgroup/unified here, and the kernel asks a device program attached there before the
v1 devices controller. So a process moved into a v2 directory with the program meets it for
real. The runtime's own use of it (containers on a v2 host) is tested in tests/vm.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from teachdock.kernel.mountinfo import read_mountinfo
from teachdock.runtime.cgroups import DeviceFilterError, devices_bpf
from teachdock.runtime.spec import DEFAULT_DEVICE_RULES
from tests.support.host import wait_until

pytestmark = pytest.mark.root

UNIFIED = next((m.mount_point for m in read_mountinfo() if m.fs_type == "cgroup2"), None)


@pytest.fixture
def v2_cgroup():
    if UNIFIED is None:
        pytest.skip("no cgroup2 hierarchy mounted on this host")
    path = os.path.join(UNIFIED, f"td-devtest-{secrets.token_hex(4)}")
    os.mkdir(path)
    try:
        yield path
    finally:
        if os.path.isdir(path):
            os.rmdir(path)


def run_in(cgroup: str, script: str, tmp_path) -> subprocess.CompletedProcess:
    """Run a shell script in ``cgroup`` (it moves itself in first)."""
    return subprocess.run(["sh", "-c", f"echo $$ > {cgroup}/cgroup.procs && cd {tmp_path} && {script}"],
                          capture_output=True, text=True, timeout=30)


def test_docker_list_lets_mknod_make_dev_mem_but_not_open_it(v2_cgroup, tmp_path):
    devices_bpf.apply_device_rules(v2_cgroup, DEFAULT_DEVICE_RULES)
    assert len(devices_bpf.attached_program_ids(v2_cgroup)) == 1
    made = run_in(v2_cgroup, "mknod mem c 1 1 && echo made; head -c1 mem; echo opened=$?", tmp_path)
    assert made.stdout == "made\nopened=1\n"
    assert "Operation not permitted" in made.stderr
    disk = run_in(v2_cgroup, "mknod disk b 7 0 && head -c1 disk; echo opened=$?", tmp_path)  # /dev/loop0
    assert "opened=1" in disk.stdout and "Operation not permitted" in disk.stderr
    harmless = run_in(v2_cgroup, "head -c3 /dev/zero | wc -c; head -c3 /dev/urandom | wc -c; "
                                 "echo x > /dev/null && echo null", tmp_path)
    assert harmless.stdout.split() == ["3", "3", "null"], harmless.stderr


def test_the_same_node_opens_outside_the_cgroup(v2_cgroup, tmp_path):
    """The control: the EPERM above comes from the program, not from elsewhere."""
    devices_bpf.apply_device_rules(v2_cgroup, DEFAULT_DEVICE_RULES)
    assert run_in(v2_cgroup, "mknod disk b 7 0", tmp_path).returncode == 0
    with open(tmp_path / "disk", "rb") as node:
        assert os.fstat(node.fileno()).st_rdev == os.makedev(7, 0)


def test_the_program_goes_with_the_cgroup(v2_cgroup):
    devices_bpf.apply_device_rules(v2_cgroup, DEFAULT_DEVICE_RULES)
    (program_id,) = devices_bpf.attached_program_ids(v2_cgroup)
    assert devices_bpf.program_exists(program_id)
    os.rmdir(v2_cgroup)
    wait_until(lambda: not devices_bpf.program_exists(program_id), timeout=10)  # freed by a kernel worker


def test_rules_that_deny_nothing_attach_nothing(v2_cgroup):
    devices_bpf.apply_device_rules(v2_cgroup, [{"allow": True, "access": "rwm"}])
    assert devices_bpf.attached_program_ids(v2_cgroup) == []


def test_a_directory_that_is_no_cgroup_is_refused_with_the_kernels_reason(tmp_path):
    with pytest.raises(DeviceFilterError, match=r"BPF_PROG_ATTACH.*EBADF.*not a cgroup v2 directory"):
        devices_bpf.apply_device_rules(str(tmp_path), DEFAULT_DEVICE_RULES)


def test_without_privilege_the_load_is_refused_and_says_why():
    script = ("import os; os.setgid(65534); os.setuid(65534)\n"
              "from teachdock.runtime.cgroups import devices_bpf, DeviceFilterError\n"
              "from teachdock.runtime.spec import DEFAULT_DEVICE_RULES\n"
              "try:\n    devices_bpf.load(devices_bpf.device_filter(DEFAULT_DEVICE_RULES))\n"
              "except DeviceFilterError as error:\n    print(error)\n")
    out = subprocess.run([os.sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "BPF_PROG_LOAD) was refused (EPERM)" in out.stdout and "CAP_BPF or CAP_SYS_ADMIN" in out.stdout, out


def test_a_program_the_verifier_refuses_comes_back_with_its_log():
    broken = devices_bpf.device_filter(DEFAULT_DEVICE_RULES)[:-1]  # no exit at the end
    with pytest.raises(DeviceFilterError, match=r"EINVAL.*the verifier said:\nlast insn is not an exit or jmp"):
        devices_bpf.load(broken)
