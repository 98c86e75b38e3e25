"""users.py: the passwd/group lookup inside a root filesystem, with fake /etc files."""

import os

import pytest

from teachdock.errors import InvalidConfig
from teachdock.runtime.users import home_directory, read_group, read_passwd, resolve_user, supplementary_groups

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment line
app:x:1000:1001:App:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
nohome:x:1002:1002:::/bin/sh
broken:x:notanumber:0::/:/bin/sh
"""
GROUP = """\
root:x:0:
staff:x:50:app,other
apps:x:1001:
audio:x:29:other,app
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(PASSWD)
    (tmp_path / "etc/group").write_text(GROUP)
    return tmp_path


@pytest.mark.parametrize("user, ids", [
    (None, (0, 0)), ("", (0, 0)), ("root", (0, 0)),
    ("app", (1000, 1001)), ("1000", (1000, 1001)), (1000, (1000, 1001)),  # the entry's group
    ("4242", (4242, 0)),  # a uid without an entry: group 0, as Docker
    ("app:staff", (1000, 50)), ("app:7", (1000, 7)), ("1000:50", (1000, 50)), ("4242:staff", (4242, 50)),
    ("nobody:nogroup", (65534, 65534)),
])
def test_names_and_numbers(rootfs, user, ids):
    assert resolve_user(rootfs, user) == ids


@pytest.mark.parametrize("user, message", [
    ("ghost", "unable to find user ghost: no matching entries in the rootfs's /etc/passwd"),
    ("broken", "unable to find user broken"),  # a malformed line is no entry
    ("app:ghosts", "unable to find group ghosts: no matching entries in the rootfs's /etc/group"),
    ("-1", "ids cannot be negative"), ("1:-5", "ids cannot be negative"),
])
def test_missing_users_and_groups_are_named(rootfs, user, message):
    with pytest.raises(InvalidConfig, match=message):
        resolve_user(rootfs, user)


def test_numbers_need_no_files(tmp_path):
    assert resolve_user(tmp_path, "7:8") == (7, 8)
    assert resolve_user(tmp_path, "7") == (7, 0)
    with pytest.raises(InvalidConfig, match="unable to find user app"):
        resolve_user(tmp_path, "app")


@pytest.mark.parametrize("user, groups", [
    ("app", [1001, 50, 29]), ("1000", [1001, 50, 29]),  # by uid: the entry's name finds the groups
    ("app:staff", [50, 29]), ("nobody", [65534]), ("4242", [0]), (None, [0]),
])
def test_supplementary_groups(rootfs, user, groups):
    assert supplementary_groups(rootfs, user) == groups


def test_home_directory(rootfs):
    assert home_directory(rootfs, 1000) == "/home/app"
    assert home_directory(rootfs, 1002) == "/"  # empty home field
    assert home_directory(rootfs, 4242) == "/"  # no entry
    assert home_directory(rootfs / "missing", 0) == "/"  # no /etc/passwd at all


def test_entries_are_parsed(rootfs):
    assert [e.name for e in read_passwd(rootfs)] == ["root", "app", "nobody", "nohome"]
    staff = next(e for e in read_group(rootfs) if e.name == "staff")
    assert (staff.gid, staff.members) == (50, ("app", "other"))


def test_a_symlink_in_the_image_never_reads_a_host_file(tmp_path):
    """/etc/passwd -> /etc/passwd would be the host's file if followed naively: it resolves inside."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/passwd").write_text("hostonly:x:4321:4321::/host:/bin/sh\n")
    image = tmp_path / "image"
    (image / "etc").mkdir(parents=True)
    (image / "real").write_text("inside:x:77:77::/in:/bin/sh\n")
    os.symlink(str(host / "etc/passwd"), image / "etc/passwd")  # absolute: restarts at the image's root
    with pytest.raises(InvalidConfig, match="unable to find user hostonly"):
        resolve_user(image, "hostonly")
    os.remove(image / "etc/passwd")
    os.symlink("../../../../real", image / "etc/passwd")  # '..' stops at the image's root
    assert resolve_user(image, "inside") == (77, 77)
