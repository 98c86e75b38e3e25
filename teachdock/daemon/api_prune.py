"""``POST /containers/prune``: remove stopped containers, and sweep what a crash left behind.

``docker container prune`` removes every container that is not running. teachdockd also
sweeps here what only a crash can leave (``teachdock system prune`` calls this route):

- a container directory without a readable ``container.json`` (a daemon killed inside
  ``create``: ContainerManager.restore skips those);
- a runtime container under the daemon's state root whose record is gone (its monitor,
  cgroup and mounts would live on, unseen by ``ps``);
- an overlay snapshot that no container record holds (mounted, taking disk space).

Only names shaped like the daemon's own container ids (64 hex digits) are touched: a build
step's snapshot (``build-...``) or a runtime container someone else made is never swept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

from teachdock.daemon.filters import labels_match
from teachdock.errors import TeachdockError

_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def prune_containers(daemon, request) -> None:
    labels = request.filters().get("label", [])
    deleted, reclaimed = [], 0
    for record in daemon.containers.list():
        if record.status not in ("created", "exited", "dead"):
            continue
        if not labels_match(record.data["Config"].get("Labels") or {}, labels):
            continue
        size = tree_size(record.directory) + _snapshot_size(daemon, record.id)
        try:
            daemon.containers.remove(record)
        except TeachdockError:
            continue  # started again meanwhile
        deleted.append(record.id)
        reclaimed += size
    swept, swept_bytes = sweep(daemon)
    daemon.events.publish("container", "prune", "", reclaimed=str(reclaimed + swept_bytes))
    request.handler.send_json(200, {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed + swept_bytes,
                                    "Swept": swept})


def sweep(daemon) -> tuple[list[str], int]:
    """Remove crash leftovers (see the module docstring); -> (what was removed, bytes)."""
    from teachdock.runtime.container import Container, list_containers  # noqa: PLC0415

    manager = daemon.containers
    swept, reclaimed = [], 0
    # The manager's lock: no create is half-way while we look (create holds it from mkdir to record).
    with manager._lock:  # noqa: SLF001 - the one lock that makes "no record" mean "no container"
        known = {record.id for record in manager.list()}
        # first the processes, then the files they may be using
        for state in list_containers(manager.state_root):
            container_id = state.get("id", "")
            if not _CONTAINER_ID.match(container_id) or container_id in known:
                continue
            try:
                Container.load(container_id, manager.state_root).delete(force=True)
                swept.append(f"runtime container without a record ({state.get('status')}): {container_id}")
            except TeachdockError as error:
                swept.append(f"could not delete runtime container {container_id}: {error}")
        for directory in sorted(manager.root.iterdir()) if manager.root.is_dir() else []:
            if not _CONTAINER_ID.match(directory.name) or directory.name in known:
                continue
            if _readable_record(directory):
                continue  # a container being removed right now: remove() deletes it
            size = tree_size(directory) + _snapshot_size(daemon, directory.name)
            _release_snapshot(daemon, directory.name)
            shutil.rmtree(directory, ignore_errors=True)
            swept.append(f"container directory without a record: {directory}")
            reclaimed += size
        for snapshot in daemon.images.snapshots.list():
            name = snapshot.container_id
            if not _CONTAINER_ID.match(name) or name in known or _readable_record(manager.root / name):
                continue
            size = _snapshot_size(daemon, name)
            _release_snapshot(daemon, name)
            swept.append(f"snapshot no container holds: {snapshot.directory}")
            reclaimed += size
    return swept, reclaimed


def _readable_record(directory: Path) -> bool:
    try:
        json.loads((directory / "container.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def _release_snapshot(daemon, container_id: str) -> None:
    try:
        daemon.images.release(container_id)
    except TeachdockError:
        pass


def _snapshot_size(daemon, container_id: str) -> int:
    """Bytes the container itself added: its upper dir (overlay) or its copy (copy driver)."""
    directory = daemon.images.snapshots.containers_dir / container_id
    upper = directory / "upper"
    return tree_size(upper if upper.is_dir() else directory / "rootfs")


def tree_size(path) -> int:
    """Bytes of the regular files under ``path`` (not following symlinks or mounts)."""
    total = 0
    if not os.path.isdir(path):
        return 0
    root_device = os.lstat(path).st_dev
    for directory, subdirs, files in os.walk(path):
        subdirs[:] = [d for d in subdirs if os.lstat(os.path.join(directory, d)).st_dev == root_device]
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def register(router) -> None:
    router.add("POST", "/containers/prune", prune_containers)
