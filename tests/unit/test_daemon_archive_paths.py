"""docker cp's host_path: the container's path, found in its rootfs without leaving it."""

import os
from types import SimpleNamespace

import pytest

from teachdock.daemon.api_archive import host_path


@pytest.fixture
def container(tmp_path):
    rootfs = tmp_path / "merged"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("/etc", rootfs / "etclink")
    os.symlink("/etc/passwd", rootfs / "pw")
    os.symlink("../../../..", rootfs / "up")
    record = SimpleNamespace(id="c" * 64, data={"Rootfs": str(rootfs), "Mounts": []})
    daemon = SimpleNamespace(containers=SimpleNamespace(state_root=tmp_path / "state"))
    return daemon, record, str(rootfs)


@pytest.mark.parametrize("path, expected", [
    ("/", ""),
    ("/..", ""),                          # never the rootfs's parent (the overlay's upper/work dirs)
    ("/../../etc/passwd", "/etc/passwd"),
    ("/etclink/passwd", "/etc/passwd"),   # links before the last component are followed inside
    ("/up/etc", "/etc"),
    ("/pw", "/pw"),                       # the last one is not: docker cp copies the link
    ("/etclink/", "/etclink"),
    ("/etclink/.", "/etc"),
    ("/missing/file", "/missing/file"),
])
def test_every_path_stays_in_the_rootfs(container, path, expected):
    daemon, record, rootfs = container
    assert host_path(daemon, record, path) == rootfs + expected
