"""teachdock.vm: a tiny real virtual machine, to set beside a container and measure.

A Linux kernel from /boot, an initramfs holding nothing but a static busybox, and
QEMU with the guest's serial port as its only device that matters. :func:`boot`
starts it, waits for the guest's marker line, runs a shell command inside, and
returns how long each step took and how much memory QEMU needed::

    from teachdock.vm import boot
    result = boot("echo hello from the guest; uname -r")
    print(result.summary())
    result.output        # 'hello from the guest\\n6.1.0-...\\n'

The parts, each readable on its own:
  cpio.py         the initramfs archive format (newc), writer and reader
  initramfs.py    what goes into the guest: busybox, applet links, /init
  boot_kernel.py  the Linux kernel to boot: found in /boot, vmlinux unpacked from a
                  bzImage (faster boots); not teachdock.kernel, the host's syscalls
  qemu.py         KVM-or-TCG detection, the QEMU command line, boot() and its figures
  guest.py        a bigger guest with Python, pytest and kernel modules (overlay, 9p), the
                  project shared read-only, cgroup2 mounted: run_in_guest() runs a command
                  there against a real cgroup v2 kernel (tests/vm, teachdock.lab.cgroups.v2_vm)
Command line: ``python -m teachdock.vm boot --workload 'CMD'``.
"""

from teachdock.vm.errors import KernelNotFound, QemuNotFound, VmBootError, VmError, VmTimeout
from teachdock.vm.guest import GuestRun, python_initramfs, run_in_guest
from teachdock.vm.initramfs import build_initramfs, workload_archive
from teachdock.vm.boot_kernel import KernelImage, find_kernel, prepare_kernel
from teachdock.vm.qemu import Accel, VmResult, boot, detect_accel, find_qemu

__all__ = [
    "Accel", "GuestRun", "KernelImage", "KernelNotFound", "QemuNotFound", "VmBootError", "VmError",
    "VmResult", "VmTimeout", "boot", "build_initramfs", "detect_accel", "find_kernel",
    "find_qemu", "prepare_kernel", "python_initramfs", "run_in_guest", "workload_archive",
]
