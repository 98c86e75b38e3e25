"""Users and groups as a root filesystem knows them: its /etc/passwd and /etc/group.

``docker run --user app:staff``, a Dockerfile's ``USER app`` and ``docker exec -u nobody``
name users the way the *image* knows them, not the host: ``app`` may be uid 1000 in one
image and not exist in another. The kernel only knows numbers, so someone has to look the
names up in the image's own files before the container starts. In Docker that is runc's
user package (moby/sys/user); here it is this module, used by the spec (``make_spec``),
the container's init (``HOME``), the exec path, the image builder and the daemon.

The rootfs is untrusted: an image may make ``/etc/passwd`` a symlink to ``/etc/shadow`` or
to ``../../../etc/passwd``. Every file is opened through the secure join, which resolves
symlinks as if the rootfs were ``/``, so a lookup never reads a host file.

The rules are Docker's (and runc's):

- ``user`` is ``name``, ``uid``, ``name:group`` or ``uid:gid``; a group is a name or a gid;
- a name must exist in /etc/passwd, a group name in /etc/group; numbers need not exist;
- without a group, the gid is the user's entry's group, or 0 when the uid has no entry;
- the supplementary groups are the primary group plus every group listing the user's name.
"""

from __future__ import annotations

import os
from collections import namedtuple

from teachdock.errors import InvalidConfig
from teachdock.runtime.securejoin import secure_join


# namedtuples, not dataclasses: importing dataclasses costs ~11 ms on every container start.
#: One line of /etc/passwd: ``name:password:uid:gid:gecos:home:shell`` (uid and gid as ints).
PasswdEntry = namedtuple("PasswdEntry", ["name", "uid", "gid", "home"])
#: One line of /etc/group: ``name:password:gid:member,member`` (members as a tuple of names).
GroupEntry = namedtuple("GroupEntry", ["name", "gid", "members"])


def _lines(rootfs, path: str) -> list[list[str]]:
    """The colon-separated fields of each line of ``path`` inside ``rootfs`` (none if it is missing)."""
    try:
        with open(secure_join(os.fspath(rootfs), path)) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []


def read_passwd(rootfs) -> list[PasswdEntry]:
    """The entries of ``<rootfs>/etc/passwd`` (lines that are not well-formed are skipped, as libc does)."""
    entries = []
    for fields in _lines(rootfs, "/etc/passwd"):
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            home = fields[5] if len(fields) >= 6 and fields[5] else "/"
            entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), home))
    return entries


def read_group(rootfs) -> list[GroupEntry]:
    """The entries of ``<rootfs>/etc/group``."""
    entries = []
    for fields in _lines(rootfs, "/etc/group"):
        if len(fields) >= 3 and fields[2].isdigit():
            members = tuple(m for m in fields[3].split(",") if m) if len(fields) >= 4 else ()
            entries.append(GroupEntry(fields[0], int(fields[2]), members))
    return entries


def _number(text: str, user) -> int | None:
    """``text`` as an id, None when it is a name; negative numbers are refused."""
    if text.isdigit():
        return int(text)
    if text.startswith("-") and text[1:].isdigit():
        raise InvalidConfig(f"user {user!r}: ids cannot be negative")
    return None


def resolve_user(rootfs, user: str | int | None) -> tuple[int, int]:
    """``"app"``, ``"1000"``, ``"app:staff"``, ``"1000:50"`` or an int -> (uid, gid), looked up in
    the rootfs's /etc/passwd and /etc/group; None or "" is root (0, 0)."""
    if user is None or user == "":
        return 0, 0
    text = str(user)
    name, _, group = text.partition(":")
    uid = _number(name, user)
    if uid is not None and group and _number(group, user) is not None:
        return uid, int(group)  # all numbers: nothing to look up
    passwd = read_passwd(rootfs)
    if uid is None:
        entry = next((e for e in passwd if e.name == name), None)
        if entry is None:
            raise InvalidConfig(f"unable to find user {name}: no matching entries in the rootfs's /etc/passwd")
        uid, gid = entry.uid, entry.gid
    else:
        gid = next((e.gid for e in passwd if e.uid == uid), 0)
    if group:
        gid = _number(group, user)
        if gid is None:
            entry = next((e for e in read_group(rootfs) if e.name == group), None)
            if entry is None:
                raise InvalidConfig(f"unable to find group {group}: no matching entries in the rootfs's /etc/group")
            gid = entry.gid
    return uid, gid


def supplementary_groups(rootfs, user: str | int | None) -> list[int]:
    """The groups a process of ``user`` holds, as runc works them out for Docker: its primary
    group, then every group of the rootfs's /etc/group that lists the user's name."""
    uid, gid = resolve_user(rootfs, user)
    name = str(user or "").partition(":")[0]
    if not name or name.isdigit():
        name = next((e.name for e in read_passwd(rootfs) if e.uid == uid), "")
    groups = [gid]
    for entry in read_group(rootfs) if name else []:
        if name in entry.members and entry.gid not in groups:
            groups.append(entry.gid)
    return groups


def home_directory(rootfs, uid: int) -> str:
    """The home of ``uid`` in the rootfs's /etc/passwd, or / when it has none (runc's default for HOME)."""
    return next((e.home for e in read_passwd(rootfs) if e.uid == uid), "/")
