"""Volumes: directories the daemon owns, bind-mounted into containers, that outlive them.

A named volume is nothing more than a directory, as Docker's ``local`` driver makes it::

    <data root>/daemon/volumes/<name>/_data        what the container sees at its destination
    <data root>/daemon/volumes/<name>/volume.json  Name, Driver, CreatedAt, Labels, Options

``docker run -v NAME:/data`` becomes an OCI bind mount of ``_data`` onto ``/data``;
``-v /host/dir:/data[:ro]`` binds a host directory the same way. The runtime does the
mounting (``mounts=`` in the spec); this module only decides *what* to mount.

This module also turns the three ways a client asks for mounts into one list:
``HostConfig.Binds`` (``-v``), ``HostConfig.Mounts`` (``--mount``) and ``Config.Volumes``
(``-v /dst`` alone, and an image's ``VOLUME``), which get anonymous volumes: random
64-hex names, labelled ``com.docker.volume.anonymous`` so that ``volume prune`` and
``docker rm -v`` know they may go.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from teachdock.daemon.filters import labels_match
from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.files import write_json_atomically

_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_MODES = {"ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave",
          "consistent", "cached", "delegated"}
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


class VolumeNotFound(NotFound):
    """No volume by that name (404, worded as moby words it)."""


# --- the volumes on disk -------------------------------------------------------------------------------
class VolumeManager:
    """Create, list, inspect and remove volumes under ``<data root>/daemon/volumes``."""

    def __init__(self, data_root):
        self.root = Path(data_root) / "daemon" / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    def _dir(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return _VOLUME_NAME.match(name or "") is not None and (self._dir(name) / "volume.json").exists()

    def get(self, name: str) -> dict:
        """The Volume object of the API (``docker volume inspect``)."""
        if not self.exists(name):
            raise VolumeNotFound(f"get {name}: no such volume")
        try:
            return json.loads((self._dir(name) / "volume.json").read_text())
        except (OSError, ValueError):
            raise VolumeNotFound(f"get {name}: no such volume") from None

    def list(self) -> list[dict]:
        volumes = []
        for directory in sorted(self.root.iterdir()):
            try:
                volumes.append(self.get(directory.name))
            except VolumeNotFound:
                continue  # a half-made volume: not shown
        return volumes

    def create(self, name: str | None = None, *, driver: str | None = "local", labels: dict | None = None,
               options: dict | None = None, anonymous: bool = False) -> tuple[dict, bool]:
        """Make the volume, or return the existing one of that name (Docker's create is idempotent).

        Returns (volume, created): ``created`` is False when it existed already.
        """
        if driver not in (None, "", "local"):
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if options:
            raise InvalidConfig(f"teachdockd's local volume driver takes no options (got {sorted(options)}): "
                                "create the volume without --opt")
        if name is None or name == "":
            name = secrets.token_hex(32)
            anonymous = True
        check_volume_name(name)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self._lock:
            if self.exists(name):
                return self.get(name), False
            directory = self._dir(name)
            (directory / "_data").mkdir(parents=True, exist_ok=True)
            volume = {
                "CreatedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Driver": "local", "Labels": labels, "Mountpoint": str(directory / "_data"),
                "Name": name, "Options": options or None, "Scope": "local",
            }
            write_json_atomically(directory / "volume.json", volume)
            return volume, True

    def remove(self, name: str, users: list[str], *, force: bool = False) -> None:
        """``docker volume rm``: 409 while a container uses it; ``force`` only forgives a missing volume."""
        with self._lock:
            if not self.exists(name):
                if force:
                    return
                raise VolumeNotFound(f"get {name}: no such volume")
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._delete(name)

    def _delete(self, name: str) -> None:
        directory = self._dir(name)
        (directory / "volume.json").unlink(missing_ok=True)  # first: a half-deleted volume is no volume
        shutil.rmtree(directory, ignore_errors=True)

    def prune(self, in_use: set[str], *, all_volumes: bool = False, label_filters=()) -> tuple[list[str], int]:
        """Remove unused volumes: anonymous ones only, or named ones too with ``all``.

        Returns (names removed, bytes reclaimed).
        """
        deleted, reclaimed = [], 0
        with self._lock:
            for volume in self.list():
                labels = volume.get("Labels") or {}
                if volume["Name"] in in_use:
                    continue
                if not all_volumes and ANONYMOUS_LABEL not in labels:
                    continue
                if not labels_match(labels, list(label_filters)):
                    continue
                reclaimed += directory_size(Path(volume["Mountpoint"]))
                self._delete(volume["Name"])
                deleted.append(volume["Name"])
        return deleted, reclaimed

    def copy_up(self, name: str, rootfs: str, destination: str) -> None:
        """Docker's copy-up: a new, empty volume gets what the image has at the destination."""
        data = self._dir(name) / "_data"
        rootfs_real = os.path.realpath(rootfs)
        source = os.path.realpath(os.path.join(rootfs_real, destination.lstrip("/")))
        if not source.startswith(rootfs_real + os.sep) or not os.path.isdir(source):
            return  # nothing there, or a symlink leading out of the rootfs: copy nothing
        if any(data.iterdir()):
            return
        shutil.copytree(source, data, symlinks=True, dirs_exist_ok=True)
        shutil.copystat(source, data)


def check_volume_name(name: str) -> None:
    if not _VOLUME_NAME.match(name):
        raise InvalidConfig(f'create {name}: "{name}" includes invalid characters for a local volume name, only '
                            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                            "use absolute path")


def directory_size(path: Path) -> int:
    total = 0
    for directory, _subdirs, files in os.walk(path):
        for file in files:
            try:
                total += os.lstat(os.path.join(directory, file)).st_size
            except OSError:
                pass
    return total


# --- what a container asks to mount ----------------------------------------------------------------------
@dataclass
class MountRequest:
    """One mount a container asked for, before any volume exists.

    ``type`` is "volume", "bind" or "tmpfs"; ``source`` a volume name ("" for an anonymous
    volume) or a host path; ``create_source``: make a missing host directory (``-v`` does,
    ``--mount`` refuses).
    """

    type: str
    source: str
    destination: str
    read_only: bool = False
    mode: str = ""
    propagation: str = ""
    copy: bool = True
    create_source: bool = True


def parse_bind(text: str) -> MountRequest:
    """``-v`` syntax: ``/dst``, ``name:/dst``, ``/host:/dst``, each with ``:ro``/``:rw``/... modes."""
    if not isinstance(text, str) or not text:
        raise InvalidConfig(f"invalid volume specification: {text!r}")
    parts = text.split(":")
    if len(parts) == 1:
        source, destination, mode = "", parts[0], ""
    elif len(parts) == 2:
        source, destination, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, destination, mode = parts
    else:
        raise InvalidConfig(f"invalid volume specification: '{text}'")
    modes = [m for m in mode.split(",") if m] if mode else []
    for item in modes:
        if item not in _MODES:
            raise InvalidConfig(f"invalid mode: {mode} (in the volume specification '{text}'; use ro or rw)")
    if "ro" in modes and "rw" in modes:
        raise InvalidConfig(f"invalid mode: {mode} (both ro and rw)")
    _check_destination(destination, text)
    if source.startswith("/"):
        kind = "bind"
    else:
        kind = "volume"
        if source:
            check_volume_name(source)
    if source and not source.startswith("/") and "/" in source:
        raise InvalidConfig(f"invalid volume specification: '{text}': a host path must be absolute")
    propagation = next((m for m in modes if m in _PROPAGATIONS), "")
    return MountRequest(kind, source, _clean(destination), read_only="ro" in modes, mode=mode,
                        propagation=propagation or ("rprivate" if kind == "bind" else ""),
                        copy="nocopy" not in modes)


def parse_mount(entry) -> MountRequest:
    """``--mount type=volume|bind|tmpfs,source=...,target=...,readonly`` (HostConfig.Mounts)."""
    if not isinstance(entry, dict):
        raise InvalidConfig(f"HostConfig.Mounts entries must be objects, not {json.dumps(entry)[:80]}")
    kind = entry.get("Type") or ""
    source = entry.get("Source") or ""
    target = entry.get("Target") or ""
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidConfig(f'invalid mount config: mount type "{kind}" is not supported (use volume, bind or tmpfs)')
    if not target:
        raise InvalidConfig(f'invalid mount config for type "{kind}": field Target must not be empty')
    _check_destination(target, f'type "{kind}"')
    read_only = bool(entry.get("ReadOnly"))
    if kind == "bind":
        if not source.startswith("/"):
            raise InvalidConfig(f'invalid mount config for type "bind": invalid mount path: \'{source}\' '
                                "mount path must be absolute")
        if not os.path.exists(source):
            raise InvalidConfig(f'invalid mount config for type "bind": bind source path does not exist: {source}')
        propagation = (entry.get("BindOptions") or {}).get("Propagation") or "rprivate"
        return MountRequest("bind", source, _clean(target), read_only, "", propagation, create_source=False)
    if kind == "tmpfs":
        if source:
            raise InvalidConfig('invalid mount config for type "tmpfs": field Source must not be specified')
        return MountRequest("tmpfs", "", _clean(target), read_only)
    if source:
        check_volume_name(source)
    no_copy = bool((entry.get("VolumeOptions") or {}).get("NoCopy"))
    return MountRequest("volume", source, _clean(target), read_only, "", "", copy=not no_copy)


def _check_destination(destination: str, where: str) -> None:
    if not destination.startswith("/"):
        raise InvalidConfig(f"invalid mount config: invalid mount path: '{destination}' mount path must be "
                            f"absolute (in {where})")
    if _clean(destination) == "/":
        raise InvalidConfig(f"invalid specification: destination can't be '/' (in {where})")


def _clean(path: str) -> str:
    return os.path.normpath(path).replace("//", "/")


def requested_mounts(host_config: dict, config_volumes=None, image_volumes=None) -> list[MountRequest]:
    """Every mount a container asked for, validated; one per destination, as dockerd insists.

    Image ``VOLUME`` entries not covered by a ``-v`` get anonymous volumes, as Docker does.
    """
    binds = host_config.get("Binds") or []
    mounts = host_config.get("Mounts") or []
    if not isinstance(binds, list):
        raise InvalidConfig("HostConfig.Binds must be a list of strings such as \"myvol:/data\"")
    if not isinstance(mounts, list):
        raise InvalidConfig("HostConfig.Mounts must be a list of objects")
    requests = [parse_bind(text) for text in binds] + [parse_mount(entry) for entry in mounts]
    seen = set()
    for request in requests:
        if request.destination in seen:
            raise InvalidConfig(f"Duplicate mount point: {request.destination}")
        seen.add(request.destination)
    for destination in [*(config_volumes or {}), *(image_volumes or {})]:
        _check_destination(destination, "Volumes")
        if _clean(destination) not in seen:
            seen.add(_clean(destination))
            requests.append(MountRequest("volume", "", _clean(destination)))
    return requests


def volume_names(container_data: dict) -> set[str]:
    """The volumes a container uses: those it mounted, and the named ones it will mount."""
    names = {m["Name"] for m in container_data.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Name")}
    try:
        names |= {r.source for r in requested_mounts(container_data.get("HostConfig") or {})
                  if r.type == "volume" and r.source}
    except InvalidConfig:
        pass
    return names


def resolve(manager: VolumeManager, requests: list[MountRequest], rootfs: str,
            earlier: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """Make what is missing (volumes, ``-v`` host directories) and return
    (OCI mounts for the runtime spec, Docker's ``Mounts`` for inspect).

    ``earlier`` is the container's ``Mounts`` from a previous start: an anonymous volume
    keeps its name across restarts.
    """
    anonymous_before = {m["Destination"]: m["Name"] for m in earlier or []
                        if m.get("Type") == "volume" and m.get("Name")}
    oci, shown = [], []
    for request in requests:
        if request.type == "tmpfs":
            options = ["nosuid", "nodev", "mode=1777"] + (["ro"] if request.read_only else [])
            oci.append({"destination": request.destination, "type": "tmpfs", "source": "tmpfs", "options": options})
            shown.append({"Type": "tmpfs", "Source": "", "Destination": request.destination, "Mode": "",
                          "RW": not request.read_only, "Propagation": ""})
            continue
        if request.type == "volume":
            name = request.source or anonymous_before.get(request.destination)
            volume, created = manager.create(name or None, anonymous=not request.source)
            if created and request.copy and rootfs:
                manager.copy_up(volume["Name"], rootfs, request.destination)
            source = volume["Mountpoint"]
            shown.append({"Type": "volume", "Name": volume["Name"], "Source": source,
                          "Destination": request.destination, "Driver": "local", "Mode": request.mode or "z",
                          "RW": not request.read_only, "Propagation": ""})
        else:
            source = request.source
            if not os.path.exists(source):
                os.makedirs(source, exist_ok=True)  # what `docker run -v /missing:/dst` does
            shown.append({"Type": "bind", "Source": source, "Destination": request.destination,
                          "Mode": request.mode, "RW": not request.read_only,
                          "Propagation": request.propagation or "rprivate"})
        options = ["rbind", "ro" if request.read_only else "rw"]
        if request.propagation:
            options.append(request.propagation)
        oci.append({"destination": request.destination, "type": "bind", "source": source, "options": options})
    return oci, shown


def planned_mounts(container_data: dict) -> list[dict]:
    """``Mounts`` for a container not started yet: what it will mount, as far as is known."""
    try:
        requests = requested_mounts(container_data.get("HostConfig") or {},
                                    (container_data.get("Config") or {}).get("Volumes"))
    except InvalidConfig:
        return []
    shown = []
    for request in requests:
        entry = {"Type": request.type, "Source": request.source, "Destination": request.destination,
                 "Mode": request.mode, "RW": not request.read_only, "Propagation": request.propagation}
        if request.type == "volume":
            entry.update(Name=request.source, Driver="local", Source="")
        shown.append(entry)
    return shown


def create_named(manager: VolumeManager, host_config: dict) -> None:
    """Make the named volumes of ``-v NAME:/dst`` now, as dockerd does at container create
    (``docker volume ls`` shows them before the container ever starts)."""
    for request in requested_mounts(host_config):
        if request.type == "volume" and request.source:
            manager.create(request.source)
