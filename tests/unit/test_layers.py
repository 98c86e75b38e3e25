"""Layer tarballs: applied with whiteouts, checked digests, and refused when malicious.

Every malicious tarball is built here with tarfile, and each test checks both that the
right error is raised and that nothing was written: no destination, no temp dir, and
nothing outside the destination.
"""

import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest

from teachdock.errors import Conflict, InvalidConfig
from teachdock.image.digest import DigestMismatch
from teachdock.image.layers import LayerError, UnsafeLayer, apply_layer_onto, diff_layer, unpack_layer
from teachdock.runtime.securejoin import secure_join


# ---------------------------------------------------------------- building tarballs

def _info(name, kind, mode, mtime=1_700_000_000, **fields):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def f(name, data=b"", mode=0o644, **fields):
    return _info(name, tarfile.REGTYPE, mode, size=len(data), **fields), data


def d(name, mode=0o755, **fields):
    return _info(name, tarfile.DIRTYPE, mode, **fields), None


def sym(name, target):
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target), None


def hardlink(name, target):
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target), None


def chardev(name, major=1, minor=3):
    return _info(name, tarfile.CHRTYPE, 0o666, devmajor=major, devminor=minor), None


def tar_bytes(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def write(path, data):
    path.write_bytes(data)
    return path


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree(root):
    """{relative path: description} of everything under root, symlinks not followed."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "-> " + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = "dir"
            elif not stat.S_ISREG(st.st_mode):
                found[rel] = stat.filemode(st.st_mode)
            else:
                with open(path, "rb") as fh:
                    found[rel] = fh.read()
    return found


def assert_nothing_left(parent, name="dest"):
    """The destination never appeared and no temp directory was left behind."""
    assert not os.path.lexists(parent / name)
    assert [p.name for p in parent.iterdir() if p.name != "layer.tar"] == []


# ---------------------------------------------------------------- the normal path

def test_unpack_plain_tar_reports_digests_and_keeps_metadata(tmp_path):
    data = tar_bytes(d("etc", 0o755), f("etc/hostname", b"box\n", 0o640), sym("link", "etc/hostname"),
                     hardlink("etc/again", "etc/hostname"), d("ro", 0o555), f("ro/inside", b"x"))
    layer = write(tmp_path / "layer.tar", data)
    result = unpack_layer(layer, tmp_path / "dest")

    assert result.diff_id == result.digest == sha(data)
    assert result.compression is None
    assert result.size == result.compressed_size == len(data)
    dest = tmp_path / "dest"
    assert (dest / "etc/hostname").read_bytes() == b"box\n"
    assert stat.S_IMODE((dest / "etc/hostname").stat().st_mode) == 0o640
    assert (dest / "etc/hostname").stat().st_mtime == 1_700_000_000
    assert os.readlink(dest / "link") == "etc/hostname"
    assert (dest / "etc/again").stat().st_ino == (dest / "etc/hostname").stat().st_ino
    # directory modes are applied last, so a read-only directory could still be filled
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
    assert (dest / "ro/inside").read_bytes() == b"x"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    os.chmod(dest / "ro", 0o755)


def test_unpack_gzip_checks_both_digests_and_reports_progress(tmp_path):
    data = tar_bytes(f("big", os.urandom(3 << 20)))
    compressed = gzip.compress(data)
    seen = []
    result = unpack_layer(io.BytesIO(compressed), tmp_path / "dest", expected_digest=sha(compressed),
                          expected_diff_id=sha(data), progress=lambda done, total: seen.append(done))
    assert (result.compression, result.digest, result.diff_id) == ("gzip", sha(compressed), sha(data))
    assert (result.compressed_size, result.size) == (len(compressed), len(data))
    assert seen and seen[-1] == len(compressed)
    assert (tmp_path / "dest/big").stat().st_size == 3 << 20


def test_fresh_unpack_does_not_materialise_whiteouts(tmp_path):
    layer = write(tmp_path / "layer.tar", tar_bytes(d("etc"), f("etc/.wh.passwd"), f("etc/.wh..wh..opq"),
                                                     f("etc/keep", b"k")))
    unpack_layer(layer, tmp_path / "dest")
    assert tree(tmp_path / "dest") == {"etc": "dir", "etc/keep": b"k"}


def test_setuid_kept_for_root_and_stripped_otherwise(tmp_path, monkeypatch):
    layer = write(tmp_path / "layer.tar", tar_bytes(f("su", b"#!", 0o4755)))
    if os.geteuid() == 0:
        unpack_layer(layer, tmp_path / "as_root")
        assert stat.S_IMODE((tmp_path / "as_root/su").stat().st_mode) == 0o4755
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    unpack_layer(layer, tmp_path / "as_user")
    assert stat.S_IMODE((tmp_path / "as_user/su").stat().st_mode) == 0o755


def test_unpack_refuses_an_existing_destination(tmp_path):
    layer = write(tmp_path / "layer.tar", tar_bytes(f("x")))
    (tmp_path / "dest").mkdir()
    with pytest.raises(Conflict, match="exists already"):
        unpack_layer(layer, tmp_path / "dest")


def test_symlinks_are_followed_inside_the_root(tmp_path):
    """a -> /<outside> then a/pwned: written inside dest, never at the real <outside>."""
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = write(tmp_path / "layer.tar", tar_bytes(
        sym("abs", str(outside)), f("abs/pwned", b"1"),
        sym("rel", "../../../../../../.."), f("rel/pwned2", b"2"),
        sym("root", "/"), f("root/pwned3", b"3")))
    unpack_layer(layer, tmp_path / "dest")
    assert list(outside.iterdir()) == []
    assert not os.path.exists("/pwned3") and not (tmp_path / "pwned2").exists()
    dest = tmp_path / "dest"
    assert (dest / str(outside).lstrip("/") / "pwned").read_bytes() == b"1"
    assert (dest / "pwned2").read_bytes() == b"2"
    assert (dest / "pwned3").read_bytes() == b"3"
    assert secure_join(str(dest), "abs/pwned") == str(dest) + str(outside) + "/pwned"


def test_replacing_a_directory_by_a_symlink_mid_layer_is_followed_correctly(tmp_path):
    """Parents are resolved once and remembered; replacing a path must forget that."""
    layer = write(tmp_path / "layer.tar", tar_bytes(
        d("d"), f("d/a", b"a"), sym("d", "/elsewhere"), f("d/b", b"b"),     # dir -> symlink
        d("x"), sym("s", "x"), f("s/f", b"f"), d("s"), f("s/g", b"g")))     # symlink -> dir
    unpack_layer(layer, tmp_path / "dest")
    assert tree(tmp_path / "dest") == {"d": "-> /elsewhere", "elsewhere": "dir", "elsewhere/b": b"b",
                                       "x": "dir", "x/f": b"f", "s": "dir", "s/g": b"g"}


# ---------------------------------------------------------------- refused layers

BAD_LAYERS = [
    ("path traversal", [f("../escaped", b"x")], UnsafeLayer, "'..'"),
    ("deep traversal", [d("a"), f("a/../../escaped", b"x")], UnsafeLayer, "'..'"),
    ("absolute path", [f("/etc/teachdock-test-x", b"x")], UnsafeLayer, "absolute path"),
    ("hardlink to absolute path", [hardlink("passwd", "/etc/passwd")], UnsafeLayer, "absolute path"),
    ("hardlink traversal", [hardlink("passwd", "../../../../etc/passwd")], UnsafeLayer, "'..'"),
    ("hardlink through a symlink", [sym("a", "/etc"), hardlink("passwd", "a/passwd")], UnsafeLayer,
     "not in the tree"),
    ("hardlink to a missing target", [hardlink("h", "nothing")], UnsafeLayer, "not in the tree"),
    ("hardlink to a later entry", [hardlink("h", "later"), f("later")], UnsafeLayer, "not in the tree"),
    ("hardlink to a directory", [d("dir"), hardlink("h", "dir")], UnsafeLayer, "directory"),
    ("device node", [chardev("dev/mem", 1, 1)], UnsafeLayer, "device nodes are refused"),
    ("symlink loop", [sym("a", "b"), sym("b", "a"), f("a/x")], UnsafeLayer, "too many levels"),
    ("whiteout of ..", [f(".wh...")], UnsafeLayer, "whiteout"),
    ("overlay xattr", [(_info("x", tarfile.REGTYPE, 0o644,
                              pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}), b"")],
     UnsafeLayer, "reserved for overlayfs"),
    ("file below a file", [f("file"), f("file/x")], LayerError, "not a directory"),
]


@pytest.mark.parametrize("what, members, error, message", BAD_LAYERS, ids=[b[0] for b in BAD_LAYERS])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_malicious_layer_is_refused_and_nothing_written(tmp_path, what, members, error, message, compress):
    data = tar_bytes(f("first", b"written before the bad member"), *members)
    layer = write(tmp_path / "layer.tar", gzip.compress(data) if compress else data)
    passwd_links = os.stat("/etc/passwd").st_nlink
    with pytest.raises(error, match=message) as caught:
        unpack_layer(layer, tmp_path / "dest")
    assert caught.value.member is not None and caught.value.member in str(caught.value)
    assert_nothing_left(tmp_path)
    assert not (tmp_path / "escaped").exists()
    assert not os.path.exists("/etc/teachdock-test-x")
    assert os.stat("/etc/passwd").st_nlink == passwd_links


def test_device_nodes_are_allowed_only_when_asked_and_root(tmp_path):
    layer = write(tmp_path / "layer.tar", tar_bytes(chardev("null", 1, 3)))
    if os.geteuid() != 0:
        with pytest.raises(UnsafeLayer, match="only be created by root"):
            unpack_layer(layer, tmp_path / "dest", allow_devices=True)
        return
    unpack_layer(layer, tmp_path / "dest", allow_devices=True)
    st = os.lstat(tmp_path / "dest/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


@pytest.mark.parametrize("what, cut", [("truncated gzip", "gzip"), ("truncated tar", "tar"),
                                       ("not a tar at all", "garbage"), ("empty file", "empty"),
                                       ("zstd", "zstd")])
def test_broken_layer_is_refused_and_nothing_written(tmp_path, what, cut):
    data = tar_bytes(f("a", os.urandom(100_000)), f("b", b"b"))
    broken = {
        "gzip": gzip.compress(data)[:-200],
        "tar": data[:50_000],
        "garbage": b"this is not a tarball" * 100,
        "empty": b"",
        "zstd": b"\x28\xb5\x2f\xfd" + b"\0" * 100,
    }[cut]
    layer = write(tmp_path / "layer.tar", broken)
    with pytest.raises(LayerError, match="truncated or corrupt|zstd"):
        unpack_layer(layer, tmp_path / "dest")
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("which", ["digest", "diff_id"])
def test_wrong_digest_is_refused_and_nothing_written(tmp_path, which):
    data = tar_bytes(f("a", b"content"))
    compressed = gzip.compress(data)
    layer = write(tmp_path / "layer.tar", compressed)
    wrong = "sha256:" + "0" * 64
    expected = {"expected_digest": wrong} if which == "digest" else {"expected_diff_id": wrong}
    with pytest.raises(DigestMismatch, match=wrong) as caught:
        unpack_layer(layer, tmp_path / "dest", **expected)
    assert caught.value.actual == (sha(compressed) if which == "digest" else sha(data))
    assert isinstance(caught.value, InvalidConfig)
    assert_nothing_left(tmp_path)


def test_malformed_expected_digest_is_refused_before_reading(tmp_path):
    layer = write(tmp_path / "layer.tar", tar_bytes(f("a")))
    with pytest.raises(InvalidConfig, match="64 lowercase hex"):
        unpack_layer(layer, tmp_path / "dest", expected_diff_id="sha256:abc")
    assert_nothing_left(tmp_path)


# ---------------------------------------------------------------- applying onto a tree (whiteouts)

def make_lower(tmp_path):
    lower = write(tmp_path / "lower.tar", tar_bytes(
        d("etc"), f("etc/passwd", b"root"), f("etc/gone", b"old"), d("etc/olddir"), f("etc/olddir/f", b"f"),
        d("opq"), f("opq/old1", b"1"), d("opq/sub"), f("opq/sub/old2", b"2"), f("opq/sub/kept", b"lower"),
        d("swap"), f("swap/f", b"f"), f("tofile_dir", b"file"), d("keepdir"), f("keepdir/old", b"o")))
    unpack_layer(lower, tmp_path / "tree")
    return tmp_path / "tree"


def test_whiteouts_and_opaque_dirs_applied_onto_a_tree(tmp_path):
    root = make_lower(tmp_path)
    upper = write(tmp_path / "layer.tar", tar_bytes(
        f("etc/.wh.gone"),                      # deletes a lower file
        f("etc/.wh.olddir"),                    # deletes a lower directory tree
        f("etc/.wh.notthere"),                  # deleting nothing is fine
        d("opq"), f("opq/new", b"n"),           # this layer's child, written before the marker ...
        d("opq/sub"), f("opq/sub/kept", b"upper"),
        f("opq/.wh..wh..opq"),                  # ... survives it; all lower children go
        f("swap", b"now a file"),               # a file replaces a directory
        d("tofile_dir"), f("tofile_dir/x", b"x"),   # a directory replaces a file
        d("keepdir"), f("keepdir/new", b"n"),   # a directory over a directory merges
        f("fresh", b"f"), f(".wh.fresh"),       # a whiteout never hides its own layer's entry
    ))
    result = apply_layer_onto(upper, root)
    assert result.diff_id.startswith("sha256:")
    assert tree(root) == {
        "etc": "dir", "etc/passwd": b"root",
        "opq": "dir", "opq/new": b"n", "opq/sub": "dir", "opq/sub/kept": b"upper",
        "swap": b"now a file",
        "tofile_dir": "dir", "tofile_dir/x": b"x",
        "keepdir": "dir", "keepdir/old": b"o", "keepdir/new": b"n",
        "fresh": b"f",
    }


def test_opaque_marker_before_the_children(tmp_path):
    root = make_lower(tmp_path)
    upper = write(tmp_path / "layer.tar", tar_bytes(f("opq/.wh..wh..opq"), f("opq/new", b"n")))
    apply_layer_onto(upper, root)
    assert sorted(os.listdir(root / "opq")) == ["new"]


def test_opaque_keeps_directories_implied_by_this_layers_entries(tmp_path):
    """opq/sub/new with no entry for opq/sub: sub stays (it holds new), its lower files go."""
    root = make_lower(tmp_path)
    upper = write(tmp_path / "layer.tar", tar_bytes(f("opq/sub/new", b"n"), f("opq/.wh..wh..opq")))
    apply_layer_onto(upper, root)
    assert {k: v for k, v in tree(root).items() if k.startswith("opq")} == {
        "opq": "dir", "opq/sub": "dir", "opq/sub/new": b"n"}


def test_whiteout_through_a_symlink_stays_inside(tmp_path):
    root = make_lower(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep me")
    os.symlink(str(outside), root / "trap")
    upper = write(tmp_path / "layer.tar", tar_bytes(f("trap/.wh.victim"), f("trap/.wh..wh..opq")))
    apply_layer_onto(upper, root)
    assert (outside / "victim").read_text() == "keep me"


def test_unpack_with_base_flattens_atomically_and_leaves_base_alone(tmp_path):
    base = make_lower(tmp_path)
    before = tree(base)
    upper = write(tmp_path / "layer.tar", tar_bytes(f("etc/.wh.gone"), f("etc/added", b"a")))
    unpack_layer(upper, tmp_path / "flat", base=base)
    assert tree(base) == before
    expected = dict(before)
    del expected["etc/gone"]
    expected["etc/added"] = b"a"
    assert tree(tmp_path / "flat") == expected

    bad = write(tmp_path / "bad.tar", tar_bytes(f("etc/.wh.passwd"), f("../escape")))
    with pytest.raises(UnsafeLayer):
        unpack_layer(bad, tmp_path / "flat2", base=base)
    assert not (tmp_path / "flat2").exists()
    assert tree(base) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar", "flat", "layer.tar", "lower.tar", "tree"]


# ---------------------------------------------------------------- diffing a directory

def test_diff_layer_round_trips_and_is_deterministic(tmp_path):
    src = tmp_path / "src"
    (src / "dir/sub").mkdir(parents=True)
    (src / "dir/sub/file").write_bytes(b"data")
    (src / "b").write_bytes(b"b")
    os.link(src / "b", src / "a_link")
    os.symlink("dir/sub/file", src / "sym")
    os.mkfifo(src / "fifo")

    first = diff_layer(src, tmp_path / "one.tar", mtime=0)
    second = diff_layer(src, tmp_path / "two.tar", mtime=0)
    assert first == second
    data = (tmp_path / "one.tar").read_bytes()
    assert first.diff_id == sha(data) and first.size == len(data)

    with tarfile.open(tmp_path / "one.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a_link", "b", "dir", "dir/sub", "dir/sub/file", "fifo", "sym"]
    assert {m.name: m.type for m in members}["b"] == tarfile.LNKTYPE     # second name of one inode
    assert all(m.mtime == 0 and m.uname == "" for m in members)

    result = unpack_layer(tmp_path / "one.tar", tmp_path / "back", expected_diff_id=first.diff_id)
    assert result.diff_id == first.diff_id
    got = tree(tmp_path / "back")
    assert got["dir/sub/file"] == b"data" and got["sym"] == "-> dir/sub/file"
    assert (tmp_path / "back/a_link").stat().st_ino == (tmp_path / "back/b").stat().st_ino
    assert stat.S_ISFIFO(os.lstat(tmp_path / "back/fifo").st_mode)


def test_a_refused_gzip_layer_leaves_no_gunzip_thread_behind(tmp_path):
    import threading
    big = [f(f"f{i}", os.urandom(300_000)) for i in range(20)]          # more than the helper queues
    layer = write(tmp_path / "layer.tar", gzip.compress(tar_bytes(f("../escaped", b"x"), *big)))
    with pytest.raises(UnsafeLayer):
        unpack_layer(layer, tmp_path / "dest")
    assert not any(t.name == "gunzip-ahead" for t in threading.enumerate())
    assert_nothing_left(tmp_path)
