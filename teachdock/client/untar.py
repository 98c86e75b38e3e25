"""Unpack the tar that ``teachdock cp CONTAINER:SRC DEST`` gets from the daemon, safely.

The archive comes out of a container, so whoever controls the container controls every
byte of it. The docker CLI unpacks it on the client's side with its own archive code; the
client here does the same with ``tarfile`` and these rules, checked for every member:

- its name is relative and stays inside: no absolute path, no ``..`` component;
- nothing is written through a link: each parent directory of a member must be a real
  directory (a symlink from the archive is created as a link, never followed);
- a hard link points at a member already unpacked here;
- regular files, directories, symlinks, hard links and FIFOs only: device nodes are refused;
- owners are not copied (the files belong to who runs cp, as with ``docker cp`` without
  ``-a``), nor setuid/setgid/sticky bits; permissions and modification times are.

(Python 3.12's ``tarfile`` extraction filter ``"data"`` enforces much the same; the
interpreter this runs on may not have it.)
"""

from __future__ import annotations

import os
import tarfile

from teachdock.errors import InvalidConfig


class UnsafeArchive(InvalidConfig):
    """A member the rules above refuse: nothing after it is unpacked."""


def member_path(root: str, name: str) -> str:
    """``root/name`` for a member's name, refused if absolute or with a ``..`` component."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise UnsafeArchive(f"refusing {name!r} from the archive: it points outside the destination")
    return os.path.join(root, *parts)


def check_parents(root: str, path: str) -> None:
    """Every directory between ``root`` and ``path`` must be a real directory, not a link."""
    parent = os.path.dirname(path)
    while parent != root and len(parent) > len(root):
        if os.path.islink(parent) or (os.path.lexists(parent) and not os.path.isdir(parent)):
            raise UnsafeArchive(f"refusing {os.path.relpath(path, root)!r} from the archive: "
                                f"{os.path.relpath(parent, root)!r} is not a directory")
        parent = os.path.dirname(parent)


def extract(archive, root: str) -> None:
    """Unpack the tar file object ``archive`` into the existing directory ``root``."""
    root = os.path.abspath(root)
    directories = []
    with tarfile.open(fileobj=archive, mode="r|*") as tar:
        for member in tar:
            path = member_path(root, member.name)
            if path == root:
                continue
            check_parents(root, path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if member.isdir():
                if not os.path.isdir(path) or os.path.islink(path):
                    _remove(path)
                    os.mkdir(path, 0o700)
                directories.append((path, member))    # its mode and time once its content is in
                continue
            _remove(path)
            if member.isreg():
                with open(path, "xb") as out:
                    source = tar.extractfile(member)
                    while block := source.read(1 << 20):
                        out.write(block)
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.islnk():
                target = member_path(root, member.linkname)
                check_parents(root, target)
                if os.path.islink(target) or not os.path.isfile(target):
                    raise UnsafeArchive(f"refusing the hard link {member.name!r}: {member.linkname!r} "
                                        "is not a file unpacked before it")
                os.link(target, path)
                continue                             # the same inode: its mode and time are the target's
            elif member.isfifo():
                os.mkfifo(path)
            else:
                raise UnsafeArchive(f"refusing {member.name!r} from the archive: a device node")
            if member.isreg() or member.isfifo():
                os.chmod(path, member.mode & 0o777)
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    for path, member in reversed(directories):   # deepest first: a parent's time is set last
        os.chmod(path, member.mode & 0o777)
        os.utime(path, (member.mtime, member.mtime))


def _remove(path: str) -> None:
    """Make room for a member (a later member replaces an earlier one, as tar does)."""
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil  # noqa: PLC0415

        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
