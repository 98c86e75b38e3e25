"""The "newc" cpio format: how a Linux initramfs is packed.

At boot the kernel unpacks a cpio archive into an in-memory filesystem (rootfs) and
runs its ``/init``. The format is simple enough to write by hand, which is why we do:

    every entry =  header (110 ASCII bytes)  +  name + NUL  + pad to 4
                                             +  data        + pad to 4

    header = "070701"  (magic: newc, no checksum)
             then 13 fields, each 8 hexadecimal digits:
             ino mode uid gid nlink mtime filesize devmajor devminor
             rdevmajor rdevminor namesize check

``mode`` holds the file type and permission bits exactly as ``stat()`` reports them
(0o100755 a regular executable, 0o040755 a directory, 0o120777 a symlink, 0o020600 a
character device). A symlink's data is its target. A device node has no data; its
number sits in rdevmajor/rdevminor, so an archive can hold /dev/console without
root ever calling mknod. The archive ends with an entry named ``TRAILER!!!``.

Names have no leading "/". The kernel creates entries in archive order and does not
create missing parent directories, so directories must come before their contents;
the writer adds missing parents itself. Several archives may be concatenated (even
a compressed one followed by a plain one): the kernel unpacks them one after the
other, later files overwriting earlier ones. teachdock.vm uses that to append a small
per-boot archive (the workload) to a base archive built once.

Specification: https://www.kernel.org/doc/html/latest/driver-api/early-userspace/buffer-format.html
and ``man 5 cpio`` (section "New ASCII Format").
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
HEADER_SIZE = 110  # 6 bytes of magic + 13 fields * 8 hex digits
TRAILER = "TRAILER!!!"
FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
          "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check")


def _pad4(length: int) -> bytes:
    """Zero bytes that bring ``length`` up to the next multiple of 4."""
    return b"\0" * (-length % 4)


@dataclass
class Entry:
    """One archive member as read back by :func:`read_newc`."""

    name: str
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    rdevmajor: int
    rdevminor: int
    data: bytes

    @property
    def kind(self) -> str:
        """"file", "dir", "symlink", "chardev", "blockdev", or "other"."""
        for test, kind in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                           (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "chardev"),
                           (stat.S_ISBLK, "blockdev")):
            if test(self.mode):
                return kind
        return "other"


class CpioWriter:
    """Write a newc cpio archive, entry by entry, into a binary file object.

    Every entry gets uid/gid 0 and mtime 0 (unless a file's mtime is given), so building the same tree twice gives
    byte-identical archives (and nothing on the build host leaks into the guest).
    """

    def __init__(self, out: BinaryIO):
        self.out = out
        self.next_ino = 1
        self.names: set[str] = set()
        self.closed = False

    # -- the one place that writes bytes -------------------------------------------
    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0), nlink: int = 1, ino: int | None = None,
               mtime: int = 0) -> None:
        if self.closed:
            raise ValueError("the archive is closed (its trailer is written)")
        encoded = name.encode() + b"\0"
        if ino is None:
            ino, self.next_ino = self.next_ino, self.next_ino + 1
        values = {
            "ino": ino, "mode": mode, "uid": 0, "gid": 0, "nlink": nlink, "mtime": mtime,
            "filesize": len(data), "devmajor": 0, "devminor": 0,
            "rdevmajor": rdev[0], "rdevminor": rdev[1],
            "namesize": len(encoded), "check": 0,
        }
        header = MAGIC + b"".join(b"%08X" % values[field] for field in FIELDS)
        assert len(header) == HEADER_SIZE
        self.out.write(header + encoded + _pad4(HEADER_SIZE + len(encoded)))
        self.out.write(data + _pad4(len(data)))

    @staticmethod
    def _clean(name: str) -> str:
        clean = name.strip("/")
        if not clean or ".." in clean.split("/"):
            raise ValueError(f"bad archive name {name!r}: need a relative path without '..'")
        return clean

    def _parents(self, name: str) -> None:
        """Add the directories above ``name`` that the archive lacks so far."""
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in self.names:
                self.add_dir(parent)

    # -- public entry kinds --------------------------------------------------------
    def add_dir(self, name: str, perms: int = 0o755) -> None:
        name = self._clean(name)
        if name in self.names:
            return
        self._parents(name)
        self.names.add(name)
        self._entry(name, stat.S_IFDIR | perms, nlink=2)

    def add_file(self, name: str, data: bytes, perms: int = 0o644, mtime: int = 0) -> None:
        """``mtime`` (seconds) matters for Python sources: a .pyc is used only when the
        source's mtime equals the one recorded in it."""
        name = self._clean(name)
        self._parents(name)
        self.names.add(name)
        self._entry(name, stat.S_IFREG | perms, data, mtime=mtime)

    def add_symlink(self, name: str, target: str) -> None:
        name = self._clean(name)
        self._parents(name)
        self.names.add(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name: str, major: int, minor: int, perms: int = 0o600) -> None:
        name = self._clean(name)
        self._parents(name)
        self.names.add(name)
        self._entry(name, stat.S_IFCHR | perms, rdev=(major, minor))

    def close(self) -> None:
        """Write the trailer entry. The file object itself stays open."""
        if not self.closed:
            self._entry(TRAILER, 0, ino=0)
            self.closed = True


def read_newc(data: bytes) -> list[Entry]:
    """Parse a plain newc archive (the reverse of :class:`CpioWriter`), up to its trailer.

    For tests and for learners who want to look inside an initramfs. Zero padding
    between concatenated archives is skipped; a compressed archive is not handled.
    """
    entries: list[Entry] = []
    offset = 0
    while offset < len(data):
        if data[offset] == 0:  # padding between concatenated archives
            offset += 1
            continue
        if data[offset:offset + 6] != MAGIC:
            raise ValueError(f"no newc magic at byte {offset}: {data[offset:offset + 6]!r}")
        raw = data[offset + 6:offset + HEADER_SIZE]
        fields = {f: int(raw[i * 8:i * 8 + 8], 16) for i, f in enumerate(FIELDS)}
        name_start = offset + HEADER_SIZE
        name = data[name_start:name_start + fields["namesize"] - 1].decode()
        data_start = name_start + fields["namesize"]
        data_start += -data_start % 4  # header + name are padded to 4 as a whole
        body = data[data_start:data_start + fields["filesize"]]
        offset = data_start + fields["filesize"]
        offset += -offset % 4
        if name == TRAILER:
            continue  # a further archive may follow
        entries.append(Entry(name, fields["mode"], fields["uid"], fields["gid"],
                             fields["nlink"], fields["mtime"], fields["rdevmajor"],
                             fields["rdevminor"], body))
    return entries
