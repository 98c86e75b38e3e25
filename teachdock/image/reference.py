"""Image references: what ``busybox`` really means.

Docker accepts short names and fills in the rest (docker/distribution ``reference`` package):

    busybox                      -> docker.io/library/busybox:latest
    library/busybox:1.36         -> docker.io/library/busybox:1.36
    127.0.0.1:5000/team/app@sha256:<64 hex>   (a local registry, pinned by digest)

The grammar, from distribution's ``reference/reference.go``::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [domain "/"] path-component ["/" path-component]*
    domain      := host [":" port]         host: a DNS name, an IPv4 address or [IPv6]
    path-component := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
    tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

The first component is a registry host only if it contains ``.`` or ``:``, is ``localhost``,
or has an uppercase letter; otherwise the name lives on Docker Hub (``docker.io``), and a
one-component Hub name gets the ``library/`` prefix of the official images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from teachdock.errors import InvalidConfig
from teachdock.image.digest import InvalidDigest, split_digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
#: Where docker.io is actually served from (moby registry/config.go).
DEFAULT_REGISTRY_HOST = "registry-1.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = re.compile(rf"{_HOST}(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


class InvalidReference(InvalidConfig):
    """An image name, tag or digest that Docker's reference grammar rejects."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str          # registry, e.g. "docker.io" or "127.0.0.1:5000"
    path: str            # repository path, e.g. "library/busybox" or "team/app"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, without tag or digest: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``team/app``, ``127.0.0.1:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    @property
    def familiar(self) -> str:
        """The whole reference as Docker prints it, e.g. ``busybox:latest``."""
        return self.familiar_name + self._suffix()

    @property
    def registry_host(self) -> str:
        """The host[:port] to talk HTTP to: Docker Hub's name differs from its domain."""
        return DEFAULT_REGISTRY_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def insecure_by_default(self) -> bool:
        """Docker allows plain HTTP to localhost and 127.0.0.0/8 without configuration."""
        host = re.sub(r":[0-9]+$", "", self.domain)
        return host in ("localhost", "[::1]") or host.startswith("127.")

    def with_tag(self, tag: str) -> Reference:
        """This repository with another tag (and no digest)."""
        _check_tag(tag, f"{self.name}:{tag}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """This repository pinned to a manifest digest (and no tag)."""
        try:
            split_digest(digest)
        except InvalidDigest as err:
            raise InvalidReference(str(err)) from None
        return replace(self, tag=None, digest=digest)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalise an image reference the way the docker CLI does.

    ``default_tag`` is added when the text has neither tag nor digest (``busybox`` means
    ``busybox:latest``); pass ``None`` to keep a bare repository name.
    Raises InvalidReference saying which part is wrong.
    """
    if not isinstance(text, str) or text == "":
        raise InvalidReference("invalid reference format: the image name is empty")
    if any(ch.isspace() for ch in text):
        raise InvalidReference(f"invalid reference format {text!r}: image names cannot contain whitespace")
    if _IMAGE_ID.fullmatch(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings "
                               "(this looks like an image id, not a name)")

    rest, digest = text, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        try:
            split_digest(digest)
        except InvalidDigest as err:
            raise InvalidReference(f"invalid reference format {text!r}: {err}") from None

    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):          # a ':' after the last '/' starts a tag, not a port
        rest, tag = rest[:colon], rest[colon + 1:]
        _check_tag(tag, text)

    domain, path = _split_domain(rest, text)
    if len(domain) + 1 + len(path) > NAME_MAX_LENGTH:
        raise InvalidReference(f"invalid reference format {text!r}: repository name must not be "
                               f"more than {NAME_MAX_LENGTH} characters")
    if tag is None and digest is None and default_tag is not None:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def is_image_id(text: str) -> bool:
    """True for a full image id, with or without the ``sha256:`` prefix."""
    return bool(_IMAGE_ID.fullmatch(text.removeprefix("sha256:")))


def _check_tag(tag: str, text: str) -> None:
    if tag == "":
        raise InvalidReference(f"invalid reference format {text!r}: empty tag after ':'")
    if len(tag) > 128:
        raise InvalidReference(f"invalid reference format {text!r}: tag is {len(tag)} characters long, "
                               "the maximum is 128")
    if not _TAG.fullmatch(tag):
        raise InvalidReference(f"invalid reference format {text!r}: tag {tag!r} may contain only letters, "
                               "digits, '_', '.' and '-', and must not start with '.' or '-'")


def _split_domain(name: str, text: str) -> tuple[str, str]:
    """Split ``name`` into (domain, path) with Docker's rules, then validate both parts."""
    if name == "":
        raise InvalidReference(f"invalid reference format {text!r}: repository name is empty")
    if name.startswith("/"):
        raise InvalidReference(f"invalid reference format {text!r}: repository name must not start with '/'")
    if name.endswith("/"):
        raise InvalidReference(f"invalid reference format {text!r}: repository name must not end with '/'")

    first, slash, remainder = name.partition("/")
    if slash and (first == "localhost" or any(c in first for c in ".:") or first.lower() != first):
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path

    if not _DOMAIN.fullmatch(domain):
        raise InvalidReference(f"invalid reference format {text!r}: {domain!r} is not a valid registry host[:port]")
    for component in path.split("/"):
        if component == "":
            raise InvalidReference(f"invalid reference format {text!r}: empty path component ('//')")
        if component in (".", ".."):
            raise InvalidReference(f"invalid reference format {text!r}: path component {component!r} is not allowed")
        if component.lower() != component and _PATH_COMPONENT.fullmatch(component.lower()):
            raise InvalidReference(f"invalid reference format {text!r}: repository name ({path}) must be lowercase")
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"invalid reference format {text!r}: repository component {component!r} may contain only "
                "lowercase letters and digits, separated by '.', '_', '__' or '-'")
    return domain, path
