"""The JSON types of request bodies, checked before a handler sees them, as Go's decoder does
in dockerd: ``{"Name": 5}`` to ``/volumes/create`` is a 400 "json: cannot unmarshal number
into Go struct field CreateOptions.Name of type string", never a Python TypeError (a 500).

Only the fields whose wrong type reached a handler unchecked are listed: the handlers check
values (an image reference, a subnet); this checks the JSON kinds.
"""

from __future__ import annotations

from teachdock.daemon.server import HTTPError

OBJECT, STRING, BOOL, LIST = dict, str, bool, list
_GO_NAMES = {dict: "map[string]interface {}", str: "string", bool: "bool", list: "[]string"}

# (method, route pattern) -> (Go struct name, {field: kind or {subfield: kind}})
BODY_TYPES = {
    ("POST", "/containers/create"): ("Config", {
        "ExposedPorts": OBJECT, "Labels": OBJECT, "Volumes": OBJECT, "Tty": BOOL, "OpenStdin": BOOL,
        "StdinOnce": BOOL, "AttachStdin": BOOL, "AttachStdout": BOOL, "AttachStderr": BOOL,
        "NetworkDisabled": BOOL, "Hostname": STRING, "User": STRING, "WorkingDir": STRING,
        "HostConfig": {"PortBindings": OBJECT, "Privileged": BOOL, "ReadonlyRootfs": BOOL, "AutoRemove": BOOL,
                       "PublishAllPorts": BOOL, "NetworkMode": STRING, "RestartPolicy": OBJECT, "LogConfig": OBJECT},
        "NetworkingConfig": {"EndpointsConfig": OBJECT},
    }),
    ("POST", "/volumes/create"): ("CreateOptions", {"Name": STRING, "Driver": STRING, "DriverOpts": OBJECT,
                                                    "Labels": OBJECT}),
    ("POST", "/networks/create"): ("CreateRequest", {"Name": STRING, "Driver": STRING, "IPAM": OBJECT,
                                                     "Internal": BOOL, "Attachable": BOOL, "Labels": OBJECT,
                                                     "Options": OBJECT, "CheckDuplicate": BOOL}),
    ("POST", "/networks/{name}/connect"): ("ConnectOptions", {"Container": STRING, "EndpointConfig": OBJECT}),
    ("POST", "/networks/{name}/disconnect"): ("DisconnectOptions", {"Container": STRING, "Force": BOOL}),
}


def _json_kind(value) -> str:
    """What Go's decoder calls the value it found."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def check_body(method: str, pattern: str, body: dict) -> None:
    """Raise a 400 in dockerd's words for a field of the wrong JSON kind (null is allowed: Go leaves
    the zero value)."""
    struct, fields = BODY_TYPES.get((method, pattern), (None, None))
    if fields is None:
        return
    _check(struct, fields, body)


def _check(struct: str, fields: dict, body: dict) -> None:
    for name, kind in fields.items():
        value = body.get(name)
        if value is None:
            continue
        wanted = dict if isinstance(kind, dict) else kind
        if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
            raise HTTPError(400, f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{name} "
                                 f"of type {_GO_NAMES[wanted] if not isinstance(kind, dict) else 'struct'}")
        if isinstance(kind, dict):
            _check(f"{struct}.{name}", kind, value)
