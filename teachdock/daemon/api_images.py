"""Image routes: ``docker images``, ``docker pull`` (and the pull ``docker run`` does after a 404),
``docker image inspect``, ``docker tag``, ``docker rmi``, ``docker history``, ``docker image prune``.

Pull answers with Docker's JSON progress stream: one object per line, flushed as it comes.
An error before the first line is an ordinary HTTP error; after it, the status is already
sent, so the error travels in the stream as ``{"errorDetail": ..., "error": ...}`` — the
only way the CLI notices a failed pull.
"""

from __future__ import annotations

import fnmatch
import json
import os

from teachdock.daemon import api_export
from teachdock.daemon.containers import unix_seconds
from teachdock.daemon.filters import labels_match
from teachdock.daemon.server import HTTPError
from teachdock.image import registry
from teachdock.image.reference import parse_reference


def list_images(daemon, request) -> None:
    """``docker images [REPO[:TAG]] [-f dangling=true|false] [-f reference=PATTERN] [-f label=K[=V]]``.

    A reference pattern is a glob on the familiar name (``busybox``, ``course/*:v1``);
    as with dockerd, a matched image lists only its matching tags.
    """
    filters = request.filters()
    unknown = sorted(set(filters) - {"dangling", "reference", "label"})
    if unknown:
        raise HTTPError(400, f"invalid filter {unknown[0]!r}: docker images here supports dangling, reference "
                             "and label")
    summaries = []
    for image in daemon.images.list():
        tags = image.repo_tags
        labels = (image.config.get("config") or {}).get("Labels") or {}
        if "dangling" in filters and _is_true(filters["dangling"]) != (not image.names):
            continue
        if "label" in filters and not labels_match(labels, filters["label"]):  # compose's down --rmi local
            continue
        if "reference" in filters:
            tags = [tag for tag in tags if any(_reference_matches(pattern, tag) for pattern in filters["reference"])]
            if not tags:
                continue
        size = daemon.images.store.unpacked_size(image)  # unpacked, as dockerd shows it
        summaries.append({
            "Id": image.id, "ParentId": "", "RepoTags": tags, "RepoDigests": image.repo_digests,
            "Created": unix_seconds(image.created), "Size": size, "SharedSize": -1, "VirtualSize": size,
            "Labels": labels, "Containers": -1,
        })
    request.handler.send_json(200, summaries)


def _reference_matches(pattern: str, tag: str) -> bool:
    """moby's FamiliarMatch: the glob against ``name`` and against ``name:tag``."""
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(tag, pattern)


def inspect(daemon, request, name: str) -> None:
    request.handler.send_json(200, daemon.images.inspect(name))


def pull(daemon, request) -> None:
    """``POST /images/create?fromImage=docker.io/library/busybox&tag=latest``; with ``fromSrc``
    it is ``docker import`` instead (api_export.py)."""
    if request.query.get("fromSrc"):
        api_export.import_image(daemon, request)
        return
    source = request.query.get("fromImage")
    if not source:
        raise HTTPError(400, "give fromImage (to pull) or fromSrc (to import)")
    tag = request.query.get("tag") or ""
    if tag.startswith("sha256:"):
        source = f"{source}@{tag}"
    elif tag:
        source = f"{source}:{tag}"
    ref = parse_reference(source)
    handler = request.handler

    def send(message: dict) -> None:
        if not handler.response_started:
            handler.start_chunks(200, "application/json")
        handler.write_chunk(json.dumps(message).encode() + b"\n")

    had = _image_id(daemon, str(ref))

    def progress(event) -> None:
        if not handler.response_started:
            # Only once the registry has answered with a manifest, as dockerd: a missing
            # repository or an unreachable registry is then a plain HTTP error the CLI prints
            # as "Error response from daemon: ...".
            send({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
        message = {"status": event.status, "id": event.id}
        if event.total:
            message["progressDetail"] = {"current": event.current, "total": event.total}
        send(message)

    image = registry.pull(daemon.images.store, str(ref), progress=progress)
    if not handler.response_started:
        send({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
    daemon.events.publish("image", "pull", str(ref), name=str(ref))
    if had == image.id:
        send({"status": f"Status: Image is up to date for {ref.familiar}"})
    else:
        send({"status": f"Status: Downloaded newer image for {ref.familiar}"})
    handler.end_chunks()


def remove(daemon, request, name: str) -> None:
    """``docker rmi``: Docker's report, ``[{"Untagged": ...}, {"Deleted": ...}]``; 409 while in use."""
    report = daemon.images.remove(name, force=request.flag("force"))
    for entry in report:
        for action, subject in entry.items():
            daemon.events.publish("image", action.lower().replace("untagged", "untag").replace("deleted", "delete"),
                                  subject, name=subject)
    request.handler.send_json(200, report)


def tag(daemon, request, name: str) -> None:
    """``docker tag busybox course/box:v1`` -> ``POST /images/busybox/tag?repo=course/box&tag=v1``."""
    repo = request.query.get("repo")
    if not repo:
        raise HTTPError(400, "repository name (repo=) is required")
    new_name = f"{repo}:{request.query.get('tag') or 'latest'}"
    image = daemon.images.get(name)
    daemon.images.tag(name, new_name)
    daemon.events.publish("image", "tag", image.id, name=parse_reference(new_name).familiar)
    request.handler.send_bytes(201, b"", None)


def history(daemon, request, name: str) -> None:
    """``docker history``: one row per step, newest first; sizes are the layers' blob sizes."""
    request.handler.send_json(200, daemon.images.history(name))


def prune(daemon, request) -> None:
    """``docker image prune`` removes dangling (untagged) images; ``-a`` (the filter
    ``dangling=false``) every image no container uses. Unpacked layers nothing needs go too."""
    filters = request.filters()
    unknown = sorted(set(filters) - {"dangling"})
    if unknown:
        raise HTTPError(400, f"invalid filter {unknown[0]!r}: docker image prune here supports only dangling")
    dangling_only = _is_true(filters.get("dangling", ["true"]))
    store = daemon.images.store
    before = _blob_bytes(store)
    if dangling_only:
        report = daemon.images.prune()["images"]
    else:
        in_use = {record.data["Image"] for record in daemon.containers.list()}
        in_use |= {snapshot.image_id for snapshot in daemon.images.snapshots.list()}
        report = []
        for image in daemon.images.list():
            if image.id not in in_use:
                report += store.remove(image.id, force=True)
        daemon.images.snapshots.prune()
    for entry in report:
        for action, subject in entry.items():
            daemon.events.publish("image", "untag" if action == "Untagged" else "delete", subject, name=subject)
    reclaimed = max(0, before - _blob_bytes(store))
    daemon.events.publish("image", "prune", "", reclaimed=str(reclaimed))
    request.handler.send_json(200, {"ImagesDeleted": report or None, "SpaceReclaimed": reclaimed})


def _is_true(values: list[str]) -> bool:
    """The dangling filter's value: ``true``/``1`` (dockerd's ParseBool) or ``false``/``0``."""
    if any(value.lower() not in ("true", "1", "false", "0") for value in values):
        raise HTTPError(400, f"invalid filter 'dangling={values[0]}': use true or false")
    return any(value.lower() in ("true", "1") for value in values)


def _blob_bytes(store) -> int:
    total = 0
    with os.scandir(store.blobs_dir) as entries:
        for entry in entries:
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
    return total


def _image_id(daemon, name: str) -> str | None:
    try:
        return daemon.images.get(name).id
    except Exception:  # noqa: BLE001 - "not there" in any form
        return None


def register(router) -> None:
    router.add("GET", "/images/json", list_images)
    router.add("POST", "/images/create", pull)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/{name*}/json", inspect)
    router.add("GET", "/images/{name*}/history", history)
    router.add("POST", "/images/{name*}/tag", tag)
    router.add("DELETE", "/images/{name*}", remove)
