"""``docker import``: a plain tar of a filesystem becomes a one-layer image.

``docker export`` writes a container's whole root filesystem as one tar; ``docker import``
turns such a tar (or any tar of a root filesystem: a debootstrap, a ``tar -C rootfs -c .``)
into an image with exactly one layer, as dockerd's ``ImportImage`` does:

- the layer's diff_id is the sha256 of the tar *as given* (uncompressed first if it came
  gzip-, bzip2- or xz-compressed), so the same tar imported twice gives the same layer; it is
  stored uncompressed, as ``load`` stores layers (gzip at level 6 took three quarters of the
  time of an import, and a save would only inflate it again);
- the config starts empty — no ``PATH``, no ``Cmd``: only what ``changes`` (Dockerfile
  lines such as ``CMD ["sh"]``, ``ENV A=b``, as ``docker import -c``) put there — with one
  history entry whose comment is the message (dockerd: "Imported from -" when none is given);
- the image id differs on every import, because ``created`` is now.

The tar is untrusted input. Before anything is stored it is unpacked into a scratch
directory with the same checks every layer passes (``layers.unpack_layer``): no absolute
names, no ``..``, no device nodes, no hardlink out of the tree, symlinks followed only inside
it (``s -> /etc`` then ``s/x`` writes the image's /etc/x, never the host's). dockerd is
laxer here — it unpacks in a chroot, so ``/etc/x`` and ``../x`` land inside the root and
device nodes are made — but an image teachdock stores must unpack in teachdock's
snapshotter, which refuses all three; refusing at the door keeps a broken image out.
On any error nothing is left: no blob, no name, no scratch directory.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import shutil
import tempfile
import zlib
from typing import BinaryIO, Iterable

from teachdock.errors import InvalidConfig
from teachdock.image.dockerfile import apply_changes, timestamp
from teachdock.image.incoming import discard_new_blobs
from teachdock.image.layers import GZIP_MAGIC, ZSTD_MAGIC, LayerError, unpack_layer
from teachdock.image.manifest import OCI_LAYER, Image
from teachdock.image.platforms import host_platform, parse_platform
from teachdock.image.reference import InvalidReference, parse_reference
from teachdock.image.store import ImageStore

BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_CHUNK = 1 << 20


class TarImportError(LayerError):
    """The tar to import is unsafe, corrupt or compressed in a way teachdock cannot read.
    A 500, with dockerd's "Error processing tar file" in front, as dockerd answers."""

    status = 500


def import_reference(repository: str | None, tag: str | None) -> str | None:
    """``repo=``/``tag=`` of the import route as one name, checked as dockerd checks them:
    a tag in ``repo`` is replaced by ``tag`` when both are given; a digest is refused."""
    if not repository:
        return None
    ref = parse_reference(repository, default_tag=None)
    if ref.digest:
        raise InvalidReference("cannot import digest reference")
    if tag:
        try:
            ref = ref.with_tag(tag)
        except InvalidReference:
            raise InvalidReference("invalid tag format") from None
    return str(ref if ref.tag else ref.with_tag("latest"))


def import_config(changes: Iterable[str], message: str, platform: dict, created: str, diff_id: str) -> dict:
    """The image config dockerd writes for an import: empty but for the changes."""
    config = apply_changes({"config": {}}, list(changes))
    entry: dict = {"created": created}
    image: dict = {"architecture": platform["architecture"], "os": platform["os"]}
    if platform.get("variant"):
        image["variant"] = platform["variant"]
    if message:
        image["comment"] = entry["comment"] = message
    image.update({"config": config["config"], "created": created,
                  "history": [entry], "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    return image


def import_tarball(store: ImageStore, source: BinaryIO, *, reference: str | None = None, changes: Iterable[str] = (),
                   message: str = "", platform: str | None = None) -> Image:
    """Store the tar read from ``source`` as a one-layer image named ``reference`` (or none).

    ``platform`` (``linux/arm64``) only labels the image; another OS than linux is refused.
    """
    chosen = host_platform() if not platform else parse_platform(platform)
    if chosen["os"] != "linux":
        raise InvalidConfig("operating system is not supported")  # dockerd's words, a 400
    changes = list(changes)
    apply_changes({"config": {}}, changes)          # a bad change is refused before reading the tar
    scratch = tempfile.mkdtemp(prefix=".import-", dir=store.root)
    added: list[str] = []
    try:
        with _plain_tar(source, os.path.join(scratch, "layer.tar")) as plain:
            start = plain.tell()
            try:   # every check a layer gets, and its diff_id; the tree is thrown away
                checked = unpack_layer(plain, os.path.join(scratch, "tree"))
            except LayerError as error:
                raise TarImportError(f"Error processing tar file: {error}") from None
            plain.seek(start)
            existed = store.has_blob(checked.diff_id)
            layer = store.put_blob(plain, media_type=OCI_LAYER, expected_digest=checked.diff_id)  # plain: digest = diff_id
        if not existed:
            added.append(layer.digest)
        config = import_config(changes, message, chosen, timestamp(), checked.diff_id)
        return store.add_image(config, [layer], [reference] if reference else [])
    except BaseException:
        discard_new_blobs(store, added)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _plain_tar(source: BinaryIO, scratch_file: str):
    """The tar uncompressed, as a seekable file: ``source`` itself when it is a plain tar in a
    seekable file (the daemon's spooled body: no copy), else a copy inflated into ``scratch_file``."""
    try:
        start = source.tell() if source.seekable() else None
    except (AttributeError, OSError):
        start = None
    head = source.read(6)
    if start is not None and _compression(head) is None:
        source.seek(start)
        return contextlib.nullcontext(source)
    _inflate(head, source, scratch_file)
    return open(scratch_file, "rb")


def _compression(head: bytes) -> str | None:
    """"gzip", "bzip2", "xz" or None (a plain tar) from the first bytes; zstd is refused."""
    if head.startswith(ZSTD_MAGIC):
        raise TarImportError("Error processing tar file: zstd-compressed input is not supported "
                             "(Python's standard library has no zstd); give a plain, gzip, bzip2 or xz tar")
    return ("gzip" if head.startswith(GZIP_MAGIC) else "bzip2" if head.startswith(BZIP2_MAGIC)
            else "xz" if head.startswith(XZ_MAGIC) else None)


def _inflate(head: bytes, source: BinaryIO, plain: str) -> None:
    """Write ``head`` and the rest of ``source`` to the file ``plain``, uncompressed."""
    kind = _compression(head)
    decompressor = _decompressor(kind)
    with open(plain, "wb") as out:
        chunk = head
        while chunk:
            try:
                out.write(decompressor.decompress(chunk) if decompressor else chunk)
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:   # bz2 says OSError
                raise TarImportError(f"Error processing tar file: the {kind} input is corrupt: {error}") from None
            if decompressor is not None and decompressor.eof and decompressor.unused_data:
                chunk = decompressor.unused_data      # the next member (pigz, cat a.gz b.gz)
                decompressor = _decompressor(kind)
                continue
            chunk = source.read(_CHUNK)
    if decompressor is not None and not decompressor.eof:
        raise TarImportError(f"Error processing tar file: the {kind} input is truncated")


def _decompressor(kind: str | None):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return None
