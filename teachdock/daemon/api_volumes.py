"""Routes for volumes: named volumes on disk (docker volume ls/create/rm/inspect/prune).

They use the daemon's one VolumeManager (``daemon.volumes``), the same one the container
manager mounts volumes from.
"""

from __future__ import annotations

from teachdock.daemon import volumes
from teachdock.daemon.filters import check_keys, labels_match
from teachdock.daemon.server import HTTPError


def users_of(daemon, name: str) -> list[str]:
    """Ids of the containers (running or not) that use the volume ``name``."""
    return [record.id for record in daemon.containers.list() if name in volumes.volume_names(record.data)]


def _in_use(daemon) -> set[str]:
    used = set()
    for record in daemon.containers.list():
        used |= volumes.volume_names(record.data)
    return used


def _true(values: list[str]) -> bool:
    return any(str(v).lower() in ("1", "true") for v in values)


def list_volumes(daemon, request) -> None:
    filters = request.filters()
    check_keys(filters, {"name", "dangling", "label", "driver"})
    used = _in_use(daemon)
    shown = []
    for volume in daemon.volumes.list():
        labels = volume.get("Labels") or {}
        if "name" in filters and not any(wanted in volume["Name"] for wanted in filters["name"]):
            continue
        if "dangling" in filters and (volume["Name"] in used) == _true(filters["dangling"]):
            continue
        if "label" in filters and not labels_match(labels, filters["label"]):
            continue
        if "driver" in filters and "local" not in filters["driver"]:
            continue
        shown.append(volume)
    request.handler.send_json(200, {"Volumes": shown, "Warnings": []})


def create(daemon, request) -> None:
    body = request.json()
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise HTTPError(400, "Labels must be an object of strings")
    volume, created = daemon.volumes.create(body.get("Name") or None, driver=body.get("Driver"), labels=labels,
                                             options=body.get("DriverOpts") or None)
    if created:
        daemon.events.publish("volume", "create", volume["Name"], driver=volume["Driver"])
    request.handler.send_json(201, volume)


def inspect(daemon, request, name: str) -> None:
    request.handler.send_json(200, daemon.volumes.get(name))


def remove(daemon, request, name: str) -> None:
    existed = daemon.volumes.exists(name)
    daemon.volumes.remove(name, users_of(daemon, name), force=request.flag("force"))
    if existed:
        daemon.events.publish("volume", "destroy", name, driver="local")
    request.handler.send_bytes(204, b"", None)


def prune(daemon, request) -> None:
    """Unused anonymous volumes; with the ``all=true`` filter (API >= 1.42) named ones too."""
    filters = request.filters()
    deleted, reclaimed = daemon.volumes.prune(_in_use(daemon), all_volumes=_true(filters.get("all", [])),
                                              label_filters=filters.get("label", []))
    for name in deleted:
        daemon.events.publish("volume", "destroy", name, driver="local")
    request.handler.send_json(200, {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})


def register(router) -> None:
    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
