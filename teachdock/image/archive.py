"""Image archives: the format ``docker save`` writes, and ``save`` itself.

``save`` writes what Docker 25+ writes: ONE tar that is both a docker-archive and an OCI
image layout (moby ``image/tarexport/save.go``)::

    oci-layout                    {"imageLayoutVersion": "1.0.0"}
    index.json                    one manifest descriptor per tag (untagged: no annotations)
    manifest.json                 [{"Config": "blobs/sha256/<image id>", "RepoTags": [...],
                                    "Layers": ["blobs/sha256/<diff_id>", ...]}]
    repositories                  {"busybox": {"latest": "<hex of the top layer>"}} (legacy)
    blobs/sha256/<hex>            manifests, configs, and the layers UNCOMPRESSED (hex = diff_id)

So ``docker load``, ``podman load``, ``skopeo ... docker-archive:`` and ``oci-archive:``
(and, unpacked, ``oci:`` and ``umoci``) all read it. The config blob is copied byte for
byte, so the image ID survives the trip.

``docker load`` (reading such archives, which are untrusted input) is ``archive_load.py``.

Shared with ``registry.py`` and kept beside it: the progress events (``progress.py``),
platforms and choosing a manifest from an index (``platforms.py``), and the checks of
what comes in (``incoming.py``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from teachdock.errors import InvalidConfig, NotFound
from teachdock.image.digest import DigestMismatch, check_sha256, sha256_digest
from teachdock.image.incoming import sniff_compression
from teachdock.image.layers import ZSTD_MAGIC, LayerError
from teachdock.image.manifest import (CONTAINERD_NAME_ANNOTATION, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_ZSTD,
                                      OCI_MANIFEST, REF_NAME_ANNOTATION, Descriptor, Image)
from teachdock.image.progress import Progress, ProgressReader, short_id
from teachdock.image.reference import InvalidReference, Reference, parse_reference
from teachdock.image.store import ImageStore

DOCKER_MANIFEST_FILE = "manifest.json"
OCI_INDEX_FILE = "index.json"
OCI_LAYOUT_FILE = "oci-layout"
REPOSITORIES_FILE = "repositories"
OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'
#: Bytes per read when copying a layer into or out of an archive.
COPY_CHUNK = 1 << 20


# ------------------------------------------------------------------ save

@dataclass
class _Saved:
    image: Image
    refs: list[Reference] = field(default_factory=list)   # tagged names to write


def save(store: ImageStore, names: Iterable[str], out: str | os.PathLike | BinaryIO, *,
         progress: Progress | None = None) -> list[dict]:
    """``docker save``: write the images to ``out`` (a path, or a binary stream).

    ``names`` are tags (``busybox`` = ``busybox:latest``), image ids, or a repository
    without a tag (all its tags). Images saved by id carry no tag, as in Docker.
    A path is written to a temp file beside it and renamed, so it appears only complete.
    Returns what was written to manifest.json.
    """
    selected = _select_images(store, names)
    if isinstance(out, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(out))
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise NotFound(f"cannot write {path}: the directory {directory} does not exist")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        try:
            with open(fd, "wb") as stream:
                written = _write_archive(store, selected, stream, directory, progress)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return written
    return _write_archive(store, selected, out, None, progress)


def _select_images(store: ImageStore, names: Iterable[str]) -> list[_Saved]:
    names = list(names)
    if not names:
        raise InvalidConfig("save needs at least one image name or id")
    selected: dict[str, _Saved] = {}
    for text in names:
        try:
            ref = parse_reference(text, default_tag=None)
        except InvalidReference:
            ref = None
        if ref is not None and ref.tag is None and ref.digest is None:
            # A bare repository: every tag of it (``docker save busybox`` saves them all).
            found = False
            for image in store.list_images():
                for other in image.references:
                    if other.name == ref.name and other.tag:
                        _add(selected, image, other)
                        found = True
            if found:
                continue
        image = store.resolve(text)
        tagged = parse_reference(text) if ref is not None and ref.digest is None else None
        _add(selected, image, tagged if tagged is not None and str(tagged) in image.names else None)
    return list(selected.values())


def _add(selected: dict[str, _Saved], image: Image, ref: Reference | None) -> None:
    entry = selected.setdefault(image.id, _Saved(image))
    if ref is not None and all(str(r) != str(ref) for r in entry.refs):
        entry.refs.append(ref)


def _write_archive(store: ImageStore, selected: list[_Saved], stream: BinaryIO, tmp_dir: str | None,
                   progress: Progress | None) -> list[dict]:
    index_entries, manifest_json, repositories = [], [], {}
    written: dict[str, int] = {}           # member name -> size, so a shared layer is written once
    # Stream mode ("w|") never seeks, so ``out`` may be a pipe or an HTTP response.
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT, bufsize=COPY_CHUNK) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for entry in selected:
            image = entry.image
            config_bytes = store.read_blob(image.id)
            _add_bytes(tar, blob_name(image.id), config_bytes, written)
            layer_descriptors = []
            for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
                size = _add_layer(tar, store, layer, diff_id, written, tmp_dir, progress)
                layer_descriptors.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": size})
            manifest_bytes = _archive_manifest(store, image, config_bytes, layer_descriptors)
            manifest_digest = sha256_digest(manifest_bytes)
            _add_bytes(tar, blob_name(manifest_digest), manifest_bytes, written)

            platform = {"architecture": image.config.get("architecture", ""), "os": image.config.get("os", "")}
            if image.config.get("variant"):
                platform["variant"] = image.config["variant"]
            descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
                          "platform": platform}
            for ref in entry.refs:
                index_entries.append({**descriptor, "annotations": {CONTAINERD_NAME_ANNOTATION: str(ref),
                                                                    REF_NAME_ANNOTATION: ref.tag}})
                if image.diff_ids:
                    top = image.diff_ids[-1].split(":", 1)[1]
                    repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
            if not entry.refs:
                index_entries.append(descriptor)
            manifest_json.append({"Config": blob_name(image.id),
                                  "RepoTags": [ref.familiar for ref in entry.refs] or None,
                                  "Layers": [blob_name(d) for d in image.diff_ids]})

        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
        _add_bytes(tar, OCI_INDEX_FILE, json.dumps(index, separators=(",", ":")).encode())
        _add_bytes(tar, DOCKER_MANIFEST_FILE, json.dumps(manifest_json, separators=(",", ":")).encode() + b"\n")
        _add_bytes(tar, OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)
        if repositories:
            _add_bytes(tar, REPOSITORIES_FILE, json.dumps(repositories, separators=(",", ":")).encode() + b"\n")
    return manifest_json


def _archive_manifest(store: ImageStore, image: Image, config_bytes: bytes, layers: list[dict]) -> bytes:
    """The OCI manifest inside the archive: the stored one when it already describes exactly
    these (uncompressed) layers, so its digest is kept; otherwise a new one, as Docker writes."""
    stored = image.manifest
    if (stored.get("mediaType") == OCI_MANIFEST and stored.get("config", {}).get("mediaType") == OCI_CONFIG
            and [(l.get("mediaType"), l.get("digest"), l.get("size")) for l in stored.get("layers", [])]
            == [(l["mediaType"], l["digest"], l["size"]) for l in layers]):
        return store.read_blob(image.manifest_digest)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image.id, "size": len(config_bytes)},
                "layers": layers}
    return json.dumps(manifest, separators=(",", ":")).encode()


def _add_layer(tar: tarfile.TarFile, store: ImageStore, layer: Descriptor, diff_id: str, written: dict[str, int],
               tmp_dir: str | None, progress: Progress | None) -> int:
    """Write one layer, uncompressed, as blobs/sha256/<diff_id>; return its size."""
    name = blob_name(diff_id)
    if name in written:
        return written[name]
    what = f"layer {layer.digest}"
    if layer.media_type == OCI_LAYER_ZSTD:
        sniff_compression(ZSTD_MAGIC, what)
    with store.open_blob(layer.digest) as blob:
        compression = sniff_compression(blob.read(4), what)
        blob.seek(0)
        if compression is None:
            size = os.fstat(blob.fileno()).st_size
            _add_checked(tar, name, blob, size, diff_id, what, progress)
            written[name] = size
            return size
        with tempfile.TemporaryFile(dir=tmp_dir) as plain:
            try:
                with gzip.GzipFile(fileobj=blob, mode="rb") as unzipped:
                    shutil.copyfileobj(unzipped, plain, COPY_CHUNK)
            except (EOFError, OSError, zlib.error) as err:
                raise LayerError(f"{what} is truncated or corrupt gzip: {err}") from None
            size = plain.tell()
            plain.seek(0)
            _add_checked(tar, name, plain, size, diff_id, what, progress)
            written[name] = size
            return size


def _add_checked(tar: tarfile.TarFile, name: str, source: BinaryIO, size: int, digest: str, what: str,
                 progress: Progress | None) -> None:
    """Add a file to the tar, hashing it on the way: a corrupt stored blob aborts the save."""
    hasher = hashlib.sha256()

    class Hashing:
        def read(self, n: int = -1) -> bytes:
            data = source.read(n)
            hasher.update(data)
            return data

    reader = ProgressReader(Hashing(), progress, short_id(digest), "Saving layer", size)
    tar.addfile(_member(name, size), reader)
    actual = "sha256:" + hasher.hexdigest()
    if actual != digest:
        raise DigestMismatch(f"{what} (uncompressed, in the store)", digest, actual)


def _member(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0                     # the epoch, as Docker writes: same images, same archive
    info.uname = info.gname = ""
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.mode = 0o644
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_member(name, directory=True))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, written: dict[str, int] | None = None) -> None:
    if written is not None:
        if name in written:
            return
        written[name] = len(data)
    tar.addfile(_member(name, len(data)), io.BytesIO(data))


def blob_name(digest: str) -> str:
    """Where a blob lives inside an archive or an OCI layout."""
    return "blobs/sha256/" + check_sha256(digest)
