"""The mount table as the kernel writes it: /proc/<pid>/mountinfo, one line per mount (proc(5)).

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2) (3)   (4)   (5)      (6)      (7)   (8) (9)    (10)         (11)

(1) mount id, (2) parent id, (3) major:minor of the device, (4) root: the part of the
filesystem that is mounted ("/" for all of it, a path for a bind mount), (5) mount point,
(6) per-mount options, (7) zero or more optional fields (propagation: shared:N, master:N,
propagate_from:N, unbindable), (8) a lone "-", (9) filesystem type, (10) source,
(11) per-superblock options. Paths write space, tab, newline and backslash as octal
escapes (``\\040``), so splitting a line on whitespace is safe.

One parser for every reader: the cgroup drivers (where are the v1 hierarchies?), the
doctor (is cgroup2 mounted?) and the filesystems chapter (the whole table, propagation
included).
"""

from __future__ import annotations

import re
from collections import namedtuple

MOUNTINFO = "/proc/self/mountinfo"

# A namedtuple, not a dataclass: importing dataclasses costs ~11 ms (inspect, ast, dis), paid on
# every `teachdock runtime run` (the cgroup drivers read this table).
_MountFields = namedtuple("_MountFields", [
    "mount_id",       # int
    "parent_id",      # int
    "device",         # major:minor
    "root",           # "/" for a whole filesystem, a path for a bind mount (/null for a file of the /dev tmpfs)
    "mount_point",
    "options",        # tuple: per-mount options: ro or rw, nosuid, nodev, ...
    "propagation",    # tuple: the optional fields: shared:N, master:N, propagate_from:N, unbindable
    "fs_type",
    "source",
    "super_options",  # tuple: per-superblock options; a v1 cgroup lists its controllers here
])


class Mount(_MountFields):
    """One line of mountinfo (immutable, compared field by field)."""

    __slots__ = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def propagation_type(self) -> str:
        """shared, slave, shared+slave, unbindable or private: what mount --make-* set."""
        shared = any(tag.startswith("shared:") for tag in self.propagation)
        slave = any(tag.startswith("master:") for tag in self.propagation)
        if shared and slave:
            return "shared+slave"
        if shared:
            return "shared"
        if slave:
            return "slave"
        return "unbindable" if "unbindable" in self.propagation else "private"


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes: ``/mnt/my\\040disk`` -> ``/mnt/my disk``."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Every well-formed line of ``text``; lines that are not mounts are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        # Six fixed fields, then the optional ones, then "-": look for it from the seventh on.
        if len(fields) < 9 or "-" not in fields[6:] or not (fields[0].isdigit() and fields[1].isdigit()):
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 3:
            continue
        mounts.append(Mount(
            mount_id=int(fields[0]), parent_id=int(fields[1]), device=fields[2],
            root=unescape(fields[3]), mount_point=unescape(fields[4]),
            options=tuple(fields[5].split(",")), propagation=tuple(fields[6:dash]),
            fs_type=fields[dash + 1], source=unescape(fields[dash + 2]),
            super_options=tuple(fields[dash + 3].split(",")) if len(fields) > dash + 3 else (),
        ))
    return mounts


def read_mountinfo(path: str = MOUNTINFO) -> list[Mount]:
    """The mount table in ``path``: this process's by default, ``/proc/<pid>/mountinfo`` for another's."""
    with open(path) as f:
        return parse_mountinfo(f.read())
