"""Errors of teachdock.vm, each a TeachdockError whose message says what to do."""

from __future__ import annotations

from teachdock.errors import NotFound, TeachdockError


class VmError(TeachdockError):
    """The tiny VM could not be built, started or finished."""


class QemuNotFound(VmError, NotFound):
    """qemu-system-x86_64 is not installed."""


class KernelNotFound(VmError, NotFound):
    """No Linux kernel image we can read (and boot) was found."""


class VmBootError(VmError):
    """QEMU exited before the guest printed its boot marker (bad option, kernel panic, ...)."""

    def __init__(self, message: str, console_tail: list[str] | None = None):
        super().__init__(message)
        self.console_tail = console_tail or []


class VmTimeout(VmError):
    """The guest did not boot, or its workload did not finish, in time. QEMU was killed.

    ``phase`` is "boot" (no marker yet), "workload" or "poweroff";
    ``console_tail`` holds the last console lines, where the cause usually shows;
    ``console`` everything the guest printed before it was killed.
    """

    def __init__(self, message: str, phase: str, console_tail: list[str], console: str = ""):
        super().__init__(message)
        self.phase = phase
        self.console_tail = console_tail
        self.console = console
