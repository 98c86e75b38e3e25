"""``GET /events``: the event stream ``docker events`` prints, one JSON object per line."""

from __future__ import annotations

import json

from teachdock.daemon.events import filter_matcher
from teachdock.daemon.server import HTTPError


def _seconds(request, name: str) -> float | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return float(text)  # the CLI sends unix seconds, maybe with a fraction ("1700000000.000000000")
    except ValueError:
        raise HTTPError(400, f"{name}= must be a unix timestamp, not {text!r}") from None


def events(daemon, request) -> None:
    try:
        filters = json.loads(request.query.get("filters") or "{}")
    except ValueError:
        raise HTTPError(400, "filters= is not valid JSON") from None
    matches = filter_matcher(filters)  # a bad filter is a 400, before the stream starts
    since, until = _seconds(request, "since"), _seconds(request, "until")
    handler = request.handler
    handler.start_chunks(200, "application/json")
    for event in daemon.events.stream(since=since, until=until, matches=matches, stop=request.client_gone):
        handler.write_chunk(json.dumps(event).encode() + b"\n")
    if not request.client_gone():
        handler.end_chunks()


def register(router) -> None:
    router.add("GET", "/events", events)
