"""teachdock.image.tar_import (docker import) on a store in a temporary directory, without a daemon:
the config dockerd writes, the layer's diff_id, compressed input, references, and refusals that
leave nothing behind (no blob, no name, no scratch directory)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile

import pytest

from teachdock.errors import InvalidConfig
from teachdock.image.reference import InvalidReference
from teachdock.image.store import ImageStore
from teachdock.image.tar_import import TarImportError, import_reference, import_tarball


def tar_of(*members) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, value
                tar.addfile(info)
            elif kind == "chardev":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
                tar.addfile(info)
    return buffer.getvalue()


ROOTFS = tar_of(("bin", "dir", None), ("bin/hello", "file", b"#!/bin/sh\necho hi\n"), ("etc", "dir", None),
                ("etc/motd", "file", b"moved\n"), ("etc/link", "symlink", "/etc/motd"))


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def contents(store: ImageStore) -> set[str]:
    """Every file and directory under the store: what a refused import must not change."""
    return {os.path.relpath(os.path.join(d, n), store.root) for d, dirs, files in os.walk(store.root)
            for n in dirs + files}


def test_a_tar_becomes_one_layer_whose_diff_id_is_the_tar_as_given(store):
    image = import_tarball(store, io.BytesIO(ROOTFS), reference="course/moved:v1", message="moved here",
                           changes=['CMD ["sh"]', "ENV A=b", "WORKDIR /etc"])
    config = store.read_json(image.id)
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(ROOTFS).hexdigest()]}
    # dockerd's import config: nothing but the changes (no default PATH), the message as comment
    assert config["config"] == {"Cmd": ["sh"], "Env": ["A=b"], "WorkingDir": "/etc"}
    assert config["comment"] == "moved here" and config["os"] == "linux"
    assert config["history"] == [{"created": config["created"], "comment": "moved here"}]
    assert store.resolve("course/moved:v1").id == image.id and len(image.layers) == 1
    with store.open_blob(image.layers[0].digest) as blob:
        assert blob.read() == ROOTFS                             # stored as given: the blob's digest is the diff_id
    assert image.layers[0].digest == image.diff_ids[0]


def test_the_same_tar_gives_the_same_layer_and_a_new_image_each_time(store):
    first = import_tarball(store, io.BytesIO(ROOTFS))
    second = import_tarball(store, io.BytesIO(ROOTFS))
    assert first.layers[0].digest == second.layers[0].digest and first.diff_ids == second.diff_ids
    assert store.read_json(first.id)["history"][0].get("comment") is None   # no message, no comment


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress,
                                      lambda data: gzip.compress(data[:1024]) + gzip.compress(data[1024:])],
                         ids=["gzip", "bzip2", "xz", "two-gzip-members"])
def test_compressed_input_is_inflated_and_the_diff_id_is_of_the_plain_tar(store, compress):
    image = import_tarball(store, io.BytesIO(compress(ROOTFS)))
    assert image.diff_ids == ["sha256:" + hashlib.sha256(ROOTFS).hexdigest()]


def test_a_stream_that_cannot_seek_is_copied_first(store):
    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    image = import_tarball(store, Unseekable(ROOTFS))
    assert image.diff_ids == ["sha256:" + hashlib.sha256(ROOTFS).hexdigest()]
    with pytest.raises(TarImportError, match="truncated or corrupt"):
        import_tarball(store, Unseekable(b"garbage" * 200))


def test_the_platform_labels_the_image_and_another_os_is_refused(store):
    image = import_tarball(store, io.BytesIO(ROOTFS), platform="linux/arm64/v8")
    config = store.read_json(image.id)
    assert (config["architecture"], config["os"], config["variant"]) == ("arm64", "linux", "v8")
    with pytest.raises(InvalidConfig, match="operating system is not supported"):
        import_tarball(store, io.BytesIO(ROOTFS), platform="windows/amd64")


@pytest.mark.parametrize("repository, tag, expected", [
    (None, "v1", None), ("busybox", None, "docker.io/library/busybox:latest"),
    ("course/a:v1", None, "docker.io/course/a:v1"), ("course/a:v1", "v2", "docker.io/course/a:v2"),
    ("localhost:5000/a", "x", "localhost:5000/a:x"),
])
def test_repo_and_tag_as_dockerd_reads_them(repository, tag, expected):
    assert import_reference(repository, tag) == expected


@pytest.mark.parametrize("repository, tag, message", [
    ("UPPER", None, "must be lowercase"), ("a/b", "bad:tag", "invalid tag format"),
    ("a@sha256:" + "0" * 64, None, "cannot import digest reference"),
])
def test_bad_references_are_refused(repository, tag, message):
    with pytest.raises(InvalidReference, match=message):
        import_reference(repository, tag)


@pytest.mark.parametrize("members, message", [
    ([("/etc/evil", "file", b"x")], "absolute path refused"),
    ([("../evil", "file", b"x")], "'..' path component refused"),
    ([("a/../../evil", "file", b"x")], "'..' path component refused"),
    ([("dev/null", "chardev", None)], "device nodes are refused"),
    ([("x", "hardlink", "../../etc/passwd")], "'..' path component refused"),
    ([("x", "hardlink", "not-there")], "is not in the tree"),
], ids=["absolute", "dotdot", "dotdot-inside", "device", "hardlink-out", "hardlink-missing"])
def test_an_unsafe_tar_is_refused_and_nothing_is_left(store, members, message):
    before = contents(store)
    with pytest.raises(TarImportError, match=f"Error processing tar file: .*{message}") as refused:
        import_tarball(store, io.BytesIO(tar_of(("ok", "file", b"fine"), *members)), reference="mal/x:1")
    assert refused.value.status == 500                     # dockerd answers a tar it cannot process with a 500
    assert contents(store) == before and store.list_images() == []


def test_a_symlink_then_a_file_through_it_stays_inside_the_image(store, tmp_path):
    """``s -> /etc`` then ``s/evil``: followed as if the image's root were /, never the host's /etc."""
    image = import_tarball(store, io.BytesIO(tar_of(("s", "symlink", "/etc"), ("s/evil", "file", b"x"))))
    assert len(image.layers) == 1 and not os.path.exists("/etc/evil")


@pytest.mark.parametrize("data, message", [
    (b"not a tar at all" * 100, "truncated or corrupt"), (b"", "truncated or corrupt"),
    (gzip.compress(ROOTFS)[:200], "truncated"), (b"\x28\xb5\x2f\xfd" + b"\0" * 100, "zstd"),
], ids=["garbage", "empty", "truncated-gzip", "zstd"])
def test_corrupt_input_is_refused_and_nothing_is_left(store, data, message):
    before = contents(store)
    with pytest.raises(TarImportError, match=message):
        import_tarball(store, io.BytesIO(data))
    assert contents(store) == before


@pytest.mark.parametrize("change, message", [
    ("FROM busybox", "FROM is not a valid change command"), ("RUN true", "RUN is not a valid change command"),
    ("COPY a b", "COPY is not a valid change command"), ("ENV", "ENV"),
])
def test_a_bad_change_is_refused_before_the_tar_is_read(store, change, message):
    class Unread(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the tar was read before the changes were checked")

    before = contents(store)
    with pytest.raises(InvalidConfig, match=message):
        import_tarball(store, Unread(), changes=[change])
    assert contents(store) == before
