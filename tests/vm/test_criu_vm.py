"""The real CRIU checkpoint and restore, in the tiny VM where ``criu check`` passes.

This host's kernel is one criu 3.17 rejects; the guest's Debian 6.1 kernel is not. The guest
gets the host's criu, its libraries and modules, and what two teachdockd need
(teachdock.vm.criu_guest), and runs tests/vm/guest_criu_checks.py with its pytest: the runtime's
checkpoint and restore, and the chapter's live move of a counter from daemon A to daemon B.
Each guest test comes back as one item here.

    .venv/bin/python -m pytest tests/vm/test_criu_vm.py -p no:cacheprovider -o addopts=""
"""

from pathlib import Path

import pytest

from teachdock.errors import NotFound
from teachdock.vm import VmError, VmTimeout, find_qemu, prepare_kernel
from teachdock.vm import guest
from tests.vm.guest_results import check_guest_test, read_console
from teachdock.vm.criu_guest import criu_files, criu_prelude, daemon_files

REPO = Path(__file__).resolve().parents[2]
GUEST_FILE = "tests/vm/guest_criu_checks.py"
GUEST_TESTS = ["test_criu_check_passes_in_the_vm", "test_a_counter_checkpointed_and_restored_keeps_counting",
               "test_leave_running_keeps_the_original_going", "test_a_stopped_container_is_refused",
               "test_the_chapters_live_move_between_two_daemons",
               "test_the_runtime_cli_checkpoints_and_restores_like_runc",
               "test_a_damaged_checkpoint_fails_with_criu_words_and_leaves_nothing",
               "test_a_container_with_a_network_interface_is_refused_with_the_reason"]
VM_TIMEOUT = 300  # about 2 minutes with KVM, most of it two daemons starting and stopping

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
        files, modules = criu_files(kernel.release)
        more_files, more_modules = daemon_files(kernel.release)
    except (VmError, ImportError) as exc:
        pytest.skip(f"cannot give the guest criu and what teachdockd needs: {exc}")
    files.update(more_files)
    modules += [module for module in more_modules if module not in modules]
    command = criu_prelude(files, modules) + (
        f"cd {guest.GUEST_PROJECT} && exec python3 -m pytest -p guest_report -p no:cacheprovider "
        f"-o addopts= -q --color=no -rfEs -s {GUEST_FILE}")
    env = {"PYTHONPATH": f"{guest.GUEST_PROJECT}:{guest.GUEST_PROJECT}/tests/vm",
           "TEACHDOCK_VM_TEST_TIMEOUT": "150"}  # the two-daemon move takes longest
    try:
        run = guest.run_in_guest(command, share=REPO, env=env, timeout=VM_TIMEOUT, kernel=kernel, files=files,
                                 memory_mb=1024)
    except VmTimeout as exc:
        console = exc.console
    else:
        console = run.vm.console
    return read_console(console, tail_lines=80)


@pytest.mark.parametrize("name", GUEST_TESTS)
def test_criu_in_vm(guest_results, name):
    check_guest_test(*guest_results, name)
