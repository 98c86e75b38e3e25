"""Registry client: the OCI distribution API over HTTP, with its auth (pull and push use it).

A registry is a small HTTP API (opencontainers/distribution-spec)::

    GET  /v2/                                  ping; a 401 here says which auth to use
    GET  /v2/<name>/manifests/<tag|digest>     the manifest (or an index of per-platform ones)
    GET  /v2/<name>/blobs/<digest>             a config or layer (may redirect to a CDN)
    HEAD /v2/<name>/blobs/<digest>             does the registry have it already?
    POST /v2/<name>/blobs/uploads/             start an upload -> 202, Location: <upload url>
    PATCH <upload url>                         send a chunk -> 202, new Location
    PUT  <upload url>?digest=<d>               finish (with the last bytes) -> 201
    PUT  /v2/<name>/manifests/<tag>            publish the manifest -> 201, Docker-Content-Digest

Auth (distribution ``docs/spec/auth/token.md``): a request answered ``401`` carries
``WWW-Authenticate: Bearer realm="...",service="...",scope="..."``; we fetch a token from
the realm (with Basic credentials if we have them) and repeat the request with
``Authorization: Bearer <token>``. A ``Basic`` challenge gets the credentials directly.

Plain HTTP is used for 127.0.0.0/8, localhost and ::1, as Docker does; HTTPS elsewhere.
Only the standard library is used (http.client): the protocol is the lesson, and one
keep-alive connection per registry is all a pull or push needs.

Every exchange can be recorded in a ``trace`` list (method, URL, status, key headers,
digest, bytes, milliseconds) for a notebook to show as a table.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import BinaryIO

from teachdock.errors import NotFound, TeachdockError
from teachdock.image.digest import DigestMismatch, sha256_digest
from teachdock.image.manifest import INDEX_TYPES, MANIFEST_TYPES
from teachdock.image.progress import Progress, ProgressReader, short_id
from teachdock.image.reference import Reference

#: Everything pull can handle, sent as the manifest GET's Accept header.
MANIFEST_ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
#: Blobs up to this size go up in one PUT; bigger ones in PATCH chunks of this size.
DEFAULT_CHUNK_SIZE = 16 << 20
_CHUNK = 1 << 20
USER_AGENT = "teachdock (python http.client)"
#: Headers worth showing in a trace (requests and responses).
_TRACED_HEADERS = ("Accept", "Content-Type", "Content-Length", "Content-Range", "Range", "Location",
                   "Docker-Content-Digest", "WWW-Authenticate", "Docker-Upload-UUID", "OCI-Chunk-Min-Length")

Credentials = tuple[str, str]          # (username, password or token)


class RegistryError(TeachdockError):
    """The registry answered with an error, or something we cannot use."""

    status = 500


class RegistryUnreachable(RegistryError):
    """No HTTP conversation at all: connection refused, unknown host, TLS failure, timeout."""


class RegistryAuthError(RegistryError):
    """401/403: credentials missing, wrong, or not allowed to do this."""

    status = 401


class ManifestUnknown(NotFound):
    """The registry has no such repository, tag or digest."""


# ------------------------------------------------------------------ auth challenges

@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a scheme (``bearer``/``basic``) and its parameters."""

    scheme: str
    params: dict


_AUTH_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_.-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"``.

    Quoted values may contain commas (a scope with ``pull,push``); several challenges may
    follow one another in one header (``Basic realm="x", Bearer realm="y"``).
    """
    challenges, pos = [], 0
    while pos < len(header):
        scheme_match = re.compile(r"[\s,]*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)").match(header, pos)
        if not scheme_match:
            break
        scheme, pos, params = scheme_match.group(1).lower(), scheme_match.end(), {}
        while pos < len(header):
            match = _AUTH_PARAM.match(header, pos)
            if not match:
                break
            value = match.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[match.group(1).lower()] = value
            pos = match.end()
        challenges.append(Challenge(scheme, params))
    return challenges


def docker_config_credentials(host: str, config_path: str | os.PathLike | None = None) -> Credentials | None:
    """The ``auths`` entry ``docker login`` wrote for ``host`` to ~/.docker/config.json.

    Credential helpers (``credsStore``) are not consulted: pass credentials explicitly then.
    """
    if config_path is None:
        config_dir = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
        config_path = os.path.join(config_dir, "config.json")
    try:
        with open(config_path, "rb") as fh:
            auths = json.load(fh).get("auths") or {}
    except (OSError, ValueError, AttributeError):
        return None
    keys = {host, f"https://{host}", f"http://{host}"}
    if host in ("registry-1.docker.io", "docker.io", "index.docker.io"):
        keys |= {"https://index.docker.io/v1/", "index.docker.io", "docker.io"}
    for key, entry in auths.items():
        if key.rstrip("/") in keys or key in keys:
            encoded = (entry or {}).get("auth")
            if encoded:
                try:
                    user, _, password = base64.b64decode(encoded).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return None
                return user, password
            if entry.get("username") and entry.get("password"):
                return entry["username"], entry["password"]
    return None


# ------------------------------------------------------------------ the HTTP client

@dataclass
class Manifest:
    """A manifest or index exactly as the registry sent it."""

    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        try:
            return json.loads(self.data)
        except ValueError as err:
            raise RegistryError(f"manifest {self.digest} is not valid JSON: {err}") from None


class RegistryClient:
    """Talks to one registry (``host[:port]``) over one keep-alive connection.

    ``insecure`` (default: True for localhost, 127.0.0.0/8 and ::1) means plain HTTP.
    ``credentials`` are (user, password); None reads ~/.docker/config.json when
    ``docker_config`` is true. ``trace``, a list, receives one dict per HTTP exchange.
    """

    def __init__(self, host: str, *, insecure: bool | None = None, credentials: Credentials | None = None,
                 docker_config: bool = True, trace: list | None = None, timeout: float = 60.0):
        self.host = host
        if insecure is None:
            insecure = Reference(host, "x").insecure_by_default
        self.scheme = "http" if insecure else "https"
        self.base_url = f"{self.scheme}://{host}"
        if credentials is None and docker_config:
            credentials = docker_config_credentials(host)
        self.credentials = credentials
        self.trace = trace
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._basic = False                        # the registry asked for Basic auth
        self._bearer_challenge: dict | None = None  # realm/service of its token server
        self._tokens: dict[str, tuple[str, float]] = {}   # scope -> (token, expiry time)

    @classmethod
    def for_reference(cls, ref: Reference, **options) -> RegistryClient:
        if options.get("insecure") is None:
            options["insecure"] = ref.insecure_by_default
        return cls(ref.registry_host, **options)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ API calls

    def ping(self) -> int:
        """``GET /v2/``: checks that a registry answers, and learns its auth scheme early."""
        response = self._send("GET", "/v2/")
        response.read()
        if response.status == 401:
            self._learn_challenge(response)
        elif response.status != 200:
            raise RegistryError(f"{self.base_url}/v2/ answered {response.status} {response.reason}: "
                                f"{self.host} does not look like an OCI registry")
        return response.status

    def get_manifest(self, repository: str, reference: str, *, scope: str | None = None) -> Manifest:
        """A manifest or index by tag or digest, checked against its digest."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self.request("GET", path, headers={"Accept": ", ".join(MANIFEST_ACCEPT)},
                                scope=scope or repository_scope(repository, "pull"))
        data = response.read()
        if response.status != 200:
            separator = "@" if reference.startswith("sha256:") else ":"
            raise self.error_from(response, data, "GET", path, f"{self.host}/{repository}{separator}{reference}")
        actual = sha256_digest(data)
        if reference.startswith("sha256:") and actual != reference:
            raise DigestMismatch(f"manifest {self.host}/{repository}@{reference}", reference, actual)
        announced = response.getheader("Docker-Content-Digest")
        if announced and announced.startswith("sha256:") and announced != actual:
            raise DigestMismatch(f"manifest {self.host}/{repository}:{reference} (Docker-Content-Digest)",
                                 announced, actual)
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
        try:
            body_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            body_type = None
        if media_type not in MANIFEST_TYPES | INDEX_TYPES and body_type:
            media_type = body_type
        return Manifest(data, media_type, actual)

    def has_blob(self, repository: str, digest: str, *, scope: str | None = None) -> bool:
        """``HEAD`` the blob: 200 = the registry has it, 404 = it does not."""
        path = f"/v2/{repository}/blobs/{digest}"
        response = self.request("HEAD", path, scope=scope or repository_scope(repository, "pull"))
        response.read()
        if response.status in (200, 404):
            return response.status == 200
        raise self.error_from(response, b"", "HEAD", path, f"blob {digest}")

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str, *, scope: str | None = None):
        """A readable response for the blob; redirects are followed (without our credentials)."""
        path = f"/v2/{repository}/blobs/{digest}"
        response = self.request("GET", path, scope=scope or repository_scope(repository, "pull"), redirects=True)
        if response.status != 200:
            raise self.error_from(response, response.read(), "GET", path, f"blob {digest} of {repository}")
        try:
            yield response
        except BaseException:
            response.close()               # half-read: this connection cannot serve another request
            self.close()
            raise

    def upload_blob(self, repository: str, digest: str, size: int, stream: BinaryIO, *,
                    chunk_size: int = DEFAULT_CHUNK_SIZE, progress: Progress | None = None,
                    scope: str | None = None) -> None:
        """POST an upload, then one PUT (small blobs) or PATCH chunks and a closing PUT."""
        scope = scope or repository_scope(repository, "pull,push")
        start_path = f"/v2/{repository}/blobs/uploads/"
        response = self.request("POST", start_path, headers={"Content-Length": "0"}, body=b"", scope=scope)
        body = response.read()
        if response.status != 202:
            raise self.error_from(response, body, "POST", start_path, f"upload to {repository}")
        location = self._location(response, start_path)
        reader = ProgressReader(stream, progress, short_id(digest), "Pushing", size)
        sent = 0
        if size > chunk_size:
            while sent < size:
                length = min(chunk_size, size - sent)
                chunk = _read_exactly(reader, length)
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length),
                           "Content-Range": f"{sent}-{sent + length - 1}"}
                response = self.request("PATCH", location, headers=headers, body=chunk, scope=scope)
                body = response.read()
                if response.status != 202:
                    raise self.error_from(response, body, "PATCH", location, f"chunk {sent}-{sent + length - 1} "
                                      f"of blob {digest}")
                location = self._location(response, location)
                sent += length
            final_body, final_length = b"", 0
        else:
            final_body, final_length = reader, size
        put_url = _add_query(location, digest=digest)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(final_length)}
        response = self.request("PUT", put_url, headers=headers, body=final_body, scope=scope)
        body = response.read()
        if response.status != 201:
            raise self.error_from(response, body, "PUT", put_url, f"blob {digest}")
        announced = response.getheader("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(f"blob pushed to {self.host}/{repository} (Docker-Content-Digest)", digest, announced)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str, *,
                     scope: str | None = None) -> str:
        """Publish a manifest under a tag; returns the digest the registry reports."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self.request("PUT", path, headers={"Content-Type": media_type, "Content-Length": str(len(data))},
                                body=data, scope=scope or repository_scope(repository, "pull,push"))
        body = response.read()
        if response.status != 201:
            raise self.error_from(response, body, "PUT", path, f"manifest for {repository}:{reference}")
        expected = sha256_digest(data)
        announced = response.getheader("Docker-Content-Digest") or expected
        if announced != expected:
            raise DigestMismatch(f"manifest pushed to {self.host}/{repository}:{reference} "
                                 "(Docker-Content-Digest)", expected, announced)
        return announced

    # ------------------------------------------------------------ requests with auth

    def request(self, method: str, url: str, *, headers: dict | None = None, body=None,
                scope: str | None = None, redirects: bool = False) -> http.client.HTTPResponse:
        """One request with auth handled; the caller reads the response before the next one.

        Once a Bearer challenge is known (from the ping), a token for ``scope`` is fetched
        before the request. A 401 teaches us the challenge; the request is repeated once
        with the credentials or token it asks for.
        """
        response = self._send(method, url, headers, body, auth=self._authorization(scope))
        if response.status == 401:
            response.read()
            token_scope = self._learn_challenge(response) or scope
            if not (body is None or isinstance(body, (bytes, bytearray))):
                raise RegistryAuthError(f"{self.host} asked for credentials in the middle of an upload "
                                        f"({method} {self._url(url)}); try again")
            authorization = self._authorization(scope, token_scope=token_scope, fresh=True)
            if authorization is None:
                raise RegistryAuthError(f"{self.host} requires authentication (401 Unauthorized for "
                                        f"{method} {self._url(url)}) and no credentials were given; pass "
                                        "credentials (user, password) or log in with `docker login`")
            response = self._send(method, url, headers, body, auth=authorization)
            if response.status == 401:
                data = response.read()
                who = "the credentials given" if self.credentials else "anonymous access (no credentials given)"
                raise RegistryAuthError(f"{self.host} refused {who}: 401 Unauthorized for {method} "
                                        f"{self._url(url)}{_error_text(data)}")
        while redirects and response.status in (301, 302, 303, 307, 308):
            response.read()
            target = urllib.parse.urljoin(self._url(url), response.getheader("Location") or "")
            if urllib.parse.urlsplit(target).netloc != self.host:
                return self._send_elsewhere(method, target)        # never forward our Authorization
            url = target
            response = self._send(method, url, headers, body, auth=self._authorization(scope))
        return response

    def _authorization(self, scope: str | None, *, token_scope: str | None = None,
                       fresh: bool = False) -> str | None:
        """The Authorization header: Basic credentials, or a Bearer token for ``scope``
        (cached until it expires; ``fresh`` fetches a new one). None when we have nothing."""
        if self._basic:
            if self.credentials is None:
                return None
            user, password = self.credentials
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self._bearer_challenge is None:
            return None
        key = scope or ""
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic() and not fresh:
            return f"Bearer {cached[0]}"
        token, expires = self._fetch_token(token_scope or scope)
        self._tokens[key] = (token, expires)
        return f"Bearer {token}"

    def _learn_challenge(self, response) -> str | None:
        """Remember how the registry wants us to authenticate; return the scope it asked for."""
        header = response.getheader("WWW-Authenticate") or ""
        challenges = parse_challenges(header)
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                self._bearer_challenge, self._basic = dict(challenge.params), False
                return challenge.params.get("scope")
        for challenge in challenges:
            if challenge.scheme == "basic":
                self._basic = True
                return None
        raise RegistryAuthError(f"{self.host} answered 401 without a challenge we understand "
                                f"(WWW-Authenticate: {header or 'missing'})")

    def _fetch_token(self, scope: str | None) -> tuple[str, float]:
        """GET <realm>?service=...&scope=... (Basic credentials if any) -> {"token": ...}."""
        realm = self._bearer_challenge["realm"]
        query = {"service": self._bearer_challenge.get("service")}
        if scope:
            query["scope"] = scope
        url = _add_query(realm, **{k: v for k, v in query.items() if v})
        split = urllib.parse.urlsplit(url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise RegistryAuthError(f"{self.host} sent a token realm we cannot use: {realm!r}")
        headers = {"User-Agent": USER_AGENT}
        if self.credentials is not None:
            user, password = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        started = time.monotonic()
        connection = _connect(split.scheme, split.netloc, self.timeout)
        try:
            target = split.path + (f"?{split.query}" if split.query else "")
            try:
                connection.request("GET", target or "/", headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as err:
                raise RegistryUnreachable(f"cannot reach the token server {split.netloc} of {self.host} "
                                          f"({url}): {_reason(err)}") from None
        finally:
            connection.close()
        self._record("GET", url, response, headers, started, note="token")
        if response.status in (401, 403):
            raise RegistryAuthError(f"the token server {split.netloc} refused "
                                    f"{'the credentials' if self.credentials else 'anonymous access'} "
                                    f"for scope {scope!r} ({response.status}){_error_text(data)}")
        if response.status != 200:
            raise RegistryAuthError(f"the token server {url} answered {response.status}{_error_text(data)}")
        try:
            answer = json.loads(data)
            token = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not token:
            raise RegistryAuthError(f"the token server {url} sent no token")
        return token, started + max(lifetime - 5, 1)

    # ------------------------------------------------------------ raw HTTP

    def _send(self, method: str, url: str, headers: dict | None = None, body=None, *,
              auth: str | None = None) -> http.client.HTTPResponse:
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if auth:
            headers["Authorization"] = auth
        target = self._target(url)
        started = time.monotonic()
        for attempt in (1, 2):
            fresh = self._connection is None
            if fresh:
                self._connection = _connect(self.scheme, self.host, self.timeout)
            try:
                self._connection.request(method, target, body=body, headers=headers)
                response = self._connection.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                # A kept-alive connection the server closed meanwhile: reconnect once, if the
                # body can be sent again.
                self.close()
                resendable = body is None or isinstance(body, (bytes, bytearray))
                if fresh or attempt == 2 or not resendable:
                    raise RegistryUnreachable(f"registry {self.host} closed the connection during "
                                              f"{method} {self._url(url)}: {_reason(err)}") from None
            except (OSError, http.client.HTTPException) as err:
                self.close()
                raise RegistryUnreachable(f"cannot reach registry {self.host} at {self._url(url)}: "
                                          f"{_reason(err)}") from None
        self._record(method, self._url(url), response, headers, started)
        return response

    def _send_elsewhere(self, method: str, url: str) -> http.client.HTTPResponse:
        """Follow a redirect to another host (a CDN) on a connection of its own."""
        split = urllib.parse.urlsplit(url)
        connection = _connect(split.scheme, split.netloc, self.timeout)
        started = time.monotonic()
        try:
            connection.request(method, split.path + (f"?{split.query}" if split.query else ""))
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            raise RegistryUnreachable(f"cannot reach {split.netloc}, where {self.host} redirected "
                                      f"{method} to: {_reason(err)}") from None
        self._record(method, url, response, {}, started, note="redirected")
        return response

    def _target(self, url: str) -> str:
        """The request target on our own host for an absolute URL or a path."""
        split = urllib.parse.urlsplit(url)
        if split.netloc and split.netloc != self.host:
            raise RegistryError(f"{self.host} pointed us at another host ({url}); refusing to send there")
        return (split.path or "/") + (f"?{split.query}" if split.query else "")

    def _url(self, url: str) -> str:
        return url if "://" in url else self.base_url + url

    def _location(self, response, current: str) -> str:
        location = response.getheader("Location")
        if not location:
            raise RegistryError(f"{self.host} started an upload without a Location header")
        return urllib.parse.urljoin(self._url(current), location)

    def _record(self, method: str, url: str, response, request_headers: dict, started: float,
                note: str = "") -> None:
        if self.trace is None:
            return
        auth = (request_headers.get("Authorization") or "").split(" ")[0].lower()
        digest = response.getheader("Docker-Content-Digest") or ""
        if not digest:
            found = re.search(r"sha256:[0-9a-f]{64}", urllib.parse.unquote(url))
            digest = found.group(0) if found else ""
        self.trace.append({
            "method": method, "url": url, "status": response.status, "reason": response.reason,
            "auth": auth, "digest": digest, "note": note,
            "ms": round((time.monotonic() - started) * 1000, 1),
            "request": {k: v for k, v in request_headers.items() if k in _TRACED_HEADERS},
            "response": {k: response.getheader(k) for k in _TRACED_HEADERS if response.getheader(k) is not None},
        })

    def error_from(self, response, body: bytes, method: str, url: str, what: str) -> TeachdockError:
        """Turn an unexpected answer into the most specific error, with the registry's words."""
        codes = _error_codes(body)
        detail = _error_text(body)
        if response.status == 404 and (not codes or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}):
            return ManifestUnknown(f"No such image on registry: {what}{detail}")
        if response.status in (401, 403):
            return RegistryAuthError(f"{self.host} denied {method} {self._url(url)} ({response.status} "
                                     f"{response.reason}){detail}")
        if response.status == 429:
            retry = response.getheader("Retry-After")
            return RegistryError(f"{self.host} is rate-limiting us (429 Too Many Requests)"
                                 f"{f'; retry after {retry} s' if retry else ''}{detail}")
        return RegistryError(f"{method} {self._url(url)} failed for {what}: {response.status} "
                             f"{response.reason}{detail}")


class _HTTPConnection(http.client.HTTPConnection):
    """TCP_NODELAY, as Go's net package sets by default: without it, a request whose last
    bytes are a small segment waits for the peer's delayed ACK (40 ms on Linux)."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connect(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return _HTTPSConnection(netloc, timeout=timeout, context=ssl.create_default_context(), blocksize=_CHUNK)
    return _HTTPConnection(netloc, timeout=timeout, blocksize=_CHUNK)


def _reason(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the registry running, and on that port?)"
    if isinstance(err, socket.gaierror):
        return f"unknown host ({err.strerror})"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err}); a plain-HTTP registry needs insecure=True"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _error_codes(body: bytes) -> set[str]:
    try:
        return {e.get("code", "") for e in json.loads(body).get("errors", [])}
    except (ValueError, AttributeError, TypeError):
        return set()


def _error_text(body: bytes) -> str:
    """``: MANIFEST_UNKNOWN: manifest unknown`` from the registry's error body, if any."""
    try:
        errors = json.loads(body).get("errors", [])
        parts = [": ".join(p for p in (e.get("code"), e.get("message")) if p) for e in errors]
    except (ValueError, AttributeError, TypeError):
        return ""
    return f" ({'; '.join(p for p in parts if p)})" if any(parts) else ""


def repository_scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


def _add_query(url: str, **params: str) -> str:
    """Append query parameters, keeping any the URL already has (an upload's ``_state``)."""
    split = urllib.parse.urlsplit(url)
    query = split.query + ("&" if split.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(split._replace(query=query))


def _read_exactly(stream, size: int) -> bytes:
    parts, left = [], size
    while left:
        data = stream.read(min(left, _CHUNK))
        if not data:
            raise RegistryError(f"the local blob ended {left} bytes early while uploading")
        parts.append(data)
        left -= len(data)
    return b"".join(parts)
