"""Checkpoint routes, dockerd's experimental API (``docker checkpoint create|ls|rm``):

    POST   /containers/{id}/checkpoints            {"CheckpointID": NAME, "CheckpointDir": DIR, "Exit": true}
    GET    /containers/{id}/checkpoints?dir=DIR    [{"Name": NAME}, ...]
    DELETE /containers/{id}/checkpoints/{name}?dir=DIR

and ``POST /containers/{id}/start?checkpoint=NAME&checkpoint-dir=DIR`` (api_containers.start
hands it to :func:`start_from_checkpoint`). The work is in :mod:`teachdock.daemon.checkpoints`.
"""

from __future__ import annotations

from teachdock.daemon import checkpoints
from teachdock.daemon.server import HTTPError


def create(daemon, request, name: str) -> None:
    body = request.json()
    unknown = set(body) - {"CheckpointID", "CheckpointDir", "Exit"}
    if unknown:
        raise HTTPError(400, f"unknown field(s) in the checkpoint request: {', '.join(sorted(unknown))}")
    exit_after = body.get("Exit", True)
    if not isinstance(exit_after, bool):
        raise HTTPError(400, "Exit must be true or false")
    checkpoints.create(daemon.containers, daemon.containers.get(name), body.get("CheckpointID") or "",
                       body.get("CheckpointDir") or None, exit=exit_after)
    request.handler.send_bytes(201, b"", None)


def list_checkpoints(daemon, request, name: str) -> None:
    record = daemon.containers.get(name)
    request.handler.send_json(200, checkpoints.listing(record, request.query.get("dir") or None))


def remove(daemon, request, name: str, checkpoint: str) -> None:
    checkpoints.delete(daemon.containers.get(name), checkpoint, request.query.get("dir") or None)
    request.handler.send_bytes(204, b"", None)


def start_from_checkpoint(daemon, request, record) -> bool:
    """The start route's ``checkpoint`` and ``checkpoint-dir`` parameters: True when started."""
    return checkpoints.start_from(daemon.containers, record, request.query["checkpoint"],
                                  request.query.get("checkpoint-dir") or None)


def register(router) -> None:
    router.add("POST", "/containers/{name}/checkpoints", create)
    router.add("GET", "/containers/{name}/checkpoints", list_checkpoints)
    router.add("DELETE", "/containers/{name}/checkpoints/{checkpoint}", remove)
