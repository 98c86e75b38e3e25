"""Boot the tiny VM with QEMU, read its serial console, and measure it.

One boot = one ``qemu-system-x86_64`` process: no disk, no network, no display, the
guest's serial port on QEMU's stdout. We read that output with a deadline, note when
the guest's marker line arrives, sample QEMU's memory from /proc while it runs, and
always kill and reap QEMU by its PID at the end, whatever happened (timeout, error,
Ctrl-C).

Acceleration: with KVM the guest's instructions run directly on the CPU; without it
QEMU translates each block of guest code into host code (TCG, "tiny code generator"),
which is 10-50x slower. /dev/kvm existing is not enough: on some cloud VMs it is a
paravirtualised KVM (PVM) that cannot run a stock kernel, and the guest just hangs.
So :func:`detect_accel` boots a probe guest under KVM with a short timeout, once per
process, and falls back to TCG, saying why.
"""

from __future__ import annotations

import fcntl
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from teachdock.vm.errors import QemuNotFound, VmBootError, VmError, VmTimeout
from teachdock.vm.initramfs import MARKER, build_initramfs, workload_archive
from teachdock.vm.boot_kernel import KernelImage, prepare_kernel

QEMU_BINARY = "qemu-system-x86_64"
KVM_DEVICE = "/dev/kvm"
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO=0xAE, 0x00); the stable KVM API answers 12
KVM_PROBE_TIMEOUT = 5.0  # a KVM guest reaches the marker in well under a second
CONSOLE_TAIL_LINES = 20
MIN_MEMORY_MB = 96  # 80 MiB ends in an out-of-memory panic, 64 MiB in silence


def find_qemu() -> str:
    path = shutil.which(QEMU_BINARY)
    if path is None:
        raise QemuNotFound(f"{QEMU_BINARY} is not installed (not on PATH): "
                           "`apt-get install qemu-system-x86`")
    return path


def host_tsc_khz(cpuinfo: str = "/proc/cpuinfo") -> int | None:
    """The host CPU's clock in kHz, from the first "cpu MHz" line of /proc/cpuinfo.

    A guest on QEMU's microvm machine has no timer to measure its TSC against and
    may hang calibrating it; ``tsc_early_khz=`` on its command line tells it the
    rate. Under TCG (and KVM) the guest TSC ticks at the host's rate.
    """
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return round(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return None


# --- acceleration -----------------------------------------------------------------------

@dataclass(frozen=True)
class Accel:
    name: str    # "kvm" or "tcg"
    reason: str  # one plain sentence for the learner


_detected: Accel | None = None  # the probe's answer, kept for this process


def kvm_device_problem(device: str = KVM_DEVICE) -> str | None:
    """None when ``device`` opens and answers KVM_GET_API_VERSION with 12, else why not."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return f"{device} does not exist (no hardware virtualisation, or the kvm module is not loaded)"
    except PermissionError:
        return f"no permission to open {device} (run as root or join the 'kvm' group)"
    except OSError as exc:
        return f"cannot open {device}: {exc.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return f"{device} does not answer KVM_GET_API_VERSION: {exc.strerror}"
    finally:
        os.close(fd)
    return None if version == 12 else f"{device} speaks KVM API version {version}, not 12"


def _cpu_has_virtualisation(cpuinfo: str = "/proc/cpuinfo") -> bool:
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:
        return True  # unknown: say nothing
    return bool(re.search(r"\b(vmx|svm)\b", flags))


def detect_accel(kernel: KernelImage | None = None, *, probe_timeout: float = KVM_PROBE_TIMEOUT,
                 refresh: bool = False) -> Accel:
    """KVM if /dev/kvm works *and* a probe guest boots under it, else TCG; with the reason.

    $TEACHDOCK_VM_ACCEL=kvm|tcg skips the probe. The answer is kept for the process
    (``refresh=True`` probes again).
    """
    global _detected
    forced = os.environ.get("TEACHDOCK_VM_ACCEL", "").lower()
    if forced in ("kvm", "tcg"):
        return Accel(forced, f"{forced.upper()}, forced by TEACHDOCK_VM_ACCEL={forced}")
    if _detected is not None and not refresh:
        return _detected
    problem = kvm_device_problem()
    if problem:
        _detected = Accel("tcg", f"software emulation (TCG): {problem}")
        return _detected
    try:
        probe = boot(None, accel="kvm", timeout=probe_timeout, kernel=kernel)
    except VmError as exc:
        why = str(exc).splitlines()[0]
        hint = ("" if _cpu_has_virtualisation() else
                " The CPU reports neither vmx nor svm, so this /dev/kvm is probably paravirtualised"
                " (e.g. PVM), which runs only specially built guest kernels.")
        _detected = Accel("tcg", "software emulation (TCG): /dev/kvm opens, but a probe guest did "
                                 f"not boot under KVM ({why}).{hint}")
    else:
        _detected = Accel("kvm", f"KVM: /dev/kvm works and a probe guest booted in "
                                 f"{probe.seconds_to_marker:.2f} s")
    return _detected


# --- the QEMU command line ----------------------------------------------------------------

def qemu_command(qemu: str, kernel: KernelImage, initrd: str | os.PathLike, *, accel: str,
                 memory_mb: int, tsc_khz: int | None,
                 shares: dict[str, str] | None = None) -> tuple[list[str], str]:
    """The argv to run, and the machine type chosen.

    An uncompressed vmlinux boots on ``microvm`` (no PCI, no firmware, the fewest
    devices) when we can give it the TSC rate; a bzImage on the standard ``pc``
    machine (SeaBIOS, then the kernel's own decompressor).
    ``shares`` maps 9p mount tags to host directories, shared read-only; the guest
    mounts one with ``mount -t 9p -o trans=virtio TAG DIR`` (needs the 9p modules).
    microvm has no PCI bus, so the device is the virtio-mmio flavour there.
    """
    append = ["console=ttyS0", "quiet", "panic=-1"]
    if kernel.kind == "vmlinux" and tsc_khz:
        machine = "microvm"
        append.append(f"tsc_early_khz={tsc_khz}")
    else:
        machine = "pc"
    command = [qemu, "-M", machine, "-accel", accel]
    if accel == "kvm":
        command += ["-cpu", "host"]
    command += [
        "-m", str(memory_mb), "-smp", "1",
        "-nographic",      # no window; the serial port and QEMU's monitor on stdio
        "-no-reboot",      # a guest reboot (or a panic, with panic=-1) ends QEMU
        "-nic", "none",    # no network card (and no network boot ROM to load)
        "-kernel", str(kernel.path), "-initrd", str(initrd),
        "-append", " ".join(append),
    ]
    device = "virtio-9p-device" if machine == "microvm" else "virtio-9p-pci"
    for number, (tag, directory) in enumerate(sorted((shares or {}).items())):
        if "," in directory:
            raise VmError(f"cannot share {directory}: QEMU's -fsdev option cannot take a path with a comma")
        command += ["-fsdev", f"local,id=fs{number},path={directory},security_model=none,readonly=on",
                    "-device", f"{device},fsdev=fs{number},mount_tag={tag}"]
    return command, machine


# --- running QEMU ---------------------------------------------------------------------------

@dataclass
class _Run:
    """What one QEMU process did, before we interpret the console."""

    console: str = ""
    stderr: str = ""
    seconds_to_marker: float | None = None
    total_seconds: float = 0.0
    peak_rss_kib: int = 0
    returncode: int | None = None


def _peak_rss_kib(pid: int) -> int:
    """VmHWM ("high water mark": peak resident memory) of a running process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0  # gone, or a zombie (its memory is already freed)


ESCAPES_RE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")  # SeaBIOS clears the terminal


def _clean(raw: bytearray) -> str:
    """Console bytes as text, without terminal escapes, CR LF (from the guest tty) as LF."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "")
    return ESCAPES_RE.sub("", text)


def _tail(console: str, lines: int = CONSOLE_TAIL_LINES) -> list[str]:
    return [line for line in console.splitlines() if line.strip()][-lines:]


def _run_qemu(command: list[str], timeout: float) -> _Run:
    """Run QEMU until it exits, reading its console; kill it at ``timeout`` seconds."""
    run = _Run()
    marker = f"{MARKER} BOOTED".encode()
    console, stderr = bytearray(), bytearray()
    start = time.monotonic()
    deadline = start + timeout
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, console)
            selector.register(process.stderr, selectors.EVENT_READ, stderr)
            while selector.get_map():  # until QEMU has closed both pipes, i.e. exited
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    text = _clean(console)
                    phase = ("boot" if run.seconds_to_marker is None else
                             "workload" if f"{MARKER} WORKLOAD-END" not in text else "poweroff")
                    what = {"boot": "the guest did not print its boot marker",
                            "workload": "the workload did not finish",
                            "poweroff": "the guest did not power off"}[phase]
                    tail = _tail(text)
                    raise VmTimeout(f"{what} within {timeout:g} s; QEMU was killed. "
                                    "Last console lines:\n" + "\n".join(tail or ["(none)"]),
                                    phase, tail, console=text)
                for key, _events in selector.select(timeout=min(remaining, 0.1)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    key.data.extend(chunk)
                    if run.seconds_to_marker is None and key.data is console and marker in console:
                        run.seconds_to_marker = time.monotonic() - start
                run.peak_rss_kib = max(run.peak_rss_kib, _peak_rss_kib(process.pid))
            run.returncode = process.wait(timeout=max(deadline - time.monotonic(), 1.0))
        run.total_seconds = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()  # SIGKILL by PID: QEMU has no children to leave behind
        process.wait()
        process.stdout.close()
        process.stderr.close()
    run.console, run.stderr = _clean(console), _clean(stderr)
    return run


# --- the public call ------------------------------------------------------------------------

@dataclass
class VmResult:
    """Figures from one boot. Times in seconds; memory in bytes."""

    accel: str                     # "kvm" or "tcg"
    accel_reason: str              # why, in one sentence
    machine: str                   # QEMU machine type: "microvm" or "pc"
    kernel: str                    # the file QEMU booted
    kernel_note: str               # why that file
    kernel_release: str            # `uname -r` as the guest reported it
    seconds_to_marker: float       # QEMU start -> the guest's "BOOTED" line on the host
    guest_uptime_at_marker: float  # the guest kernel's own clock at that line
    qemu_peak_rss_bytes: int       # QEMU's peak resident memory (VmHWM)
    output: str | None             # the workload's stdout+stderr (None: no workload)
    exit_status: int | None        # its exit status (None: no workload, or it never ended)
    workload_seconds: float | None  # its duration by the guest's clock (10 ms resolution)
    total_seconds: float           # QEMU start -> QEMU exit
    command: list[str] = field(default_factory=list)
    console: str = ""

    def summary(self) -> str:
        lines = [
            f"accelerator      {self.accel}: {self.accel_reason}",
            f"machine, kernel  {self.machine}, {self.kernel_release} ({self.kernel})",
            f"to marker        {self.seconds_to_marker:.2f} s (guest uptime {self.guest_uptime_at_marker:.2f} s)",
            f"QEMU peak RSS    {self.qemu_peak_rss_bytes / 2**20:.1f} MiB",
            f"total            {self.total_seconds:.2f} s (QEMU start to exit)",
        ]
        if self.exit_status is not None:
            lines.append(f"workload         exit status {self.exit_status}, "
                         f"{self.workload_seconds:.2f} s inside the guest")
        return "\n".join(lines)


# Not anchored at line start: on the pc machine SeaBIOS leaves terminal escapes before it.
BOOTED_RE = re.compile(rf"{MARKER} BOOTED uptime=([\d.]+) kernel=(\S+)")
BEGIN_LINE = f"{MARKER} WORKLOAD-BEGIN\n"
END_RE = re.compile(rf"\n{MARKER} WORKLOAD-END status=(\d+) start=([\d.]+) end=([\d.]+)$", re.M)


def parse_workload(console: str) -> tuple[str | None, int | None, float | None]:
    """(output, exit status, seconds) of the workload, from the console text.

    The output is everything between the BEGIN line and the END line, less the one
    newline /init adds so that END starts a line of its own.
    """
    begin = console.find(BEGIN_LINE)
    if begin == -1:
        return None, None, None
    start = begin + len(BEGIN_LINE)
    ends = list(END_RE.finditer(console, start))
    if not ends:
        return console[start:], None, None  # the workload never finished (it powered off?)
    end = ends[-1]  # the last one: the workload may print marker-like text itself
    output = console[start:end.start()]
    return output, int(end.group(1)), round(float(end.group(3)) - float(end.group(2)), 2)


def _boot_error(run: _Run) -> VmBootError:
    """QEMU ended before the marker: say how it ended and show what it printed."""
    code = run.returncode
    how = (f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0
           else f"exited with status {code}")
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    first = f": {errors[0]}" if errors else ""
    tail = _tail(run.console + "\n" + run.stderr)
    return VmBootError(f"QEMU {how} before the guest booted{first}\nLast lines:\n"
                       + "\n".join(tail or ["(none)"]), tail)


def boot(workload: str | None = None, *, memory_mb: int = 128, timeout: float = 60,
         accel: str | None = None, kernel: str | os.PathLike | KernelImage | None = None,
         initramfs: str | os.PathLike | None = None,
         files: dict[str, bytes] | None = None,
         shares: dict[str, str] | None = None) -> VmResult:
    """Boot the tiny VM once, run ``workload`` (a busybox sh command line), power off.

    ``accel``: None/"auto" (probe, see :func:`detect_accel`), "kvm" or "tcg".
    ``kernel``: a bzImage/vmlinux path or a :class:`KernelImage`; default: /boot's.
    ``initramfs``: a prebuilt base archive (see build_initramfs); default: built now
    (busybox only, a few milliseconds). ``files``: extra guest files for this boot.
    ``shares``: {9p mount tag: host directory}, shared read-only (see qemu_command).
    ``timeout`` covers the whole run; on expiry QEMU is killed and VmTimeout raised.
    """
    if memory_mb < MIN_MEMORY_MB:
        raise VmError(f"memory_mb={memory_mb} is too small: give the guest at least {MIN_MEMORY_MB} MiB "
                      "(Debian's kernel alone takes about 74 MiB once loaded)")
    qemu = find_qemu()
    image = kernel if isinstance(kernel, KernelImage) else prepare_kernel(kernel)
    if accel in (None, "auto"):
        chosen = detect_accel(image)
    elif accel in ("kvm", "tcg"):
        chosen = Accel(accel, f"{accel.upper()}, as requested")
    else:
        raise VmError(f"accel must be 'auto', 'kvm' or 'tcg', not {accel!r}")

    with tempfile.TemporaryDirectory(prefix="teachdock-vm-") as tmp:
        initrd = Path(tmp) / "initrd.cpio"
        if initramfs is None:
            build_initramfs(initrd)
        else:
            shutil.copyfile(initramfs, initrd)
        with open(initrd, "ab") as f:
            f.write(b"\0" * (-f.tell() % 4))  # the kernel expects each archive 4-byte aligned
            f.write(workload_archive(workload, files))
        command, machine = qemu_command(qemu, image, initrd, accel=chosen.name,
                                        memory_mb=memory_mb, tsc_khz=host_tsc_khz(), shares=shares)
        run = _run_qemu(command, timeout)

    booted = BOOTED_RE.search(run.console)
    if run.seconds_to_marker is None or booted is None:
        raise _boot_error(run)
    output, status, seconds = parse_workload(run.console)
    return VmResult(
        accel=chosen.name, accel_reason=chosen.reason, machine=machine,
        kernel=str(image.path), kernel_note=image.note, kernel_release=booted.group(2),
        seconds_to_marker=round(run.seconds_to_marker, 3),
        guest_uptime_at_marker=float(booted.group(1)),
        qemu_peak_rss_bytes=run.peak_rss_kib * 1024,
        output=output, exit_status=status, workload_seconds=seconds,
        total_seconds=round(run.total_seconds, 3), command=command, console=run.console)
