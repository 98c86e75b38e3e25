"""Which daemon a command talks to, and named contexts (``teachdock context ...``).

The choice, first match wins (as the docker CLI does with -H, DOCKER_HOST and contexts):

1. the host given to ``Client(host)`` or ``teachdock -H HOST``;
2. ``$TEACHDOCK_HOST``;
3. the current named context (``teachdock context use NAME``);
4. ``unix:///run/teachdock/teachdock.sock``.

Contexts are a small JSON file, ``contexts.json`` under ``$TEACHDOCK_CONFIG`` or
``~/.teachdock/``: ``{"current": "lab", "contexts": {"lab": {"host": "unix:///tmp/lab.sock"}}}``.
The context called ``default`` always exists and means "the default host".

TLS to a ``tcp://`` host, as the docker CLI decides it (``resolve_tls``): ``--tlsverify``
or ``$DOCKER_TLS_VERIFY`` (verify the daemon, send our certificate), ``--tls`` or
``$DOCKER_TLS`` (encrypt, do not verify the daemon); the files ``--tlscacert``, ``--tlscert``,
``--tlskey``, by default ``ca.pem``, ``cert.pem``, ``key.pem`` in ``$DOCKER_CERT_PATH`` or
``~/.docker``.
"""

from __future__ import annotations

import json
import os

from teachdock.client.transport import DEFAULT_HOST, TLSConfig, parse_host
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


class TLSFlags:
    """What was said on the command line: ``--tls``, ``--tlsverify``, the three files (None: not given)."""

    def __init__(self, *, tls: bool = False, verify: bool = False, ca: str | None = None, cert: str | None = None,
                 key: str | None = None):
        self.tls, self.verify, self.ca, self.cert, self.key = tls, verify, ca, cert, key

    def given(self) -> bool:
        return bool(self.tls or self.verify or self.ca or self.cert or self.key)


def resolve_tls(host: str, flags: TLSFlags | None = None) -> TLSConfig | None:
    """The TLS to use for ``host`` (None: plain), by the rules in the module docstring.

    A TLS flag with a unix:// host is refused; ``$DOCKER_TLS_VERIFY`` is not (the docker CLI
    ignores it there too). A default file that does not exist is not sent (the docker CLI
    skips a missing cert.pem); a file given by name must exist.
    """
    flags = flags or TLSFlags()
    kind, _ = parse_host(host)
    if kind != "tcp":
        if flags.given():
            raise InvalidConfig(f"--tls/--tlsverify are for tcp:// hosts, not {host}")
        return None
    verify = flags.verify or bool(os.environ.get("DOCKER_TLS_VERIFY"))
    if not (verify or flags.tls or os.environ.get("DOCKER_TLS")):
        if flags.ca or flags.cert or flags.key:
            raise InvalidConfig("--tlscacert/--tlscert/--tlskey need --tlsverify (or --tls)")
        return None
    cert_path = os.environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")

    def pick(given: str | None, name: str, needed: bool) -> str | None:
        if given:
            if not os.path.isfile(given):
                raise NotFound(f"{given}: no such file (a PEM file for TLS)")
            return given
        default = os.path.join(cert_path, name)
        if os.path.isfile(default):
            return default
        if needed:
            raise NotFound(f"{default}: no such file: --tlsverify needs the CA's certificate (--tlscacert or "
                           "$DOCKER_CERT_PATH/ca.pem)")
        return None

    ca = pick(flags.ca, "ca.pem", needed=verify)
    cert, key = pick(flags.cert, "cert.pem", needed=False), pick(flags.key, "key.pem", needed=False)
    return TLSConfig(verify=verify, ca=ca if verify else None, cert=cert, key=key)


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
