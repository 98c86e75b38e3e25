"""teachdock.vm.guest without booting anything: module order from modules.dep, the files of
the Python guest, 9p shares on the QEMU command line, mtimes and symlinks in the archive."""

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from teachdock.vm import cpio, guest, initramfs, qemu
from teachdock.vm.errors import VmError
from teachdock.vm.boot_kernel import KernelImage

VMLINUX = KernelImage(Path("/c/vmlinux-6.1"), "vmlinux", "6.1", Path("/boot/vmlinuz-6.1"), "")
BZIMAGE = KernelImage(Path("/boot/vmlinuz-6.1"), "bzImage", "6.1", Path("/boot/vmlinuz-6.1"), "")


def fake_modules(tmp_path, lines: str) -> Path:
    (tmp_path / "6.1").mkdir()
    (tmp_path / "6.1" / "modules.dep").write_text(lines)
    return tmp_path


def test_modules_come_after_their_dependencies_once_each(tmp_path):
    root = fake_modules(tmp_path, (
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko\n"
        "kernel/drivers/virtio/virtio.ko:\n"
        "kernel/fs/overlayfs/overlay.ko:\n"))
    order = [guest.module_name(p) for p in guest.module_load_order(["overlay", "9pnet-virtio", "9p"], "6.1", root)]
    assert order == ["overlay", "9pnet", "virtio", "9pnet_virtio", "netfs", "fscache", "9p"]
    assert guest.module_load_order(["9p"], "6.1", root)[0] == str(root / "6.1/kernel/net/9p/9pnet.ko")


def test_module_problems_are_explained(tmp_path):
    root = fake_modules(tmp_path, "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\nkernel/c.ko.xz:\n")
    with pytest.raises(VmError, match="no module 'overlay'"):
        guest.module_load_order(["overlay"], "6.1", root)
    with pytest.raises(VmError, match="cycle: a -> b -> a"):
        guest.module_load_order(["a"], "6.1", root)
    with pytest.raises(VmError, match="compressed kernel modules"):
        guest.module_load_order(["c"], "6.1", root)
    with pytest.raises(VmError, match="modules are missing"):
        guest.module_load_order(["overlay"], "9.9", root)


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd (libc-bin)")
def test_ldd_lists_libc_and_the_dynamic_loader():
    libraries = guest.shared_libraries(sys._base_executable)
    assert any(Path(lib).name.startswith("libc.so") for lib in libraries)
    assert any(Path(lib).name.startswith("ld-linux") for lib in libraries)
    assert all(lib.startswith("/") for lib in libraries)  # not linux-vdso, which is no file


def test_the_python_guest_has_interpreter_stdlib_with_pyc_and_pytest_but_no_test_suite():
    files = guest.python_files()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(os.__file__).parent.as_posix().lstrip("/")
    assert files[f"usr/bin/{version}"] == Path(os.path.realpath(sys._base_executable))
    assert f"{stdlib}/os.py" in files
    assert f"{stdlib}/__pycache__/os.{sys.implementation.cache_tag}.pyc" in files
    assert not [name for name in files if name.endswith((".opt-1.pyc", ".opt-2.pyc"))]
    assert not [name for name in files if name.startswith((f"{stdlib}/test/", f"{stdlib}/tkinter/", f"{stdlib}/config-"))]
    assert f"{guest.GUEST_SITE_PACKAGES}/_pytest/python.py" in files
    assert f"{guest.GUEST_SITE_PACKAGES}/pluggy/__init__.py" in files
    assert not [name for name in files if "/lib-dynload/_test" in name]


def test_shares_are_read_only_9p_devices_of_the_machines_flavour():
    command, machine = qemu.qemu_command("qemu", VMLINUX, "/t/i", accel="tcg", memory_mb=512, tsc_khz=2596098,
                                         shares={"project": "/work/main"})
    assert machine == "microvm"
    assert command[command.index("-fsdev") + 1] == "local,id=fs0,path=/work/main,security_model=none,readonly=on"
    assert command[command.index("-device") + 1] == "virtio-9p-device,fsdev=fs0,mount_tag=project"
    command, _ = qemu.qemu_command("qemu", BZIMAGE, "/t/i", accel="tcg", memory_mb=512, tsc_khz=None,
                                   shares={"project": "/work/main"})
    assert command[command.index("-device") + 1].startswith("virtio-9p-pci,")
    with pytest.raises(VmError, match="comma"):
        qemu.qemu_command("qemu", VMLINUX, "/t/i", accel="tcg", memory_mb=512, tsc_khz=1, shares={"p": "/a,b"})


@pytest.mark.skipif(not initramfs.BUSYBOX.exists(), reason="needs the static /bin/busybox (busybox-static)")
def test_archive_keeps_mtimes_when_asked_and_holds_symlinks(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    out = initramfs.build_initramfs(tmp_path / "i.cpio", extra_files={"lib/mod.py": source}, keep_mtimes=True,
                                    symlinks={"usr/bin/python3": "python3.11"})
    entries = {e.name: e for e in cpio.read_newc(out.read_bytes())}
    assert entries["lib/mod.py"].mtime == 1_700_000_000
    assert entries["usr/bin/python3"].kind == "symlink" and entries["usr/bin/python3"].data == b"python3.11"
    plain = initramfs.build_initramfs(tmp_path / "p.cpio", extra_files={"lib/mod.py": source})
    assert {e.name: e for e in cpio.read_newc(plain.read_bytes())}["lib/mod.py"].mtime == 0  # reproducible default
    assert stat.S_ISREG(entries["lib/mod.py"].mode)


def test_the_guest_environment_keeps_python_from_writing_into_the_share():
    env = guest.guest_environment({"EXTRA": "a b"})
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONPATH"] == guest.GUEST_PROJECT
    assert env["EXTRA"] == "a b"
