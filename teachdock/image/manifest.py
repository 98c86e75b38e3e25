"""What an OCI image is made of: media types, content descriptors, and an image's manifest and config.

An image is a *manifest* naming a *config* and an ordered list of *layers*, each by a
*descriptor* (media type, digest, size). The config holds the run settings, the history and
the layers' diff_ids (digests of the uncompressed tars); its digest is Docker's image ID::

    manifest  {"config": {"mediaType": ..., "digest": "sha256:<image id>", "size": ...},
               "layers": [{"mediaType": ...tar+gzip, "digest": "sha256:...", "size": ...}, ...]}
    config    {"config": {"Cmd": [...], "Env": [...]}, "rootfs": {"diff_ids": [...]}, "history": [...]}

OCI and Docker name the same things with two families of media types; the sets below say
which is which. Where these live on disk is ``store.py``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from teachdock.errors import InvalidConfig
from teachdock.image.digest import chain_id
from teachdock.image.reference import Reference, parse_reference


# ------------------------------------------------------------------ media types (§4 of the digest)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCTET_STREAM = "application/octet-stream"

#: The OCI and Docker families are equivalent; these sets say which is which.
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP})

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest, and its size."""

    media_type: str
    digest: str
    size: int
    annotations: dict | None = field(default=None, compare=False)
    platform: dict | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        out = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, obj: dict) -> Descriptor:
        try:
            return cls(obj["mediaType"], obj["digest"], int(obj["size"]), obj.get("annotations"), obj.get("platform"))
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfig(f"malformed OCI descriptor {obj!r}: {err}") from None


@dataclass(frozen=True)
class Image:
    """One image: its manifest and config, parsed, and the names pointing at it."""

    id: str                        # the config digest, Docker's image ID
    manifest_descriptor: Descriptor
    manifest: dict
    config: dict
    names: tuple[str, ...]         # full references, e.g. "docker.io/library/busybox:latest"

    @property
    def manifest_digest(self) -> str:
        return self.manifest_descriptor.digest

    @property
    def short_id(self) -> str:
        """The 12 hex digits ``docker images`` shows."""
        return self.id.split(":", 1)[1][:12]

    @property
    def layers(self) -> list[Descriptor]:
        """Layer blobs, base first, with their (possibly compressed) sizes."""
        return [Descriptor.from_json(layer) for layer in self.manifest.get("layers", [])]

    @property
    def diff_ids(self) -> list[str]:
        """The digests of the uncompressed layer tars, base first."""
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def chain_id(self) -> str | None:
        """Key of the whole unpacked layer stack (None for an image without layers)."""
        return chain_id(self.diff_ids) if self.diff_ids else None

    @property
    def history(self) -> list[dict]:
        return list(self.config.get("history", []))

    @property
    def created(self) -> str:
        return self.config.get("created", "")

    @property
    def size(self) -> int:
        """Bytes of all layer blobs together (compressed; unpacked: ImageStore.unpacked_size)."""
        return sum(layer.size for layer in self.layers)

    @property
    def references(self) -> list[Reference]:
        return [parse_reference(name, default_tag=None) for name in self.names]

    @property
    def repo_tags(self) -> list[str]:
        """Names with a tag, as Docker prints them: ``busybox:latest``."""
        return [ref.familiar for ref in self.references if ref.tag]

    @property
    def repo_digests(self) -> list[str]:
        """Names pinned to a digest: ``busybox@sha256:...``."""
        return [ref.familiar for ref in self.references if ref.digest]
