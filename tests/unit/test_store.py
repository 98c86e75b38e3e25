"""The OCI content store: blobs by digest, names in index.json, reference-counted removal."""

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.image.digest import DigestMismatch, sha256_digest
from teachdock.image.manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Descriptor
from teachdock.image.reference import InvalidReference
from teachdock.image.store import BlobNotFound, ImageInUse, ImageNotFound, ImageStore


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def layer_tar(**files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(store, *layers, names=(), cmd=("sh",), created="2024-05-01T12:00:00.123456789Z"):
    """Store the layer tars (uncompressed, so digest == diff_id) and an image using them."""
    descriptors = [store.put_blob(data, media_type=OCI_LAYER) for data in layers]
    config = {
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in descriptors]},
        "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))]
                   + [{"created": created, "created_by": "CMD", "empty_layer": True}],
    }
    return store.add_image(config, descriptors, names)


def blob_files(store):
    return sorted(os.listdir(store.blobs_dir))


BASE = layer_tar(**{"bin/sh": b"shell"})
APP = layer_tar(**{"app/run": b"app"})
OTHER = layer_tar(**{"other": b"other"})


# ---------------------------------------------------------------- layout and blobs

def test_a_new_store_is_an_empty_oci_layout(store):
    root = store.root
    assert json.load(open(os.path.join(root, "oci-layout"))) == {"imageLayoutVersion": "1.0.0"}
    index = json.load(open(os.path.join(root, "index.json")))
    assert index == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert os.path.isdir(os.path.join(root, "blobs", "sha256"))
    assert store.list_images() == []


def test_blobs_round_trip_from_bytes_stream_and_file(store, tmp_path):
    data = b"hello blob"
    digest = sha256_digest(data)
    from_bytes = store.put_blob(data)
    from_stream = store.put_blob(io.BytesIO(data))
    (tmp_path / "f").write_bytes(data)
    from_file = store.put_blob(tmp_path / "f", media_type=OCI_LAYER)
    assert from_bytes == from_stream == Descriptor("application/octet-stream", digest, len(data))
    assert from_file == Descriptor(OCI_LAYER, digest, len(data))
    assert blob_files(store) == [digest.split(":")[1]]          # stored once, no temp files
    assert store.has_blob(digest) and store.blob_size(digest) == len(data)
    with store.open_blob(digest) as blob:
        assert blob.read() == data
    assert store.read_blob(digest) == data
    assert store.blob_path(digest) == os.path.join(store.root, "blobs", "sha256", digest.split(":")[1])


def test_a_blob_with_the_wrong_digest_is_refused(store):
    wrong = sha256_digest(b"something else")
    with pytest.raises(DigestMismatch, match=wrong):
        store.put_blob(b"actual content", expected_digest=wrong)
    assert blob_files(store) == []
    good = store.put_blob(b"actual content", expected_digest=sha256_digest(b"actual content"))
    assert store.has_blob(good.digest)


def test_a_blob_corrupted_on_disk_is_detected(store):
    digest = store.put_json({"a": 1}, OCI_CONFIG).digest
    with open(store.blob_path(digest), "wb") as fh:
        fh.write(b'{"a":2}')
    with pytest.raises(DigestMismatch, match="corrupt on disk"):
        store.read_blob(digest)


def test_missing_and_malformed_digests(store):
    missing = sha256_digest(b"nope")
    with pytest.raises(BlobNotFound):
        store.open_blob(missing)
    with pytest.raises(NotFound):
        store.blob_size(missing)
    assert not store.has_blob(missing)
    with pytest.raises(InvalidConfig, match="64 lowercase hex"):
        store.blob_path("sha256:../../etc/passwd")


# ---------------------------------------------------------------- images and names

def test_add_resolve_inspect_and_history(store):
    img = make_image(store, BASE, APP, names=["busybox", "127.0.0.1:5000/team/app:v1"])
    assert img.names == ("docker.io/library/busybox:latest", "127.0.0.1:5000/team/app:v1")
    assert img.repo_tags == ["busybox:latest", "127.0.0.1:5000/team/app:v1"]
    assert img.id == sha256_digest(store.read_blob(img.id))            # image id = config digest
    assert img.diff_ids == [sha256_digest(BASE), sha256_digest(APP)]
    assert [layer.size for layer in img.layers] == [len(BASE), len(APP)]
    assert img.size == len(BASE) + len(APP)

    for name in ["busybox", "busybox:latest", "docker.io/library/busybox:latest", "library/busybox",
                 img.id, img.id.split(":")[1], img.short_id, "sha256:" + img.short_id[:5],
                 "127.0.0.1:5000/team/app:v1", f"busybox@{img.manifest_digest}"]:
        assert store.resolve(name).id == img.id, name

    info = store.inspect("busybox")
    assert info["Id"] == img.id
    assert info["RepoTags"] == ["busybox:latest", "127.0.0.1:5000/team/app:v1"]
    assert info["RootFS"] == {"Type": "layers", "Layers": img.diff_ids}
    assert info["Config"]["Cmd"] == ["sh"]
    # Size is the unpacked files' bytes, as dockerd shows it: "shell" + "app", not the tars
    assert (info["Os"], info["Architecture"], info["Size"]) == ("linux", "amd64", len(b"shell") + len(b"app"))
    assert info["Descriptor"]["mediaType"] == OCI_MANIFEST
    assert info["Descriptor"]["digest"] == img.manifest_digest

    history = store.history("busybox")
    assert [row["CreatedBy"] for row in history] == ["CMD", "layer 1", "layer 0"]
    assert [row["Size"] for row in history] == [0, len(b"app"), len(b"shell")]
    assert history[0]["Id"] == img.id and history[1]["Id"] == "<missing>"
    assert history[0]["Tags"] == img.repo_tags
    assert history[0]["Created"] == 1714564800


def test_index_json_records_full_names_for_other_tools(store):
    img = make_image(store, BASE, names=["busybox:1.36"])
    index = json.load(open(os.path.join(store.root, "index.json")))
    [entry] = index["manifests"]
    assert entry["digest"] == img.manifest_digest and entry["mediaType"] == OCI_MANIFEST
    assert entry["size"] == store.blob_size(img.manifest_digest)
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "docker.io/library/busybox:1.36",
                                    "io.containerd.image.name": "docker.io/library/busybox:1.36"}
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(store.read_blob(img.manifest_digest))
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": img.id, "size": store.blob_size(img.id)}
    assert manifest["layers"] == [{"mediaType": OCI_LAYER, "digest": sha256_digest(BASE), "size": len(BASE)}]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_the_store_as_an_oci_layout(store):
    img = make_image(store, BASE, names=["busybox"])
    out = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{store.root}:docker.io/library/busybox:latest"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sha256_digest(out.stdout.encode()) == img.manifest_digest


def test_not_found_and_invalid_names(store):
    make_image(store, BASE, names=["busybox"])
    with pytest.raises(ImageNotFound, match="No such image: alpine:latest"):
        store.resolve("alpine")
    with pytest.raises(ImageNotFound):
        store.resolve("ffffffffffff")
    with pytest.raises(InvalidReference, match="lowercase"):
        store.resolve("BusyBox")


def test_ambiguous_id_prefix_is_a_conflict(store):
    by_first_hex = {}
    for i in range(200):
        img = make_image(store, BASE, cmd=(f"c{i}",))
        first = img.id.split(":")[1][0]
        if first in by_first_hex:
            break
        by_first_hex[first] = img
    with pytest.raises(Conflict, match="ambiguous"):
        store.resolve(first)


def test_tag_adds_a_name_and_moving_it_leaves_the_old_image_untagged(store):
    old = make_image(store, BASE, names=["app:v1"])
    new = make_image(store, BASE, APP, names=["app:v2"])
    assert str(store.tag("app:v1", "app:stable")) == "docker.io/library/app:stable"
    assert store.resolve("app:stable").id == old.id
    store.tag("app:v2", "app:v1")                          # the name moves to the new image
    assert store.resolve("app:v1").id == new.id
    assert store.resolve(old.id).names == ("docker.io/library/app:stable",)
    store.tag(new.id, "app:stable")
    assert store.resolve(old.id).names == ()               # dangling, like <none>:<none>
    assert sorted(i.id for i in store.list_images()) == sorted([old.id, new.id])
    with pytest.raises(InvalidReference, match="digest"):
        store.tag("app:v1", f"app@{new.manifest_digest}")


def test_register_checks_what_the_manifest_points_at(store):
    layer = store.put_blob(BASE, media_type=OCI_LAYER)
    config = store.put_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}, OCI_CONFIG)
    missing_layer = {"mediaType": OCI_LAYER, "digest": sha256_digest(b"absent"), "size": 6}
    manifest = store.put_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(),
                               "layers": [missing_layer]}, OCI_MANIFEST)
    with pytest.raises(BlobNotFound, match="layer"):
        store.register(manifest, ["x"])
    index = store.put_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, OCI_INDEX)
    with pytest.raises(InvalidConfig, match="not an image manifest"):
        store.register(index, ["x"])
    with pytest.raises(InvalidConfig, match="diff_ids"):
        store.add_image({"rootfs": {"type": "layers", "diff_ids": []}}, [layer], ["x"])
    assert store.list_images() == []


def test_tag_and_digest_name_is_stored_as_two_names(store):
    img = make_image(store, BASE)
    pinned = f"busybox:1.36@{img.manifest_digest}"
    again = store.register(img.manifest_descriptor, [pinned])
    assert again.repo_tags == ["busybox:1.36"]
    assert again.repo_digests == [f"busybox@{img.manifest_digest}"]


# ---------------------------------------------------------------- removal and reference counting

def test_remove_untags_until_the_last_name_then_deletes(store):
    img = make_image(store, BASE, names=["a", "b"])
    assert store.remove("a") == [{"Untagged": "a:latest"}]
    assert store.resolve("b").id == img.id
    report = store.remove("b")
    assert report[0] == {"Untagged": "b:latest"}
    assert {"Deleted": img.id} in report and {"Deleted": sha256_digest(BASE)} in report
    assert blob_files(store) == []
    assert store.list_images() == []
    with pytest.raises(ImageNotFound):
        store.resolve(img.id)


def test_a_shared_layer_survives_removal_of_one_image(store):
    first = make_image(store, BASE, APP, names=["first"])
    second = make_image(store, BASE, OTHER, names=["second"])
    report = store.remove("first")
    assert {"Deleted": sha256_digest(APP)} in report
    assert {"Deleted": sha256_digest(BASE)} not in report
    assert store.has_blob(sha256_digest(BASE))
    assert not store.has_blob(sha256_digest(APP))
    assert not store.has_blob(first.id) and not store.has_blob(first.manifest_digest)
    assert store.resolve("second").id == second.id
    store.remove("second")
    assert blob_files(store) == []


def test_removing_by_id_an_image_with_several_tags_needs_force(store):
    img = make_image(store, BASE, names=["a", "b"])
    with pytest.raises(ImageInUse, match="multiple repositories"):
        store.remove(img.id)
    report = store.remove(img.short_id, force=True)
    assert report[:2] == [{"Untagged": "a:latest"}, {"Untagged": "b:latest"}]
    assert blob_files(store) == []


def test_last_tag_removal_also_drops_repo_digests(store):
    img = make_image(store, BASE, names=["a"])
    store.register(img.manifest_descriptor, [f"a@{img.manifest_digest}"])
    report = store.remove("a")
    assert {"Untagged": f"a@{img.manifest_digest}"} in report
    assert blob_files(store) == []


def test_layer_holders_keep_blobs_after_the_image_goes(store):
    img = make_image(store, BASE, APP, names=["app"])
    for layer in img.layers:
        store.add_holder(layer.digest, "container1")
    store.add_holder(sha256_digest(BASE), "container2")
    assert store.holders(sha256_digest(BASE)) == ["container1", "container2"]

    report = store.remove("app")                   # nobody holds the image itself: it goes
    assert {"Deleted": img.id} in report
    assert sorted(blob_files(store)) == sorted(d.split(":")[1] for d in img.diff_ids)

    assert store.remove_holder(sha256_digest(APP), "container1") == [sha256_digest(APP)]
    assert store.release("container1") == []       # container2 still holds the base layer
    assert store.release("container2") == [sha256_digest(BASE)]
    assert blob_files(store) == []


def test_an_image_held_by_a_container_needs_force_and_then_stays_untagged(store):
    img = make_image(store, BASE, names=["app"])
    store.add_holder(img.id, "c1")
    with pytest.raises(ImageInUse, match="in use by c1"):
        store.remove("app")
    assert store.remove("app", force=True) == [{"Untagged": "app:latest"}]
    kept = store.resolve(img.id)
    assert kept.names == () and store.has_blob(sha256_digest(BASE))
    assert store.release("c1") == []                # still in the index, untagged
    report = store.remove(img.id)
    assert {"Deleted": img.id} in report
    assert blob_files(store) == []


def test_holders_need_an_existing_blob(store):
    with pytest.raises(BlobNotFound):
        store.add_holder(sha256_digest(b"absent"), "c1")
    assert store.remove_holder(sha256_digest(b"absent"), "c1") == []


def test_a_second_store_object_sees_the_same_state(store):
    img = make_image(store, BASE, names=["busybox"])
    other = ImageStore(store.root)
    assert other.resolve("busybox").id == img.id
    other.remove("busybox")
    with pytest.raises(ImageNotFound):
        store.resolve("busybox")


def test_content_size_counts_unpacked_files_gzipped_or_not_and_is_kept(store):
    import gzip  # noqa: PLC0415

    files = {"bin/big": b"x" * 5000, "etc/small": b"abc"}
    plain = layer_tar(**files)
    squeezed = gzip.compress(plain)
    assert len(squeezed) < 5003 < len(plain)
    for blob in (plain, squeezed):
        digest = store.put_blob(blob).digest
        assert store.content_size(digest) == 5003
    cached = os.path.join(store.root, "sizes", sha256_digest(squeezed).split(":")[1])
    assert open(cached).read() == "5003"


def test_content_size_of_a_blob_that_is_no_tar_is_a_clear_error(store):
    digest = store.put_blob(b"\x1f\x8b not really gzip, not a tar either" * 30).digest
    with pytest.raises(InvalidConfig, match="cannot be read as a tar"):
        store.content_size(digest)
