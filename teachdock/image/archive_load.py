"""``docker load``: import the images of an archive or OCI image layout into the store.

``load`` reads what ``save`` writes (see ``archive.py`` for the format), older docker saves
(``<id>/layer.tar``, ``<id>.json``), skopeo's and podman's docker-archives, and plain OCI
layouts, as a tar (plain or gzipped) or a directory. An archive is untrusted input: member
names with ``..`` or an absolute path, links that leave the archive, duplicate names, missing
blobs, and content that does not hash to its digest are refused, and on any error the blobs
this load added are removed again: nothing is half-imported. Layers are checked twice: the
blob against its digest (when the archive names one) and the uncompressed tar against the
config's diff_id.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from teachdock.errors import InvalidConfig, NotFound
from teachdock.image.archive import COPY_CHUNK, DOCKER_MANIFEST_FILE, OCI_INDEX_FILE, OCI_LAYOUT_FILE, blob_name
from teachdock.image.digest import DigestMismatch, InvalidDigest, check_sha256, sha256_digest
from teachdock.image.incoming import check_diff_id, discard_new_blobs, sniff_compression
from teachdock.image.layers import GZIP_MAGIC, ZSTD_MAGIC, UnsafeLayer, member_path
from teachdock.image.manifest import (CONFIG_TYPES, CONTAINERD_NAME_ANNOTATION, INDEX_TYPES, MANIFEST_TYPES, OCI_CONFIG,
                                      OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST, REF_NAME_ANNOTATION,
                                      Descriptor)
from teachdock.image.platforms import select_manifest
from teachdock.image.progress import Progress, ProgressEvent, ProgressReader, short_id
from teachdock.image.reference import InvalidReference, parse_reference
from teachdock.image.store import ImageStore
from teachdock.runtime.securejoin import SymlinkLoop, secure_join

#: Manifests, configs and indexes are small; anything bigger in their place is refused.
MAX_JSON_BYTES = 16 << 20
_MAX_LINKS = 40


class ArchiveError(InvalidConfig):
    """An image archive or OCI layout is malformed, incomplete, or uses what we cannot read."""


class UnsafeArchive(ArchiveError):
    """An archive member would land outside the archive, or is something an image never holds."""


# ------------------------------------------------------------------ reading archives

class _TarSource:
    """Random access to a tar's members by name, every name checked before anything is read."""

    def __init__(self, fileobj: BinaryIO):
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise ArchiveError(f"not a readable tar archive: {err}") from None
        self._files: dict[str, tarfile.TarInfo] = {}
        self._links: dict[str, str] = {}
        self._dirs: set[str] = set()
        for member in members:
            try:
                name = member_path(member.name, "archive member")
            except UnsafeLayer as err:
                raise UnsafeArchive(f"refusing the archive: {err}") from None
            if name in self._files or name in self._links:
                raise UnsafeArchive(f"refusing the archive: member {member.name!r} appears twice")
            if member.isdir():
                self._dirs.add(name)
            elif member.isreg():
                self._files[name] = member
            elif member.issym():
                self._links[name] = self._link_target(name, posixpath.join(posixpath.dirname(name), member.linkname)
                                                      if not member.linkname.startswith("/") else member.linkname,
                                                      member.name)
            elif member.islnk():
                self._links[name] = self._link_target(name, member.linkname, member.name)
            else:
                raise UnsafeArchive(f"refusing the archive: member {member.name!r} is a device, fifo or other "
                                    "special file, which an image archive never holds")

    @staticmethod
    def _link_target(name: str, target: str, raw_name: str) -> str:
        normal = posixpath.normpath(target)
        if target.startswith("/") or normal == ".." or normal.startswith("../"):
            raise UnsafeArchive(f"refusing the archive: link {raw_name!r} points outside it ({target!r})")
        return normal

    def _resolve(self, name: str) -> str:
        """Follow links (also in parent directories) within the archive."""
        parts, done, hops = name.split("/"), [], 0
        while parts:
            done.append(parts.pop(0))
            path = "/".join(done)
            if path in self._links:
                hops += 1
                if hops > _MAX_LINKS:
                    raise UnsafeArchive(f"refusing the archive: too many levels of links resolving {name!r}")
                target = self._links[path]
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                done = []
        return "/".join(done)

    def exists(self, name: str) -> bool:
        return self._resolve(name) in self._files

    def size(self, name: str) -> int:
        return self._member(name).size

    def open(self, name: str) -> BinaryIO:
        return self._tar.extractfile(self._member(name))

    def _member(self, name: str) -> tarfile.TarInfo:
        try:
            return self._files[self._resolve(name)]
        except KeyError:
            raise ArchiveError(f"the archive has no file {name!r} (a blob or file it refers to is missing)") from None

    def close(self) -> None:
        self._tar.close()


class _DirectorySource:
    """An unpacked archive or OCI layout directory; paths resolved without leaving it."""

    def __init__(self, root: str):
        self._root = os.path.realpath(root)

    def _path(self, name: str) -> str:
        try:
            return secure_join(self._root, member_path(name, "path"))
        except (UnsafeLayer, SymlinkLoop) as err:
            raise UnsafeArchive(f"refusing the layout: {err}") from None

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def size(self, name: str) -> int:
        return os.stat(self._require(name)).st_size

    def open(self, name: str) -> BinaryIO:
        return open(self._require(name), "rb")

    def _require(self, name: str) -> str:
        path = self._path(name)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise ArchiveError(f"the layout has no file {name!r} (a blob or file it refers to is missing)") from None
        if not stat.S_ISREG(mode):
            raise UnsafeArchive(f"refusing the layout: {name!r} is not a regular file")
        return path

    def close(self) -> None:
        pass


def _read_small(source, name: str, what: str) -> bytes:
    if source.size(name) > MAX_JSON_BYTES:
        raise ArchiveError(f"{what} {name!r} is larger than {MAX_JSON_BYTES >> 20} MiB; refusing to read it")
    with source.open(name) as stream:
        return stream.read()


def _parse_json(data: bytes, what: str):
    try:
        return json.loads(data)
    except ValueError as err:
        raise ArchiveError(f"{what} is not valid JSON: {err}") from None


# ------------------------------------------------------------------ load

@dataclass
class _LayerPlan:
    path: str                      # member name in the archive
    digest: str | None             # expected blob digest, when the archive states one
    diff_id: str                   # from the config


@dataclass
class _ImagePlan:
    config_bytes: bytes
    layers: list[_LayerPlan]
    names: list[str]               # full references
    manifest_bytes: bytes | None = None      # byte-exact manifest, when the archive has one
    manifest_media_type: str = OCI_MANIFEST
    layer_media_types: list[str] = field(default_factory=list)


def load(store: ImageStore, source: str | os.PathLike | BinaryIO, *,
         progress: Progress | None = None) -> list[str]:
    """``docker load``: import every image of an archive or OCI layout into ``store``.

    ``source`` is a tar file (plain or gzipped), an unpacked directory, or a binary stream
    (e.g. stdin). Returns what was loaded as Docker reports it: ``busybox:latest`` for each
    tag, or the image id (``sha256:...``) for an image without one.
    """
    with contextlib.ExitStack() as stack:
        reader = _open_source(source, store, stack)
        stack.callback(reader.close)
        if reader.exists(DOCKER_MANIFEST_FILE):
            plans = _plan_docker_archive(reader)
        elif reader.exists(OCI_INDEX_FILE):
            plans = _plan_oci_layout(reader)
        else:
            raise ArchiveError("neither manifest.json nor index.json found: this is not a docker save archive "
                               "or an OCI image layout (docker saves older than 1.10 are not supported)")
        if not plans:
            raise ArchiveError("the archive holds no image")

        added: list[str] = []
        try:
            registered = []
            for plan in plans:
                registered.append((_store_plan(store, reader, plan, added, progress), plan.names))
            loaded = []
            for descriptor, names in registered:
                image = store.register(descriptor, names)
                loaded.extend([parse_reference(n).familiar for n in names] or [image.id])
            return loaded
        except BaseException:
            discard_new_blobs(store, added)
            raise


def _open_source(source, store: ImageStore, stack: contextlib.ExitStack):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            return _DirectorySource(path)
        try:
            stream = stack.enter_context(open(path, "rb"))
        except FileNotFoundError:
            raise NotFound(f"archive {path} does not exist") from None
    else:
        stream = source
    head = stream.read(4)
    seekable = getattr(stream, "seekable", lambda: False)()
    if head.startswith(ZSTD_MAGIC):
        raise ArchiveError("the archive is zstd-compressed; decompress it first (zstd -d)")
    if head.startswith(GZIP_MAGIC) or not seekable:
        # Random access needs a plain, seekable file: spool it (unlinked at once, no leftovers).
        spool = stack.enter_context(tempfile.TemporaryFile(dir=store.root, prefix=".load-"))
        rest = _Prepend(head, stream)
        try:
            if head.startswith(GZIP_MAGIC):
                with gzip.GzipFile(fileobj=rest, mode="rb") as unzipped:
                    shutil.copyfileobj(unzipped, spool, COPY_CHUNK)
            else:
                shutil.copyfileobj(rest, spool, COPY_CHUNK)
        except (EOFError, OSError, zlib.error) as err:
            raise ArchiveError(f"the gzipped archive is truncated or corrupt: {err}") from None
        spool.seek(0)
        stream = spool
    else:
        stream.seek(-len(head), os.SEEK_CUR)
    return _TarSource(stream)


class _Prepend:
    def __init__(self, head: bytes, stream):
        self._head, self._stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
        else:
            data, self._head = self._head[:size], self._head[size:]
        return data


def _plan_docker_archive(reader) -> list[_ImagePlan]:
    """manifest.json (any Docker version, skopeo, podman); byte-exact manifests from
    index.json when the archive is also an OCI layout and they match."""
    entries = _parse_json(_read_small(reader, DOCKER_MANIFEST_FILE, "file"), DOCKER_MANIFEST_FILE)
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json must be a JSON array of images")
    exact = _exact_manifests(reader)
    plans = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise ArchiveError(f"manifest.json entry {entry!r} needs \"Config\" and \"Layers\"")
        config_bytes = _read_small(reader, entry["Config"], "image config")
        config = _parse_json(config_bytes, f"image config {entry['Config']!r}")
        diff_ids = _diff_ids(config, len(entry["Layers"]), entry["Config"])
        names = []
        for tag in entry.get("RepoTags") or []:
            try:
                ref = parse_reference(tag)
            except InvalidReference as err:
                raise ArchiveError(f"manifest.json has an invalid tag {tag!r}: {err}") from None
            names.append(str(ref))
        config_digest = sha256_digest(config_bytes)
        layers = [_LayerPlan(path, _digest_from_path(path), diff_id)
                  for path, diff_id in zip(entry["Layers"], diff_ids)]
        plan = _ImagePlan(config_bytes, layers, names)
        match = exact.get(config_digest)
        if match is not None:
            media_type, manifest_bytes, manifest = match
            if [l.get("digest") for l in manifest.get("layers", [])] == [l.digest for l in layers]:
                plan.manifest_bytes, plan.manifest_media_type = manifest_bytes, media_type
                plan.layer_media_types = [l.get("mediaType", OCI_LAYER) for l in manifest["layers"]]
        plans.append(plan)
    return plans


def _exact_manifests(reader) -> dict[str, tuple[str, bytes, dict]]:
    """config digest -> (media type, bytes, parsed) of each verified manifest index.json lists."""
    if not reader.exists(OCI_INDEX_FILE):
        return {}
    index = _parse_json(_read_small(reader, OCI_INDEX_FILE, "file"), OCI_INDEX_FILE)
    found = {}
    descriptors = index.get("manifests") if isinstance(index, dict) else None
    for descriptor in descriptors if isinstance(descriptors, list) else []:
        if not isinstance(descriptor, dict) or descriptor.get("mediaType") not in MANIFEST_TYPES:
            continue
        try:
            data = _read_blob(reader, descriptor)
        except ArchiveError:
            continue                     # manifest.json is authoritative; the index is a bonus
        manifest = _parse_json(data, f"manifest {descriptor['digest']}")
        config_digest = (manifest.get("config") or {}).get("digest")
        if config_digest:
            found[config_digest] = (descriptor["mediaType"], data, manifest)
    return found


def _plan_oci_layout(reader) -> list[_ImagePlan]:
    """A plain OCI image layout: names from index.json's annotations."""
    layout = _parse_json(_read_small(reader, OCI_LAYOUT_FILE, "file"), OCI_LAYOUT_FILE) \
        if reader.exists(OCI_LAYOUT_FILE) else None
    if layout is not None and not str((layout or {}).get("imageLayoutVersion", "")).startswith("1."):
        raise ArchiveError(f"unsupported OCI layout version {layout!r}")
    index = _parse_json(_read_small(reader, OCI_INDEX_FILE, "file"), OCI_INDEX_FILE)
    if not isinstance(index, dict):
        raise ArchiveError("index.json must be a JSON object (an OCI image index)")
    plans: dict[str, _ImagePlan] = {}
    for descriptor in index.get("manifests") or []:
        if not isinstance(descriptor, dict):
            raise ArchiveError(f"index.json has a malformed descriptor {descriptor!r}")
        _check_descriptor(descriptor)
        names = _names_from_annotations(descriptor.get("annotations") or {})
        media_type = descriptor.get("mediaType")
        if media_type in INDEX_TYPES:
            nested = _parse_json(_read_blob(reader, descriptor), f"index {descriptor.get('digest')}")
            descriptor = select_manifest(nested, what=f"the index {descriptor.get('digest')}")
            _check_descriptor(descriptor)
            media_type = descriptor.get("mediaType")
        if media_type not in MANIFEST_TYPES:
            continue                     # unknown media types must not cause errors (image-layout.md)
        digest = descriptor["digest"]
        if digest in plans:
            plans[digest].names.extend(n for n in names if n not in plans[digest].names)
            continue
        manifest_bytes = _read_blob(reader, descriptor)
        manifest = _parse_json(manifest_bytes, f"manifest {digest}")
        config_descriptor = manifest.get("config") or {}
        if config_descriptor.get("mediaType") not in CONFIG_TYPES:
            continue                     # an artifact, not an image
        config_bytes = _read_blob(reader, config_descriptor)
        config = _parse_json(config_bytes, f"image config {config_descriptor.get('digest')}")
        layer_descriptors = manifest.get("layers") or []
        diff_ids = _diff_ids(config, len(layer_descriptors), config_descriptor.get("digest"))
        layers = []
        for layer, diff_id in zip(layer_descriptors, diff_ids):
            _check_descriptor(layer)
            if layer.get("mediaType") == OCI_LAYER_ZSTD:
                sniff_compression(ZSTD_MAGIC, f"layer {layer['digest']}")
            layers.append(_LayerPlan(blob_name(layer["digest"]), layer["digest"], diff_id))
        plans[digest] = _ImagePlan(config_bytes, layers, names, manifest_bytes, media_type,
                                   [l.get("mediaType", OCI_LAYER) for l in layer_descriptors])
    return list(plans.values())


def _names_from_annotations(annotations: dict) -> list[str]:
    """io.containerd.image.name is a full reference; org.opencontainers.image.ref.name may be
    one (skopeo writes ``busybox:latest``) or just a tag (Docker writes ``latest``), which
    names no repository and so gives no name."""
    for key in (CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION):
        value = annotations.get(key)
        if not value or (key == REF_NAME_ANNOTATION and not re.search(r"[/:@]", value)):
            continue
        try:
            return [str(parse_reference(value))]
        except InvalidReference:
            continue
    return []


def _check_descriptor(descriptor: dict) -> None:
    try:
        check_sha256(descriptor.get("digest"))
        size = int(descriptor.get("size"))
    except (InvalidDigest, TypeError, ValueError) as err:
        raise ArchiveError(f"malformed descriptor {descriptor!r}: {err}") from None
    if size < 0:
        raise ArchiveError(f"malformed descriptor {descriptor!r}: negative size")


def _read_blob(reader, descriptor: dict) -> bytes:
    """A small blob (manifest, config, index) named by a descriptor, checked against it."""
    _check_descriptor(descriptor)
    digest = descriptor["digest"]
    data = _read_small(reader, blob_name(digest), f"blob {digest}")
    if len(data) != int(descriptor["size"]):
        raise ArchiveError(f"blob {digest} is {len(data)} bytes, but its descriptor says {descriptor['size']}")
    actual = sha256_digest(data)
    if actual != digest:
        raise DigestMismatch(f"blob {blob_name(digest)} in the archive", digest, actual)
    return data


def _diff_ids(config: dict, layer_count: int, where) -> list[str]:
    diff_ids = ((config or {}).get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != layer_count:
        raise ArchiveError(f"image config {where} lists {len(diff_ids or [])} diff_ids for {layer_count} layers")
    for diff_id in diff_ids:
        try:
            check_sha256(diff_id)
        except InvalidDigest as err:
            raise ArchiveError(f"image config {where}: {err}") from None
    return diff_ids


def _digest_from_path(path: str) -> str | None:
    """Docker 25+ names layer files blobs/sha256/<hex>: then the content must hash to it."""
    match = re.fullmatch(r"(?:\./)?blobs/sha256/([0-9a-f]{64})", path)
    return "sha256:" + match.group(1) if match else None


def _store_plan(store: ImageStore, reader, plan: _ImagePlan, added: list[str],
                progress: Progress | None) -> Descriptor:
    """Copy one image's blobs into the store, checking every digest; return its manifest."""
    config = store.put_blob(plan.config_bytes, media_type=OCI_CONFIG)
    added.append(config.digest)
    layer_descriptors = []
    for i, layer in enumerate(plan.layers):
        what = f"layer {layer.path!r}"
        with reader.open(layer.path) as head_stream:
            compression = sniff_compression(head_stream.read(4), what)
        media_type = plan.layer_media_types[i] if plan.layer_media_types else \
            (OCI_LAYER_GZIP if compression == "gzip" else OCI_LAYER)
        if layer.digest is not None and store.has_blob(layer.digest):
            descriptor = Descriptor(media_type, layer.digest, store.blob_size(layer.digest))
            if progress is not None:
                progress(ProgressEvent(short_id(layer.digest), "Already exists"))
        else:
            size = reader.size(layer.path)
            with reader.open(layer.path) as stream:
                counted = ProgressReader(stream, progress, short_id(layer.digest or layer.diff_id),
                                         "Loading layer", size)
                descriptor = store.put_blob(counted, media_type=media_type, expected_digest=layer.digest)
            added.append(descriptor.digest)
        check_diff_id(store, descriptor.digest, layer.diff_id, what)
        layer_descriptors.append(descriptor)

    if plan.manifest_bytes is not None:
        manifest = store.put_blob(plan.manifest_bytes, media_type=plan.manifest_media_type,
                                  expected_digest=sha256_digest(plan.manifest_bytes))
    else:
        document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
                    "layers": [d.to_json() for d in layer_descriptors]}
        manifest = store.put_json(document, OCI_MANIFEST)
    added.append(manifest.digest)
    return manifest
