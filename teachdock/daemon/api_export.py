"""Routes for ``docker export`` and ``docker import``: a container's files out as one tar,
and a tar in as a one-layer image — the cold way of moving a container between daemons.

    docker export web > web.tar     GET  /containers/{id}/export      the root filesystem as a tar
    docker import web.tar web:v1    POST /images/create?fromSrc=-&repo=web&tag=v1[&changes=..][&message=..]
    docker import http://h/x.tar    POST /images/create?fromSrc=http://h/x.tar   (the daemon downloads it)

Export is the container's root filesystem as the container sees it (its overlay's merged
directory), without its volumes and without the files the daemon binds over it — what
dockerd exports too. The container may be running or stopped; it is not paused.

Import answers dockerd's JSON stream: ``{"status": "sha256:<image id>"}`` at the end (and,
for a URL, "Downloading from ..." and progress first). The checks of the tar are in
:mod:`teachdock.image.tar_import`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from teachdock.daemon.server import ChunkedTarWriter, HTTPError
from teachdock.image.layers import diff_layer
from teachdock.image.reference import parse_reference
from teachdock.image.tar_import import import_reference, import_tarball

#: A tar to import larger than this is refused (413); it is spooled to disk, not memory.
MAX_UPLOAD = 4 << 30
#: How long the daemon waits for a URL to import to answer.
URL_TIMEOUT = 30


def export_container(daemon, request, name: str) -> None:
    """``GET /containers/web/export``: every file of the root filesystem, sorted, owners,
    modes, times, hardlinks and xattrs kept (the same writer as a layer's, on the whole tree)."""
    record = daemon.containers.get(name)
    rootfs = record.data.get("Rootfs") or ""
    if not rootfs or not os.path.isdir(rootfs):
        raise HTTPError(409, f"the filesystem of container {record.id[:12]} is not available (being removed?)")
    out = ChunkedTarWriter(request.handler)
    diff_layer(rootfs, out)           # on a merged tree there are no whiteouts: the whole tree, as a tar
    if not request.handler.response_started:
        out.write(b"")
    request.handler.end_chunks()
    daemon.events.publish("container", "export", record.id, image=record.data["Config"]["Image"],
                          name=record.name.lstrip("/"))


def import_image(daemon, request) -> None:
    """``POST /images/create?fromSrc=-`` (the tar is the body) or ``fromSrc=URL``."""
    source = request.query.get("fromSrc") or ""
    reference = import_reference(request.query.get("repo"), request.query.get("tag"))
    changes = request.query_list("changes")
    message = request.query.get("message") or f"Imported from {source}"
    platform = request.query.get("platform") or None
    store = daemon.images.store
    handler = request.handler

    def send(message: dict) -> None:
        if not handler.response_started:
            handler.start_chunks(200, "application/json")
        handler.write_chunk(json.dumps(message).encode() + b"\n")

    if source == "-":
        with request.body_to_file(store.root, MAX_UPLOAD) as body:
            image = import_tarball(store, body, reference=reference, changes=changes, message=message,
                                   platform=platform)
    else:
        request.body()
        url = source if "://" in source else "http://" + source   # dockerd's default scheme
        with _open_url(url) as response:
            send({"status": f"Downloading from {url}"})
            image = import_tarball(store, _Progress(response, send), reference=reference, changes=changes,
                                   message=message, platform=platform)
    daemon.events.publish("image", "import", image.id, name=image.id)
    if reference:
        daemon.events.publish("image", "tag", image.id, name=parse_reference(reference).familiar)
    send({"status": image.id})
    handler.end_chunks()


def _open_url(url: str):
    """The URL's response; an unreachable host or an HTTP error is dockerd's 500 with the reason."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise HTTPError(400, f"cannot import from {url}: only http:// and https:// URLs (or - for the body)")
    try:
        return urllib.request.urlopen(url, timeout=URL_TIMEOUT)  # noqa: S310 - the scheme is checked above
    except urllib.error.HTTPError as error:
        raise HTTPError(500, f"failed to GET {url} with status {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise HTTPError(500, f"Get {url!r}: {getattr(error, 'reason', error)}") from None


class _Progress:
    """The downloaded body, read through; sends dockerd's "Importing" progress lines."""

    def __init__(self, response, send):
        self.response = response
        self.send = send
        self.total = int(response.headers.get("Content-Length") or 0) or None
        self.current = 0
        self.reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self.response.read(size)
        self.current += len(data)
        if not data or self.current - self.reported >= (1 << 20):
            self.reported = self.current
            detail = {"current": self.current, **({"total": self.total} if self.total else {})}
            self.send({"status": "Importing", "progressDetail": detail, "id": ""})
        return data


def register(router) -> None:
    router.add("GET", "/containers/{name}/export", export_container)
