"""What a load or a pull brings into the store, checked: both read layers from outside.

A layer blob must be gzip or a plain tar (zstd needs a library Python lacks), must
uncompress to the config's diff_id, and when the load or pull fails half-way the blobs it
added that nothing references are deleted again: nothing is half-imported.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from typing import Iterable

from teachdock.image.digest import DigestMismatch
from teachdock.image.layers import GZIP_MAGIC, ZSTD_MAGIC, LayerError
from teachdock.image.store import ImageStore

_CHUNK = 1 << 20


def sniff_compression(head: bytes, what: str) -> str | None:
    """"gzip" or None (a plain tar) from a blob's first bytes; zstd is refused here."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        raise LayerError(f"{what} is zstd-compressed, which teachdock cannot read (Python's standard "
                         "library has no zstd); convert the image to gzip layers first, e.g. "
                         "skopeo copy --dest-compress-format gzip")
    return None


def check_diff_id(store: ImageStore, digest: str, diff_id: str, what: str = "layer") -> None:
    """The stored layer blob, uncompressed, must hash to the config's diff_id."""
    with store.open_blob(digest) as blob:
        compression = sniff_compression(blob.read(4), what)
        if compression is None:
            actual = digest                    # a plain tar is its own diff_id
        else:
            blob.seek(0)
            hasher = hashlib.sha256()
            try:
                with gzip.GzipFile(fileobj=blob, mode="rb") as plain:
                    while chunk := plain.read(_CHUNK):
                        hasher.update(chunk)
            except (EOFError, OSError, zlib.error) as err:
                raise LayerError(f"{what} {digest} is truncated or corrupt gzip: {err}") from None
            actual = "sha256:" + hasher.hexdigest()
    if actual != diff_id:
        raise DigestMismatch(f"{what} {digest} (diff_id of the uncompressed tar)", diff_id, actual)


def discard_new_blobs(store: ImageStore, digests: Iterable[str]) -> None:
    """After a failed load or pull: delete the blobs it added that nothing references."""
    digests = [d for d in dict.fromkeys(digests) if store.has_blob(d)]
    if not digests:
        return
    live = set()
    for image in store.list_images():
        live.update({image.manifest_digest, image.id, *(layer.digest for layer in image.layers)})
    for digest in digests:
        if digest not in live and not store.holders(digest):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(store.blob_path(digest))
