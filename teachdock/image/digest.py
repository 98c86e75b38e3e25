"""Content digests: the names everything in an image is stored and checked by.

An OCI digest is ``<algorithm>:<hex>``, e.g. ``sha256:3f5e...``. Blobs are stored under
their digest, manifests point at blobs by digest, and a config lists each layer's *diff_id*
(the digest of the uncompressed tar). Checking a digest is how we know that what we read is
exactly what was written or published, so every reader here hashes while it reads.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from teachdock.errors import InvalidConfig

#: The hex lengths go-digest accepts for each algorithm (always lowercase hex).
ALGORITHM_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALGORITHM_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")


class InvalidDigest(InvalidConfig):
    """A string that should be a digest is not one (wrong algorithm, length or characters)."""


class DigestMismatch(InvalidConfig):
    """Content does not hash to the digest it claims: corrupt, truncated or tampered with."""

    def __init__(self, what: str, expected: str, actual: str):
        super().__init__(f"digest mismatch for {what}: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def sha256_digest(data: bytes) -> str:
    """The OCI digest of a byte string, e.g. ``sha256:e3b0c442...``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def split_digest(digest: str) -> tuple[str, str]:
    """Check ``digest`` and return ``(algorithm, hex)``; raise InvalidDigest with the reason."""
    if not isinstance(digest, str) or ":" not in digest:
        raise InvalidDigest(f"invalid digest {digest!r}: expected '<algorithm>:<hex>', e.g. 'sha256:<64 hex digits>'")
    algorithm, _, hexpart = digest.partition(":")
    if not _ALGORITHM_RE.fullmatch(algorithm):
        raise InvalidDigest(f"invalid digest {digest!r}: malformed algorithm {algorithm!r}")
    if algorithm not in ALGORITHM_HEX_LENGTHS:
        raise InvalidDigest(f"invalid digest {digest!r}: unsupported digest algorithm {algorithm!r} "
                            f"(supported: {', '.join(ALGORITHM_HEX_LENGTHS)})")
    want = ALGORITHM_HEX_LENGTHS[algorithm]
    if len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise InvalidDigest(f"invalid digest {digest!r}: {algorithm} needs exactly {want} lowercase hex digits")
    return algorithm, hexpart


def check_sha256(digest: str) -> str:
    """Return the hex part of a sha256 digest; the store only keeps sha256 blobs."""
    algorithm, hexpart = split_digest(digest)
    if algorithm != "sha256":
        raise InvalidDigest(f"unsupported digest {digest!r}: teachdock stores sha256 content only")
    return hexpart


def chain_id(diff_ids: list[str]) -> str:
    """ChainID of a layer stack (image-spec config.md): a good key for an unpacked stack.

    ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
    """
    if not diff_ids:
        raise InvalidDigest("a chain id needs at least one diff_id")
    chain = diff_ids[0]
    for diff_id in diff_ids[1:]:
        chain = sha256_digest(f"{chain} {diff_id}".encode())
    return chain


class HashingReader:
    """Wrap a binary stream; hash and count every byte read through it.

    Readers stack: a layer's compressed bytes go through one (-> digest), the gunzipped
    bytes through another (-> diff_id), so both are checked in a single pass.
    """

    def __init__(self, stream: BinaryIO, progress=None, total: int | None = None):
        self._stream = stream
        self._hash = hashlib.sha256()
        self.count = 0
        self._progress = progress
        self._total = total
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        self.count += len(data)
        if self._progress is not None and (self.count - self._reported >= 1 << 20 or not data):
            self._reported = self.count
            self._progress(self.count, self._total)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left, e.g. the zero padding after a tar's end marker."""
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class HashingWriter:
    """Wrap a binary stream; hash and count every byte written through it."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        self._hash.update(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
