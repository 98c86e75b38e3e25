"""Join a path inside a root directory without ever following a symlink out of it.

A container's root filesystem is untrusted: an image may contain ``/proc -> /etc``,
``/dev -> ../../host`` or ``/tmp/x -> /``. Inside the container those links are harmless,
because the kernel resolves them against the container's own ``/``. The engine, though,
works on that tree from the *host* (mounting onto it before pivot_root, unpacking layers
into it, ``docker cp``, a Dockerfile's COPY), and a naive ``os.path.join(root, path)``
would let such a link lead onto the host's files.

:func:`secure_join` resolves ``path`` as if ``root`` were ``/`` — the lookup the container
itself would make (what runc and moby get from filepath-securejoin):

- each component is looked at in turn; a symlink is replaced by its target, an absolute
  target restarts at ``root``, a relative one continues from the link's directory;
- ``..`` goes up one level but never above ``root`` (like ``/..`` is ``/``);
- a missing component (or one below a file) is kept as it is: it holds no link, and the
  caller is usually about to create it;
- more than 40 links in one lookup is the kernel's ELOOP: :class:`SymlinkLoop`.

The answer is a host path under ``root`` that the caller may use. (Someone changing the
tree between this lookup and the use can still race it; the callers here work on trees
nothing else writes while they do.)
"""

from __future__ import annotations

import os
import stat

from teachdock.errors import InvalidConfig

MAX_SYMLINKS = 40       # what Linux follows in one path lookup before it answers ELOOP


class SymlinkLoop(InvalidConfig):
    """Too many symbolic links in one lookup (a loop such as ``a -> b``, ``b -> a``)."""


def secure_join(root: str, path: str, *, follow_final: bool = True) -> str:
    """Resolve ``path`` as if ``root`` were ``/``: symlinks and '..' never leave ``root``.

    An image may contain ``/proc -> /etc`` or ``/dev -> ../../host``. Resolving such a
    destination naively would mount onto the host; here every symlink is followed
    component by component and absolute targets restart at ``root``.

    ``path`` may be absolute or relative: either way it is taken from ``root``.
    ``follow_final=False`` leaves a symlink in the last component as it is (``lstat``
    semantics: ``docker cp`` copies the link itself); a final ``..`` or ``.`` is still
    resolved, so ``link/.`` means the directory the link points to.
    """
    pending = [part for part in path.split("/") if part]
    pending.reverse()                     # a stack: the next component is at the end
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":                   # kept until here: "link/." follows the link
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if not pending and not follow_final:
            resolved.append(part)
            break
        candidate = os.path.join(root, *resolved, part)
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            is_link = False               # missing: nothing to follow
        if not is_link:
            resolved.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise SymlinkLoop(f"too many levels of symbolic links resolving {path!r} inside {root}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([p for p in target.split("/") if p]))
    return os.path.join(root, *resolved)
