"""The files a build writes: COPY and ADD from the build context, WORKDIR's directory.

The context is what ``docker build`` sent (a directory here); a source is a path or a
wildcard in it, never outside (``..`` and symlinks stay in the context), minus what
``.dockerignore`` excludes. Its content digest is part of the step's cache key. Writing
follows Docker's COPY rules: a directory's *contents* are copied, an existing directory
(or a link to one, like ``/bin -> usr/bin``) is merged into, the last component of a
destination is replaced and never written through, and owner, mode and mtime come from
``--chown``/``--chmod`` or the source. ADD also unpacks a local tar archive (plain, gzip,
bzip2, xz), checked like a layer.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path

from teachdock.errors import InvalidConfig
from teachdock.image.dockerfile import DockerIgnore, Instruction, pattern_regex
from teachdock.image.layers import apply_layer_onto
from teachdock.runtime.securejoin import secure_join


# --------------------------------------------------------------------------- the context

def context_sources(context: Path, source: str, ignore: DockerIgnore, inst: Instruction) -> list[tuple[str, Path]]:
    """COPY's source (a path or a wildcard) -> [(path relative to the context, real path)]."""
    rel = posixpath.normpath(source.lstrip("/") or ".")
    if rel == ".." or rel.startswith("../"):
        raise inst.error(f"{inst.keyword} failed: forbidden path outside the build context: {source}")
    if any(char in rel for char in "*?["):
        regex = pattern_regex(rel)
        found = []
        for directory, dirnames, filenames in os.walk(context):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = Path(directory) / name
                candidate = path.relative_to(context).as_posix()
                if regex.match(candidate) and not ignore.ignored(candidate):
                    found.append((candidate, Path(secure_join(str(context), candidate))))
        if not found:
            raise inst.error(f"{inst.keyword} failed: no source files were specified (nothing matches {source!r})")
        return found
    real = Path(secure_join(str(context), rel))      # a symlink in the context stays in the context
    if not os.path.lexists(real) or (rel != "." and ignore.ignored(rel)):
        raise inst.error(f"{inst.keyword} failed: file not found in build context or excluded by .dockerignore: "
                         f"{source}")
    return [(rel, real)]


def _walk(context: Path, top: Path, ignore: DockerIgnore) -> list[tuple[str, Path]]:
    """Entries under directory ``top`` that .dockerignore keeps, parents first, sorted."""
    entries: list[tuple[str, Path]] = []

    def visit(directory: Path, rel: str) -> None:
        for name in sorted(os.listdir(directory)):
            path = directory / name
            child = f"{rel}/{name}" if rel else name
            in_context = os.path.relpath(path, context).replace(os.sep, "/")
            if path.is_dir() and not path.is_symlink():
                mark = len(entries)
                entries.append((child, path))
                visit(path, child)
                if ignore.ignored(in_context) and len(entries) == mark + 1:
                    entries.pop()              # an ignored directory with nothing kept inside
            elif not ignore.ignored(in_context):
                entries.append((child, path))

    visit(top, "")
    return entries


def _file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sources_digest(context: Path, sources: list[tuple[str, Path]], ignore: DockerIgnore) -> str:
    """Digest of what COPY copies: names, types, modes and contents (not times or owners)."""
    hasher = hashlib.sha256()

    def add(name: str, path: Path) -> None:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            detail = "link:" + os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            detail = "dir"
        else:
            detail = "file:" + _file_digest(path)
        hasher.update(f"{name}\0{stat.S_IMODE(st.st_mode):o}\0{detail}\n".encode())

    for rel, path in sources:
        if path.is_dir():
            add(rel, path)
            for child, child_path in _walk(context, path, ignore):
                add(f"{rel}/{child}", child_path)
        else:
            add(rel, path)
    return "sha256:" + hasher.hexdigest()


# --------------------------------------------------------------------------- writing into a rootfs

def make_directory(rootfs: Path, path: str, owner: tuple[int, int] = (0, 0)) -> Path:
    """``mkdir -p`` of an absolute container path, resolved inside the rootfs; new dirs 0755."""
    target = Path(secure_join(str(rootfs), path.lstrip("/")))
    current = Path(rootfs)
    for part in target.relative_to(rootfs).parts:
        current = current / part
        if current.is_dir() and not current.is_symlink():
            continue
        if os.path.lexists(current):
            raise InvalidConfig(f"cannot create directory {path}: {current.relative_to(rootfs)} exists and is "
                                "not a directory")
        current.mkdir(mode=0o755)
        os.chmod(current, 0o755)
        if os.geteuid() == 0:
            os.chown(current, *owner)
    return target


def _place(rootfs: Path, container_path: str) -> Path:
    """The host path for a new entry at container_path: parents resolved inside the rootfs,
    the last component NOT followed (it is replaced, never written through)."""
    parent = make_directory(rootfs, posixpath.dirname(container_path) or "/")
    return parent / posixpath.basename(container_path)


def _clear(path: Path) -> None:
    """Make room for a new file or link at ``path``: whatever is there goes (a link is not followed)."""
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def copy_source(context: Path, source: Path, rootfs: Path, dest: str, dest_is_dir: bool, ignore: DockerIgnore,
                 owner: tuple[int, int], chmod: int | None) -> None:
    """Copy one source (file, symlink target or directory *contents*) to dest in the rootfs."""
    if source.is_dir():
        make_directory(rootfs, dest, owner)
        directories = []
        for rel, path in _walk(context, source, ignore):
            container_path = posixpath.join(dest, rel)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                # an existing directory (or a symlink to one, e.g. /bin -> usr/bin) is merged into
                directories.append((make_directory(rootfs, container_path, owner), st))
            else:
                _copy_entry(path, _place(rootfs, container_path), st, owner, chmod)
        for target, st in reversed(directories):   # last, so new children do not change the times
            _finish(target, st, owner, chmod)
        return
    existing = Path(secure_join(str(rootfs), dest.lstrip("/")))
    if dest_is_dir or (existing.is_dir() and not existing.is_symlink()):
        make_directory(rootfs, dest, owner)
        container_path = posixpath.join(dest, source.name)
    else:
        container_path = dest
    target = _place(rootfs, container_path)
    _copy_entry(source, target, os.stat(source), owner, chmod)


def _copy_entry(source: Path, target: Path, st: os.stat_result, owner: tuple[int, int], chmod: int | None) -> None:
    _clear(target)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
        if os.geteuid() == 0:
            os.chown(target, *owner, follow_symlinks=False)
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        return                                    # sockets, fifos, devices in a context: skipped
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(source, "rb") as src, open(os.open(target, flags, 0o600), "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    _finish(target, st, owner, chmod)


def _finish(target: Path, st: os.stat_result, owner: tuple[int, int], chmod: int | None) -> None:
    """Owner (root, or --chown), mode (the source's, or --chmod) and the source's mtime."""
    if os.geteuid() == 0:
        os.chown(target, *owner, follow_symlinks=False)
    os.chmod(target, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))


def archive_opener(path: Path):
    """For a local tar archive (plain, gzip, bzip2 or xz): a function opening it decompressed;
    None for any other file (ADD copies those as they are)."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif head.startswith(b"BZh"):
        opener = bz2.open
    elif head.startswith(b"\xfd7zXZ\x00"):
        opener = lzma.open
    else:
        opener = open
    try:
        with opener(path, "rb") as stream:
            block = stream.read(tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, ValueError):
        return None
    return opener


def extract_archive(rootfs: Path, archive: Path, dest: str) -> None:
    """ADD of a local archive: unpack it into the directory dest (safely: nothing escapes)."""
    target = make_directory(rootfs, dest)
    with archive_opener(archive)(archive, "rb") as stream:
        apply_layer_onto(stream, target)
