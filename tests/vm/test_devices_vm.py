"""cgroup v2 device rules for real: tests/vm/guest_devices_checks.py in the tiny VM.

This host runs cgroup v1 (tests/integration/test_devices_bpf.py meets the program on its
hybrid unified hierarchy); in the guest, /sys/fs/cgroup is a cgroup2 root and the runtime's
containers get their device program from the v2 driver itself. Each guest test comes back
as one item here.

    .venv/bin/python -m pytest tests/vm/test_devices_vm.py -p no:cacheprovider -o addopts=""
"""

from pathlib import Path

import pytest

from teachdock.errors import NotFound
from teachdock.vm import VmError, VmTimeout, find_qemu, prepare_kernel
from teachdock.vm import guest
from tests.vm.guest_results import check_guest_test, read_console

REPO = Path(__file__).resolve().parents[2]
GUEST_FILE = "tests/vm/guest_devices_checks.py"
GUEST_TESTS = ["test_the_guest_is_cgroup_v2", "test_mknod_of_dev_mem_works_and_opening_it_does_not",
               "test_the_harmless_devices_open", "test_the_pty_works",
               "test_the_containers_cgroup_holds_one_program_and_loses_it_on_delete",
               "test_an_exec_meets_the_same_program",
               "test_rules_it_cannot_enforce_refuse_a_container_with_cap_mknod",
               "test_without_cap_mknod_the_same_container_may_run"]
VM_TIMEOUT = 170

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def guest_results() -> tuple[dict[str, dict], str]:
    """({test name: the guest plugin's record}, the console's last lines)."""
    try:
        find_qemu()
        kernel = prepare_kernel()
    except NotFound as exc:
        pytest.skip(f"the VM needs QEMU and a Linux kernel: {exc}")
    try:
        guest.python_initramfs(kernel)
    except (PermissionError, VmError) as exc:
        pytest.skip(f"cannot build the VM's Python guest: {exc}")
    command = (f"cd {guest.GUEST_PROJECT} && exec python3 -m pytest -p guest_report -p no:cacheprovider "
               f"-o addopts= -q --color=no -rfEs {GUEST_FILE}")
    env = {"PYTHONPATH": f"{guest.GUEST_PROJECT}:{guest.GUEST_PROJECT}/tests/vm"}
    try:
        run = guest.run_in_guest(command, share=REPO, env=env, timeout=VM_TIMEOUT, kernel=kernel)
    except VmTimeout as exc:
        console = exc.console
    else:
        console = run.vm.console
    return read_console(console, tail_lines=60)


@pytest.mark.parametrize("name", GUEST_TESTS)
def test_devices_in_vm(guest_results, name):
    check_guest_test(*guest_results, name)


def test_the_guest_ran_no_test_this_file_does_not_know(guest_results):
    results, tail = guest_results
    assert results, tail
    assert set(results) <= set(GUEST_TESTS), sorted(set(results) - set(GUEST_TESTS))
