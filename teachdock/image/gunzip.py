"""Gunzip a layer in a second thread, hashing both sides, while the caller writes files.

``tar -xzf`` is fast partly because GNU tar runs ``gzip -d`` as a separate process: one
core inflates while the other creates files. :class:`GunzipAhead` does the same inside
Python: a thread reads the compressed stream, hashes it (the layer's digest), inflates it
with zlib, hashes the result (the diff_id) and hands it over in chunks of up to 1 MiB.
zlib and hashlib let go of the GIL while they work on big buffers, so both threads really
run at once.

The checks are those of the ``gzip`` module: zlib verifies each member's CRC-32 and
length (the gzip trailer), several members follow each other, zero padding after the
last one is accepted, and a stream that ends inside a member is an ``EOFError``. An error
in the thread is raised in the caller's thread, at its next ``read``. Progress callbacks
also run in the caller's thread, never in the helper.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib

from teachdock.image.digest import HashingReader

GZIP_WBITS = 16 + zlib.MAX_WBITS        # zlib's "gzip container": header and trailer checked by zlib
_CHUNK = 1 << 20
_QUEUE_CHUNKS = 8                       # at most this many inflated MiB wait for the caller
_END = object()


class GunzipAhead:
    """A readable stream of the gunzipped bytes of ``compressed`` (a HashingReader).

    After the last ``read`` (or :meth:`drain`): ``digest``/``count`` of the uncompressed
    bytes; the compressed side's are on the HashingReader given. Always :meth:`close`.
    """

    def __init__(self, compressed: HashingReader, progress=None, total: int | None = None):
        self._compressed = compressed
        self._progress, self._total, self._reported = progress, total, 0
        self._hash = hashlib.sha256()
        self.count = 0
        self._queue: queue.Queue = queue.Queue(_QUEUE_CHUNKS)
        self._chunk, self._position, self._finished = b"", 0, False
        self._stopping = False
        self._thread = threading.Thread(target=self._inflate_all, name="gunzip-ahead", daemon=True)
        self._thread.start()

    # ---- the helper thread

    def _inflate_all(self) -> None:
        try:
            decompressor = None          # None: between members (or before the first)
            while not self._stopping and (data := self._compressed.read(_CHUNK)):
                while data and not self._stopping:
                    if decompressor is None:
                        data = data.lstrip(b"\0")      # zero padding between or after members
                        if not data:
                            break
                        decompressor = zlib.decompressobj(GZIP_WBITS)
                    data = self._inflate(decompressor, data)
                    if decompressor.eof:
                        data, decompressor = decompressor.unused_data, None
            if decompressor is not None and not self._stopping:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            self._queue.put((_END, self._compressed.count))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            self._queue.put((error, self._compressed.count))

    def _inflate(self, decompressor, data: bytes) -> bytes:
        """Inflate ``data`` in pieces of at most 1 MiB (a small bomb must not fill memory);
        returns what belongs to the next member, if this one ended."""
        while True:
            plain = decompressor.decompress(data, _CHUNK)
            if plain:
                self._hash.update(plain)
                self.count += len(plain)
                self._queue.put((plain, self._compressed.count))
            data = decompressor.unconsumed_tail
            if decompressor.eof or self._stopping or (not data and len(plain) < _CHUNK):
                return data

    # ---- the caller's side

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0:
            if self._position == len(self._chunk):
                if not self._next_chunk():
                    break
                continue
            end = len(self._chunk) if size < 0 else min(len(self._chunk), self._position + size)
            parts.append(self._chunk[self._position:end])
            if size > 0:
                size -= end - self._position
            self._position = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _next_chunk(self) -> bool:
        if self._finished:
            return False
        item, compressed_count = self._queue.get()
        if self._progress is not None and (compressed_count - self._reported >= _CHUNK or item is _END):
            self._reported = compressed_count
            self._progress(compressed_count, self._total)
        if isinstance(item, bytes):
            self._chunk, self._position = item, 0
            return True
        self._finished = True
        self._thread.join()
        if item is not _END:
            raise item
        return False

    def drain(self) -> None:
        """Read to the end: the hashes cover every byte, and a broken gzip end is raised here."""
        while self._next_chunk():
            pass

    @property
    def digest(self) -> str:
        if not self._finished:
            raise RuntimeError("the digest of a stream not read to its end")
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        """Stop the helper (e.g. the caller gave up on a bad member) and wait for it."""
        self._stopping = True
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)       # unblock a put, so it sees _stopping
            except queue.Empty:
                pass
        self._thread.join()
