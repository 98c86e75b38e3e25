"""``docker events``: what happened to containers and images, as a stream of JSON objects.

Every change the daemon makes is published here: container create, start, kill, die,
stop, destroy (with the container's labels among the attributes, as dockerd sends them);
image pull, tag, untag, delete; network create, connect, disconnect, destroy; volume
create, mount, unmount, destroy. Like dockerd, the daemon keeps only the last
few hundred in memory (they are gone after a restart) and streams new ones to each
``GET /events`` client as they happen.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Iterator

from teachdock.daemon.filters import EVENT_KEYS, check_keys, labels_match

KEEP = 1000
PREFIXED = {"health_status", "exec_create", "exec_start"}  # "health_status: healthy" matches event=health_status


class EventLog:
    def __init__(self):
        self._events: collections.deque[dict] = collections.deque(maxlen=KEEP)
        self._published = 0  # how many ever: lets a subscriber know what it has not seen
        self._changed = threading.Condition()

    def publish(self, kind: str, action: str, actor_id: str, **attributes) -> None:
        """Record one event, e.g. ``publish("container", "die", id, name="web", exitCode="0")``."""
        now = time.time_ns()
        event = {
            "status": action, "id": actor_id, "from": attributes.get("image", ""),
            "Type": kind, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": {key: str(value) for key, value in attributes.items()}},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        if kind != "container":
            del event["status"], event["id"], event["from"]  # dockerd sends these for containers only
        with self._changed:
            self._events.append(event)
            self._published += 1
            self._changed.notify_all()

    def stream(self, *, since: float | None = None, until: float | None = None,
               matches: Callable[[dict], bool] = lambda event: True,
               stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
        """Past events from ``since`` on, then new ones as they come, until ``until`` (unix
        seconds) or ``stop()``. Without ``since`` only new events, as ``docker events`` shows."""
        with self._changed:
            seen = self._published
            backlog = list(self._events) if since is not None else []
        for event in backlog:
            if event["timeNano"] >= since * 1e9 and (until is None or event["timeNano"] <= until * 1e9) \
                    and matches(event):
                yield event
        while until is None or time.time() < until:
            if stop():
                return
            with self._changed:
                if self._published == seen:
                    wait = 0.5 if until is None else max(0.0, min(0.5, until - time.time()))
                    self._changed.wait(wait)
                new = self._published - seen
                fresh = list(self._events)[-new:] if new else []
                seen = self._published
            for event in fresh:
                if until is not None and event["timeNano"] > until * 1e9:
                    return
                if matches(event):
                    yield event


def filter_matcher(filters: dict) -> Callable[[dict], bool]:
    """``--filter type=container --filter event=die --filter label=com.docker.compose.project=demo``
    as a predicate.

    ``filters`` is the decoded ``filters=`` query: ``{"event": {"die": true}}`` (or the
    legacy list form ``{"event": ["die"]}``). Values of one key are OR-ed, keys AND-ed;
    ``label`` values must all hold, against the event's attributes (a container's events carry
    its labels, as dockerd's do: that is how compose follows its own containers).
    """
    wanted = {key: list(values) if isinstance(values, list) else [k for k, v in values.items() if v]
              for key, values in (filters or {}).items()}
    check_keys(wanted, EVENT_KEYS)

    def actor_is(event: dict, kind: str, values: list[str]) -> bool:
        actor_id, name = event["Actor"]["ID"], event["Actor"]["Attributes"].get("name")
        return event["Type"] == kind and any(value in (actor_id, name) or actor_id.startswith(value)
                                             for value in values)

    def matches(event: dict) -> bool:
        attributes = event["Actor"]["Attributes"]
        for key, values in wanted.items():
            if key == "type" and event["Type"] not in values:
                return False
            if key == "event" and event["Action"] not in values and not (  # moby's rule: these three
                    event["Action"].split(":")[0] in values and event["Action"].split(":")[0] in PREFIXED):
                return False
            if key in ("container", "network", "volume") and not actor_is(event, key, values):
                return False
            if key == "image" and attributes.get("image") not in values and attributes.get("name") not in values:
                return False
            if key == "label" and not labels_match(attributes, values):
                return False
            if key == "scope" and event.get("scope", "local") not in values:
                return False
        return True

    return matches
