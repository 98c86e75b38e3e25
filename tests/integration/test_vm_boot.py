"""Boot the real tiny VM (QEMU; TCG on machines without working KVM) and check what
comes back. One VM at a time; each boot takes a few seconds under emulation."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from teachdock.vm import (KernelImage, KernelNotFound, QemuNotFound, VmResult, VmTimeout, boot,
                          find_qemu, prepare_kernel)

pytestmark = pytest.mark.slow

# A little of everything: output, the guest's own view of its kernel, a CPU loop, a status.
WORKLOAD = 'echo hello; uname -r; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo counted $i; exit 3'


@dataclass
class Env:
    scratch: Path        # boot()'s temporary files go under scratch/tmp
    kernel: KernelImage


def qemu_processes_using(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (our QEMUs, and nobody else's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass  # it exited meanwhile
    return pids


@pytest.fixture(scope="module")
def env():
    """A private data root (the unpacked kernel lands there) and temp dir; skip without
    QEMU or a kernel, with the reason the learner would see."""
    with tempfile.TemporaryDirectory(prefix="teachdock-vm-test-") as scratch, pytest.MonkeyPatch.context() as patch:
        scratch = Path(scratch)
        (scratch / "tmp").mkdir()
        patch.setenv("TEACHDOCK_DATA_ROOT", str(scratch / "data"))
        patch.setattr(tempfile, "tempdir", str(scratch / "tmp"))
        try:
            find_qemu()
            kernel = prepare_kernel()
        except (QemuNotFound, KernelNotFound) as exc:
            pytest.skip(str(exc))
        yield Env(scratch, kernel)
        assert qemu_processes_using(scratch) == []


@pytest.fixture(scope="module")
def booted(env) -> VmResult:
    """The one ordinary boot of this module (accelerator detected, as a learner gets it)."""
    return boot(WORKLOAD, timeout=90)


def test_marker_arrives_with_the_guest_kernel_release(env, booted):
    assert booted.kernel_release == env.kernel.release != ""
    assert f"TEACHDOCK-VM BOOTED uptime={booted.guest_uptime_at_marker:.2f}" in booted.console
    assert booted.seconds_to_marker > 0 and booted.guest_uptime_at_marker > 0
    assert booted.total_seconds >= booted.seconds_to_marker


def test_workload_output_and_exit_status_come_back(booted):
    assert booted.output == f"hello\n{booted.kernel_release}\ncounted 3000\n"
    assert booted.exit_status == 3
    assert booted.workload_seconds is not None and booted.workload_seconds >= 0


def test_accelerator_machine_and_memory_are_reported(env, booted):
    assert booted.accel in ("kvm", "tcg")
    assert booted.accel.upper() in booted.accel_reason
    assert booted.machine == ("microvm" if env.kernel.kind == "vmlinux" else "pc")
    assert booted.command[booted.command.index("-accel") + 1] == booted.accel
    assert booted.qemu_peak_rss_bytes > 10 * 2**20  # QEMU itself is bigger than that


def test_qemu_is_gone_and_temporary_files_are_removed(env, booted):
    assert qemu_processes_using(env.scratch) == []
    assert list((env.scratch / "tmp").iterdir()) == []


def test_a_hanging_workload_is_killed_at_the_timeout(env, booted):
    with pytest.raises(VmTimeout) as caught:
        boot("echo started; sleep 600", timeout=10, accel=booted.accel)
    assert caught.value.phase == "workload"
    assert "started" in caught.value.console_tail
    assert qemu_processes_using(env.scratch) == []
    assert list((env.scratch / "tmp").iterdir()) == []


def test_the_compressed_kernel_boots_on_the_pc_machine(env, booted):
    result = boot("echo from pc", kernel=prepare_kernel(env.kernel.source, unpack=False), accel=booted.accel)
    assert (result.machine, result.output, result.exit_status) == ("pc", "from pc\n", 0)
    assert result.kernel_release == booted.kernel_release
