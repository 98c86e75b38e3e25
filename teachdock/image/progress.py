"""Progress of a long transfer, as ``docker pull``, ``push``, ``save`` and ``load`` report it.

One event type for all four (archive.py and registry.py both report through it), so the
CLI binds it to a rich progress bar and a notebook to an ipywidgets one, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Callable


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long transfer, shaped like Docker's JSON progress messages.

    ``id`` is the blob's short digest (12 hex digits, as Docker shows it); ``status`` is
    Docker's wording ("Downloading", "Pushed", "Already exists", "Loading layer", ...);
    ``current``/``total`` are bytes of that blob (total None when unknown).
    A CLI binds it to a rich progress bar, a notebook to an ipywidgets one.
    """

    id: str
    status: str
    current: int = 0
    total: int | None = None


Progress = Callable[[ProgressEvent], None]


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class ProgressReader:
    """Pass reads through, reporting bytes read so far as ``ProgressEvent``s."""

    def __init__(self, stream: BinaryIO, progress: Progress | None, id: str, status: str, total: int | None):
        self._stream, self._progress = stream, progress
        self._id, self._status, self._total = id, status, total
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        if self._progress is not None and data:
            self._progress(ProgressEvent(self._id, self._status, self.count, self._total))
        return data
