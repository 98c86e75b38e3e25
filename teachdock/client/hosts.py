"""Which daemon a command talks to, and named contexts (``teachdock context ...``).

The choice, first match wins (as the docker CLI does with -H, DOCKER_HOST and contexts):

1. the host given to ``Client(host)`` or ``teachdock -H HOST``;
2. ``$TEACHDOCK_HOST``;
3. the current named context (``teachdock context use NAME``);
4. ``unix:///run/teachdock/teachdock.sock``.

Contexts are a small JSON file, ``contexts.json`` under ``$TEACHDOCK_CONFIG`` or
``~/.teachdock/``: ``{"current": "lab", "contexts": {"lab": {"host": "unix:///tmp/lab.sock"}}}``.
The context called ``default`` always exists and means "the default host".
"""

from __future__ import annotations

import json
import os

from teachdock.client.transport import DEFAULT_HOST, parse_host
from teachdock.errors import Conflict, InvalidConfig, NotFound

DEFAULT_CONTEXT = "default"


def config_dir() -> str:
    return os.environ.get("TEACHDOCK_CONFIG") or os.path.join(os.path.expanduser("~"), ".teachdock")


def contexts_file() -> str:
    return os.path.join(config_dir(), "contexts.json")


def load_contexts() -> dict:
    try:
        with open(contexts_file()) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {"current": None, "contexts": {}}
    except (OSError, ValueError) as error:
        raise InvalidConfig(f"cannot read {contexts_file()}: {error}; fix or delete the file") from None
    data.setdefault("current", None)
    data.setdefault("contexts", {})
    return data


def _save(data: dict) -> None:
    # Imported here: teachdock.files uses pathlib, which every `teachdock run` would pay for.
    from teachdock.files import write_json_atomically  # noqa: PLC0415

    os.makedirs(config_dir(), exist_ok=True)
    write_json_atomically(contexts_file(), data, indent=2)


def resolve_host(host: str | None = None) -> str:
    """The host to use, by the rules in the module docstring."""
    if host:
        return host
    if os.environ.get("TEACHDOCK_HOST"):
        return os.environ["TEACHDOCK_HOST"]
    if not os.path.exists(contexts_file()):
        return DEFAULT_HOST  # the usual case, without reading JSON
    data = load_contexts()
    current = data.get("current")
    if current and current != DEFAULT_CONTEXT:
        try:
            return data["contexts"][current]["host"]
        except KeyError:
            raise NotFound(f"the current context {current!r} does not exist any more: "
                           "`teachdock context use default` or create it again") from None
    return DEFAULT_HOST


def create_context(name: str, host: str, description: str = "") -> None:
    if not name or name == DEFAULT_CONTEXT or "/" in name:
        raise InvalidConfig(f"invalid context name {name!r}: 'default' is reserved, and no '/'")
    parse_host(host)  # refuse a malformed host now, not at the first command
    data = load_contexts()
    if name in data["contexts"]:
        raise Conflict(f"context {name!r} already exists: remove it first (teachdock context rm {name})")
    data["contexts"][name] = {"host": host, "description": description}
    _save(data)


def use_context(name: str) -> None:
    data = load_contexts()
    if name != DEFAULT_CONTEXT and name not in data["contexts"]:
        raise NotFound(f"context {name!r} not found: see `teachdock context ls`")
    data["current"] = None if name == DEFAULT_CONTEXT else name
    _save(data)


def remove_context(name: str) -> None:
    data = load_contexts()
    if name == DEFAULT_CONTEXT:
        raise InvalidConfig("the default context cannot be removed")
    if name not in data["contexts"]:
        raise NotFound(f"context {name!r} not found: see `teachdock context ls`")
    del data["contexts"][name]
    if data["current"] == name:
        data["current"] = None
    _save(data)


def list_contexts() -> list[dict]:
    """[{"name", "host", "description", "current"}], the default context first."""
    data = load_contexts()
    current = data.get("current") or DEFAULT_CONTEXT
    rows = [{"name": DEFAULT_CONTEXT, "host": DEFAULT_HOST, "description": "the default socket",
             "current": current == DEFAULT_CONTEXT}]
    for name, entry in sorted(data["contexts"].items()):
        rows.append({"name": name, "host": entry.get("host", ""), "description": entry.get("description", ""),
                     "current": current == name})
    return rows
