"""overlayfs: the mount that stacks an image's layer directories under a container's changes.

    mount -t overlay overlay -o lowerdir=<top layer>:...:<base layer>,upperdir=upper,workdir=work merged

The leftmost lowerdir is the top layer; new and changed files land in the upper dir, and a
deleted file becomes a whiteout (a 0/0 character device) there. ``snapshots.py`` decides what
to mount where; this module builds the options, mounts and unmounts, and probes whether
overlayfs works at all on a given filesystem (without it the copy driver stands in).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from teachdock import kernel
from teachdock.errors import InvalidConfig, KernelError
from teachdock.kernel.mountinfo import read_mountinfo

#: overlayfs features that change what an upper dir means; diff_layer assumes they are off.
_OVERLAY_OFF_FEATURES = ("index", "redirect_dir", "metacopy")
#: Mount data must fit in one page (the kernel copies at most PAGE_SIZE bytes of options).
_MAX_MOUNT_DATA = 4000

_probe_cache: dict[tuple[int, int], str | None] = {}


def overlay_options(lowers: tuple[Path, ...], upper: Path, work: Path) -> str:
    """The mount data string; the leftmost lowerdir is the top layer."""
    for path in (*lowers, upper, work):
        if any(ch in str(path) for ch in ",:\\"):
            raise InvalidConfig(f"overlayfs cannot use the path {path}: it contains ',', ':' or '\\' "
                                "(choose a data root without them)")
    options = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
    for feature in _OVERLAY_OFF_FEATURES:
        if os.path.exists(f"/sys/module/overlay/parameters/{feature}"):
            options += f",{feature}=off"
    if len(options) > _MAX_MOUNT_DATA:
        raise InvalidConfig(f"an overlay mount of {len(lowers)} layers needs {len(options)} bytes of options, "
                            f"more than the kernel accepts ({_MAX_MOUNT_DATA}); squash the image into fewer layers "
                            "or use a shorter data root")
    return options


def mount_overlay(lowers: tuple[Path, ...], upper: Path, work: Path, target: Path) -> None:
    """``mount -t overlay overlay -o lowerdir=...,upperdir=...,workdir=... target``."""
    kernel.mount("overlay", target, "overlay", 0, overlay_options(lowers, upper, work))


def unmount(path: Path) -> None:
    """Unmount; if something still uses the mount (a shell's cwd), detach it lazily."""
    try:
        kernel.umount2(path)
    except KernelError as error:
        if error.errno == errno.EBUSY:
            kernel.umount2(path, kernel.MNT_DETACH)
        elif error.errno != errno.EINVAL:        # EINVAL: not a mount point (any more)
            raise


def mount_points() -> set[str]:
    """Mount points of our own mount namespace (``/proc/self/mountinfo``, unescaped)."""
    return {mount.mount_point for mount in read_mountinfo()}


def probe_overlay(directory: str | os.PathLike) -> str | None:
    """None when an overlay mount with whiteouts works with layers in ``directory``; else why not.

    Mounts a tiny overlay in a temporary directory there and unmounts it at once. The
    answer is cached per filesystem.
    """
    directory = Path(directory)
    if os.geteuid() != 0:
        return "overlay mounts and overlay whiteouts need root"
    try:
        with open("/proc/filesystems") as fh:
            if not any(line.split()[-1] == "overlay" for line in fh if line.strip()):
                return "the kernel has no overlay filesystem (modprobe overlay)"
    except OSError as error:
        return f"cannot read /proc/filesystems: {error}"
    st = os.stat(directory)
    key = (st.st_dev, st.st_ino)
    if key in _probe_cache:
        return _probe_cache[key]
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=directory))
    problem = None
    mounted = False
    try:
        lower, upper, work, merged = (probe / name for name in ("lower", "upper", "work", "merged"))
        for path in (lower, upper, work, merged):
            path.mkdir()
        (lower / "file").write_text("x")
        os.mknod(lower / "gone", stat.S_IFCHR, os.makedev(0, 0))   # an overlay whiteout
        kernel.mount("overlay", merged, "overlay", 0, overlay_options((lower,), upper, work))
        mounted = True
        if not (merged / "file").exists() or os.path.lexists(merged / "gone"):
            problem = "a test overlay mount did not show its lower layer correctly"
    except (OSError, KernelError, InvalidConfig) as error:
        problem = str(error)
    finally:
        if mounted:
            unmount(probe / "merged")
        shutil.rmtree(probe)
    _probe_cache[key] = problem
    return problem
