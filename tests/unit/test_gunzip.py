"""GunzipAhead: the gzip module's checks, from a second thread, reported in the caller's."""

import gzip
import hashlib
import io
import threading
import zlib

import pytest

from teachdock.image.digest import HashingReader
from teachdock.image.gunzip import GunzipAhead

DATA = b"".join(b"line %d of a layer\n" % i for i in range(200_000))   # ~4 MB: several chunks


def gunzip(compressed: bytes, **kwargs) -> tuple[bytes, GunzipAhead, HashingReader]:
    raw = HashingReader(io.BytesIO(compressed))
    reader = GunzipAhead(raw, **kwargs)
    try:
        out = b"".join(iter(lambda: reader.read(65536), b""))
        reader.drain()
    finally:
        reader.close()
    return out, reader, raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_both_sides_are_hashed_and_counted():
    compressed = gzip.compress(DATA)
    out, reader, raw = gunzip(compressed)
    assert out == DATA
    assert (reader.digest, reader.count) == (sha(DATA), len(DATA))
    assert (raw.digest, raw.count) == (sha(compressed), len(compressed))


def test_reads_of_every_size_give_the_same_bytes():
    reader = GunzipAhead(HashingReader(io.BytesIO(gzip.compress(DATA))))
    try:
        parts, size = [], 1
        while part := reader.read(size):
            parts.append(part)
            size = size * 7 % 100_003 + 1
        assert b"".join(parts) == DATA
        assert reader.read() == b"" and reader.read(10) == b""
    finally:
        reader.close()


def test_members_follow_each_other_and_zero_padding_is_accepted():
    compressed = gzip.compress(b"first ") + gzip.compress(b"second") + bytes(3000)
    assert gunzip(compressed)[0] == b"first second"


@pytest.mark.parametrize("what, mangle, error", [
    ("truncated", lambda c: c[:len(c) // 2], EOFError),
    ("trailer cut off", lambda c: c[:-4], EOFError),
    ("wrong CRC", lambda c: c[:-8] + bytes(4) + c[-4:], zlib.error),
    ("wrong length", lambda c: c[:-4] + bytes(4), zlib.error),
    ("garbage after the end", lambda c: c + b"not gzip", zlib.error),
    ("corrupt data", lambda c: c[:100] + bytes(200) + c[300:], zlib.error),
])
def test_a_broken_stream_raises_in_the_callers_thread(what, mangle, error):
    with pytest.raises(error):
        gunzip(mangle(gzip.compress(DATA)))


def test_the_digest_is_refused_before_the_end():
    reader = GunzipAhead(HashingReader(io.BytesIO(gzip.compress(DATA))))
    try:
        reader.read(10)
        with pytest.raises(RuntimeError):
            reader.digest
    finally:
        reader.close()


def test_a_bomb_is_inflated_in_bounded_pieces():
    """64 MiB of zeros gzip to 64 KiB: inflated at once they would all sit in memory."""
    reader = GunzipAhead(HashingReader(io.BytesIO(gzip.compress(bytes(64 << 20)))))
    try:
        sizes = []
        while reader.read(1):
            sizes.append(len(reader._chunk))        # the piece handed over from the helper
            reader._position = len(reader._chunk)
        assert len(sizes) == 64 and max(sizes) == 1 << 20
        assert reader.count == 64 << 20
    finally:
        reader.close()


def test_close_mid_stream_stops_the_helper():
    reader = GunzipAhead(HashingReader(io.BytesIO(gzip.compress(DATA * 4))))
    reader.read(100)
    reader.close()
    assert not any(t.name == "gunzip-ahead" and t.is_alive() for t in threading.enumerate())


def test_progress_is_reported_from_the_callers_thread():
    calls = []
    compressed = gzip.compress(DATA)
    gunzip(compressed, progress=lambda done, total: calls.append((done, total, threading.current_thread())),
           total=len(compressed))
    assert calls and calls[-1][:2] == (len(compressed), len(compressed))
    assert {thread for *_, thread in calls} == {threading.current_thread()}
