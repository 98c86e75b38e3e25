"""The image store: content-addressed blobs in an OCI image layout, plus names.

On disk (``<data root>/images``) it is a plain OCI image layout, so ``skopeo inspect
oci:<dir>:docker.io/library/busybox:latest`` or ``umoci`` can read it too::

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 one manifest descriptor per name, annotated with the name
    blobs/sha256/<hex>         every manifest, config and layer, named by its sha256
    holders.json               (teachdock's own) who else still needs a blob, e.g. a container

An image is a *manifest* (config digest + ordered layer digests) whose *config* holds the
run settings, history and the layers' diff_ids (``manifest.py``: media types, descriptors,
``Image``). As in Docker, the image ID is the config's digest. Names are full normalised
references (``docker.io/library/busybox:latest``) kept in the
``org.opencontainers.image.ref.name`` and ``io.containerd.image.name`` annotations.

Removing an image only removes a name until the last one goes; then its blobs are deleted
unless another image, or a holder registered with ``add_holder`` (a container using the
image's layers), still references them: reference counting, as Docker does.

Every write is atomic (temp file in the same directory, fsync, rename) and every blob is
checked against its digest. Changes to index.json and holders.json happen under an
exclusive ``flock`` of the store directory, so a CLI and a daemon can share one store.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import gzip
import hashlib
import json
import os
import re
import tarfile
import tempfile
import zlib
from typing import BinaryIO, Iterable, Iterator

from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.files import write_atomically, write_json_atomically
from teachdock.image.digest import DigestMismatch, check_sha256, sha256_digest
from teachdock.image.manifest import (CONTAINERD_NAME_ANNOTATION, MANIFEST_TYPES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
                                      OCTET_STREAM, REF_NAME_ANNOTATION, Descriptor, Image)
from teachdock.image.reference import InvalidReference, Reference, parse_reference

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")


class BlobNotFound(NotFound):
    """A digest the store has no blob for."""


class ImageNotFound(NotFound):
    """No image by that name or id (Docker's wording: 'No such image: ...')."""


class ImageInUse(Conflict):
    """The image cannot go: a container (a holder) still uses it, or it has several names."""


class ImageStore:
    """Images and blobs in an OCI image layout under ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.fspath(root))
        self.blobs_dir = os.path.join(self.root, "blobs", "sha256")
        self._index_path = os.path.join(self.root, "index.json")
        self._holders_path = os.path.join(self.root, "holders.json")
        self._json_cache: dict[str, dict] = {}   # digest -> parsed JSON; content never changes
        os.makedirs(self.blobs_dir, exist_ok=True)
        with self._locked():
            layout = os.path.join(self.root, "oci-layout")
            if not os.path.exists(layout):
                write_atomically(layout, b'{"imageLayoutVersion":"1.0.0"}', mode=0o644)
            if not os.path.exists(self._index_path):
                self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    # ------------------------------------------------------------------ blobs

    def blob_path(self, digest: str) -> str:
        """Where the blob with this digest lives (whether or not it exists)."""
        return os.path.join(self.blobs_dir, check_sha256(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def blob_size(self, digest: str) -> int:
        try:
            return os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is not in the image store {self.root}") from None

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob for reading, e.g. to unpack a layer (the reader checks the digest)."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is not in the image store {self.root}") from None

    def content_size(self, digest: str) -> int:
        """What a layer blob takes once unpacked: the bytes of its files (hard links once).

        That is the SIZE ``docker images`` and ``docker history`` show (dockerd sums the
        unpacked layer directories), not the blob's size, which is usually compressed.
        Worked out once per layer by reading the tar, then kept under ``sizes/``.
        """
        cache = os.path.join(self.root, "sizes", check_sha256(digest))
        try:
            with open(cache) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            pass
        total = 0
        with self.open_blob(digest) as blob:
            head = blob.read(2)
            blob.seek(0)
            source = gzip.GzipFile(fileobj=blob, mode="rb") if head == b"\x1f\x8b" else blob
            try:
                with tarfile.open(fileobj=source, mode="r|") as tar:
                    for member in tar:
                        if member.isreg():
                            total += member.size
                        elif member.issym():
                            total += len(member.linkname)
            except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
                raise InvalidConfig(f"layer {digest} cannot be read as a tar: {error}") from None
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with contextlib.suppress(OSError):        # only a cache: two threads may race to write it
            write_atomically(cache, str(total), mode=0o644)
        return total

    def unpacked_size(self, image: "Image") -> int:
        """An image's size as Docker shows it: all its layers, unpacked."""
        return sum(self.content_size(layer.digest) for layer in image.layers)

    def read_blob(self, digest: str) -> bytes:
        """The whole blob, checked against its digest (for small blobs: manifests, configs)."""
        with self.open_blob(digest) as blob:
            data = blob.read()
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"stored blob {self.blob_path(digest)} (corrupt on disk)", digest,
                                 sha256_digest(data))
        return data

    def put_blob(self, data: bytes | BinaryIO | str | os.PathLike, *, media_type: str = OCTET_STREAM,
                 expected_digest: str | None = None) -> Descriptor:
        """Store bytes, a readable stream, or a file's content; return its descriptor.

        The content is written to a temp file beside its final place, hashed on the way,
        fsynced and renamed to its digest. With ``expected_digest`` a mismatch raises
        DigestMismatch and nothing is stored; an existing blob is not read again.
        """
        if expected_digest is not None:
            check_sha256(expected_digest)
            if self.has_blob(expected_digest):
                return Descriptor(media_type, expected_digest, self.blob_size(expected_digest))
        with contextlib.ExitStack() as stack:
            if isinstance(data, (bytes, bytearray, memoryview)):
                chunks: Iterable[bytes] = [bytes(data)]
            else:
                stream = stack.enter_context(open(data, "rb")) if isinstance(data, (str, os.PathLike)) else data
                chunks = iter(lambda: stream.read(1 << 20), b"")
            fd, tmp = tempfile.mkstemp(dir=self.blobs_dir, prefix=".tmp-")
            try:
                hasher, size = hashlib.sha256(), 0
                with open(fd, "wb") as out:
                    for chunk in chunks:
                        hasher.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                digest = "sha256:" + hasher.hexdigest()
                if expected_digest is not None and digest != expected_digest:
                    raise DigestMismatch("blob", expected_digest, digest)
                os.chmod(tmp, 0o644)
                os.rename(tmp, self.blob_path(digest))
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        _fsync_dir(self.blobs_dir)
        return Descriptor(media_type, digest, size)

    def put_json(self, obj: dict, media_type: str) -> Descriptor:
        """Store a JSON document (compact, key order kept, so equal input gives equal digests)."""
        return self.put_blob(json.dumps(obj, separators=(",", ":")).encode(), media_type=media_type)

    def read_json(self, digest: str) -> dict:
        """A stored JSON blob (manifest, config), digest-checked, parsed, cached."""
        if digest not in self._json_cache:
            try:
                self._json_cache[digest] = json.loads(self.read_blob(digest))
            except ValueError as err:
                raise InvalidConfig(f"blob {digest} is not valid JSON: {err}") from None
        return self._json_cache[digest]

    # ------------------------------------------------------------------ adding images

    def add_image(self, config: dict, layers: list[Descriptor], names: Iterable[str] = (), *,
                  annotations: dict | None = None) -> Image:
        """Write config and manifest for layers already stored, and name the image.

        This is how build, commit and the busybox bootstrap make an image.
        """
        diff_ids = config.get("rootfs", {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise InvalidConfig(f"image config lists {len(diff_ids or [])} diff_ids for {len(layers)} layers; "
                                "rootfs.diff_ids needs one per layer, base first")
        for layer in layers:
            self._require(layer.digest, "layer")
        config_descriptor = self.put_json(config, OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor.to_json(),
                    "layers": [Descriptor(layer.media_type, layer.digest, layer.size).to_json() for layer in layers]}
        if annotations:
            manifest["annotations"] = dict(annotations)
        return self.register(self.put_json(manifest, OCI_MANIFEST), names)

    def register(self, manifest: Descriptor, names: Iterable[str] = ()) -> Image:
        """Enter a stored manifest (e.g. pulled, byte-exact) into the index under ``names``.

        Its config and layers must be stored already. A name another image had moves here,
        and that image stays, untagged (dangling), as in Docker.
        """
        document = self.read_json(manifest.digest)
        media_type = document.get("mediaType", manifest.media_type)
        if media_type not in MANIFEST_TYPES:
            raise InvalidConfig(f"{manifest.digest} is a {media_type}, not an image manifest; "
                                "pick one platform's manifest from an index before registering it")
        config = self._require(document.get("config", {}).get("digest", ""), "config")
        for layer in document.get("layers", []):
            self._require(layer.get("digest", ""), "layer")
        refs = _name_references(names)
        entry = Descriptor(media_type, manifest.digest, manifest.size,
                           platform={"architecture": config.get("architecture", ""), "os": config.get("os", "")})
        with self._locked():
            index = self._read_index()
            if not any(e["digest"] == manifest.digest for e in index["manifests"]):
                index["manifests"].append(entry.to_json())
            for ref in refs:
                _set_name(index, str(ref), entry.to_json())
            self._write_index(index)
            return self._image(index, manifest.digest)

    def tag(self, image: str, new_name: str) -> Reference:
        """Give an image (name or id) another name; ``busybox`` means ``...busybox:latest``."""
        ref = parse_reference(new_name)
        if ref.digest:
            raise InvalidReference(f"refusing to create a tag with a digest reference: {new_name}")
        with self._locked():
            index = self._read_index()
            found = self._find(index, image)
            entry = next(e for e in index["manifests"] if e["digest"] == found)
            _set_name(index, str(ref), entry)
            self._write_index(index)
        return ref

    # ------------------------------------------------------------------ looking images up

    def resolve(self, image: str) -> Image:
        """The image a name, ``name@digest``, image id or unique id prefix refers to."""
        index = self._read_index()
        return self._image(index, self._find(index, image))

    def list_images(self) -> list[Image]:
        """Every image, in the order it entered the index; untagged ones have no names."""
        index = self._read_index()
        seen: dict[str, None] = {}
        for entry in index["manifests"]:
            seen.setdefault(entry["digest"])
        return [self._image(index, digest) for digest in seen]

    def inspect(self, image: str) -> dict:
        """``docker image inspect``'s JSON for one image."""
        img = self.resolve(image)
        config = img.config
        out = {
            "Id": img.id,
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": "",
            "Comment": config.get("comment", ""),
            "Created": img.created,
            "DockerVersion": "",
            "Author": config.get("author", ""),
            "Config": config.get("config", {}),
            "Architecture": config.get("architecture", ""),
            "Os": config.get("os", ""),
            "Size": self.unpacked_size(img),
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
            "Descriptor": img.manifest_descriptor.to_json(),
        }
        if config.get("variant"):
            out["Variant"] = config["variant"]
        return out

    def history(self, image: str) -> list[dict]:
        """``docker image history``'s JSON: newest step first, each with its layer's size."""
        img = self.resolve(image)
        layers = img.layers
        steps = img.history or [{"created": img.created, "created_by": ""} for _ in layers]
        rows, layer_index = [], 0
        for step in steps:
            size = 0
            if not step.get("empty_layer") and layer_index < len(layers):
                size = self.content_size(layers[layer_index].digest)
                layer_index += 1
            rows.append({"Id": "<missing>", "Created": _unix_time(step.get("created", "")),
                         "CreatedBy": step.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": step.get("comment", "")})
        rows.reverse()
        if rows:
            rows[0]["Id"], rows[0]["Tags"] = img.id, img.repo_tags or None
        return rows

    # ------------------------------------------------------------------ removing images

    def remove(self, image: str, *, force: bool = False) -> list[dict]:
        """``docker rmi``: untag, and delete the image once its last name is gone.

        Returns Docker's report, e.g. ``[{"Untagged": "busybox:latest"}, {"Deleted": "sha256:..."}]``.
        Removing by id an image with several names needs ``force``; so does removing the
        last name of an image a holder (a container) uses, and then the image stays untagged.
        Blobs another image or a holder still references are never deleted.
        """
        with self._locked():
            index = self._read_index()
            digest = self._find(index, image)
            img = self._image(index, digest)
            name = _exact_name(image, img.names)
            if name is not None:
                dropped = [name, *_orphaned_digest_names(name, img.names)]
                remaining_tags = [n for n in img.names
                                  if n not in dropped and parse_reference(n, default_tag=None).tag]
                if remaining_tags:
                    for each in dropped:
                        _unset_name(index, each)
                    self._write_index(index)
                    return [{"Untagged": _familiar(each)} for each in dropped]
            elif len(img.repo_tags) > 1 and not force:
                raise ImageInUse(f"conflict: unable to delete {img.short_id} (must be forced) - "
                                 f"image is referenced in multiple repositories ({', '.join(img.repo_tags)})")

            report = [{"Untagged": _familiar(n)} for n in img.names]
            holders = self._read_holders()
            users = sorted(set(holders.get(img.id, [])) | set(holders.get(digest, [])))
            if users:
                if not force:
                    raise ImageInUse(f"conflict: unable to remove {image} (must force) - "
                                     f"image {img.short_id} is in use by {', '.join(users)}")
                for n in img.names:
                    _unset_name(index, n)           # it stays, untagged, while in use
                self._write_index(index)
                return report

            index["manifests"] = [e for e in index["manifests"] if e["digest"] != digest]
            self._write_index(index)
            deleted = self._collect(index, holders, [digest, img.id, *(layer.digest for layer in img.layers)])
            report.append({"Deleted": img.id})
            report.extend({"Deleted": d} for d in deleted if d not in (img.id, digest))
            return report

    # ------------------------------------------------------------------ holders

    def add_holder(self, digest: str, holder: str) -> None:
        """Record that ``holder`` (e.g. a container id) needs this blob; it won't be deleted."""
        self._require_blob(digest)
        with self._locked():
            holders = self._read_holders()
            if holder not in holders.setdefault(digest, []):
                holders[digest].append(holder)
                self._write_holders(holders)

    def remove_holder(self, digest: str, holder: str) -> list[str]:
        """``holder`` no longer needs the blob; returns the digests deleted as a result."""
        with self._locked():
            holders = self._read_holders()
            if holder not in holders.get(digest, []):
                return []
            holders[digest].remove(holder)
            if not holders[digest]:
                del holders[digest]
            self._write_holders(holders)
            return self._collect(self._read_index(), holders, [digest])

    def release(self, holder: str) -> list[str]:
        """Drop every hold of ``holder`` (its container is deleted); returns the digests deleted.

        An image that was force-removed while in use stays untagged, as in Docker, until
        it is removed by id (or pruned).
        """
        with self._locked():
            holders = self._read_holders()
            dropped = [digest for digest, users in holders.items() if holder in users]
            for digest in dropped:
                holders[digest].remove(holder)
                if not holders[digest]:
                    del holders[digest]
            self._write_holders(holders)
            return self._collect(self._read_index(), holders, dropped)

    def holders(self, digest: str) -> list[str]:
        return list(self._read_holders().get(digest, []))

    # ------------------------------------------------------------------ internals

    def _find(self, index: dict, text: str) -> str:
        """The manifest digest ``text`` names: a reference first, then an image id (prefix)."""
        ref = None
        try:
            ref = parse_reference(text)
        except InvalidReference:
            pass
        if ref is not None:
            for entry in index["manifests"]:
                if _entry_name(entry) == str(ref):
                    return entry["digest"]
            if ref.digest and any(e["digest"] == ref.digest for e in index["manifests"]):
                return ref.digest
        hexpart = text.removeprefix("sha256:")
        if _HEX_PREFIX.fullmatch(hexpart):
            matches = []
            for digest in dict.fromkeys(e["digest"] for e in index["manifests"]):
                config_digest = self.read_json(digest).get("config", {}).get("digest", "")
                if config_digest.removeprefix("sha256:").startswith(hexpart) or digest == "sha256:" + hexpart:
                    matches.append(digest)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise Conflict(f"image id prefix {hexpart!r} is ambiguous: it matches {len(matches)} images")
        if ref is None and not _HEX_PREFIX.fullmatch(hexpart):
            parse_reference(text)                 # re-raise the reference error, it says what is wrong
        raise ImageNotFound(f"No such image: {ref.familiar if ref is not None else text}")

    def _image(self, index: dict, manifest_digest: str) -> Image:
        entries = [e for e in index["manifests"] if e["digest"] == manifest_digest]
        manifest = self.read_json(manifest_digest)
        config_digest = manifest["config"]["digest"]
        names = tuple(dict.fromkeys(n for n in (_entry_name(e) for e in entries) if n))
        entry = entries[0]
        descriptor = Descriptor(entry.get("mediaType", manifest.get("mediaType", OCI_MANIFEST)),
                                manifest_digest, int(entry["size"]))
        return Image(id=config_digest, manifest_descriptor=descriptor, manifest=manifest,
                     config=self.read_json(config_digest), names=names)

    def _require(self, digest: str, what: str) -> dict:
        """Fail early when a manifest points at content the store lacks; return a config."""
        self._require_blob(digest, what)
        return self.read_json(digest) if what == "config" else {}

    def _require_blob(self, digest: str, what: str = "blob") -> None:
        if not self.has_blob(digest):
            raise BlobNotFound(f"{what} {digest} is not in the image store {self.root}; store it first")

    def _collect(self, index: dict, holders: dict, candidates: Iterable[str]) -> list[str]:
        """Delete the candidate blobs nothing references any more; return their digests."""
        live = set(holders)
        for digest in {e["digest"] for e in index["manifests"]}:
            manifest = self.read_json(digest)
            live.add(digest)
            live.add(manifest["config"]["digest"])
            live.update(layer["digest"] for layer in manifest.get("layers", []))
        deleted = []
        for digest in dict.fromkeys(candidates):
            if digest in live:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.blob_path(digest))
                deleted.append(digest)
        if deleted:
            _fsync_dir(self.blobs_dir)
        return deleted

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive flock on the store directory, for every change to index or holders."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_index(self) -> dict:
        try:
            with open(self._index_path, "rb") as fh:
                index = json.load(fh)
        except ValueError as err:
            raise InvalidConfig(f"{self._index_path} is not valid JSON: {err}") from None
        index.setdefault("manifests", [])
        return index

    def _write_index(self, index: dict) -> None:
        write_json_atomically(self._index_path, index, indent=2, mode=0o644)

    def _read_holders(self) -> dict[str, list[str]]:
        try:
            with open(self._holders_path, "rb") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def _write_holders(self, holders: dict) -> None:
        write_atomically(self._holders_path, json.dumps(holders, indent=2, sort_keys=True), mode=0o644)


# ------------------------------------------------------------------ index.json entries

def _entry_name(entry: dict) -> str | None:
    annotations = entry.get("annotations") or {}
    return annotations.get(CONTAINERD_NAME_ANNOTATION) or annotations.get(REF_NAME_ANNOTATION)


def _set_name(index: dict, name: str, entry: dict) -> None:
    """Point ``name`` at ``entry``'s manifest, taking it from whichever image had it."""
    _unset_name(index, name)
    named = {key: value for key, value in entry.items() if key != "annotations"}
    named["annotations"] = {CONTAINERD_NAME_ANNOTATION: name, REF_NAME_ANNOTATION: name}
    manifests = index["manifests"]
    for i, existing in enumerate(manifests):
        if existing["digest"] == entry["digest"] and not _entry_name(existing):
            manifests[i] = named                 # the image was untagged: it is not any more
            return
    manifests.append(named)


def _unset_name(index: dict, name: str) -> None:
    """Remove ``name``; an image losing its last name stays in the index, untagged."""
    manifests = index["manifests"]
    for i, entry in enumerate(manifests):
        if _entry_name(entry) == name:
            del manifests[i]
            if not any(e["digest"] == entry["digest"] for e in manifests):
                bare = {key: value for key, value in entry.items() if key != "annotations"}
                manifests.insert(i, bare)
            return


def _name_references(names: Iterable[str]) -> list[Reference]:
    """Names to store: a reference with both tag and digest counts as two names."""
    refs = []
    for name in names:
        ref = parse_reference(name)
        if ref.tag and ref.digest:
            refs += [Reference(ref.domain, ref.path, tag=ref.tag), Reference(ref.domain, ref.path, digest=ref.digest)]
        else:
            refs.append(ref)
    return refs


def _orphaned_digest_names(removed: str, names: Iterable[str]) -> list[str]:
    """The ``repo@sha256:...`` names to drop with the tag ``removed``: when no other tag of
    that repository is left, its digest names go too (moby's image_delete.go). A digest
    name is a RepoDigest, not a row of its own; left behind it shows as ``repo <none>``."""
    ref = parse_reference(removed, default_tag=None)
    if not ref.tag:
        return []
    same_repo = [parse_reference(n, default_tag=None) for n in names if n != removed]
    same_repo = [other for other in same_repo if other.name == ref.name]
    if any(other.tag for other in same_repo):
        return []
    return [str(other) for other in same_repo if other.digest]


def _exact_name(text: str, names: Iterable[str]) -> str | None:
    """The stored name ``text`` spells, if it is a name (and not an id)."""
    try:
        full = str(parse_reference(text))
    except InvalidReference:
        return None
    return full if full in names else None


def _familiar(name: str) -> str:
    return parse_reference(name, default_tag=None).familiar


def _unix_time(created: str) -> int:
    """RFC 3339 (Go writes up to nanoseconds) to Unix seconds; 0 when absent or unreadable."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", created or "")
    if not match:
        return 0
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return int(datetime.datetime.fromisoformat(match.group(1) + zone).timestamp())


# ------------------------------------------------------------------ durable directories

def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
