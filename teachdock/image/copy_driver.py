"""The copy driver: a container's root filesystem as a plain copy, and its changes found by comparison.

Where overlayfs is missing, each container gets a full copy (``cp -a``) of the flat tree of its
image's layers, like Docker's ``vfs`` driver. There is no upper dir recording what changed, so
``changed_entries`` compares the copy with the flat tree it came from and writes the difference
in the form of an overlay upper dir, which ``layers.diff_layer`` turns into a layer tar.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from teachdock.errors import InvalidConfig


def changed_entries(base: Path | None, tree: Path, out: str | os.PathLike) -> bool:
    """Fill ``out`` with what differs in ``tree`` from ``base``, in the form of an overlay
    upper dir that diff_layer understands; return whether anything differs.

    New and changed entries are hard-linked (files) or recreated (the rest); a deleted
    entry becomes an empty file ``.wh.<name>`` (the OCI whiteout itself, which needs no
    root, unlike overlay's 0/0 device). A file counts as changed when its type, mode,
    owner, size, mtime or link target differ: the naive diff of Docker's vfs driver.
    """
    out = Path(out)
    found = _diff_dir(base, tree, out, "")
    for directory, _dirs, _files in os.walk(out, topdown=False):   # children changed their mtimes
        rel = os.path.relpath(directory, out)
        if rel != ".":
            st = os.lstat(tree / rel)
            os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))
    return found


def _same(a: os.stat_result, b: os.stat_result, a_path: Path, b_path: Path) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return a.st_mtime_ns == b.st_mtime_ns
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(a_path) == os.readlink(b_path)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _diff_dir(base: Path | None, tree: Path, out: Path, rel: str) -> bool:
    """Compare one directory level (recursively); write changes under out/rel."""
    here = tree / rel if rel else tree
    base_here = (base / rel if rel else base) if base is not None else None
    names = sorted(os.listdir(here))
    base_names = set(os.listdir(base_here)) if base_here is not None and base_here.is_dir() \
        and not base_here.is_symlink() else set()
    changed = False
    for name in names:
        child_rel = f"{rel}/{name}" if rel else name
        st = os.lstat(here / name)
        base_st = os.lstat(base_here / name) if name in base_names else None
        if base_st is not None and stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(base_st.st_mode):
            if _diff_dir(base, tree, out, child_rel) or not _same(st, base_st, here / name, base_here / name):
                _ensure_dir(tree, out, child_rel)
                changed = True
            continue
        if base_st is not None and _same(st, base_st, here / name, base_here / name):
            continue
        _ensure_dir(tree, out, rel)
        _copy_entry(here / name, out / child_rel, st)
        if stat.S_ISDIR(st.st_mode):
            _diff_dir(None, tree, out, child_rel)        # a new directory: everything in it is new
        changed = True
    for name in sorted(base_names - set(names)):
        _ensure_dir(tree, out, rel)
        (out / rel / f".wh.{name}").touch()
        changed = True
    if changed and rel:
        _ensure_dir(tree, out, rel)
    return changed


def _ensure_dir(tree: Path, out: Path, rel: str) -> None:
    """Create out/rel (and its parents) with the metadata of tree/rel."""
    if not rel:
        return
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        target = out / sub
        if target.is_dir():
            continue
        st = os.lstat(tree / sub)
        target.mkdir()
        _copy_metadata(target, st)


def _copy_entry(source: Path, target: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        target.mkdir()
        _copy_metadata(target, st)
    elif stat.S_ISREG(st.st_mode):
        try:
            os.link(source, target)                    # same inode: metadata and content for free
        except OSError:
            shutil.copy2(source, target)
            _copy_metadata(target, st)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
        _copy_metadata(target, st)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(target)
        _copy_metadata(target, st)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(target, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
        _copy_metadata(target, st)
    # sockets are not file content: skipped, as diff_layer skips them


def _copy_metadata(target: Path, st: os.stat_result) -> None:
    is_link = stat.S_ISLNK(st.st_mode)
    if os.geteuid() == 0:
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_tree(source: Path, target: Path) -> None:
    """``cp -a``: owners, modes, times, hardlinks, device nodes and xattrs kept."""
    done = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(source), str(target)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidConfig(f"copying {source} to {target} failed: {done.stderr.strip()}")
