"""How teachdockd reads ``-v``/``--mount``/VOLUME into mounts, and its volume store on a plain
directory: no root, no kernel side effects (nothing is mounted here)."""

from __future__ import annotations

import pytest

from teachdock.daemon import volumes
from teachdock.errors import Conflict, InvalidConfig, NotFound


@pytest.mark.parametrize("text, expected", [
    ("/data", ("volume", "", "/data", False)),
    ("myvol:/data", ("volume", "myvol", "/data", False)),
    ("myvol:/data:ro", ("volume", "myvol", "/data", True)),
    ("/srv/x:/data/", ("bind", "/srv/x", "/data", False)),
    ("/srv/x:/data:ro,rslave", ("bind", "/srv/x", "/data", True)),
])
def test_parse_bind(text, expected):
    request = volumes.parse_bind(text)
    assert (request.type, request.source, request.destination, request.read_only) == expected


def test_parse_bind_propagation_and_nocopy():
    assert volumes.parse_bind("/a:/b:ro,rslave").propagation == "rslave"
    assert volumes.parse_bind("/a:/b").propagation == "rprivate"
    assert volumes.parse_bind("v1:/b:nocopy").copy is False


@pytest.mark.parametrize("text, words", [
    ("v:data", "must be absolute"),
    ("v:/", "destination can't be '/'"),
    ("v:/d:rw,ro", "invalid mode"),
    ("v:/d:bogus", "invalid mode"),
    ("a:b:c:d", "invalid volume specification"),
    ("bad@name:/d", "invalid characters"),
    ("rel/path:/d", "invalid"),
])
def test_parse_bind_errors(text, words):
    with pytest.raises(InvalidConfig, match=None) as caught:
        volumes.parse_bind(text)
    assert words in str(caught.value)


def test_parse_mount_types(tmp_path):
    bind = volumes.parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/x", "ReadOnly": True})
    assert (bind.type, bind.source, bind.read_only, bind.create_source) == ("bind", str(tmp_path), True, False)
    anonymous = volumes.parse_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}})
    assert (anonymous.source, anonymous.copy) == ("", False)
    assert volumes.parse_mount({"Type": "tmpfs", "Target": "/t"}).type == "tmpfs"
    with pytest.raises(InvalidConfig, match="bind source path does not exist"):
        volumes.parse_mount({"Type": "bind", "Source": str(tmp_path / "nope"), "Target": "/x"})
    with pytest.raises(InvalidConfig, match="not supported"):
        volumes.parse_mount({"Type": "npipe", "Source": "x", "Target": "/x"})


def test_requested_mounts_adds_image_volumes_and_refuses_duplicates():
    requests = volumes.requested_mounts({"Binds": ["named:/data"]}, {"/cache": {}}, {"/data": {}, "/logs": {}})
    assert [(r.source, r.destination) for r in requests] == [("named", "/data"), ("", "/cache"), ("", "/logs")]
    with pytest.raises(InvalidConfig, match="Duplicate mount point: /data"):
        volumes.requested_mounts({"Binds": ["a1:/data"], "Mounts": [{"Type": "volume", "Source": "b1",
                                                                   "Target": "/data/"}]})


def test_volume_store_create_remove_prune(tmp_path):
    manager = volumes.VolumeManager(tmp_path)
    named, created = manager.create("named1")
    assert created and named["Mountpoint"] == str(tmp_path / "daemon" / "volumes" / "named1" / "_data")
    assert manager.create("named1") == (named, False)
    anonymous, _ = manager.create(None)
    assert volumes.ANONYMOUS_LABEL in anonymous["Labels"] and len(anonymous["Name"]) == 64
    with pytest.raises(Conflict, match=r"remove named1: volume is in use - \[abc\]"):
        manager.remove("named1", ["abc"])
    assert manager.prune(set()) == ([anonymous["Name"]], 0)
    (tmp_path / "daemon" / "volumes" / "named1" / "_data" / "f").write_text("1234")
    assert manager.prune({"named1"}, all_volumes=True) == ([], 0)
    assert manager.prune(set(), all_volumes=True) == (["named1"], 4)
    with pytest.raises(NotFound, match="get named1: no such volume"):
        manager.get("named1")
    manager.remove("named1", [], force=True)  # force forgives the missing volume


def test_copy_up_takes_the_image_content_only_into_an_empty_volume(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "sub").mkdir(parents=True)
    (rootfs / "etc" / "sub" / "conf").write_text("x")
    (rootfs / "escape").symlink_to("/usr")
    manager = volumes.VolumeManager(tmp_path / "root")
    volume, _ = manager.create("etc1")
    manager.copy_up("etc1", str(rootfs), "/etc")
    assert (tmp_path / "root" / "daemon" / "volumes" / "etc1" / "_data" / "sub" / "conf").read_text() == "x"
    manager.create("esc1")
    manager.copy_up("esc1", str(rootfs), "/escape")  # a symlink out of the rootfs: nothing is copied
    assert list((tmp_path / "root" / "daemon" / "volumes" / "esc1" / "_data").iterdir()) == []
