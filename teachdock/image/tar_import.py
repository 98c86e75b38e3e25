"""``docker import``: a plain tar of a filesystem becomes a one-layer image.

``docker export`` writes a container's whole root filesystem as one tar; ``docker import``
turns such a tar (or any tar of a root filesystem: a debootstrap, a ``tar -C rootfs -c .``)
into an image with exactly one layer, as dockerd's ``ImportImage`` does:

- the layer's diff_id is the sha256 of the tar *as given* (uncompressed first if it came
  gzip-, bzip2- or xz-compressed), so the same tar imported twice gives the same layer;
- the config starts empty — no ``PATH``, no ``Cmd``: only what ``changes`` (Dockerfile
  lines such as ``CMD ["sh"]``, ``ENV A=b``, as ``docker import -c``) put there — with one
  history entry whose comment is the message (dockerd: "Imported from -" when none is given);
- the image id differs on every import, because ``created`` is now.

The tar is untrusted input. Before anything is stored it is unpacked into a scratch
directory with the same checks every layer passes (``layers.unpack_layer``): no absolute
names, no ``..``, no device nodes, no hardlink or symlink out of the tree. dockerd is
laxer here — it unpacks in a chroot, so ``/etc/x`` and ``../x`` land inside the root and
device nodes are made — but an image teachdock stores must unpack in teachdock's
snapshotter, which refuses all three; refusing at the door keeps a broken image out.
On any error nothing is left: no blob, no name, no scratch directory.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import shutil
import tempfile
import zlib
from typing import BinaryIO, Iterable

from teachdock.image.commit import store_layer
from teachdock.image.dockerfile import apply_changes, timestamp
from teachdock.image.incoming import discard_new_blobs
from teachdock.image.layers import GZIP_MAGIC, ZSTD_MAGIC, LayerDiff, LayerError, unpack_layer
from teachdock.image.manifest import Image
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
        raise InvalidReference("operating system is not supported")  # dockerd's words, a 400
    changes = list(changes)
    apply_changes({"config": {}}, changes)          # a bad change is refused before reading the tar
    scratch = tempfile.mkdtemp(prefix=".import-", dir=store.root)
    added: list[str] = []
    try:
        plain = os.path.join(scratch, "layer.tar")
        diff = _inflate(source, plain)
        try:
            unpack_layer(plain, os.path.join(scratch, "tree"))   # every check a layer gets; then thrown away
        except LayerError as error:
            raise TarImportError(f"Error processing tar file: {error}") from None
        layer = store_layer(store, lambda out: _copy(plain, out, diff))
        added.append(layer.descriptor.digest)
        created = timestamp()
        config = import_config(changes, message, chosen, created, layer.diff_id)
        image = store.add_image(config, [layer.descriptor], [reference] if reference else [])
        return image
    except BaseException:
        discard_new_blobs(store, added)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _inflate(source: BinaryIO, plain: str) -> LayerDiff:
    """Copy ``source`` to the file ``plain`` uncompressed; its sha256 is the layer's diff_id."""
    head = source.read(6)
    if head.startswith(ZSTD_MAGIC):
        raise TarImportError("Error processing tar file: zstd-compressed input is not supported "
                             "(Python's standard library has no zstd); give a plain, gzip, bzip2 or xz tar")
    kind = ("gzip" if head.startswith(GZIP_MAGIC) else "bzip2" if head.startswith(BZIP2_MAGIC)
            else "xz" if head.startswith(XZ_MAGIC) else None)
    decompressor = _decompressor(kind)
    hasher, size = hashlib.sha256(), 0
    try:
        with open(plain, "wb") as out:
            chunk = head
            while chunk:
                data = decompressor.decompress(chunk) if decompressor else chunk
                hasher.update(data)
                size += len(data)
                out.write(data)
                if decompressor is not None and decompressor.eof and decompressor.unused_data:
                    chunk = decompressor.unused_data      # the next member (pigz, cat a.gz b.gz)
                    decompressor = _decompressor(kind)
                    continue
                chunk = source.read(_CHUNK)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        raise TarImportError(f"Error processing tar file: the {kind} input is corrupt: {error}") from None
    if decompressor is not None and not decompressor.eof:
        raise TarImportError(f"Error processing tar file: the {kind} input is truncated")
    return LayerDiff("sha256:" + hasher.hexdigest(), size)


def _decompressor(kind: str | None):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    return None


def _copy(path: str, out: BinaryIO, diff: LayerDiff) -> LayerDiff:
    with open(path, "rb") as source:
        shutil.copyfileobj(source, out, _CHUNK)
    return diff
