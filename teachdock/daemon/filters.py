"""Docker's ``filters=`` query, with the same rules for every list: ``docker ps``, ``network ls``,
``volume ls`` and ``docker events``.

Clients send it in two forms — the list form ``{"label": ["a=b"]}`` (docker-compose 1.x, old
CLIs) and the map form ``{"label": {"a=b": true}}`` (the docker CLI, compose v2); the request
turns both into ``{"label": ["a=b"]}`` (``server.Request.filters``). Values of one key are
OR-ed, except ``label``, whose values must all hold; different keys are AND-ed. A ``label``
value is ``key`` (the label is there, whatever its value) or ``key=value``. Compose finds
everything it made by its labels (``com.docker.compose.project=NAME``), so these rules are
what makes ``docker compose ps``/``down`` see the right containers.

A key the daemon does not know is refused, as dockerd refuses it ("invalid filter 'x'"):
a filter silently ignored would list things the caller asked to leave out.
"""

from __future__ import annotations

import re

from teachdock.errors import InvalidConfig

CONTAINER_KEYS = {"id", "name", "label", "status", "exited", "network", "volume", "ancestor", "health"}
EVENT_KEYS = {"type", "event", "container", "image", "label", "network", "volume", "scope"}
CONTAINER_STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def check_keys(filters: dict[str, list[str]], accepted: set[str]) -> None:
    """dockerd's 400 for a filter key it does not know."""
    for key in filters:
        if key not in accepted:
            raise InvalidConfig(f"invalid filter '{key}'")


def label_matches(labels: dict, wanted: str) -> bool:
    """``key`` or ``key=value`` against an object's labels."""
    key, has_value, value = wanted.partition("=")
    return key in labels and (not has_value or labels[key] == value)


def labels_match(labels: dict, wanted: list[str]) -> bool:
    """Every ``label`` value must hold (moby's ``MatchKVList``)."""
    return all(label_matches(labels or {}, each) for each in wanted)


def name_matches(name: str, patterns: list[str]) -> bool:
    """moby matches names as regular expressions searched in the name (so ``web`` finds
    ``demo-web-1``); a pattern that is not a valid expression is taken as plain text."""
    for pattern in patterns:
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            if pattern in name:
                return True
    return False


def container_matches(filters: dict[str, list[str]], *, container_id: str, name: str, status: str,
                      data: dict, networks: list[tuple[str, str]]) -> bool:
    """One container against ``docker ps --filter ...`` (``health=`` is health.py's:
    ``health.health_filter``). ``networks``: (id, name) of each network it is attached to;
    ``data``: its record (Config, State, Mounts, Image)."""
    for key, values in filters.items():
        if key == "id" and not name_matches(container_id, values):
            return False
        if key == "name" and not name_matches(name.lstrip("/"), values):
            return False
        if key == "label" and not labels_match(data["Config"].get("Labels") or {}, values):
            return False
        if key == "status":
            for value in values:
                if value not in CONTAINER_STATES:
                    raise InvalidConfig(f"invalid filter 'status={value}'")
            if status not in values:
                return False
        if key == "exited":
            codes = set()
            for value in values:
                try:
                    codes.add(int(value))
                except ValueError:
                    raise InvalidConfig(f"invalid filter 'exited={value}'") from None
            if status != "exited" or data["State"].get("ExitCode") not in codes:
                return False
        if key == "network" and not any(value in (net_id, net_name) or (len(value) >= 12 and net_id.startswith(value))
                                        for value in values for net_id, net_name in networks):
            return False
        if key == "volume" and not _uses_volume(data, values):
            return False
        if key == "ancestor" and not any(value in (data["Config"].get("Image"), data.get("Image"))
                                         or data.get("Image", "").startswith(f"sha256:{value}") for value in values):
            return False
    return True


def _uses_volume(data: dict, values: list[str]) -> bool:
    """``volume=NAME`` or ``volume=/destination`` (moby's rule) against ``data["Mounts"]``: the
    mounts of its last start or, before any start, the ones it will make."""
    mounts = data.get("Mounts") or []
    return any(value == mount.get("Name") or value == mount.get("Destination") for value in values for mount in mounts)
