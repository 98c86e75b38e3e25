"""The route table: which handler answers which ``METHOD /path``.

Every path may carry a version prefix, ``/v1.45/containers/json``; it is stripped here and
the rest is routed (the SDK's first call, ``GET /version``, has none). A route that is not
in the table answers 404 ``{"message": "page not found"}``, as moby does. Path parameters
are percent-decoded (``/containers/a%2Fb/json`` names ``a/b``, as Go's router does); a NUL
byte in one, or in a query value, is a 400 before any handler can pass it to the kernel.
A JSON body is checked against its route's field types (bodies.py).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from teachdock.daemon.bodies import check_body
from teachdock.daemon.server import HTTPError

API_VERSION = "1.45"      # what we advertise; the CLI then uses min(its own, this)
MIN_API_VERSION = "1.24"  # moby's minimum; older clients get a 400
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


def _version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


class Router:
    """A list of (method, path pattern, handler).

    ``{name}`` in a pattern matches one path segment; ``{name*}`` matches the rest, slashes
    included (image names such as ``library/busybox``).
    """

    api_version = API_VERSION

    def __init__(self, daemon):
        self.daemon = daemon
        self.routes: list[tuple[str, re.Pattern, object, str]] = []

    def add(self, method: str, pattern: str, handler) -> None:
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$"
        self.routes.append((method, re.compile(regex), handler, pattern))

    def strip_version(self, path: str) -> tuple[str, str | None]:
        match = _VERSION_PREFIX.match(path)
        if not match:
            return path, None
        version = f"{match.group(1)}.{match.group(2)}"
        if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
            raise HTTPError(400, f"client version {version} is too old. Minimum supported API version is "
                                 f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        if _version_tuple(version) > _version_tuple(API_VERSION):
            raise HTTPError(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
        return match.group(3), version

    def dispatch(self, request) -> None:
        method = "GET" if request.method == "HEAD" else request.method  # HEAD /_ping is GET without a body
        path_matched = False
        for name, value in request.query.items():
            if "\x00" in value:
                raise HTTPError(400, f"invalid query parameter {name}: a NUL byte is not allowed")
        for route_method, regex, handler, pattern in self.routes:
            match = regex.match(request.path)
            if not match:
                continue
            path_matched = True
            if route_method == method:
                arguments = {key: unquote(value) for key, value in match.groupdict().items()}
                for value in arguments.values():
                    if "\x00" in value:
                        raise HTTPError(400, f"invalid name {value!r} in the path: a NUL byte is not allowed")
                request.body_check = lambda body, key=(route_method, pattern): check_body(*key, body)
                handler(self.daemon, request, **arguments)
                return
        if path_matched:
            raise HTTPError(405, f"method {request.method} not allowed on {request.path}")
        raise HTTPError(404, "page not found")
