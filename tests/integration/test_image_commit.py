"""Commit a container into an image, and remove images with reference counting.

A container's changes (its upper dir) become a new layer on top of its image's; a
container from the new image sees them. Removing an image a container uses is refused;
a layer two images share survives the removal of one of them.
"""

import os

import pytest

from teachdock.image.store import ImageInUse, ImageNotFound

pytestmark = [
    pytest.mark.root,
    pytest.mark.usefixtures("leak_check"),
]


@pytest.fixture(params=["overlay", "copy"])
def images(request, data_roots):
    return data_roots(request.param)


def blobs(images) -> set[str]:
    return {"sha256:" + name for name in os.listdir(images.store.blobs_dir) if not name.startswith(".")}


def test_a_committed_container_s_file_is_in_the_new_image(images, new_id):
    container_id = new_id()
    result = images.run("busybox", ["sh", "-c", "echo x > /f; rm /bin/vi"], container_id=container_id, keep=True)
    assert result.exit_code == 0, result.stderr
    try:
        image = images.commit(container_id, "committed:v1", author="Ada <ada@example.org>", comment="adds /f",
                              changes=['CMD ["cat", "/f"]', "ENV STAGE=committed"],
                              created_by="sh -c echo x > /f; rm /bin/vi")
    finally:
        images.release(container_id)
    base = images.get("busybox")
    assert image.layers[:1] == base.layers and len(image.layers) == 2
    assert image.config["config"]["Cmd"] == ["cat", "/f"]
    assert "STAGE=committed" in image.config["config"]["Env"]
    last = image.history[-1]
    assert (last["author"], last["comment"], last.get("empty_layer")) == ("Ada <ada@example.org>", "adds /f", None)
    inspected = images.inspect("committed:v1")
    assert (inspected["Author"], inspected["Comment"]) == ("Ada <ada@example.org>", "adds /f")

    out = images.run("committed:v1", container_id=new_id())
    assert (out.exit_code, out.stdout) == (0, "x\n")
    assert images.run("committed:v1", ["ls", "/bin/vi"], container_id=new_id()).exit_code != 0  # the whiteout too


def test_committing_an_unchanged_container_adds_no_layer(images, new_id):
    container_id = new_id()
    images.prepare("busybox", container_id)
    try:
        image = images.commit(container_id, "same", changes=["USER nobody"])
    finally:
        images.release(container_id)
    assert image.layers == images.get("busybox").layers
    assert image.history[-1]["empty_layer"] is True
    assert image.config["config"]["User"] == "nobody"


def test_an_image_in_use_cannot_be_removed(images, new_id):
    container_id = new_id()
    images.prepare("busybox", container_id)
    try:
        with pytest.raises(ImageInUse, match=container_id):
            images.remove("busybox")
        assert images.get("busybox").repo_tags == ["busybox:latest"]
    finally:
        images.release(container_id)
    busybox_id = images.get("busybox").id
    report = images.remove("busybox")
    assert report[:2] == [{"Untagged": "busybox:latest"}, {"Deleted": busybox_id}]
    with pytest.raises(ImageNotFound):
        images.get("busybox")
    assert blobs(images) == set()                                 # nothing else needed its blobs
    assert not [p for p in (images.data_root / "snapshots").iterdir() if len(p.name) == 64]


def test_a_layer_two_images_share_survives_the_removal_of_one(images, new_id):
    container_id = new_id()
    images.run("busybox", ["sh", "-c", "echo shared > /shared"], container_id=container_id, keep=True)
    try:
        first = images.commit(container_id, "first")
    finally:
        images.release(container_id)
    container_id = new_id()
    images.run("first", ["sh", "-c", "echo second > /second"], container_id=container_id, keep=True)
    try:
        second = images.commit(container_id, "second")
    finally:
        images.release(container_id)
    shared_layer = first.layers[-1]
    assert second.layers[:2] == first.layers

    images.remove("busybox")
    images.remove("first")
    assert shared_layer.digest in blobs(images)
    out = images.run("second", ["cat", "/shared", "/second"], container_id=new_id())
    assert (out.exit_code, out.stdout) == (0, "shared\nsecond\n")

    images.remove("second")
    assert blobs(images) == set()                                 # the last user gone: every blob goes
    assert images.list() == []
