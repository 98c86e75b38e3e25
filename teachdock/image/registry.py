"""``docker pull`` and ``docker push``: images between the store and a registry.

Pull: manifest (pick this host's platform from an index), then the config and every layer
not yet in the store, each checked against its digest as it streams into the store, then
the manifest itself, byte for byte, so its digest (the RepoDigest) stays the same. Push
is the reverse: blobs the registry lacks, then the manifest. The HTTP conversation, auth
included, is ``registry_client.py``'s.
"""

from __future__ import annotations

import json

from teachdock.errors import InvalidConfig
from teachdock.image.digest import DigestMismatch, InvalidDigest, check_sha256
from teachdock.image.incoming import check_diff_id, discard_new_blobs, sniff_compression
from teachdock.image.manifest import (CONFIG_TYPES, INDEX_TYPES, MANIFEST_TYPES, OCI_LAYER, OCI_LAYER_ZSTD, Descriptor,
                                      Image)
from teachdock.image.platforms import select_manifest
from teachdock.image.progress import Progress, ProgressEvent, ProgressReader, short_id
from teachdock.image.reference import parse_reference
from teachdock.image.registry_client import (DEFAULT_CHUNK_SIZE, Credentials, RegistryClient, RegistryError,
                                             repository_scope)
from teachdock.image.store import ImageStore

DOCKER_SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v1+prettyjws")


# ------------------------------------------------------------------ pull and push

def pull(store: ImageStore, name: str, *, platform: str | dict | None = None,
         credentials: Credentials | None = None, insecure: bool | None = None,
         progress: Progress | None = None, trace: list | None = None, docker_config: bool = True) -> Image:
    """``docker pull NAME``: fetch the image into ``store`` and name it; returns the Image.

    ``platform`` ("linux/arm64", default: this host) picks the manifest from an index.
    Blobs already in the store are not fetched ("Already exists"). Every blob is checked
    against its digest as it arrives; on any error the blobs this pull added are removed.
    The names recorded are the tag and ``repo@<digest>`` (the digest the tag pointed to).
    """
    ref = parse_reference(name)
    with RegistryClient.for_reference(ref, insecure=insecure, credentials=credentials, trace=trace,
                                      docker_config=docker_config) as client:
        client.ping()
        wanted = ref.digest or ref.tag
        top = client.get_manifest(ref.path, wanted)
        manifest = top
        if top.media_type in DOCKER_SCHEMA1_TYPES:
            raise RegistryError(f"{ref.familiar} uses the deprecated Docker schema 1 manifest, "
                                "which teachdock does not support")
        if top.media_type in INDEX_TYPES:
            chosen = select_manifest(top.json(), platform, what=f"the index of {ref.familiar}")
            manifest = client.get_manifest(ref.path, chosen["digest"])
        if manifest.media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{ref.familiar} is a {manifest.media_type or 'document of unknown type'}, "
                                "not an image manifest teachdock can pull")
        document = manifest.json()
        config_json = document.get("config") or {}
        if config_json.get("mediaType") not in CONFIG_TYPES:
            raise RegistryError(f"{ref.familiar} is an artifact ({config_json.get('mediaType')}), not an image")
        layers = [Descriptor.from_json(layer) for layer in document.get("layers") or []]
        for layer in layers:
            if layer.media_type == OCI_LAYER_ZSTD:
                sniff_compression(b"\x28\xb5\x2f\xfd", f"layer {layer.digest} of {ref.familiar}")

        added: list[str] = []
        try:
            for descriptor in [Descriptor.from_json(config_json), *layers]:
                _fetch_blob(client, store, ref.path, descriptor, added, progress)
            diff_ids = store.read_json(config_json["digest"]).get("rootfs", {}).get("diff_ids") or []
            if len(diff_ids) != len(layers):
                raise RegistryError(f"{ref.familiar}: the config lists {len(diff_ids)} diff_ids "
                                    f"for {len(layers)} layers")
            for layer, diff_id in zip(layers, diff_ids):
                if layer.media_type == OCI_LAYER:      # plain tar: its digest is its diff_id, free to check
                    check_diff_id(store, layer.digest, diff_id, f"layer {layer.digest}")
            stored = store.put_blob(manifest.data, media_type=manifest.media_type, expected_digest=manifest.digest)
            added.append(stored.digest)
            names = [f"{ref.name}@{top.digest}"]
            if ref.tag:
                names.insert(0, f"{ref.name}:{ref.tag}")
            image = store.register(stored, names)
        except BaseException:
            discard_new_blobs(store, added)
            raise
    if progress is not None:
        progress(ProgressEvent(short_id(manifest.digest), f"Digest: {top.digest}"))
    return image


def _fetch_blob(client: RegistryClient, store: ImageStore, repository: str, descriptor: Descriptor,
                added: list[str], progress: Progress | None) -> None:
    try:
        check_sha256(descriptor.digest)
    except InvalidDigest as err:
        raise RegistryError(f"the manifest names a blob teachdock cannot store: {err}") from None
    blob_id = short_id(descriptor.digest)
    if store.has_blob(descriptor.digest):
        if progress is not None:
            progress(ProgressEvent(blob_id, "Already exists", descriptor.size, descriptor.size))
        return
    with client.open_blob(repository, descriptor.digest) as response:
        reader = ProgressReader(response, progress, blob_id, "Downloading", descriptor.size)
        stored = store.put_blob(reader, media_type=descriptor.media_type, expected_digest=descriptor.digest)
    added.append(stored.digest)
    if stored.size != descriptor.size:
        raise RegistryError(f"blob {descriptor.digest} is {stored.size} bytes, the manifest says {descriptor.size}")
    if progress is not None:
        progress(ProgressEvent(blob_id, "Pull complete", stored.size, descriptor.size))


def push(store: ImageStore, name: str, *, credentials: Credentials | None = None, insecure: bool | None = None,
         progress: Progress | None = None, trace: list | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
         docker_config: bool = True) -> str:
    """``docker push NAME``: upload the image's blobs the registry lacks, then its manifest.

    The image is found in the store by ``name`` (tag it first: ``store.tag(image,
    "127.0.0.1:5000/team/app:1")``). Blobs larger than ``chunk_size`` go up in PATCH chunks.
    Returns the manifest digest, which is also recorded as ``repo@digest`` (RepoDigests).
    """
    ref = parse_reference(name)
    if ref.digest and not ref.tag:
        raise InvalidConfig(f"cannot push {name}: push a tag, not a digest")
    image = store.resolve(name)
    data = store.read_blob(image.manifest_digest)
    media_type = image.manifest.get("mediaType") or image.manifest_descriptor.media_type
    config = Descriptor.from_json(image.manifest["config"])
    with RegistryClient.for_reference(ref, insecure=insecure, credentials=credentials, trace=trace,
                                      docker_config=docker_config) as client:
        client.ping()
        for descriptor in [*image.layers, config]:
            blob_id = short_id(descriptor.digest)
            if client.has_blob(ref.path, descriptor.digest, scope=repository_scope(ref.path, "pull,push")):
                if progress is not None:
                    progress(ProgressEvent(blob_id, "Layer already exists", descriptor.size, descriptor.size))
                continue
            with store.open_blob(descriptor.digest) as blob:
                client.upload_blob(ref.path, descriptor.digest, store.blob_size(descriptor.digest), blob,
                                   chunk_size=chunk_size, progress=progress)
            if progress is not None:
                progress(ProgressEvent(blob_id, "Pushed", descriptor.size, descriptor.size))
        digest = client.put_manifest(ref.path, ref.tag, data, media_type)
    if digest != image.manifest_digest:
        raise DigestMismatch(f"manifest of {ref.familiar} as the registry stored it", image.manifest_digest, digest)
    store.register(image.manifest_descriptor, [f"{ref.name}@{digest}"])
    if progress is not None:
        progress(ProgressEvent(short_id(digest), f"{ref.tag}: digest: {digest} size: {len(data)}"))
    return digest


def list_tags(name: str, *, credentials: Credentials | None = None, insecure: bool | None = None,
              trace: list | None = None) -> list[str]:
    """``GET /v2/<name>/tags/list``: the tags a repository has on its registry."""
    ref = parse_reference(name, default_tag=None)
    with RegistryClient.for_reference(ref, insecure=insecure, credentials=credentials, trace=trace) as client:
        path = f"/v2/{ref.path}/tags/list"
        response = client.request("GET", path, scope=repository_scope(ref.path, "pull"))
        body = response.read()
        if response.status != 200:
            raise client.error_from(response, body, "GET", path, ref.familiar_name)
    try:
        return list(json.loads(body).get("tags") or [])
    except (ValueError, AttributeError) as err:
        raise RegistryError(f"{ref.familiar_name}: the tag list is not valid JSON: {err}") from None
