"""Layers on a real overlayfs: unpacked-for-overlay whiteouts work, and diffs record deletions.

Needs root (mknod of 0/0 whiteouts, trusted.* xattrs, mount) and overlayfs in the kernel.
Every mount is unmounted in a finally block.
"""

import io
import os
import stat
import subprocess
import tarfile
from contextlib import contextmanager

import pytest

from teachdock import kernel
from teachdock.image.layers import OVERLAY_OPAQUE_XATTR, apply_layer_onto, diff_layer, unpack_layer


def _overlay_available():
    try:
        with open("/proc/filesystems") as fh:
            return any(line.split()[-1] == "overlay" for line in fh if line.strip())
    except OSError:
        return False


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not _overlay_available(), reason="this kernel has no overlayfs"),
]


def tar_bytes(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def view(root):
    """{relative path: content or 'dir'} as a reader of the (merged) tree sees it."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, root)] = fh.read()
    return found


@contextmanager
def overlay(merged, lowers, upper=None, work=None):
    """Mount overlayfs; ``lowers`` top first, as the lowerdir option wants them."""
    options = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        options += f",upperdir={upper},workdir={work}"
    os.makedirs(merged, exist_ok=True)
    kernel.mount("overlay", merged, "overlay", 0, options)
    try:
        yield merged
    finally:
        kernel.umount2(merged)


@pytest.fixture(autouse=True)
def no_mounts_left(tmp_path):
    yield
    with open("/proc/self/mountinfo") as fh:
        assert not [line for line in fh if f" {tmp_path}/" in line], "an overlay mount was left behind"


LOWER = tar_bytes(("a", b"a"), ("b", b"b"), ("d", None), ("d/x", b"x"), ("d/y", b"y"),
                  ("e", None), ("e/z", b"z"), ("e/keep", b"keep"))


def test_overlay_whiteouts_from_unpacked_layers_hide_lower_files(tmp_path):
    upper_layer = tar_bytes(("d", None), (".wh.a", b""), ("d/.wh..wh..opq", b""), ("d/new", b"new"),
                            ("e/.wh.z", b""))
    unpack_layer(io.BytesIO(LOWER), tmp_path / "l1", for_overlay=True)
    unpack_layer(io.BytesIO(upper_layer), tmp_path / "l2", for_overlay=True)

    # the layer dir holds overlayfs' own markers, not the OCI files
    st = os.lstat(tmp_path / "l2/a")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(tmp_path / "l2/d", OVERLAY_OPAQUE_XATTR) == b"y"
    assert not any(name.startswith(".wh.") for _, dirs, files in os.walk(tmp_path / "l2") for name in dirs + files)

    with overlay(tmp_path / "merged", [tmp_path / "l2", tmp_path / "l1"]) as merged:
        seen = view(merged)
    assert seen == {"b": b"b", "d": "dir", "d/new": b"new", "e": "dir", "e/keep": b"keep"}

    # the flattening path agrees with what the kernel shows
    unpack_layer(io.BytesIO(LOWER), tmp_path / "flat")
    apply_layer_onto(io.BytesIO(upper_layer), tmp_path / "flat")
    assert view(tmp_path / "flat") == seen


def test_diff_of_a_real_upper_dir_records_deletions_as_whiteouts(tmp_path):
    unpack_layer(io.BytesIO(LOWER), tmp_path / "l1", for_overlay=True)
    (tmp_path / "upper").mkdir()
    (tmp_path / "work").mkdir()
    with overlay(tmp_path / "merged", [tmp_path / "l1"], tmp_path / "upper", tmp_path / "work") as merged:
        os.unlink(merged / "b")                        # -> whiteout device in upper
        subprocess.run(["rm", "-rf", str(merged / "d")], check=True)
        os.mkdir(merged / "d")                         # -> opaque directory in upper
        (merged / "d/fresh").write_bytes(b"fresh")
        (merged / "e/keep").write_bytes(b"changed")    # copy-up
        (merged / "added").write_bytes(b"added")
        expected = view(merged)
    assert stat.S_ISCHR(os.lstat(tmp_path / "upper/b").st_mode)

    diff = diff_layer(tmp_path / "upper", tmp_path / "diff.tar", mtime=0)
    with tarfile.open(tmp_path / "diff.tar") as tar:
        names = tar.getnames()
        xattrs = [key for m in tar.getmembers() for key in m.pax_headers if "overlay" in key]
    assert ".wh.b" in names
    assert names.index("d") < names.index("d/.wh..wh..opq") < names.index("d/fresh")
    assert "e/keep" in names and "added" in names and "a" not in names
    assert xattrs == []                                # overlayfs' private xattrs are not exported

    # the diff, stacked on the lower layer, gives back exactly what the container saw
    result = unpack_layer(tmp_path / "diff.tar", tmp_path / "l2", for_overlay=True,
                          expected_diff_id=diff.diff_id)
    assert result.diff_id == diff.diff_id
    with overlay(tmp_path / "merged2", [tmp_path / "l2", tmp_path / "l1"]) as merged2:
        assert view(merged2) == expected
    unpack_layer(io.BytesIO(LOWER), tmp_path / "flat")
    apply_layer_onto(tmp_path / "diff.tar", tmp_path / "flat")
    assert view(tmp_path / "flat") == expected
