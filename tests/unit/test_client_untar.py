"""teachdock.client.untar: what `teachdock cp` unpacks from a container, and what it refuses."""

import io
import os
import stat
import tarfile

import pytest

from teachdock.client.untar import UnsafeArchive, extract


def archive(*members) -> io.BytesIO:
    """A tar of (TarInfo, bytes or None) pairs."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    data.seek(0)
    return data


def entry(name, kind=tarfile.REGTYPE, *, mode=0o644, linkname="", mtime=1_600_000_000):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, linkname, mtime
    return info


def test_files_directories_links_with_modes_and_times(tmp_path):
    extract(archive((entry("d", tarfile.DIRTYPE, mode=0o750), None),
                    (entry("d/f", mode=0o4755), b"hello\n"),
                    (entry("d/link", tarfile.SYMTYPE, linkname="/etc/passwd"), None),
                    (entry("d/hard", tarfile.LNKTYPE, linkname="d/f"), None),
                    (entry("d/pipe", tarfile.FIFOTYPE), None)), str(tmp_path))
    assert (tmp_path / "d" / "f").read_text() == "hello\n"
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "f").st_mode) == 0o755      # no setuid from a container
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o750
    assert os.stat(tmp_path / "d").st_mtime == 1_600_000_000
    assert os.readlink(tmp_path / "d" / "link") == "/etc/passwd"             # a link stays a link
    assert os.stat(tmp_path / "d" / "hard").st_ino == os.stat(tmp_path / "d" / "f").st_ino
    assert stat.S_ISFIFO(os.lstat(tmp_path / "d" / "pipe").st_mode)


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../../up", "./a/../../up"])
def test_names_that_leave_the_destination_are_refused(tmp_path, name):
    inside = tmp_path / "in"
    inside.mkdir()
    with pytest.raises(UnsafeArchive, match="outside"):
        extract(archive((entry(name), b"x")), str(inside))
    assert sorted(os.listdir(tmp_path)) == ["in"] and not os.listdir(inside)


def test_nothing_is_written_through_a_symlink_from_the_archive(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    inside = tmp_path / "in"
    inside.mkdir()
    with pytest.raises(UnsafeArchive, match="not a directory"):
        extract(archive((entry("escape", tarfile.SYMTYPE, linkname=str(outside)), None),
                        (entry("escape/planted"), b"x")), str(inside))
    assert not os.listdir(outside)


def test_a_hard_link_must_point_at_a_file_unpacked_before(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s")
    inside = tmp_path / "in"
    inside.mkdir()
    with pytest.raises(UnsafeArchive):
        extract(archive((entry("h", tarfile.LNKTYPE, linkname="../secret"), None)), str(inside))
    with pytest.raises(UnsafeArchive, match="hard link"):
        extract(archive((entry("l", tarfile.SYMTYPE, linkname=str(secret)), None),
                        (entry("h", tarfile.LNKTYPE, linkname="l"), None)), str(inside))
    assert not (inside / "h").exists()


def test_device_nodes_are_refused(tmp_path):
    with pytest.raises(UnsafeArchive, match="device"):
        extract(archive((entry("null", tarfile.CHRTYPE), None)), str(tmp_path))


def test_a_later_member_replaces_an_earlier_one(tmp_path):
    extract(archive((entry("f", tarfile.SYMTYPE, linkname="/etc/passwd"), None), (entry("f"), b"new")), str(tmp_path))
    assert not os.path.islink(tmp_path / "f") and (tmp_path / "f").read_text() == "new"
