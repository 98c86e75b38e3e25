"""Find a Linux kernel to boot, and unpack it so QEMU can boot it faster.

Debian ships its kernel as ``/boot/vmlinuz-<release>``, a *bzImage*: a small x86 boot
stub plus the real kernel (an ELF file called vmlinux) compressed with xz. On a real
machine the stub decompresses it in a fraction of a second; under QEMU's software
emulation (TCG) that same decompression costs seconds. QEMU can also boot the
uncompressed ELF directly through the *PVH* entry point (a note inside the ELF that says
"start here in 32-bit mode"), skipping firmware and decompressor. So we decompress the
payload once on the host, with Python's standard library, and cache the result under
``<data root>/vm/``. Without a PVH note (or without a writable cache) we boot the
bzImage itself on QEMU's standard ``pc`` machine.

The payload's position is written in the bzImage header (boot protocol field
``payload_offset``); when that fails we scan for compression magic numbers the way the
kernel's own ``scripts/extract-vmlinux`` does, and accept the first candidate that
decompresses to an ELF file.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from teachdock.paths import data_root
from teachdock.vm.errors import KernelNotFound

BOOT_DIR = Path("/boot")
ELF_MAGIC = b"\x7fELF"


def cache_dir() -> Path:
    """<data root>/vm: extracted kernels and the guest's initramfs images.

    A learner without root cannot write under /var/lib/teachdock: their cache is then
    $XDG_CACHE_HOME/teachdock/vm (or ~/.cache/teachdock/vm), so the VM still boots for them."""
    shared = data_root() / "vm"
    existing = next(path for path in (shared, *shared.parents) if path.exists())
    if os.access(existing, os.W_OK):
        return shared
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "teachdock" / "vm"


# --- decompressing the payload --------------------------------------------------------

def _xz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)


def _lzma(data: bytes) -> bytes:
    return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)


def _gzip(data: bytes) -> bytes:
    # A decompressobj stops at the end of the stream and ignores what follows;
    # gzip.decompress() would choke on the bytes after the payload.
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)


def _bzip2(data: bytes) -> bytes:
    return bz2.BZ2Decompressor().decompress(data)


def _zstd(data: bytes) -> bytes:
    try:
        import zstandard  # not in the standard library before Python 3.14
    except ImportError:
        raise ValueError("zstd payload, but the 'zstandard' module is not installed") from None
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


#: (name, magic bytes, decompress function) for the formats a bzImage may use.
COMPRESSIONS = (
    ("xz", b"\xfd7zXZ\x00", _xz),
    ("gzip", b"\x1f\x8b\x08", _gzip),
    ("zstd", b"\x28\xb5\x2f\xfd", _zstd),
    ("bzip2", b"BZh", _bzip2),
    ("lzma", b"\x5d\x00\x00", _lzma),
)


def header_payload_offset(image: bytes) -> int | None:
    """Where the compressed kernel starts, from the bzImage boot header, or None.

    Layout (Documentation/arch/x86/boot.rst): byte 0x1f1 = setup_sects, the number of
    512-byte sectors of real-mode setup code after the boot sector; "HdrS" at 0x202 and
    the protocol version at 0x206; from version 2.08 on, payload_offset (0x248) counts
    from the start of the protected-mode code, which follows the setup sectors.
    """
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack_from("<H", image, 0x206)
    if version < 0x208:
        return None
    setup_sects = image[0x1F1] or 4  # 0 means 4, for historical reasons
    (payload_offset,) = struct.unpack_from("<I", image, 0x248)
    return (setup_sects + 1) * 512 + payload_offset


def _candidates(image: bytes):
    """Offsets where a compressed kernel may start: the header's answer, then each
    occurrence of each magic number (the order scripts/extract-vmlinux tries them)."""
    offset = header_payload_offset(image)
    if offset is not None:
        yield offset
    for _name, magic, _decompress in COMPRESSIONS:
        at = image.find(magic)
        while at != -1:
            yield at
            at = image.find(magic, at + 1)


def find_payload(image: bytes) -> tuple[str, int]:
    """Return (compression name, offset) of the compressed kernel inside a bzImage.

    A candidate counts only if its first MiB decompresses to the start of an ELF
    file. Raises ValueError when nothing fits.
    """
    for offset in _candidates(image):
        for name, magic, decompress in COMPRESSIONS:
            if not image.startswith(magic, offset):
                continue
            try:
                head = decompress(image[offset:offset + (1 << 20)])
            except (ValueError, OSError, EOFError, lzma.LZMAError, zlib.error):
                continue
            if head.startswith(ELF_MAGIC):
                return name, offset
    raise ValueError("no compressed ELF kernel found (tried xz, gzip, zstd, bzip2, lzma)")


def extract_vmlinux(image: bytes) -> bytes:
    """Decompress the ELF kernel (vmlinux) out of a bzImage's bytes."""
    name, offset = find_payload(image)
    decompress = next(d for n, _m, d in COMPRESSIONS if n == name)
    return decompress(image[offset:])


def has_pvh_note(elf: bytes) -> bool:
    """True if a 64-bit ELF kernel carries the PVH entry note QEMU needs to boot it.

    The note lives in a PT_NOTE program header: owner "Xen", type 18
    (XEN_ELFNOTE_PHYS32_ENTRY). Kernels built with CONFIG_PVH=y have it.
    """
    if not elf.startswith(ELF_MAGIC) or elf[4] != 2:  # 2 = ELFCLASS64
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for index in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + index * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        at, end = p_offset, p_offset + p_filesz
        while at + 12 <= end:
            namesz, descsz, note_type = struct.unpack_from("<III", elf, at)
            name = elf[at + 12:at + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and note_type == 18:
                return True
            at += 12 + namesz + (-namesz % 4) + descsz + (-descsz % 4)
    return False


# --- choosing a kernel ------------------------------------------------------------------

def _version_key(release: str) -> list:
    """Sort "6.1.0-56-amd64" after "6.1.0-9-amd64": compare the numbers as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", release)]


def find_kernel(boot_dir: str | os.PathLike | None = None) -> Path:
    """The bzImage to boot: $TEACHDOCK_VM_KERNEL, else the running kernel's
    /boot/vmlinuz-<uname -r>, else the newest readable /boot/vmlinuz-*."""
    override = os.environ.get("TEACHDOCK_VM_KERNEL")
    if override:
        path = Path(override)
        if not os.access(path, os.R_OK):
            raise KernelNotFound(f"TEACHDOCK_VM_KERNEL={override} is not a readable file")
        return path
    boot_dir = Path(boot_dir or BOOT_DIR)
    images = sorted(boot_dir.glob("vmlinuz-*"),
                    key=lambda p: _version_key(p.name[len("vmlinuz-"):]), reverse=True)
    readable = [p for p in images if os.access(p, os.R_OK)]
    if not readable:
        if images:
            raise KernelNotFound(
                f"found {', '.join(map(str, images))} but cannot read it (Ubuntu makes kernels "
                "readable by root only): run as root, `sudo chmod 0644` the file, or point "
                "TEACHDOCK_VM_KERNEL at a readable kernel image")
        raise KernelNotFound(
            f"no Linux kernel in {boot_dir}: `apt-get install linux-image-amd64`, or point "
            "TEACHDOCK_VM_KERNEL at a kernel image (bzImage or vmlinux)")
    running = boot_dir / f"vmlinuz-{os.uname().release}"
    return running if running in readable else readable[0]


@dataclass(frozen=True)
class KernelImage:
    """The kernel QEMU will get, and why that one."""

    path: Path      # the file passed to QEMU's -kernel
    kind: str       # "vmlinux" (uncompressed ELF, PVH entry) or "bzImage"
    release: str    # e.g. "6.1.0-56-amd64"; "" when the file name does not say
    source: Path    # the bzImage it came from (== path for kind "bzImage")
    note: str       # one sentence: why this kind


def prepare_kernel(kernel: str | os.PathLike | None = None, *, unpack: bool = True) -> KernelImage:
    """Pick the kernel and, when possible, return its cached uncompressed vmlinux.

    ``kernel`` may name a bzImage or a vmlinux; default: :func:`find_kernel`.
    The extraction (about 0.6 s for Debian's 8 MB kernel) happens once; the
    cache file is rebuilt when the bzImage is newer than it. ``unpack=False``
    keeps the bzImage (to compare both ways of booting).
    """
    source = Path(kernel) if kernel is not None else find_kernel()
    try:
        with open(source, "rb") as f:
            image = f.read()
    except OSError as exc:
        raise KernelNotFound(f"cannot read kernel image {source}: {exc.strerror}") from None
    name = source.name
    release = name.split("-", 1)[1] if name.startswith(("vmlinuz-", "vmlinux-")) else ""
    if image.startswith(ELF_MAGIC):
        if has_pvh_note(image):
            return KernelImage(source, "vmlinux", release, source, "an uncompressed ELF kernel with a PVH entry")
        raise KernelNotFound(f"{source} is an ELF kernel without a PVH entry note; QEMU cannot boot "
                             "it directly: pass the bzImage (vmlinuz) instead")
    if image[0x202:0x206] != b"HdrS":
        raise KernelNotFound(f"{source} is neither a bzImage (no 'HdrS' boot header) nor an ELF kernel")

    if not unpack:
        return KernelImage(source, "bzImage", release, source, "the compressed kernel, as asked (unpack=False)")
    cached = cache_dir() / f"vmlinux-{release or name}"
    try:
        fresh = cached.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        fresh = False
    if not fresh:
        try:
            vmlinux = extract_vmlinux(image)
        except ValueError as exc:
            return KernelImage(source, "bzImage", release, source, f"could not unpack it ({exc})")
        if not has_pvh_note(vmlinux):
            return KernelImage(source, "bzImage", release, source,
                               "its vmlinux has no PVH entry (kernel built without CONFIG_PVH)")
        partial = cached.with_name(cached.name + f".partial-{os.getpid()}")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(vmlinux)
            os.replace(partial, cached)  # atomic: readers never see half a file
        except OSError as exc:
            partial.unlink(missing_ok=True)
            return KernelImage(source, "bzImage", release, source,
                               f"cannot cache the unpacked kernel in {cached.parent} ({exc.strerror})")
    return KernelImage(cached, "vmlinux", release, source,
                       f"unpacked from {source} once, so QEMU boots it directly (PVH) and the guest "
                       "skips decompressing itself, which costs seconds under emulation")
