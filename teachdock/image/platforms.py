"""Platforms: which OS, CPU architecture and variant an image is for.

An image index (a multi-platform image, e.g. busybox on Docker Hub) lists one manifest per
platform, named as Go names them (image-spec image-index.md: ``platform.architecture``
takes GOARCH values, ``variant`` the CPU variant such as ``v7`` for 32-bit ARM). The
kernel names the same machines differently (``uname -m``: ``x86_64``, ``aarch64``,
``armv7l``), so :func:`host_platform` translates; pull, load and a new ``FROM scratch``
config all use it, and :func:`select_manifest` picks this host's entry from an index.
"""

from __future__ import annotations

import os

from teachdock.errors import InvalidConfig, NotFound
from teachdock.image.manifest import MANIFEST_TYPES

#: ``uname -m`` -> (GOARCH, variant): the names image indexes use (containerd's
#: platforms.Normalize does the same translation). A 64-bit ARM has no variant (``v8`` is
#: the only one, and select_manifest treats ``arm64/v8`` as plain ``arm64``).
_MACHINE_TO_PLATFORM = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "i386": ("386", None), "i486": ("386", None), "i586": ("386", None), "i686": ("386", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None), "armv8b": ("arm64", None),
    "armv8l": ("arm", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", None), "ppc64": ("ppc64", None),
    "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    "mips64": ("mips64", None), "loongarch64": ("loong64", None),
}


def host_platform() -> dict[str, str]:
    """This machine's platform in OCI terms: ``{"architecture": "amd64", "os": "linux"}``.

    In the key order of an image config (architecture before os), so a new config's bytes,
    and with them its digest, stay the same.
    """
    machine = os.uname().machine
    architecture, variant = _MACHINE_TO_PLATFORM.get(machine, (machine, None))
    platform = {"architecture": architecture, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return platform


def parse_platform(text: str | dict | None) -> dict:
    """``"linux/arm64/v8"`` (or a dict, or None for this host) -> an OCI platform dict."""
    if text is None:
        return host_platform()
    if isinstance(text, dict):
        return dict(text)
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidConfig(f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/amd64")
    platform = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        platform["variant"] = parts[2]
    return platform


def format_platform(platform: dict) -> str:
    return "/".join(p for p in (platform.get("os"), platform.get("architecture"), platform.get("variant")) if p)


def select_manifest(index: dict, platform: str | dict | None = None, *, what: str = "the image") -> dict:
    """Pick the manifest descriptor for ``platform`` (default: this host) from an index.

    Attestation manifests (platform ``unknown/unknown``) are skipped. A wanted variant must
    match (arm64's ``v8`` is the same as no variant); without one, an entry without a
    variant wins over one with. Raises NotFound naming the platforms the index has.
    """
    want = parse_platform(platform)
    want_variant = _variant(want)
    candidates = []
    for entry in index.get("manifests") or []:
        entry_platform = entry.get("platform") or {}
        annotations = entry.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if entry_platform.get("os") == "unknown" or entry.get("mediaType") not in (MANIFEST_TYPES | {None}):
            continue
        if (entry_platform.get("os"), entry_platform.get("architecture")) != (want["os"], want["architecture"]):
            continue
        variant = _variant(entry_platform)
        if want_variant is not None and variant != want_variant:
            continue
        candidates.append((variant is not None, entry))
    if not candidates:
        available = sorted({format_platform(e.get("platform") or {}) or "(no platform)"
                            for e in index.get("manifests") or []})
        raise NotFound(f"no manifest for platform {format_platform(want)} in {what}; "
                       f"it has: {', '.join(available) or 'nothing'}")
    candidates.sort(key=lambda pair: pair[0])      # stable: entries without a variant first
    return candidates[0][1]


def _variant(platform: dict) -> str | None:
    variant = platform.get("variant") or None
    if platform.get("architecture") == "arm64" and variant == "v8":
        return None
    return variant
