"""Layers: turning layer tarballs into directories, and directories back into layers.

An image layer is a tar file (often gzipped) of the files one build step added or changed,
applied on top of the layers below it. Deletions are recorded as *whiteouts*
(image-spec layer.md):

    .wh.<name>        an empty file meaning "<name> from a lower layer is gone"
    .wh..wh..opq      in a directory: "hide everything lower layers had in this directory"

overlayfs has its own way of saying the same thing, which is why Docker converts on the way
in and out of an overlay layer directory:

    .wh.<name>   <->  a character device 0/0 called <name>
    .wh..wh..opq <->  the xattr trusted.overlay.opaque="y" on the directory

The functions here:

    unpack_layer(tar, dest)          a NEW directory dest, all or nothing (atomic):
                                     extracted beside dest, renamed into place on success.
        for_overlay=True             write overlayfs whiteouts: the dir is an overlay lowerdir
        base=DIR                     start from a copy of DIR (the copy-based snapshot fallback)
    apply_layer_onto(tar, tree)      apply onto an existing tree, deleting whiteouted files.
                                     NOT atomic: on error the tree is half-changed, so apply
                                     onto a copy you can throw away (or use unpack_layer(base=)).
    diff_layer(upper_dir, out)       an overlay upper dir -> a layer tar with OCI whiteouts

Safe extraction. A layer is untrusted input, and Python's tarfile (3.11.2 here, no
``filter=`` argument) would happily write outside the destination. So every member is
checked by hand: no absolute names, no ``..``; parent directories are resolved component
by component *inside* the root, a symlink followed as if the root were ``/`` (what Docker
gets by extracting in a chroot), so an entry ``a -> /etc`` followed by ``a/passwd`` lands in
``<root>/etc/passwd``, never in the host's /etc; hardlinks must point at a file already in
the tree; device nodes only with allow_devices=True and as root. Both the compressed digest
and the diff_id (sha256 of the uncompressed tar) are computed while reading, in one pass;
a gzipped layer is inflated in a second thread meanwhile (``gunzip.py``), as ``tar -xzf``
runs gzip beside itself.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, NamedTuple

from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.image.digest import DigestMismatch, HashingReader, HashingWriter, split_digest
from teachdock.image.gunzip import GunzipAhead
from teachdock.runtime.securejoin import SymlinkLoop, secure_join

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."      # reserved (AUFS metadata); only the opaque marker is used
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_CHUNK = 1 << 20

Progress = Callable[[int, "int | None"], None]   # (bytes read so far, total bytes or None)


class LayerError(InvalidConfig):
    """A layer tarball is corrupt, truncated, or uses something teachdock cannot apply."""

    def __init__(self, message: str, member: str | None = None):
        super().__init__(f"layer member {member!r}: {message}" if member is not None else message)
        self.member = member


class UnsafeLayer(LayerError):
    """A layer member would write outside the root, or create something not allowed here."""


@dataclass(frozen=True)
class UnpackResult:
    """What was read: both digests, the compression found, and the sizes."""

    diff_id: str                 # sha256 of the uncompressed tar (the config's rootfs.diff_ids)
    digest: str                  # sha256 of the bytes as given (the manifest's layer digest)
    compression: str | None      # "gzip" or None
    compressed_size: int         # bytes read from the source
    size: int                    # bytes of uncompressed tar


class LayerDiff(NamedTuple):
    diff_id: str                 # sha256 of the tar written
    size: int                    # its length in bytes


# --------------------------------------------------------------------------- applying

def unpack_layer(source: str | os.PathLike | BinaryIO, dest: str | os.PathLike, *,
                 for_overlay: bool = False, base: str | os.PathLike | None = None,
                 expected_digest: str | None = None, expected_diff_id: str | None = None,
                 allow_devices: bool = False, progress: Progress | None = None) -> UnpackResult:
    """Extract a layer into the new directory ``dest`` — atomically.

    Everything is written to a temporary directory beside ``dest``, which is renamed to
    ``dest`` only when every member was safe and both digests matched; on any error the
    temporary directory is removed and ``dest`` never appears.

    for_overlay: convert whiteouts to overlayfs form, so dest can be an overlay lowerdir.
    base: start from a copy of this directory (``cp -a``) and apply the layer on top,
          deleting whiteouted paths: one step of the copy-based snapshot fallback.
    """
    dest = os.path.abspath(os.fspath(dest))
    if os.path.lexists(dest):
        raise Conflict(f"cannot unpack a layer into {dest}: it exists already (unpack_layer makes a new directory)")
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise NotFound(f"cannot unpack a layer into {dest}: the parent directory {parent} does not exist")
    if for_overlay and base is not None:
        raise InvalidConfig("unpack_layer: for_overlay and base exclude each other "
                            "(an overlay lowerdir holds one layer, a base copy holds them all)")
    _check_expected(expected_digest, expected_diff_id)

    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", suffix=".unpacking", dir=parent)
    try:
        if base is not None:
            os.rmdir(tmp)
            _copy_tree(os.fspath(base), tmp)
            mode = "onto"
        else:
            os.chmod(tmp, 0o755)         # a layer's "./" entry, when present, overrides this
            mode = "overlay" if for_overlay else "fresh"
        result = _apply(source, tmp, mode, expected_digest=expected_digest,
                        expected_diff_id=expected_diff_id, allow_devices=allow_devices, progress=progress)
        try:
            os.rename(tmp, dest)
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise Conflict(f"cannot unpack a layer into {dest}: someone else created it meanwhile") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def apply_layer_onto(source: str | os.PathLike | BinaryIO, tree: str | os.PathLike, *,
                     expected_digest: str | None = None, expected_diff_id: str | None = None,
                     allow_devices: bool = False, progress: Progress | None = None) -> UnpackResult:
    """Apply a layer on top of an existing directory tree, as ``docker`` flattens layers.

    ``.wh.X`` deletes X, ``.wh..wh..opq`` empties its directory of lower content, other
    entries replace what is there. NOT atomic: if the layer turns out unsafe, corrupt or
    its digest wrong, the members before that point are already applied. Use it on a copy
    you can throw away, or call ``unpack_layer(source, new_dir, base=tree)``.
    """
    tree = os.path.abspath(os.fspath(tree))
    if not os.path.isdir(tree):
        raise NotFound(f"cannot apply a layer onto {tree}: not a directory")
    _check_expected(expected_digest, expected_diff_id)
    return _apply(source, tree, "onto", expected_digest=expected_digest,
                  expected_diff_id=expected_diff_id, allow_devices=allow_devices, progress=progress)


def _check_expected(expected_digest: str | None, expected_diff_id: str | None) -> None:
    for digest in (expected_digest, expected_diff_id):
        if digest is not None:
            split_digest(digest)


def _copy_tree(src: str, dst: str) -> None:
    """``cp -a``: keeps owners, modes, times, hardlinks, device nodes and xattrs, which
    shutil.copytree does not (it would even read a device node as a file)."""
    if not os.path.isdir(src):
        raise NotFound(f"base directory {src} does not exist")
    done = subprocess.run(["cp", "-a", "--reflink=auto", "--", src, dst], capture_output=True, text=True)
    if done.returncode != 0:
        raise LayerError(f"copying base directory {src} failed: {done.stderr.strip()}")


def _apply(source, root: str, mode: str, *, expected_digest, expected_diff_id, allow_devices,
           progress) -> UnpackResult:
    """Stream the layer through both hashes and the tar reader, extracting each member."""
    owned = None
    if isinstance(source, (str, os.PathLike)):
        try:
            owned = stream = open(source, "rb")
        except FileNotFoundError:
            raise NotFound(f"layer file {os.fspath(source)} does not exist") from None
        total = os.fstat(stream.fileno()).st_size
    else:
        stream, total = source, None
    uncompressed = None
    try:
        head = _read_exactly(stream, 4)
        if head.startswith(GZIP_MAGIC):
            # gunzipped (and both hashes taken) in a second thread, beside the extraction
            compression = "gzip"
            raw = HashingReader(_Rewound(head, stream))
            uncompressed = tar_source = GunzipAhead(raw, progress=progress, total=total)
        elif head.startswith(ZSTD_MAGIC):
            raise LayerError("zstd-compressed layers are not supported; recompress the layer with gzip")
        else:
            compression = None            # plain tar: the diff_id is the digest, hash once
            raw = uncompressed = tar_source = HashingReader(_Rewound(head, stream), progress=progress, total=total)

        extractor = _Extractor(root, mode, allow_devices=allow_devices)
        try:
            with tarfile.open(fileobj=tar_source, mode="r|") as tar:
                for member in tar:
                    try:
                        extractor.extract(member, tar)
                    except (tarfile.TarError, EOFError, zlib.error):
                        raise                # reading failed: reported below as a corrupt layer
                    except LayerError as err:
                        if err.member is None:   # name the member, e.g. for a symlink loop
                            raise type(err)(str(err), member.name) from None
                        raise
                    except OSError as err:
                        raise LayerError(f"cannot extract: {err.strerror or err}", member.name) from None
            uncompressed.drain()         # the end-of-archive padding counts towards the diff_id
            raw.drain()
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise LayerError(f"layer is truncated or corrupt ({compression or 'plain'} tar): {err}") from None

        result = UnpackResult(diff_id=uncompressed.digest, digest=raw.digest, compression=compression,
                              compressed_size=raw.count, size=uncompressed.count)
        if expected_digest is not None and result.digest != expected_digest:
            raise DigestMismatch("layer (compressed digest)", expected_digest, result.digest)
        if expected_diff_id is not None and result.diff_id != expected_diff_id:
            raise DigestMismatch("layer (diff_id of the uncompressed tar)", expected_diff_id, result.diff_id)
        extractor.finish()
        return result
    finally:
        if isinstance(uncompressed, GunzipAhead):
            uncompressed.close()
        if owned is not None:
            owned.close()


def _read_exactly(stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _Rewound:
    """A stream with the bytes already read to sniff the compression put back in front."""

    def __init__(self, head: bytes, stream):
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def member_path(name: str, what: str = "member") -> str:
    """The member's path relative to the layer root ('' for the root itself), or UnsafeLayer."""
    if name.startswith("/"):
        raise UnsafeLayer(f"absolute path refused in a layer {what}", name)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"'..' path component refused in a layer {what}", name)
    return "/".join(parts)


class _Extractor:
    """Applies tar members one by one to ``root``, checking each first.

    mode: "fresh" (an empty new dir: whiteouts have nothing to hide), "overlay" (an empty
    new dir used as an overlay lowerdir: whiteouts become overlayfs markers) or "onto"
    (an existing tree: whiteouts delete lower content).
    """

    def __init__(self, root: str, mode: str, *, allow_devices: bool):
        self.root = root
        self.mode = mode
        self.allow_devices = allow_devices
        self.is_root = os.geteuid() == 0
        self.unpacked: set[str] = set()          # paths this layer wrote (whiteouts spare them)
        self.dir_meta: dict[str, tarfile.TarInfo] = {}   # applied last: a read-only dir stays writable
        # parent dirs already resolved and created: most members share a parent, and this
        # saves the lstat of every component. Any removal may change a resolution: it clears this.
        self.parents: dict[str, str] = {}

    # ---- dispatch

    def extract(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        rel = member_path(member.name)
        name = posixpath.basename(rel)
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(member, rel)
            return
        if rel == "":
            if not member.isdir():
                raise UnsafeLayer("the layer root can only be a directory", member.name)
            self._own(self.root, member)
            self.dir_meta[self.root] = member
            return
        self._check_allowed(member)
        path = os.path.join(self._parent_dir(rel, member), name)
        if member.isdir():
            self._make_dir(path, member)
        elif member.islnk():
            self._make_hardlink(path, member)
        elif member.isreg():
            self._make_file(path, member, tar)
        elif member.issym():
            self._make_symlink(path, member)
        else:
            self._remove(path)
            self._make_special(path, member)
        self.unpacked.add(path)

    def finish(self) -> None:
        """Set directory modes and times last, deepest first (children change a dir's mtime)."""
        for path in sorted(self.dir_meta, key=len, reverse=True):
            member = self.dir_meta[path]
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise LayerError("directory was replaced during extraction", member.name)
            os.chmod(path, self._mode_bits(member))
            self._set_xattrs(path, member)
            os.utime(path, ns=(_ns(member.mtime), _ns(member.mtime)), follow_symlinks=False)

    # ---- checks

    def _check_allowed(self, member: tarfile.TarInfo) -> None:
        if member.ischr() or member.isblk():
            if not self.allow_devices:
                raise UnsafeLayer("device nodes are refused in layers (pass allow_devices=True to accept them)",
                                  member.name)
            if not self.is_root:
                raise UnsafeLayer("device nodes can only be created by root", member.name)
        elif not (member.isreg() or member.isdir() or member.issym() or member.islnk() or member.isfifo()):
            raise LayerError(f"unsupported tar entry type {member.type!r}", member.name)
        for key in member.pax_headers:
            if key.startswith(_XATTR_PAX_PREFIX + "trusted.overlay."):
                raise UnsafeLayer(f"xattr {key[len(_XATTR_PAX_PREFIX):]} is reserved for overlayfs", member.name)

    # ---- paths

    def _inside(self, rel: str, member: tarfile.TarInfo, follow_final: bool = True) -> str:
        """``rel`` resolved as if the root were ``/``; a symlink loop refuses the layer."""
        try:
            return secure_join(self.root, rel, follow_final=follow_final)
        except SymlinkLoop as err:
            raise UnsafeLayer(str(err), member.name) from None

    def _parent_dir(self, rel: str, member: tarfile.TarInfo, create: bool = True) -> str:
        """The real directory the member goes into, created (like ``mkdir -p``) if missing."""
        rel_parent = posixpath.dirname(rel)
        if rel_parent in self.parents:
            return self.parents[rel_parent]
        parent = self._inside(rel_parent, member)
        if create:
            self._makedirs(parent, member)
            self.parents[rel_parent] = parent
        return parent

    def _makedirs(self, path: str, member: tarfile.TarInfo) -> None:
        current = self.root
        for part in os.path.relpath(path, self.root).split(os.sep):
            if part == ".":
                continue
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                self.unpacked.add(current)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise LayerError(f"parent {os.path.relpath(current, self.root)!r} is not a directory", member.name)

    def _remove(self, path: str) -> None:
        """Make room for a new entry: a directory goes with its contents, anything else is unlinked."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        self.parents.clear()
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self._forget(path)
        else:
            os.unlink(path)

    def _forget(self, directory: str) -> None:
        """A removed directory's entries must not get their metadata set or be spared later."""
        inside = directory + os.sep
        self.dir_meta = {p: m for p, m in self.dir_meta.items() if p != directory and not p.startswith(inside)}
        self.unpacked = {p for p in self.unpacked if p != directory and not p.startswith(inside)}

    # ---- whiteouts

    def _whiteout(self, member: tarfile.TarInfo, rel: str) -> None:
        name = posixpath.basename(rel)
        if name == OPAQUE_MARKER:
            if self.mode == "overlay":
                directory = self._parent_dir(rel, member)
                os.setxattr(directory, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            elif self.mode == "onto":
                directory = self._parent_dir(rel, member, create=False)
                if os.path.isdir(directory) and not os.path.islink(directory):
                    self._clear_lower(directory)
            return
        if name.startswith(WHITEOUT_META_PREFIX):
            return                           # other AUFS metadata (.wh..wh.plnk ...): ignored, like Docker
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise UnsafeLayer(f"whiteout for {hidden!r} refused", member.name)
        if self.mode == "fresh":
            return                           # nothing below a fresh layer to hide
        if self.mode == "overlay":
            path = os.path.join(self._parent_dir(rel, member), hidden)
            if os.path.lexists(path):
                return                       # a whiteout never hides its own layer's entries
            if not self.is_root:
                raise LayerError("overlay whiteouts (0/0 character devices) need root", member.name)
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
            return
        path = os.path.join(self._parent_dir(rel, member, create=False), hidden)
        if path not in self.unpacked:
            self._remove(path)

    def _clear_lower(self, directory: str) -> None:
        """Opaque directory: delete what lower layers put here, keep this layer's entries
        (and the directories leading to them)."""
        keep = set(self.unpacked)
        for path in self.unpacked:
            while len(path) > len(self.root):
                path = os.path.dirname(path)
                if path in keep:
                    break
                keep.add(path)
        self._clear_below(directory, keep)

    def _clear_below(self, directory: str, keep: set[str]) -> None:
        for name in os.listdir(directory):
            child = os.path.join(directory, name)
            if child not in keep:
                self._remove(child)
            elif os.path.isdir(child) and not os.path.islink(child):
                self._clear_below(child, keep)

    # ---- entries

    def _make_dir(self, path: str, member: tarfile.TarInfo) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            self._remove(path)
            os.mkdir(path, 0o700)            # the real mode is set in finish()
        self._own(path, member)
        self.dir_meta[path] = member

    def _make_file(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        # O_EXCL|O_NOFOLLOW: never write through whatever (a symlink!) is already at path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            self._remove(path)
            fd = os.open(path, flags, 0o600)
        with open(fd, "wb", buffering=0) as out, tar.extractfile(member) as data:
            shutil.copyfileobj(data, out, _CHUNK)
            if self.is_root:
                os.fchown(fd, member.uid, member.gid)      # before chmod: chown clears setuid
            os.fchmod(fd, self._mode_bits(member))
            self._set_xattrs(path, member)
            os.utime(fd, ns=(_ns(member.mtime), _ns(member.mtime)))

    def _make_symlink(self, path: str, member: tarfile.TarInfo) -> None:
        if not member.linkname:
            raise LayerError("symlink with an empty target", member.name)
        try:
            os.symlink(member.linkname, path)     # any target: it is resolved inside the root later
        except FileExistsError:
            self._remove(path)
            os.symlink(member.linkname, path)
        self._own(path, member)
        self._set_xattrs(path, member)
        os.utime(path, ns=(_ns(member.mtime), _ns(member.mtime)), follow_symlinks=False)

    def _make_hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        target_rel = member_path(member.linkname, "hardlink target")
        if target_rel == "":
            raise UnsafeLayer("hardlink to the layer root refused", member.name)
        target = self._inside(target_rel, member, follow_final=False)
        try:
            st = os.lstat(target)
        except (FileNotFoundError, NotADirectoryError):
            raise UnsafeLayer(f"hardlink target {member.linkname!r} is not in the tree "
                              "(a hardlink may only point at a file extracted before it)", member.name) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayer(f"hardlink to directory {member.linkname!r} refused", member.name)
        if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and not self.allow_devices:
            raise UnsafeLayer(f"hardlink to device node {member.linkname!r} refused", member.name)
        if target == path:
            raise LayerError("hardlink to itself", member.name)
        self._remove(path)
        os.link(target, path, follow_symlinks=False)

    def _make_special(self, path: str, member: tarfile.TarInfo) -> None:
        if member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        self._own(path, member)
        os.chmod(path, self._mode_bits(member))
        self._set_xattrs(path, member)
        os.utime(path, ns=(_ns(member.mtime), _ns(member.mtime)), follow_symlinks=False)

    # ---- metadata

    def _own(self, path: str, member: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)

    def _mode_bits(self, member: tarfile.TarInfo) -> int:
        mode = member.mode & 0o7777
        if not self.is_root:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)    # setuid/setgid only for root's layers
        return mode

    def _set_xattrs(self, path: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            try:
                os.setxattr(path, key[len(_XATTR_PAX_PREFIX):], value.encode("utf-8", "surrogateescape"),
                            follow_symlinks=False)
            except OSError as err:
                # not root (trusted.*/security.*), or a filesystem without xattrs: skip, like tar does
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                    raise


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


# --------------------------------------------------------------------------- diffing

def diff_layer(upper_dir: str | os.PathLike, out: str | os.PathLike | BinaryIO, *,
               mtime: int | None = None) -> LayerDiff:
    """Write the changes recorded in an overlayfs upper dir as an OCI layer tar (uncompressed).

    overlayfs whiteouts become OCI ones: a 0/0 character device ``x`` -> ``.wh.x``; a
    directory with ``trusted.overlay.opaque=y`` -> its entry followed by ``.wh..wh..opq``.
    overlayfs' own xattrs (trusted.overlay.*) are never copied. Entries are sorted, owner
    names left empty, and with ``mtime=`` every timestamp is set to that value, so the same
    changes give the same diff_id (what a build cache needs).
    Assumes overlay was mounted without redirect_dir/metacopy (the kernel default).
    """
    upper_dir = os.fspath(upper_dir)
    if not os.path.isdir(upper_dir):
        raise NotFound(f"upper directory {upper_dir} does not exist")
    owned = isinstance(out, (str, os.PathLike))
    stream = open(out, "wb") if owned else out
    try:
        writer = HashingWriter(stream)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add_tree(tar, upper_dir, "", {}, mtime)
        writer.flush()
    except BaseException:
        if owned:
            stream.close()
            os.unlink(out)
        raise
    if owned:
        os.fsync(stream.fileno())
        stream.close()
    return LayerDiff(writer.digest, writer.count)


def _add_tree(tar: tarfile.TarFile, top: str, rel_dir: str, inodes: dict, mtime: int | None) -> None:
    directory = os.path.join(top, rel_dir)
    for name in sorted(os.listdir(directory)):
        rel = posixpath.join(rel_dir, name)
        path = os.path.join(top, rel)
        st = os.lstat(path)
        info = _tarinfo(rel, st, mtime)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:          # overlay whiteout
            info.name = posixpath.join(rel_dir, WHITEOUT_PREFIX + name)
            info.type, info.mode, info.devmajor, info.devminor = tarfile.REGTYPE, 0o600, 0, 0
            tar.addfile(info)
        elif stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            info.pax_headers = _xattrs(path)
            tar.addfile(info)
            if _is_opaque(path):
                marker = _tarinfo(posixpath.join(rel, OPAQUE_MARKER), st, mtime)
                marker.mode &= 0o777
                tar.addfile(marker)
            _add_tree(tar, top, rel, inodes, mtime)
        elif stat.S_ISREG(st.st_mode):
            info.pax_headers = _xattrs(path)
            if st.st_nlink > 1 and (st.st_dev, st.st_ino) in inodes:
                info.type, info.linkname = tarfile.LNKTYPE, inodes[(st.st_dev, st.st_ino)]
                tar.addfile(info)
                continue
            inodes[(st.st_dev, st.st_ino)] = rel
            info.size = st.st_size
            with open(path, "rb") as data:
                tar.addfile(info, data)
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            tar.addfile(info)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        # sockets are not part of a filesystem's content: skipped, as Docker does


def _tarinfo(rel: str, st: os.stat_result, mtime: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = mtime if mtime is not None else int(st.st_mtime)
    return info


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path: str) -> dict[str, str]:
    """The file's xattrs as PAX records, minus overlayfs' private ones."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    records = {}
    for name in sorted(names):
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        records[_XATTR_PAX_PREFIX + name] = value.decode("utf-8", "surrogateescape")
    return records
