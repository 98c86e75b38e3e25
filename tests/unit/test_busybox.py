"""The busybox rootfs builder: refusing binaries that cannot work, and never leaving a
half-built tree behind. Building a tree needs no root; running it does (see
tests/integration/test_busybox_rootfs.py)."""

import hashlib
import os
import shutil
import stat
import struct
import sys
from pathlib import Path

import pytest

from teachdock import paths
from teachdock.errors import Conflict, InvalidConfig, NotFound, TeachdockError
from teachdock.image import busybox
from teachdock.cli import store as store_cli


def make_elf(path: Path, *, bits: int = 64, little: bool = True, interp: str | None = None) -> Path:
    """Write a minimal ELF file: a PT_LOAD header, plus PT_INTERP when `interp` is given."""
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    types = [1] + ([3] if interp else [])  # PT_LOAD, PT_INTERP
    if bits == 64:
        ehsize, phentsize = 64, 56
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 2, 62, 1, 0, ehsize, 0, 0,
                                     ehsize, phentsize, len(types), 64, 0, 0)
    else:
        ehsize, phentsize = 52, 32
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 2, 3, 1, 0, ehsize, 0, 0,
                                     ehsize, phentsize, len(types), 40, 0, 0)
    assert len(header) == ehsize
    strings_at = ehsize + phentsize * len(types)
    blob = (interp or "").encode() + b"\0"
    table = b""
    for p_type in types:
        offset, size = (strings_at, len(blob)) if p_type == 3 else (0, strings_at)
        if bits == 64:
            table += struct.pack(order + "IIQQQQQQ", p_type, 4, offset, 0, 0, size, size, 1)
        else:
            table += struct.pack(order + "IIIIIIII", p_type, offset, 0, 0, size, size, 4, 1)
    path.write_bytes(header + table + blob)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def static_busybox() -> Path:
    try:
        return busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"building a tree needs the host's static busybox: {error}")


@pytest.fixture
def dynamic_binary() -> Path:
    for candidate in (shutil.which("ls"), sys.executable, "/usr/bin/python3.11"):
        if candidate and Path(candidate).is_file():
            path = Path(candidate).resolve()
            if busybox.elf_interpreter(path) is not None:
                return path
    pytest.skip("no dynamically linked executable found on this host to test with")


def tree_listing(root: Path) -> dict:
    """Everything that would go into an image layer: type, mode, mtime, target or content."""
    listing = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                what = "-> " + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            listing[str(path.relative_to(root))] = (stat.filemode(info.st_mode), info.st_mtime_ns, what)
    return listing


# --- the ELF check -----------------------------------------------------------------------

@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_elf_interpreter_reads_pt_interp(tmp_path, bits, little):
    static = make_elf(tmp_path / "static", bits=bits, little=little)
    dynamic = make_elf(tmp_path / "dynamic", bits=bits, little=little, interp="/lib/ld-test.so.1")
    assert busybox.elf_interpreter(static) is None
    assert busybox.elf_interpreter(dynamic) == "/lib/ld-test.so.1"


def test_real_dynamic_binary_is_refused_with_the_fix(dynamic_binary):
    with pytest.raises(InvalidConfig) as caught:
        busybox.find_busybox(dynamic_binary)
    message = str(caught.value)
    assert "dynamically linked" in message
    assert "apt-get install busybox-static" in message
    assert str(dynamic_binary) in message


def test_missing_binary_is_not_found(tmp_path):
    missing = tmp_path / "no-such-busybox"
    with pytest.raises(NotFound) as caught:
        busybox.find_busybox(missing)
    assert str(missing) in str(caught.value)
    assert "apt-get install busybox-static" in str(caught.value)


def test_a_script_is_not_an_elf_executable(tmp_path):
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\necho I am not busybox\n")
    script.chmod(0o755)
    with pytest.raises(InvalidConfig, match="not an ELF executable"):
        busybox.find_busybox(script)


def test_default_search_prefers_a_static_busybox_on_path(tmp_path, monkeypatch, dynamic_binary):
    (tmp_path / "bin").mkdir()
    static = make_elf(tmp_path / "bin" / "busybox")
    monkeypatch.setattr(busybox, "DEFAULT_BUSYBOX", str(dynamic_binary))  # like Debian's `busybox`
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert busybox.find_busybox() == static


def test_default_search_with_only_a_dynamic_busybox_says_how_to_fix(tmp_path, monkeypatch, dynamic_binary):
    monkeypatch.setattr(busybox, "DEFAULT_BUSYBOX", str(dynamic_binary))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InvalidConfig, match="apt-get install busybox-static"):
        busybox.find_busybox()


def test_default_search_with_no_busybox_at_all(tmp_path, monkeypatch):
    monkeypatch.setattr(busybox, "DEFAULT_BUSYBOX", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotFound, match="apt-get install busybox-static"):
        busybox.find_busybox()


def test_unsafe_applet_paths_are_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(busybox, "_run_busybox", lambda binary, *args: "bin/sh\n../../etc/evil\n")
    with pytest.raises(InvalidConfig, match="unsafe path"):
        busybox._busybox_applets(tmp_path / "busybox")


# --- where things live -------------------------------------------------------------------

def test_roots_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TEACHDOCK_STATE_ROOT", str(tmp_path / "state"))
    assert paths.data_root() == tmp_path / "data"
    assert paths.state_root() == tmp_path / "state"
    assert paths.default_rootfs_path() == tmp_path / "data" / "rootfs" / "busybox"


def test_roots_default_to_the_documented_places(monkeypatch):
    monkeypatch.delenv("TEACHDOCK_DATA_ROOT", raising=False)
    monkeypatch.setenv("TEACHDOCK_STATE_ROOT", "")  # empty counts as unset
    monkeypatch.setattr(paths.os, "geteuid", lambda: 0)  # root's places; a user's state root is below
    assert paths.data_root() == Path("/var/lib/teachdock")
    assert paths.state_root() == Path("/run/teachdock/runtime")
    assert paths.default_rootfs_path() == Path("/var/lib/teachdock/rootfs/busybox")


def test_a_users_state_root_is_in_their_runtime_directory(monkeypatch):
    monkeypatch.setenv("TEACHDOCK_STATE_ROOT", "")
    monkeypatch.setattr(paths.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert paths.state_root() == Path("/run/user/1000/teachdock/runtime")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert paths.state_root() == Path("/tmp/teachdock-1000/teachdock/runtime")


# --- building ----------------------------------------------------------------------------

def test_layout(tmp_path, static_busybox):
    root = busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    assert root == tmp_path / "rootfs"
    assert (root / "bin" / "busybox").read_bytes() == static_busybox.read_bytes()
    assert os.access(root / "bin" / "busybox", os.X_OK)
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(root / "usr" / "bin" / "env") == "/bin/busybox"
    for name, mode in busybox.DIRECTORIES:
        assert stat.S_IMODE((root / name).stat().st_mode) == mode, name
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert "root:x:0:0:" in (root / "etc" / "passwd").read_text()
    assert "nobody:x:65534:65534:" in (root / "etc" / "passwd").read_text()
    group = (root / "etc" / "group").read_text()
    assert "root:x:0:" in group and "nogroup:x:65534:" in group and "tty:x:5:" in group
    assert "localhost" in (root / "etc" / "hosts").read_text()
    assert (root / "etc" / "resolv.conf").read_text().startswith("#")
    assert "ID=teachdock-busybox" in (root / "etc" / "os-release").read_text()
    marker = busybox.read_marker(root)
    assert marker["busybox_sha256"] == hashlib.sha256(static_busybox.read_bytes()).hexdigest()
    assert marker["builder_version"] == busybox.BUILDER_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]  # no temporary leftovers


def test_same_busybox_gives_a_byte_identical_tree(tmp_path, static_busybox):
    first = busybox.build_busybox_rootfs(tmp_path / "a", static_busybox)
    second = busybox.build_busybox_rootfs(tmp_path / "b", static_busybox)
    assert tree_listing(first) == tree_listing(second)


def test_second_build_reuses_the_tree_and_force_rebuilds(tmp_path, static_busybox):
    lines = []
    root = busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox, progress=lines.append)
    assert any(line.startswith("built ") for line in lines)
    inode = root.stat().st_ino
    lines.clear()
    assert busybox.build_busybox_rootfs(root, static_busybox, progress=lines.append) == root
    assert root.stat().st_ino == inode
    assert any("up to date" in line for line in lines)

    busybox.build_busybox_rootfs(root, static_busybox, force=True)
    assert root.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]


def test_a_tree_from_another_builder_version_is_rebuilt(tmp_path, static_busybox, monkeypatch):
    root = busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    inode = root.stat().st_ino
    monkeypatch.setattr(busybox, "BUILDER_VERSION", busybox.BUILDER_VERSION + 1)
    busybox.build_busybox_rootfs(root, static_busybox)
    assert root.stat().st_ino != inode
    assert busybox.read_marker(root)["builder_version"] == busybox.BUILDER_VERSION


def test_failure_half_way_leaves_nothing_at_dest(tmp_path, static_busybox, monkeypatch):
    def fail(*args):
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(busybox, "_set_mtimes", fail)  # runs after every file is written
    with pytest.raises(RuntimeError, match="disk full"):
        busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    assert list(tmp_path.iterdir()) == []


def test_failed_rebuild_keeps_the_previous_tree(tmp_path, static_busybox, monkeypatch):
    root = busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    before = tree_listing(root)

    def fail(*args):
        raise KeyboardInterrupt  # Ctrl-C half-way

    monkeypatch.setattr(busybox, "_set_mtimes", fail)
    with pytest.raises(KeyboardInterrupt):
        busybox.build_busybox_rootfs(root, static_busybox, force=True)
    assert tree_listing(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]


def test_leftovers_of_a_killed_build_are_removed(tmp_path, static_busybox):
    stale = tmp_path / ".rootfs.building-abc123"
    (stale / "bin").mkdir(parents=True)
    busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]


def test_a_foreign_directory_is_never_replaced(tmp_path, static_busybox):
    dest = tmp_path / "rootfs"
    dest.mkdir()
    (dest / "precious.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(Conflict, match="not a teachdock busybox rootfs"):
            busybox.build_busybox_rootfs(dest, static_busybox, force=force)
    assert [p.name for p in dest.iterdir()] == ["precious.txt"]


def test_an_empty_directory_is_filled(tmp_path, static_busybox):
    (tmp_path / "rootfs").mkdir()
    root = busybox.build_busybox_rootfs(tmp_path / "rootfs", static_busybox)
    assert (root / "bin" / "busybox").is_file()


# --- the command line --------------------------------------------------------------------

def test_cli_bootstrap_prints_what_it_built(tmp_path, static_busybox, capsys):
    argv = ["bootstrap", "busybox", "--data-root", str(tmp_path), "--busybox", str(static_busybox)]
    assert store_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "rootfs" / "busybox") in out
    assert "applets" in out and "MiB" in out
    assert (tmp_path / "rootfs" / "busybox" / "bin" / "sh").is_symlink()

    assert store_cli.main(argv) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_error_is_one_line_and_non_zero(tmp_path, dynamic_binary, capsys):
    argv = ["bootstrap", "busybox", "--data-root", str(tmp_path), "--busybox", str(dynamic_binary)]
    assert store_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("teachdock: error:") and "busybox-static" in err
    assert not (tmp_path / "rootfs" / "busybox").exists()


def test_cli_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as caught:
        store_cli.main(["bootstrap", "busybox", "--help"])
    assert caught.value.code == 0
    assert "--data-root" in capsys.readouterr().out
