"""``docker rmi repo:tag`` of a pulled image that keeps another tag: the repository's digest
name (a RepoDigest) goes with its last tag, as in moby's image_delete.go, instead of
lingering and showing up in ``docker images`` as a ``repo <none>`` row."""

import io
import tarfile

import pytest

from teachdock.image.manifest import OCI_LAYER
from teachdock.image.store import ImageStore


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def pulled_image(store, repo="busybox"):
    """An image named as a pull names it: repo:latest and repo@<manifest digest>."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/sh")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"shell"))
    layer = store.put_blob(buf.getvalue(), media_type=OCI_LAYER)
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}
    image = store.add_image(config, [layer], [f"{repo}:latest"])
    return store.register(image.manifest_descriptor, [f"{repo}@{image.manifest_digest}"])


def test_untagging_the_last_tag_of_a_repository_drops_its_digest_name(store):
    image = pulled_image(store)
    store.tag("busybox", "course/box:v1")
    report = store.remove("busybox:latest")
    assert report == [{"Untagged": "busybox:latest"}, {"Untagged": f"busybox@{image.manifest_digest}"}]
    [left] = store.list_images()
    assert left.id == image.id
    assert left.repo_tags == ["course/box:v1"]
    assert left.repo_digests == []


def test_a_digest_name_stays_while_its_repository_has_another_tag(store):
    image = pulled_image(store)
    store.tag("busybox", "busybox:stable")
    assert store.remove("busybox:latest") == [{"Untagged": "busybox:latest"}]
    [left] = store.list_images()
    assert left.repo_tags == ["busybox:stable"]
    assert left.repo_digests == [f"busybox@{image.manifest_digest}"]


def test_removing_a_digest_name_leaves_the_tags(store):
    image = pulled_image(store)
    store.tag("busybox", "course/box:v1")
    assert store.remove(f"busybox@{image.manifest_digest}")[0] == {"Untagged": f"busybox@{image.manifest_digest}"}
    assert store.resolve("busybox:latest").id == image.id
