"""teachdock.kernel.mountinfo: the one mountinfo parser, fed with fake /proc text."""

import pytest

from teachdock.kernel.mountinfo import Mount, parse_mountinfo, read_mountinfo, unescape

# A hybrid cgroup v1 layout (Debian 12), with optional fields on some lines only.
HYBRID = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""


def test_every_field_is_read():
    first = parse_mountinfo(HYBRID)[0]
    assert first == Mount(mount_id=22, parent_id=1, device="254:0", root="/", mount_point="/",
                          options=("rw", "relatime"), propagation=("shared:1",), fs_type="ext4",
                          source="/dev/vda", super_options=("rw",))


def test_optional_fields_do_not_shift_the_fields_after_the_dash():
    mounts = parse_mountinfo(HYBRID)
    assert [(m.fs_type, m.source) for m in mounts] == [
        ("ext4", "/dev/vda"), ("sysfs", "sysfs"), ("tmpfs", "tmpfs"), ("cgroup", "cgroup"), ("cgroup2", "cgroup2")]
    assert mounts[2].propagation == ()
    assert mounts[3].super_options == ("rw", "cpu", "cpuacct")


def test_several_optional_fields():
    line = "40 22 0:50 / /mnt rw shared:3 master:1 propagate_from:1 - tmpfs none rw\n"
    mount = parse_mountinfo(line)[0]
    assert mount.propagation == ("shared:3", "master:1", "propagate_from:1")
    assert mount.propagation_type == "shared+slave"
    assert mount.fs_type == "tmpfs"


@pytest.mark.parametrize("tags, kind", [("shared:1", "shared"), ("master:2", "slave"), ("unbindable", "unbindable"),
                                        ("", "private")])
def test_propagation_type(tags, kind):
    assert parse_mountinfo(f"1 0 0:1 / /x rw {tags} - tmpfs t rw")[0].propagation_type == kind


def test_escaped_spaces_tabs_newlines_and_backslashes_in_paths():
    line = r"50 22 0:40 /dir\040one /mnt/my\040disk\011tab\012nl\134back ro,nosuid - tmpfs my\040source rw"
    mount = parse_mountinfo(line)[0]
    assert mount.root == "/dir one"
    assert mount.mount_point == "/mnt/my disk\ttab\nnl\\back"
    assert mount.source == "my source"
    assert mount.read_only


def test_unescape_leaves_plain_text_alone():
    assert unescape("/sys/fs/cgroup/cpu,cpuacct") == "/sys/fs/cgroup/cpu,cpuacct"


def test_a_dash_as_mount_point_is_not_the_separator():
    mount = parse_mountinfo("60 22 0:41 / /- rw - tmpfs - rw,size=4k")[0]
    assert (mount.mount_point, mount.fs_type, mount.source) == ("/-", "tmpfs", "-")


def test_missing_super_options_and_garbage_lines():
    text = "garbage\n\n1 2 3\nnot a mountinfo line at all - x y\n7 1 0:9 / /x rw - tmpfs none\n"
    assert [(m.mount_point, m.super_options) for m in parse_mountinfo(text)] == [("/x", ())]


def test_read_mountinfo_from_a_file_and_from_this_process(tmp_path):
    path = tmp_path / "mountinfo"
    path.write_text(HYBRID)
    assert len(read_mountinfo(str(path))) == 5
    assert any(m.mount_point == "/" for m in read_mountinfo())
