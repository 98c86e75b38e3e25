"""Build a minimal root filesystem from the host's static busybox, offline.

A container needs a directory tree to pivot_root into. The smallest useful one is one
busybox binary, a symlink per command it implements (an "applet": sh, ls, ps, ...), a few
empty mount points and a minimal /etc. That is all Docker's `busybox` image is, too.

The binary must be *statically* linked. A dynamic one asks the kernel for an ELF
interpreter (/lib64/ld-linux-x86-64.so.2) that does not exist inside the tree, and exec
fails with a baffling "No such file or directory". So we read the ELF program headers and
refuse such a binary up front.

The tree is built in a temporary directory beside its destination and renamed into place,
so a crash half-way never leaves a half-built rootfs where a container would use it. The
result is a plain directory; the image store turns it into a one-layer image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.paths import data_root, default_rootfs_path

#: Bump when the layout changes, so existing trees are rebuilt on the next bootstrap.
BUILDER_VERSION = 1

#: Written last, inside the tree: which busybox and which builder made it.
MARKER = "etc/teachdock-rootfs.json"

DEFAULT_BUSYBOX = "/bin/busybox"
INSTALL_HINT = "install a static busybox with: apt-get install busybox-static"

Progress = Callable[[str], None]

# Top-level directories and mount points, with the modes Debian gives them.
# /tmp and /var/tmp are world-writable with the sticky bit, like on any Unix.
DIRECTORIES = [
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("run", 0o755),
    ("mnt", 0o755),
    ("home", 0o755),
    ("root", 0o700),
    ("tmp", 0o1777),
    ("var", 0o755),
    ("var/tmp", 0o1777),
]

ETC_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    ),
    "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    "etc/hostname": "teachdock\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/resolv.conf": "# Empty on purpose: the container engine writes the resolvers a container uses.\n",
}

PT_INTERP = 3  # program header type naming the dynamic loader (man 5 elf)


def elf_interpreter(path: str | os.PathLike) -> str | None:
    """The dynamic loader an ELF executable asks for (its PT_INTERP), or None when static.

    Reads only the ELF file header and the program header table (man 5 elf).
    """
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 52 or header[:4] != b"\x7fELF" or header[4] not in (1, 2):
            raise InvalidConfig(f"{path} is not an ELF executable; {INSTALL_HINT}")
        is_64bit = header[4] == 2
        order = "<" if header[5] == 1 else ">"  # EI_DATA: 1 little-endian, 2 big-endian
        if is_64bit:
            (phoff,) = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        else:
            (phoff,) = struct.unpack_from(order + "I", header, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        if len(table) < phentsize * phnum:
            raise InvalidConfig(f"{path} is a truncated ELF file; {INSTALL_HINT}")
        for index in range(phnum):
            entry = table[index * phentsize:(index + 1) * phentsize]
            (p_type,) = struct.unpack_from(order + "I", entry, 0)
            if p_type != PT_INTERP:
                continue
            if is_64bit:
                (offset,) = struct.unpack_from(order + "Q", entry, 8)
                (size,) = struct.unpack_from(order + "Q", entry, 32)
            else:
                (offset,) = struct.unpack_from(order + "I", entry, 4)
                (size,) = struct.unpack_from(order + "I", entry, 16)
            f.seek(offset)
            return f.read(size).rstrip(b"\0").decode(errors="replace") or "(unnamed loader)"
    return None


def check_static(path: str | os.PathLike) -> None:
    """Raise InvalidConfig unless `path` is a statically linked ELF executable."""
    interpreter = elf_interpreter(path)
    if interpreter is not None:
        raise InvalidConfig(
            f"{path} is dynamically linked (it needs {interpreter}), so it cannot run inside "
            f"a rootfs that has no libc; {INSTALL_HINT}"
        )


def find_busybox(busybox: str | os.PathLike | None = None) -> Path:
    """The static busybox to copy: the one given, else /bin/busybox, else the first on $PATH."""
    if busybox is not None:
        path = Path(busybox)
        if not path.is_file():
            raise NotFound(f"busybox binary {path} does not exist; {INSTALL_HINT}")
        check_static(path)
        return path

    candidates = [Path(DEFAULT_BUSYBOX)]
    on_path = shutil.which("busybox")
    if on_path:
        candidates.append(Path(on_path))
    existing = [path for path in candidates if path.is_file()]
    if not existing:
        raise NotFound(f"no busybox found at {DEFAULT_BUSYBOX} or on $PATH; {INSTALL_HINT}")
    for path in existing:
        if elf_interpreter(path) is None:
            return path
    check_static(existing[0])  # raises, naming the loader the dynamic one wants
    raise AssertionError("unreachable")


def read_marker(rootfs: str | os.PathLike) -> dict | None:
    """The marker of a tree this module built, or None if there is none (or it is damaged)."""
    try:
        marker = json.loads((Path(rootfs) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def build_busybox_rootfs(
    dest: str | os.PathLike | None = None,
    busybox: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Build (or reuse) a busybox rootfs at `dest` and return its path.

    `dest` defaults to default_rootfs_path(); `busybox` to the host's static busybox.
    A tree already built from the same busybox by this builder version is returned as it
    is, unless `force`. `progress` receives one short line per step.
    """
    report = progress or (lambda message: None)
    dest = Path(dest).absolute() if dest is not None else default_rootfs_path()
    binary = find_busybox(busybox)
    sha256 = _sha256(binary)
    dest.parent.mkdir(parents=True, exist_ok=True)

    with _directory_lock(dest.parent):  # two bootstraps at once: the second one waits
        marker = read_marker(dest)
        if (
            not force
            and marker is not None
            and marker.get("busybox_sha256") == sha256
            and marker.get("builder_version") == BUILDER_VERSION
            and (dest / "bin" / "busybox").is_file()
        ):
            report(f"{dest} is up to date (built from {binary}, sha256 {sha256[:12]})")
            return dest
        if (dest.exists() or dest.is_symlink()) and marker is None and not _is_empty_dir(dest):
            raise Conflict(
                f"{dest} exists and is not a teachdock busybox rootfs; remove it yourself "
                "or choose another destination (it is never deleted automatically)"
            )

        _remove_leftovers(dest)
        version = _busybox_version(binary)
        applets = _busybox_applets(binary)
        report(f"using {binary} (BusyBox v{version}, static, {len(applets)} applets)")
        building = Path(tempfile.mkdtemp(prefix=f".{dest.name}.building-", dir=dest.parent))
        try:
            _populate(building, binary, version, applets, sha256)
            report(f"moving the new tree into place at {dest}")
            _replace(building, dest)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    report(f"built {dest}")
    return dest


def _populate(root: Path, binary: Path, version: str, applets: list[str], sha256: str) -> None:
    """Fill an empty directory with the rootfs layout, writing the marker last."""
    os.chmod(root, 0o755)  # mkdtemp made it 0700
    for name, mode in DIRECTORIES:
        (root / name).mkdir(exist_ok=True)
        os.chmod(root / name, mode)  # explicit, so the umask does not matter

    shutil.copyfile(binary, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for applet in applets:
        link = root / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            # Absolute target: it resolves inside the container, whose / is this tree.
            os.symlink("/bin/busybox", link)

    for name, text in ETC_FILES.items():
        (root / name).write_text(text)
    (root / "etc" / "os-release").write_text(
        'NAME="teachdock busybox"\n'
        "ID=teachdock-busybox\n"
        f'VERSION_ID="{version}"\n'
        f'PRETTY_NAME="teachdock busybox rootfs (BusyBox v{version})"\n'
    )
    marker = {
        "builder_version": BUILDER_VERSION,
        "busybox_sha256": sha256,
        "busybox_version": version,
        "busybox_source": str(binary),
        "applets": len(applets),
    }
    (root / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    _set_mtimes(root, int(binary.stat().st_mtime))


def _set_mtimes(root: Path, mtime: int) -> None:
    """One timestamp for every entry: the same busybox then gives a byte-identical tree,
    so the image store computes the same layer digest on every machine and every run."""
    for directory, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(directory, name), (mtime, mtime), follow_symlinks=False)
    os.utime(root, (mtime, mtime))


def _replace(new: Path, dest: Path) -> None:
    """Rename `new` to `dest`; an older tree at `dest` is moved aside first, then deleted."""
    old = None
    try:
        if dest.exists() or dest.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old / "tree")
        try:
            os.rename(new, dest)
        except OSError:
            if old is not None:
                os.rename(old / "tree", dest)  # put the previous tree back
            raise
    except OSError as error:
        raise Conflict(f"cannot move the new rootfs into place at {dest}: {error}") from error
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(dest: Path) -> None:
    """Delete temporary trees a killed build left beside `dest` (we hold the lock)."""
    for pattern in (f".{dest.name}.building-*", f".{dest.name}.old-*"):
        for leftover in dest.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """flock(2) on the directory itself: serialises builders and leaves no lock file behind."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _run_busybox(binary: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        raise InvalidConfig(f"cannot run {binary}: {error}; {INSTALL_HINT}") from error
    if result.returncode != 0:
        raise InvalidConfig(
            f"`{binary} {' '.join(args)}` failed (exit {result.returncode}): "
            f"{result.stderr.strip() or 'no message'}; is it really busybox? {INSTALL_HINT}"
        )
    return result.stdout


def _busybox_version(binary: Path) -> str:
    """'1.35.0' from the first line of `busybox --help` ("BusyBox v1.35.0 (...)"), or 'unknown'."""
    match = re.search(r"BusyBox v(\S+)", _run_busybox(binary, "--help"))
    return match.group(1) if match else "unknown"


def _busybox_applets(binary: Path) -> list[str]:
    """Relative paths of the applet links, e.g. 'bin/sh', 'usr/bin/[', from --list-full."""
    applets = []
    for line in _run_busybox(binary, "--list-full").splitlines():
        path = line.strip()
        if not path or path == "bin/busybox":
            continue
        if path.startswith("/") or ".." in path.split("/"):
            raise InvalidConfig(f"{binary} --list-full printed an unsafe path: {path!r}")
        applets.append(path)
    if not applets:
        raise InvalidConfig(f"{binary} --list-full printed no applets; {INSTALL_HINT}")
    return sorted(set(applets))
