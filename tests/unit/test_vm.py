"""teachdock.vm without QEMU and without root: the cpio format, the initramfs contents,
the kernel payload finder, the QEMU command line, console parsing, and the errors a
learner sees when QEMU or a kernel is missing."""

import gzip
import io
import lzma
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from teachdock.vm import boot_kernel, cpio, guest, initramfs, qemu
from teachdock.vm.errors import KernelNotFound, QemuNotFound, VmBootError, VmError, VmTimeout

BUSYBOX = Path("/bin/busybox")
needs_busybox = pytest.mark.skipif(not BUSYBOX.exists(), reason="needs the static /bin/busybox (busybox-static)")


# --- cpio -----------------------------------------------------------------------------------

def small_archive() -> bytes:
    buffer = io.BytesIO()
    writer = cpio.CpioWriter(buffer)
    writer.add_file("etc/motd", b"hello\n", perms=0o644)  # parent "etc" added first, by itself
    writer.add_file("bin/tool", b"#!/bin/sh\n", perms=0o755)
    writer.add_symlink("bin/sh", "/bin/busybox")
    writer.add_chardev("dev/console", 5, 1)
    writer.close()
    return buffer.getvalue()


def test_cpio_header_layout_follows_newc():
    data = small_archive()
    assert data[:6] == b"070701"
    fields = [int(data[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    ino, mode, uid, gid, nlink, mtime, filesize, *_rest, namesize, check = fields
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o755  # "etc", added as the parent
    assert (uid, gid, mtime, filesize, check) == (0, 0, 0, 0, 0)
    assert data[110:110 + namesize] == b"etc\0"
    assert len(data) % 4 == 0


def test_cpio_round_trip_reads_back_every_entry():
    entries = cpio.read_newc(small_archive())
    assert [(e.name, e.kind) for e in entries] == [
        ("etc", "dir"), ("etc/motd", "file"), ("bin", "dir"), ("bin/tool", "file"),
        ("bin/sh", "symlink"), ("dev", "dir"), ("dev/console", "chardev")]
    by_name = {e.name: e for e in entries}
    assert by_name["etc/motd"].data == b"hello\n"
    assert stat.S_IMODE(by_name["bin/tool"].mode) == 0o755
    assert by_name["bin/sh"].data == b"/bin/busybox"
    assert (by_name["dev/console"].rdevmajor, by_name["dev/console"].rdevminor) == (5, 1)


def test_cpio_data_starts_on_four_byte_boundaries():
    # Names of length 1..4 give every possible padding after the 110-byte header.
    for name in ("a", "ab", "abc", "abcd"):
        buffer = io.BytesIO()
        writer = cpio.CpioWriter(buffer)
        writer.add_file(name, b"xyz")
        writer.close()
        data = buffer.getvalue()
        start = data.index(b"xyz")
        assert start % 4 == 0
        assert data[110 + len(name):start] == b"\0" * (start - 110 - len(name))
        assert cpio.read_newc(data)[0].data == b"xyz"


def test_cpio_is_reproducible_and_concatenates():
    assert small_archive() == small_archive()
    entries = cpio.read_newc(small_archive() + small_archive())
    assert len(entries) == 14


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed (apt-get install cpio)")
def test_gnu_cpio_lists_what_we_wrote():
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=small_archive(), capture_output=True, check=True)
    assert listing.stdout.decode().split() == ["etc", "etc/motd", "bin", "bin/tool", "bin/sh", "dev", "dev/console"]
    verbose = subprocess.run(["cpio", "-tv", "--quiet"], input=small_archive(), capture_output=True, check=True)
    lines = verbose.stdout.decode().splitlines()
    assert lines[4].startswith("lrwxrwxrwx") and lines[4].endswith("bin/sh -> /bin/busybox")
    assert lines[6].startswith("crw-------")


@pytest.mark.parametrize("bad", ["", "/", "../etc/passwd", "a/../../b"])
def test_cpio_rejects_names_that_escape(bad):
    with pytest.raises(ValueError, match="bad archive name"):
        cpio.CpioWriter(io.BytesIO()).add_file(bad, b"")


def test_cpio_refuses_entries_after_the_trailer():
    writer = cpio.CpioWriter(io.BytesIO())
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.add_dir("late")


# --- initramfs --------------------------------------------------------------------------

@needs_busybox
def test_initramfs_holds_busybox_links_init_and_devices(tmp_path):
    module = tmp_path / "overlay.ko"
    module.write_bytes(b"\x7fELF fake module")
    host_file = tmp_path / "tool.sh"
    host_file.write_text("echo tool\n")
    host_file.chmod(0o750)
    out = initramfs.build_initramfs(tmp_path / "initrd.cpio", modules=[module],
                                    extra_files={"opt/data.txt": b"data", "opt/tool.sh": host_file})
    entries = {e.name: e for e in cpio.read_newc(out.read_bytes())}
    assert entries["bin/busybox"].data == BUSYBOX.read_bytes()
    assert entries["init"].data.decode() == initramfs.INIT_SCRIPT
    assert stat.S_IMODE(entries["init"].mode) == 0o755
    assert entries["bin/sh"].kind == "symlink" and entries["bin/sh"].data == b"/bin/busybox"
    assert entries["sbin/poweroff"].kind == "symlink"
    assert (entries["dev/console"].kind, entries["dev/console"].rdevmajor, entries["dev/console"].rdevminor) == ("chardev", 5, 1)
    for mount_point in ("proc", "sys", "dev", "tmp"):
        assert entries[mount_point].kind == "dir"
    assert entries["lib/modules/teachdock/overlay.ko"].data == b"\x7fELF fake module"
    assert entries["teachdock/modules"].data == b"/lib/modules/teachdock/overlay.ko\n"
    assert entries["opt/data.txt"].data == b"data"
    assert stat.S_IMODE(entries["opt/tool.sh"].mode) == 0o750
    # The kernel creates no parent directories: each one comes before its contents.
    seen = set()
    for name in entries:
        parent = name.rpartition("/")[0]
        assert not parent or parent in seen, f"{name} comes before its directory"
        seen.add(name)


@needs_busybox
def test_initramfs_can_be_gzipped(tmp_path):
    plain = initramfs.build_initramfs(tmp_path / "plain.cpio").read_bytes()
    packed = initramfs.build_initramfs(tmp_path / "packed.cpio.gz", compress=True).read_bytes()
    assert packed[:2] == b"\x1f\x8b" and len(packed) < len(plain)
    assert gzip.decompress(packed) == plain


def test_initramfs_refuses_a_dynamic_or_missing_busybox(tmp_path):
    with pytest.raises(VmError, match="dynamically linked.*busybox-static"):
        initramfs.build_initramfs(tmp_path / "x.cpio", busybox=sys.executable)
    with pytest.raises(VmError, match="apt-get install busybox-static"):
        initramfs.build_initramfs(tmp_path / "x.cpio", busybox=tmp_path / "missing")


def test_workload_archive_carries_the_command():
    entries = {e.name: e for e in cpio.read_newc(initramfs.workload_archive("echo hi; exit 3", {"data/x": b"1"}))}
    assert entries["teachdock/workload.sh"].data == b"echo hi; exit 3\n"
    assert entries["data/x"].data == b"1"
    assert cpio.read_newc(initramfs.workload_archive(None)) == []


@needs_busybox
def test_init_script_is_valid_busybox_sh(tmp_path):
    script = tmp_path / "init"
    script.write_text(initramfs.INIT_SCRIPT)
    check = subprocess.run([str(BUSYBOX), "sh", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = initramfs.INIT_SCRIPT
    assert text.startswith("#!/bin/busybox sh\n")
    for line in ("mount -t proc proc /proc", "mount -t sysfs sysfs /sys", "mount -t devtmpfs devtmpfs /dev",
                 "BOOTED uptime=$uptime kernel=$release", "sh /teachdock/workload.sh", "poweroff -f"):
        assert line in text


# --- kernel payload -------------------------------------------------------------------------

def fake_elf(pvh: bool) -> bytes:
    """A minimal ELF64 header, one PT_NOTE program header and one note, plus filler."""
    note_name = b"Xen\0" if pvh else b"GNU\0"
    note = struct.pack("<III", 4, 4, 18) + note_name + b"\0\0\0\0"
    phoff, note_offset = 64, 64 + 56
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, 56, 1)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, note_offset, 0, 0, len(note), len(note), 4)
    return bytes(header) + phdr + note + b"kernel text " * 1000


def fake_bzimage(payload: bytes, *, header: bool = True, junk: bytes = b"") -> bytes:
    """Boot sector + 2 setup sectors, then (protected-mode part) junk and the payload."""
    image = bytearray(3 * 512)
    if header:
        image[0x1F1] = 2
        image[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", image, 0x206, 0x20F)
        struct.pack_into("<I", image, 0x248, len(junk))
    return bytes(image) + junk + payload


def test_payload_found_through_the_boot_header():
    elf = fake_elf(pvh=True)
    junk = b"\x1f\x8b\x08 not gzip"  # a false gzip magic before the real payload
    image = fake_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ), junk=junk)
    assert boot_kernel.header_payload_offset(image) == 3 * 512 + len(junk)
    assert boot_kernel.find_payload(image) == ("xz", 3 * 512 + len(junk))
    assert boot_kernel.extract_vmlinux(image) == elf


def test_payload_found_by_scanning_magic_numbers_without_a_header():
    elf = fake_elf(pvh=True)
    gz = zlib.compressobj(wbits=31)
    payload = gz.compress(elf) + gz.flush() + b"size"  # the kernel appends the length
    image = fake_bzimage(payload, header=False, junk=b"\xfd7zXZ\x00 a false xz magic \x1f\x8b\x08!")
    name, offset = boot_kernel.find_payload(image)
    assert (name, image[offset:offset + 3]) == ("gzip", b"\x1f\x8b\x08")
    assert boot_kernel.extract_vmlinux(image) == elf


def test_no_payload_is_a_clear_error():
    with pytest.raises(ValueError, match="no compressed ELF kernel"):
        boot_kernel.find_payload(fake_bzimage(b"nothing compressed here"))


def test_pvh_note_detection():
    assert boot_kernel.has_pvh_note(fake_elf(pvh=True))
    assert not boot_kernel.has_pvh_note(fake_elf(pvh=False))
    assert not boot_kernel.has_pvh_note(b"MZ not an elf at all")


def test_prepare_kernel_unpacks_once_into_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(tmp_path / "data"))
    source = tmp_path / "vmlinuz-9.9.9-test"
    source.write_bytes(fake_bzimage(lzma.compress(fake_elf(pvh=True), format=lzma.FORMAT_XZ)))
    image = boot_kernel.prepare_kernel(source)
    assert (image.kind, image.release, image.source) == ("vmlinux", "9.9.9-test", source)
    assert image.path == tmp_path / "data" / "vm" / "vmlinux-9.9.9-test"
    assert image.path.read_bytes() == fake_elf(pvh=True)
    calls = []
    monkeypatch.setattr(boot_kernel, "extract_vmlinux", lambda data: calls.append(1))
    assert boot_kernel.prepare_kernel(source).path == image.path and calls == []  # cache is fresh
    assert list(image.path.parent.iterdir()) == [image.path]  # no partial file left


def test_prepare_kernel_falls_back_to_the_bzimage_without_pvh(tmp_path, monkeypatch):
    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(tmp_path / "data"))
    source = tmp_path / "vmlinuz-9.9.9-nopvh"
    source.write_bytes(fake_bzimage(lzma.compress(fake_elf(pvh=False), format=lzma.FORMAT_XZ)))
    image = boot_kernel.prepare_kernel(source)
    assert (image.kind, image.path) == ("bzImage", source)
    assert "PVH" in image.note


def test_prepare_kernel_rejects_what_is_not_a_kernel(tmp_path):
    junk = tmp_path / "vmlinuz-junk"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(KernelNotFound, match="neither a bzImage"):
        boot_kernel.prepare_kernel(junk)
    with pytest.raises(KernelNotFound, match="cannot read kernel image"):
        boot_kernel.prepare_kernel(tmp_path / "missing")


def test_find_kernel_prefers_the_newest_readable(tmp_path, monkeypatch):
    monkeypatch.delenv("TEACHDOCK_VM_KERNEL", raising=False)
    for release in ("6.1.0-9-amd64", "6.1.0-56-amd64", "5.10.0-30-amd64"):
        (tmp_path / f"vmlinuz-{release}").write_bytes(b"x")
    assert boot_kernel.find_kernel(tmp_path) == tmp_path / "vmlinuz-6.1.0-56-amd64"
    monkeypatch.setenv("TEACHDOCK_VM_KERNEL", str(tmp_path / "vmlinuz-5.10.0-30-amd64"))
    assert boot_kernel.find_kernel(tmp_path) == tmp_path / "vmlinuz-5.10.0-30-amd64"


def test_missing_or_unreadable_kernel_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("TEACHDOCK_VM_KERNEL", raising=False)
    with pytest.raises(KernelNotFound, match="apt-get install linux-image-amd64"):
        boot_kernel.find_kernel(tmp_path)
    (tmp_path / "vmlinuz-6.8.0-generic").write_bytes(b"x")
    monkeypatch.setattr(boot_kernel.os, "access", lambda path, mode: False)  # as a non-root Ubuntu user sees it
    with pytest.raises(KernelNotFound, match="cannot read it.*chmod"):
        boot_kernel.find_kernel(tmp_path)


# --- QEMU command line, acceleration, errors ----------------------------------------------

VMLINUX = boot_kernel.KernelImage(Path("/c/vmlinux-6.1"), "vmlinux", "6.1", Path("/boot/vmlinuz-6.1"), "")
BZIMAGE = boot_kernel.KernelImage(Path("/boot/vmlinuz-6.1"), "bzImage", "6.1", Path("/boot/vmlinuz-6.1"), "")


def test_qemu_command_for_an_uncompressed_kernel_uses_microvm_with_a_tsc_hint():
    command, machine = qemu.qemu_command("qemu", VMLINUX, "/t/initrd", accel="tcg", memory_mb=128, tsc_khz=2596098)
    assert machine == "microvm"
    assert command[:5] == ["qemu", "-M", "microvm", "-accel", "tcg"]
    for option in ("-nographic", "-no-reboot"):
        assert option in command
    assert command[command.index("-nic") + 1] == "none"
    assert command[command.index("-kernel") + 1] == "/c/vmlinux-6.1"
    assert command[command.index("-initrd") + 1] == "/t/initrd"
    assert command[command.index("-m") + 1] == "128"
    assert command[command.index("-append") + 1].split() == [
        "console=ttyS0", "quiet", "panic=-1", "tsc_early_khz=2596098"]
    assert "-cpu" not in command


def test_qemu_command_for_a_bzimage_or_without_tsc_rate_uses_pc():
    command, machine = qemu.qemu_command("qemu", BZIMAGE, "/t/i", accel="kvm", memory_mb=256, tsc_khz=2596098)
    assert machine == "pc" and "tsc_early_khz" not in command[-1]
    assert command[command.index("-cpu") + 1] == "host"
    _command, machine = qemu.qemu_command("qemu", VMLINUX, "/t/i", accel="tcg", memory_mb=128, tsc_khz=None)
    assert machine == "pc"


def test_host_tsc_khz_reads_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.098\n")
    assert qemu.host_tsc_khz(str(cpuinfo)) == 2596098
    cpuinfo.write_text("processor\t: 0\n")
    assert qemu.host_tsc_khz(str(cpuinfo)) is None


def test_kvm_device_problems_are_explained(tmp_path):
    assert "does not exist" in qemu.kvm_device_problem(str(tmp_path / "kvm"))
    assert "does not answer KVM_GET_API_VERSION" in qemu.kvm_device_problem("/dev/null")


def test_detect_accel_falls_back_to_tcg_and_says_why(monkeypatch):
    monkeypatch.delenv("TEACHDOCK_VM_ACCEL", raising=False)
    monkeypatch.setattr(qemu, "_detected", None)
    monkeypatch.setattr(qemu, "kvm_device_problem", lambda: None)

    def probe_fails(*args, **kwargs):
        raise VmBootError("QEMU was killed by SIGABRT before the guest booted: failed to set MSR\nLast lines:")
    monkeypatch.setattr(qemu, "boot", probe_fails)
    accel = qemu.detect_accel(VMLINUX)
    assert accel.name == "tcg"
    assert "probe guest did not boot under KVM" in accel.reason and "failed to set MSR" in accel.reason
    monkeypatch.setattr(qemu, "boot", lambda *a, **k: pytest.fail("the answer should be cached"))
    assert qemu.detect_accel(VMLINUX) is accel


def test_detect_accel_without_dev_kvm_and_when_forced(monkeypatch):
    monkeypatch.delenv("TEACHDOCK_VM_ACCEL", raising=False)
    monkeypatch.setattr(qemu, "_detected", None)
    monkeypatch.setattr(qemu, "kvm_device_problem", lambda: "/dev/kvm does not exist (...)")
    accel = qemu.detect_accel(VMLINUX)
    assert accel.name == "tcg" and "TCG" in accel.reason and "/dev/kvm does not exist" in accel.reason
    monkeypatch.setenv("TEACHDOCK_VM_ACCEL", "kvm")
    assert qemu.detect_accel(VMLINUX).name == "kvm"


def test_missing_qemu_says_which_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(QemuNotFound, match="apt-get install qemu-system-x86"):
        qemu.find_qemu()
    with pytest.raises(QemuNotFound):
        qemu.boot("true")


def test_boot_without_a_kernel_says_which_package(monkeypatch, tmp_path):
    monkeypatch.setattr(qemu, "find_qemu", lambda: "/usr/bin/false")
    monkeypatch.delenv("TEACHDOCK_VM_KERNEL", raising=False)
    monkeypatch.setattr(boot_kernel, "BOOT_DIR", tmp_path)
    with pytest.raises(KernelNotFound, match="apt-get install linux-image-amd64"):
        qemu.boot("true")


def test_boot_refuses_too_little_memory_or_an_unknown_accelerator(monkeypatch):
    monkeypatch.setattr(qemu, "find_qemu", lambda: "/usr/bin/false")
    with pytest.raises(VmError, match="at least 96 MiB"):
        qemu.boot("true", memory_mb=64)
    with pytest.raises(VmError, match="'auto', 'kvm' or 'tcg'"):
        qemu.boot("true", accel="xen", kernel=BZIMAGE)


# --- console reading and parsing ------------------------------------------------------------

def console(body: str) -> str:
    return f"[    0.2] noise\nTEACHDOCK-VM BOOTED uptime=1.17 kernel=6.1\nTEACHDOCK-VM WORKLOAD-BEGIN\n{body}"


@pytest.mark.parametrize("printed, expected", [
    ("hello\n", "hello\n"),
    ("no newline", "no newline"),
    ("", ""),
    ("two\nlines\n", "two\nlines\n"),
    ("blank line last\n\n", "blank line last\n\n"),
])
def test_workload_output_comes_back_exactly(printed, expected):
    text = console(printed + "\nTEACHDOCK-VM WORKLOAD-END status=3 start=1.18 end=1.45\nTEACHDOCK-VM POWEROFF\n")
    assert qemu.parse_workload(text) == (expected, 3, 0.27)


def test_workload_that_prints_a_fake_end_marker_and_one_that_never_ends():
    fake = "TEACHDOCK-VM WORKLOAD-END status=0 start=0 end=0\n"
    text = console(fake + "\nTEACHDOCK-VM WORKLOAD-END status=7 start=1.00 end=1.00\n")
    assert qemu.parse_workload(text) == (fake, 7, 0.0)
    assert qemu.parse_workload(console("half")) == ("half", None, None)
    assert qemu.parse_workload("TEACHDOCK-VM BOOTED uptime=1 kernel=x\n") == (None, None, None)


def test_console_cleaning_removes_carriage_returns_and_terminal_escapes():
    raw = bytearray(b"\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\nTEACHDOCK-VM BOOTED uptime=1.5 kernel=6.1\r\n")
    text = qemu._clean(raw)
    assert text == "SeaBIOS\nTEACHDOCK-VM BOOTED uptime=1.5 kernel=6.1\n"
    assert qemu.BOOTED_RE.search(text).groups() == ("1.5", "6.1")


def test_run_reads_a_fake_guest_and_times_its_marker():
    fake_guest = ("printf 'booting\\r\\nTEACHDOCK-VM BOOTED uptime=0.50 kernel=fake\\r\\n'; "
                  "echo 'a warning' >&2; sleep 0.2; echo done")
    run = qemu._run_qemu(["sh", "-c", fake_guest], timeout=10)
    assert run.console == "booting\nTEACHDOCK-VM BOOTED uptime=0.50 kernel=fake\ndone\n"
    assert run.stderr == "a warning\n"
    assert run.returncode == 0
    assert 0 < run.seconds_to_marker <= run.total_seconds


def test_run_kills_and_reaps_a_guest_that_hangs():
    with pytest.raises(VmTimeout) as caught:
        qemu._run_qemu(["sh", "-c", "echo $$; echo stuck in firmware; exec sleep 60"], timeout=0.5)
    error = caught.value
    assert error.phase == "boot"
    assert error.console_tail[1] == "stuck in firmware" and "stuck in firmware" in str(error)
    pid = int(error.console_tail[0])
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped, not a zombie


def test_boot_error_names_the_signal_and_the_first_qemu_error():
    run = qemu._Run(console="", stderr="qemu: error: failed to set MSR 0x10a\nqemu: Assertion failed\n",
                    returncode=-6)
    error = qemu._boot_error(run)
    assert str(error).startswith("QEMU was killed by SIGABRT before the guest booted: qemu: error: failed to set MSR")
    assert error.console_tail == ["qemu: error: failed to set MSR 0x10a", "qemu: Assertion failed"]


def test_the_vm_cache_is_under_the_data_root_when_it_can_be_written(tmp_path, monkeypatch):
    from teachdock.vm import boot_kernel

    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(tmp_path / "data"))
    assert boot_kernel.cache_dir() == tmp_path / "data" / "vm"


def test_without_write_access_to_the_data_root_the_vm_cache_is_the_users_own(tmp_path, monkeypatch):
    from teachdock.vm import boot_kernel

    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(boot_kernel.os, "access", lambda path, mode: False)  # as a learner without root
    assert boot_kernel.cache_dir() == tmp_path / "cache" / "teachdock" / "vm"


def test_the_guest_gets_libseccomp_which_ctypes_opens_and_ldd_does_not_list(tmp_path):
    """The runtime loads libseccomp with ctypes (seccomp filters), so no ldd listing names it."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libc.so.6").write_text("")
    (tmp_path / "lib" / "libseccomp.so.2").write_text("")
    (tmp_path / "other").mkdir()
    listed = [str(tmp_path / "other" / "ld.so"), str(tmp_path / "lib" / "libc.so.6")]
    assert guest.dlopen_libraries(listed) == [str(tmp_path / "lib" / "libseccomp.so.2")]
    assert guest.dlopen_libraries(listed, ["libmissing.so.1"]) == []
    assert guest.DLOPEN_LIBRARIES == ("libseccomp.so.2",)
