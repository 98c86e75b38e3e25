"""Build the tiny VM's initramfs: static busybox, its applet links, and an /init script.

The whole guest userland is one static binary. ``/init`` (PID 1) is a busybox shell
script that mounts /proc, /sys and /dev, prints a marker line with the guest's uptime,
runs the workload the host put in ``/teachdock/workload.sh``, prints its output between
two marker lines with its exit status and its duration, and powers the VM off.

The workload does not travel on the kernel command line (2 KiB at most, and quoting
a shell command through the kernel's parser is fragile): :func:`workload_archive`
packs it into a second, tiny cpio archive that is appended to the base one.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from teachdock.vm.cpio import CpioWriter
from teachdock.vm.errors import VmError

BUSYBOX = Path("/bin/busybox")
MARKER = "TEACHDOCK-VM"  # every line the host parses starts with this word

#: PID 1 of the guest. Kernel messages are turned off the console right after the
#: mounts (`dmesg -n 1`) so they cannot interleave with the workload's output.
#: `read ... < /proc/...` is a shell builtin: under emulation every fork+exec costs.
INIT_SCRIPT = f"""#!/bin/busybox sh
# /init of teachdock's tiny VM. The kernel runs this as PID 1.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
dmesg -n 1
if [ -f /teachdock/modules ]; then
    while read -r module; do
        insmod "$module" || echo "{MARKER} MODULE-FAILED $module"
    done < /teachdock/modules
fi
read -r uptime idle < /proc/uptime
read -r release < /proc/sys/kernel/osrelease
echo "{MARKER} BOOTED uptime=$uptime kernel=$release"
if [ -f /teachdock/workload.sh ]; then
    echo "{MARKER} WORKLOAD-BEGIN"
    read -r start idle < /proc/uptime
    sh /teachdock/workload.sh </dev/null 2>&1
    status=$?
    read -r end idle < /proc/uptime
    echo  # ends a last line without newline; the host removes this one newline
    echo "{MARKER} WORKLOAD-END status=$status start=$start end=$end"
fi
echo "{MARKER} POWEROFF"
poweroff -f
"""


def applet_links(busybox: Path = BUSYBOX) -> list[str]:
    """Paths such as "bin/ls" or "usr/sbin/chroot" that should point to busybox."""
    try:
        listing = subprocess.run([str(busybox), "--list-full"], capture_output=True,
                                 text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise VmError(f"cannot list the applets of {busybox} ({exc}): "
                      "`apt-get install busybox-static`") from None
    return [line for line in listing.split() if "/" in line and line != "bin/busybox"]


def _is_static(binary: bytes) -> bool:
    """True for a 64-bit ELF without a PT_INTERP program header (no dynamic loader)."""
    if not binary.startswith(b"\x7fELF") or binary[4] != 2:
        return False
    (phoff,) = struct.unpack_from("<Q", binary, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", binary, 0x36)
    types = [struct.unpack_from("<I", binary, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # 3 = PT_INTERP


def build_initramfs(out: str | os.PathLike, *, busybox: str | os.PathLike = BUSYBOX,
                    extra_files: Mapping[str, bytes | str | os.PathLike] | None = None,
                    modules: Sequence[str | os.PathLike] = (),
                    symlinks: Mapping[str, str] | None = None,
                    keep_mtimes: bool = False,
                    compress: bool = False) -> Path:
    """Write the base initramfs to ``out`` and return its path.

    ``extra_files`` maps guest paths to contents (bytes) or host files (paths); it is
    where a bigger guest (issue 8: Python and its libraries) adds its files.
    ``modules`` are kernel modules (.ko files) copied to /lib/modules/teachdock/ and
    loaded by /init with insmod, in the order given (dependencies first).
    ``symlinks`` maps guest paths to link targets (e.g. "usr/bin/python3": "python3.11").
    ``keep_mtimes`` gives host files their host mtime instead of 0: Python uses a cached
    .pyc only when it records its source's mtime, so a guest Python needs this.
    ``compress`` gzips the archive: smaller on disk, not faster to boot.
    """
    busybox = Path(busybox)
    try:
        binary = busybox.read_bytes()
    except OSError as exc:
        raise VmError(f"cannot read {busybox} ({exc.strerror}): `apt-get install busybox-static`") from None
    if not _is_static(binary):
        raise VmError(f"{busybox} is dynamically linked; the guest has no libraries: "
                      "`apt-get install busybox-static`")

    buffer = io.BytesIO()
    archive = CpioWriter(buffer)
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev",
                      "tmp", "root", "etc", "teachdock"):
        archive.add_dir(directory)
    archive.add_chardev("dev/console", 5, 1)  # the kernel opens it for /init's stdio,
    archive.add_chardev("dev/null", 1, 3, perms=0o666)  # before devtmpfs is mounted
    archive.add_file("bin/busybox", binary, perms=0o755)
    for link in applet_links(busybox):
        archive.add_symlink(link, "/bin/busybox")
    archive.add_file("init", INIT_SCRIPT.encode(), perms=0o755)

    module_paths = []
    for module in modules:
        guest_path = f"lib/modules/teachdock/{Path(module).name}"
        archive.add_file(guest_path, Path(module).read_bytes())
        module_paths.append("/" + guest_path)
    if module_paths:
        archive.add_file("teachdock/modules", ("\n".join(module_paths) + "\n").encode())

    for guest_path, content in (extra_files or {}).items():
        if isinstance(content, bytes):
            archive.add_file(guest_path, content)
        else:
            host = Path(content)
            info = host.stat()
            archive.add_file(guest_path, host.read_bytes(), perms=info.st_mode & 0o7777,
                             mtime=int(info.st_mtime) if keep_mtimes else 0)
    for guest_path, target in (symlinks or {}).items():
        archive.add_symlink(guest_path, target)
    archive.close()

    data = buffer.getvalue()
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    out = Path(out)
    out.write_bytes(data)
    return out


def workload_archive(workload: str | None, files: Mapping[str, bytes] | None = None) -> bytes:
    """A small cpio to append to the base initramfs: /teachdock/workload.sh and ``files``.

    ``workload`` is a shell command line run by busybox sh in the guest; None boots
    and powers off without one.
    """
    buffer = io.BytesIO()
    archive = CpioWriter(buffer)
    if workload is not None:
        archive.add_file("teachdock/workload.sh", workload.encode() + b"\n", perms=0o755)
    for guest_path, content in (files or {}).items():
        archive.add_file(guest_path, content)
    archive.close()
    return buffer.getvalue()
