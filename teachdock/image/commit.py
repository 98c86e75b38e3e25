"""Commit: a container's changes become a new image layer, like ``docker commit``.

A container's changes are exactly its snapshot's upper dir (overlay), or the difference
between its copy and the image (copy driver). ``commit`` turns them into a layer tarball
with OCI whiteouts, gzips it into the content store, and writes a new config: the parent
image's config, one more diff_id, one more history entry, and any ``--change`` instructions
(``CMD ["sh"]``, ``ENV A=b`` ...) applied on top. The Dockerfile builder makes every RUN,
COPY and ADD layer the same way (:func:`store_layer`).

Commit does not pause the container: commit a stopped container, or one that is not
writing, to get a consistent layer.
"""

from __future__ import annotations

import copy
import gzip
import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

from teachdock.errors import InvalidConfig
from teachdock.image.dockerfile import apply_changes, timestamp
from teachdock.image.layers import LayerDiff, diff_layer
from teachdock.image.manifest import OCI_LAYER_GZIP, Descriptor, Image
from teachdock.image.store import ImageStore

#: gzip level of stored layers: Go's (and so Docker's) default.
GZIP_LEVEL = 6
#: The fields of a container's config that ``docker commit`` writes into the new image's
#: config (dockerd commits the container's config, not its image's: a ``docker run ... sh -c
#: 'x'`` committed has ``Cmd ["sh", "-c", "x"]``).
COMMITTED_FIELDS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "Volumes", "WorkingDir", "Entrypoint",
                    "OnBuild", "Labels", "StopSignal")


@dataclass(frozen=True)
class NewLayer:
    """A layer just written to the store: its blob (gzip) and its diff_id (plain tar)."""

    descriptor: Descriptor
    diff_id: str
    size: int                   # bytes of the uncompressed tar


def store_layer(store: ImageStore, write_tar: Callable[[BinaryIO], LayerDiff | None]) -> NewLayer | None:
    """Gzip the tar ``write_tar(stream)`` writes into the store; None if it wrote nothing.

    The gzip header carries no file name and time 0, so the same tar always gives the same
    blob digest (a reproducible layer).
    """
    fd, temporary = tempfile.mkstemp(prefix=".layer-", suffix=".tar.gz", dir=store.root)
    try:
        with open(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as packed:
                diff = write_tar(packed)
        if diff is None:
            return None
        descriptor = store.put_blob(temporary, media_type=OCI_LAYER_GZIP)
        return NewLayer(descriptor, diff.diff_id, diff.size)
    finally:
        os.unlink(temporary)


def layer_from_tree(store: ImageStore, tree: str | os.PathLike) -> NewLayer:
    """A whole directory tree as one layer (the busybox base image). Entries are sorted and
    times kept, so an unchanged tree gives the same digests every time."""
    return store_layer(store, lambda out: diff_layer(tree, out))


def commit(store: ImageStore, snapshots, container_id: str, reference: str | None = None, *,
           author: str = "", comment: str = "", changes: Iterable[str] = (), created_by: str = "",
           container_config: dict | None = None) -> Image:
    """``docker commit``: the container's changes as a new image, named ``reference`` if given.

    ``snapshots`` is the :class:`~teachdock.image.snapshots.Snapshotter` that made the
    container's root filesystem. ``changes`` are Dockerfile lines such as ``CMD ["sh"]``
    (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL). A container
    without changes still gives a new image, with an empty history entry and no new layer.
    ``container_config`` (the container's Config, as in inspect): its COMMITTED_FIELDS replace
    the parent image's, before ``changes`` apply, as dockerd commits.
    """
    snapshot = snapshots.get(container_id)
    if not snapshot.manifest_digest:
        raise InvalidConfig(f"container {container_id}'s snapshot was not made from an image, "
                            "so there is no parent image to commit onto")
    manifest = store.read_json(snapshot.manifest_digest)
    config = copy.deepcopy(store.read_json(snapshot.image_id))
    layers = [Descriptor.from_json(layer) for layer in manifest.get("layers", [])]

    if container_config is not None:
        committed = config.setdefault("config", {})
        for key in COMMITTED_FIELDS:
            value = container_config.get(key)
            if value in (None, "", [], {}) or (key == "StopSignal" and value == "SIGTERM"):  # SIGTERM: the default
                committed.pop(key, None)
            else:
                committed[key] = copy.deepcopy(value)
    config = apply_changes(config, list(changes))
    layer = store_layer(store, snapshot.diff)
    created = timestamp()
    entry: dict = {"created": created, "created_by": created_by}
    if author:
        entry["author"] = author
        config["author"] = author
    config.pop("comment", None)              # the parent's comment is not this image's
    if comment:
        entry["comment"] = comment
        config["comment"] = comment
    if layer is None:
        entry["empty_layer"] = True
    else:
        layers.append(layer.descriptor)
        config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(layer.diff_id)
    config.setdefault("history", []).append(entry)
    config["created"] = created
    return store.add_image(config, layers, [reference] if reference else [])
