"""Writing a file so that readers see the old content or the new one, never half of either.

Every layer keeps small state files (container records, image indexes, network leases); all of
them are written here, in one way: a temporary file in the same directory, then ``rename(2)``,
which the kernel does atomically within one filesystem.

``durable=True`` adds ``fsync`` of the file before the rename and of the directory after it, so
the new content survives a power cut (data under the data root). State that dies with the
machine anyway (under ``/run``, a tmpfs) skips it: an fsync costs milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomically(path: str | os.PathLike, data: bytes | str, *, durable: bool = True,
                     mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` in one step (see the module's docstring)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o644 if mode is None else mode)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None:
                os.fchmod(fd, mode)  # the umask must not narrow what the caller asked for
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_json_atomically(path: str | os.PathLike, value, *, durable: bool = True, indent: int | None = None,
                          mode: int | None = None) -> None:
    """:func:`write_atomically` of ``value`` as JSON."""
    write_atomically(path, json.dumps(value, indent=indent), durable=durable, mode=mode)
