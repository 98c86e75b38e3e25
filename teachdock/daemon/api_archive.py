"""Routes for ``docker cp``: files in and out of a container, as tar archives.

    HEAD /containers/{id}/archive?path=P   -> 200 + X-Docker-Container-Path-Stat (or 404)
    GET  /containers/{id}/archive?path=P   -> the same header, and P as a tar (a directory
                                              with everything in it; a symlink as a link)
    PUT  /containers/{id}/archive?path=DIR -> a tar body unpacked into DIR

``docker cp c1:/etc/hostname .`` is a GET; ``docker cp notes.txt c1:/tmp/`` is a HEAD (what
is /tmp?) and a PUT. The daemon reads and writes the container's root filesystem from the
host: its overlay's merged directory, or a volume's directory when the path lies in one.

Every path is followed as the container would follow it (``secure_join``): a symlink the
container planted, say ``/tmp/x -> /etc``, leads to the *container's* /etc, never the host's.
The upload is unpacked like an image layer, with the same checks (no ``..``, no absolute
names, no links that leave the container).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile
import tempfile
from datetime import datetime, timezone

from teachdock.daemon.server import HTTPError
from teachdock.errors import NotFound
from teachdock.image.layers import apply_layer_onto
from teachdock.runtime.securejoin import secure_join

MAX_UPLOAD = 4 << 30

# Go's os.FileMode bits, which the CLI reads in the stat header (not the kernel's S_IF* bits)
GO_MODE_DIR, GO_MODE_SYMLINK = 1 << 31, 1 << 27
GO_MODE_NAMED_PIPE, GO_MODE_SOCKET, GO_MODE_DEVICE, GO_MODE_CHAR_DEVICE = 1 << 25, 1 << 24, 1 << 26, 1 << 21
GO_MODE_SETUID, GO_MODE_SETGID, GO_MODE_STICKY = 1 << 23, 1 << 22, 1 << 20


ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")  # the daemon binds its own over the image's


def host_path(daemon, record, path: str) -> str:
    """Where the container's ``path`` is on the host: the daemon's own /etc/hostname, hosts
    or resolv.conf while it has them; in a volume or bind mount when one covers the path
    (the longest destination wins); else in the root filesystem. The last component is not
    followed if it is a symlink (``docker cp`` copies the link)."""
    if not path.startswith("/"):
        raise HTTPError(400, f"path {path!r} must be absolute (inside the container)")
    if os.path.normpath(path) in ETC_FILES:
        own = record.directory / os.path.basename(path)
        if own.is_file():
            return str(own)
    root, inside = record.data.get("Rootfs") or "", path
    for mount in sorted(record.data.get("Mounts") or [], key=lambda m: len(m.get("Destination", "")), reverse=True):
        destination = mount.get("Destination", "").rstrip("/")
        if destination and (path == destination or path.startswith(destination + "/")) and mount.get("Source"):
            root, inside = mount["Source"], path[len(destination):] or "/"
            break
    if not root or not os.path.isdir(root):
        raise HTTPError(409, f"the filesystem of container {record.id[:12]} is not available (removed?)")
    return secure_join(root, inside, follow_final=False)


def _path_stat(daemon, record, path: str) -> tuple[str, dict]:
    where = host_path(daemon, record, path)
    try:
        info = os.lstat(where)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"Could not find the file {path} in container {record.name.lstrip('/')}") from None
    mode = stat.S_IMODE(info.st_mode) & 0o777
    for test, bit in ((stat.S_ISDIR, GO_MODE_DIR), (stat.S_ISLNK, GO_MODE_SYMLINK), (stat.S_ISFIFO, GO_MODE_NAMED_PIPE),
                      (stat.S_ISSOCK, GO_MODE_SOCKET), (stat.S_ISBLK, GO_MODE_DEVICE),
                      (stat.S_ISCHR, GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE)):
        if test(info.st_mode):
            mode |= bit
    for flag, bit in ((stat.S_ISUID, GO_MODE_SETUID), (stat.S_ISGID, GO_MODE_SETGID), (stat.S_ISVTX, GO_MODE_STICKY)):
        if info.st_mode & flag:
            mode |= bit
    shown = {
        "name": os.path.basename(path.rstrip("/")) or "/", "size": info.st_size, "mode": mode,
        "mtime": datetime.fromtimestamp(info.st_mtime, timezone.utc).isoformat().replace("+00:00", "Z"),
        "linkTarget": os.readlink(where) if stat.S_ISLNK(info.st_mode) else "",
    }
    return where, shown


def _stat_header(shown: dict) -> str:
    return base64.b64encode(json.dumps(shown).encode()).decode()


def get(daemon, request, name: str) -> None:
    """The path as a tar whose top entry is named like the path's last component; HEAD
    (the router sends it here too) answers the stat header alone."""
    record = daemon.containers.get(name)
    path = request.query.get("path") or ""
    where, shown = _path_stat(daemon, record, path)
    headers = {"X-Docker-Container-Path-Stat": _stat_header(shown)}
    if request.method == "HEAD":
        request.handler.send_bytes(200, b"", None, headers)
        return
    with tempfile.TemporaryFile(dir=daemon.data_root) as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            top = "." if path.rstrip("/").endswith("/.") or path == "/" else shown["name"]
            tar.add(where, arcname=top, recursive=True)  # links are archived as links, never followed
        size = spool.tell()
        spool.seek(0)
        request.handler.send_file(200, spool, size, "application/x-tar", headers)


def put(daemon, request, name: str) -> None:
    """Unpack the uploaded tar into a directory of the container."""
    record = daemon.containers.get(name)
    path = request.query.get("path") or ""
    where = host_path(daemon, record, path.rstrip("/") + "/.")  # the directory itself, followed
    if not os.path.isdir(where):
        raise NotFound(f"Could not find the file {path} in container {record.name.lstrip('/')}"
                       if not os.path.lexists(where) else f"{path} is not a directory in the container")
    if record.data["HostConfig"].get("ReadonlyRootfs") and where.startswith(record.data.get("Rootfs") or "\0"):
        raise HTTPError(403, "container rootfs is marked read-only")
    with request.body_to_file(daemon.data_root, MAX_UPLOAD) as body:
        apply_layer_onto(body, where)
    request.handler.send_bytes(200, b"", None)


def register(router) -> None:
    router.add("GET", "/containers/{name}/archive", get)  # and HEAD
    router.add("PUT", "/containers/{name}/archive", put)
