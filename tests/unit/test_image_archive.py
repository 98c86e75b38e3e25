"""Image archives: docker save's format written, docker-archives and OCI layouts loaded, and
broken or malicious archives refused with nothing half-imported."""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from teachdock.errors import NotFound
from teachdock.image.archive import save
from teachdock.image.archive_load import ArchiveError, UnsafeArchive, load
from teachdock.image.digest import DigestMismatch, sha256_digest
from teachdock.image.layers import LayerError
from teachdock.image.manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST
from teachdock.image.platforms import host_platform, select_manifest
from teachdock.image.progress import ProgressEvent
from teachdock.image.store import ImageNotFound, ImageStore


# ---------------------------------------------------------------- building images and archives

def layer_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BASE = layer_tar({"bin/sh": b"#!shell\n"})
APP = layer_tar({"app/run": b"app" * 1000})


def config_for(*layers, arch="amd64"):
    return {"created": "2024-05-01T12:00:00Z", "architecture": arch, "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer) for layer in layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}


def make_image(store, names, *layers, gzip_layers=(), arch="amd64"):
    """An image of ``layers``; those whose index is in ``gzip_layers`` are stored gzipped."""
    descriptors = []
    for i, data in enumerate(layers):
        if i in gzip_layers:
            descriptors.append(store.put_blob(gzip.compress(data, mtime=0), media_type=OCI_LAYER_GZIP))
        else:
            descriptors.append(store.put_blob(data, media_type=OCI_LAYER))
    return store.add_image(config_for(*layers, arch=arch), descriptors, names)


def member(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def make_tar(entries):
    """A tar from (TarInfo, data) pairs or from a {name: bytes} dict."""
    if isinstance(entries, dict):
        entries = [member(name, data) for name, data in entries.items()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def js(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def blob_name(data):
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def oci_layout(images, *, blobs_extra=None):
    """A plain OCI layout as {name: bytes}. ``images``: list of (annotations, layers as stored, diff layers)."""
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    for annotations, stored_layers, plain_layers in images:
        config = js(config_for(*plain_layers))
        files[blob_name(config)] = config
        layer_descriptors = []
        for data in stored_layers:
            files[blob_name(data)] = data
            kind = OCI_LAYER_GZIP if data[:2] == b"\x1f\x8b" else OCI_LAYER
            layer_descriptors.append({"mediaType": kind, "digest": sha256_digest(data), "size": len(data)})
        manifest = js({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
                       "layers": layer_descriptors})
        files[blob_name(manifest)] = manifest
        entry = {"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest), "size": len(manifest)}
        if annotations:
            entry["annotations"] = annotations
        index["manifests"].append(entry)
    files["index.json"] = js(index)
    files.update(blobs_extra or {})
    return files


def legacy_docker_archive(layers, tags=("old/app:1",), plain=None):
    """What docker save wrote before 25: <id>/layer.tar, <config hex>.json, repositories.
    ``plain``: the uncompressed layers, when ``layers`` are compressed."""
    config = js(config_for(*(plain or layers)))
    config_hex = hashlib.sha256(config).hexdigest()
    files = {f"{config_hex}.json": config}
    layer_paths = []
    for i, data in enumerate(layers):
        layer_id = hashlib.sha256(f"v1-{i}".encode()).hexdigest()
        files[f"{layer_id}/VERSION"] = b"1.0"
        files[f"{layer_id}/json"] = js({"id": layer_id})
        files[f"{layer_id}/layer.tar"] = data
        layer_paths.append(f"{layer_id}/layer.tar")
    files["manifest.json"] = js([{"Config": f"{config_hex}.json", "RepoTags": list(tags), "Layers": layer_paths}])
    files["repositories"] = js({"old/app": {"1": layer_paths[-1].split("/")[0]}})
    return files, config


def snapshot(store):
    """Everything a load could leave behind: blob files, and the index."""
    return sorted(os.listdir(store.blobs_dir)), open(os.path.join(store.root, "index.json")).read()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


@pytest.fixture
def other(tmp_path):
    return ImageStore(tmp_path / "other")


def read_archive(path):
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()}, \
            {m.name: m for m in tar.getmembers()}


# ---------------------------------------------------------------- save: the format

def test_save_writes_docker_archive_and_oci_layout_in_one_tar(store, tmp_path):
    image = make_image(store, ["team/app:1"], BASE, APP, gzip_layers={1})
    out = tmp_path / "app.tar"
    save(store, ["team/app:1"], out)
    files, members = read_archive(out)

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest_json = json.loads(files["manifest.json"])
    diff_ids = [sha256_digest(BASE), sha256_digest(APP)]
    assert manifest_json == [{"Config": "blobs/sha256/" + image.id.split(":")[1], "RepoTags": ["team/app:1"],
                              "Layers": ["blobs/sha256/" + d.split(":")[1] for d in diff_ids]}]
    # layers are written uncompressed and named by their diff_id, as Docker 25+ does
    assert files[manifest_json[0]["Layers"][0]] == BASE
    assert files[manifest_json[0]["Layers"][1]] == APP
    # the config is copied byte for byte: the image id survives
    assert files[manifest_json[0]["Config"]] == store.read_blob(image.id)
    assert json.loads(files["repositories"]) == {"team/app": {"1": diff_ids[1].split(":")[1]}}

    index = json.loads(files["index.json"])
    [entry] = index["manifests"]
    assert entry["annotations"] == {"io.containerd.image.name": "docker.io/team/app:1",
                                    "org.opencontainers.image.ref.name": "1"}
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(files["blobs/sha256/" + entry["digest"].split(":")[1]])
    assert sha256_digest(files["blobs/sha256/" + entry["digest"].split(":")[1]]) == entry["digest"]
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": image.id,
                                  "size": len(store.read_blob(image.id))}
    assert [(l["mediaType"], l["digest"], l["size"]) for l in manifest["layers"]] == \
        [(OCI_LAYER, diff_ids[0], len(BASE)), (OCI_LAYER, diff_ids[1], len(APP))]
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]      # no temp file left


def test_save_keeps_the_stored_manifest_when_it_already_has_plain_layers(store, tmp_path):
    image = make_image(store, ["team/app:1"], BASE, APP)
    save(store, ["team/app:1"], tmp_path / "a.tar")
    files, _ = read_archive(tmp_path / "a.tar")
    assert json.loads(files["index.json"])["manifests"][0]["digest"] == image.manifest_digest


def test_save_by_id_is_untagged_and_a_repository_saves_all_its_tags(store, tmp_path):
    one = make_image(store, ["team/app:1", "team/app:2"], BASE)
    make_image(store, ["team/other:1"], APP)
    save(store, [one.id], tmp_path / "by-id.tar")
    files, _ = read_archive(tmp_path / "by-id.tar")
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]
    assert "repositories" not in files

    save(store, ["team/app"], tmp_path / "repo.tar")
    files, _ = read_archive(tmp_path / "repo.tar")
    assert json.loads(files["manifest.json"])[0]["RepoTags"] == ["team/app:1", "team/app:2"]
    assert len(json.loads(files["index.json"])["manifests"]) == 2


def test_save_shares_a_layer_between_images_once(store, tmp_path):
    make_image(store, ["a:1"], BASE, APP, gzip_layers={0})
    make_image(store, ["b:1"], BASE, gzip_layers={0})
    save(store, ["a:1", "b:1"], tmp_path / "two.tar")
    with tarfile.open(tmp_path / "two.tar") as tar:
        names = tar.getnames()
    assert names.count(blob_name(BASE)) == 1
    assert len(json.loads(read_archive(tmp_path / "two.tar")[0]["manifest.json"])) == 2


def test_save_of_an_unknown_image_writes_nothing(store, tmp_path):
    with pytest.raises(ImageNotFound):
        save(store, ["nope:1"], tmp_path / "x.tar")
    assert os.listdir(tmp_path) == ["images"]
    make_image(store, ["a:1"], BASE)
    with pytest.raises(NotFound, match="directory .*missing does not exist"):
        save(store, ["a:1"], tmp_path / "missing" / "x.tar")


def test_save_refuses_a_corrupt_stored_layer_and_leaves_no_file(store, tmp_path):
    image = make_image(store, ["a:1"], BASE)
    path = store.blob_path(image.layers[0].digest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(600)
        f.write(b"X")
    with pytest.raises(DigestMismatch):
        save(store, ["a:1"], tmp_path / "x.tar")
    assert sorted(os.listdir(tmp_path)) == ["images"]


def test_save_to_a_stream_reports_progress(store):
    make_image(store, ["a:1"], BASE, APP, gzip_layers={0})
    buf, events = io.BytesIO(), []
    save(store, ["a:1"], buf, progress=events.append)
    assert {e.status for e in events} == {"Saving layer"}
    assert events[-1] == ProgressEvent(sha256_digest(APP).split(":")[1][:12], "Saving layer", len(APP), len(APP))
    buf.seek(0)
    assert "manifest.json" in tarfile.open(fileobj=buf).getnames()


# ---------------------------------------------------------------- load: round trips and formats

def test_save_load_round_trip_keeps_id_names_and_layers(store, other, tmp_path):
    image = make_image(store, ["team/app:1", "team/app:latest"], BASE, APP, gzip_layers={1})
    save(store, ["team/app:1", "team/app:latest"], tmp_path / "app.tar")
    assert load(other, tmp_path / "app.tar") == ["team/app:1", "team/app:latest"]
    loaded = other.resolve("team/app:1")
    assert loaded.id == image.id
    assert loaded.diff_ids == image.diff_ids
    assert [other.read_blob(l.digest) for l in loaded.layers] == [BASE, APP]
    assert other.resolve("team/app").id == image.id


def test_load_keeps_the_manifest_digest_of_a_teachdock_save(store, other, tmp_path):
    image = make_image(store, ["a:1"], BASE, APP)
    save(store, ["a:1"], tmp_path / "a.tar")
    load(other, tmp_path / "a.tar")
    assert other.resolve("a:1").manifest_digest == image.manifest_digest


def test_load_of_an_untagged_image_reports_its_id(store, other, tmp_path):
    image = make_image(store, ["a:1"], BASE)
    save(store, [image.id], tmp_path / "a.tar")
    assert load(other, tmp_path / "a.tar") == [image.id]
    assert other.list_images()[0].names == ()


@pytest.mark.parametrize("form", ["directory", "gzip", "pipe", "bytesio"])
def test_load_reads_a_directory_a_gzipped_tar_and_streams(store, other, tmp_path, form):
    image = make_image(store, ["a:1"], BASE, APP)
    save(store, ["a:1"], tmp_path / "a.tar")
    data = (tmp_path / "a.tar").read_bytes()
    if form == "directory":
        with tarfile.open(tmp_path / "a.tar") as tar:
            tar.extractall(tmp_path / "unpacked")
        source = tmp_path / "unpacked"
    elif form == "gzip":
        (tmp_path / "a.tar.gz").write_bytes(gzip.compress(data))
        source = tmp_path / "a.tar.gz"
    elif form == "pipe":
        read_fd, write_fd = os.pipe()
        if os.fork() == 0:                # the writer: a child, so a big archive cannot block us
            os.close(read_fd)
            with os.fdopen(write_fd, "wb") as w:
                w.write(data)
            os._exit(0)
        os.close(write_fd)
        source = os.fdopen(read_fd, "rb")
    else:
        source = io.BytesIO(data)
    assert load(other, source) == ["a:1"]
    if form == "pipe":
        source.close()
        os.wait()
    assert other.resolve("a:1").id == image.id


def test_load_reads_a_pre_25_docker_archive(other, tmp_path):
    files, config = legacy_docker_archive([BASE, gzip.compress(APP)], plain=[BASE, APP])
    (tmp_path / "old.tar").write_bytes(make_tar(files))
    assert load(other, tmp_path / "old.tar") == ["old/app:1"]
    image = other.resolve("old/app:1")
    assert image.id == sha256_digest(config)
    assert [l.media_type for l in image.layers] == [OCI_LAYER, OCI_LAYER_GZIP]
    assert image.diff_ids == [sha256_digest(BASE), sha256_digest(APP)]


def test_load_follows_links_inside_the_archive(other, tmp_path):
    """Docker 25.0 wrote <id>/layer.tar as a symlink to ../blobs/sha256/<diff_id>."""
    files, _ = legacy_docker_archive([BASE])
    entries = []
    for name, data in files.items():
        if name.endswith("/layer.tar"):
            entries.append(member(blob_name(BASE), BASE))
            entries.append(member(name, kind=tarfile.SYMTYPE, linkname="../" + blob_name(BASE)))
        else:
            entries.append(member(name, data))
    (tmp_path / "links.tar").write_bytes(make_tar(entries))
    assert load(other, tmp_path / "links.tar") == ["old/app:1"]


def test_load_reads_a_plain_oci_layout_with_gzip_layers(other, tmp_path):
    files = oci_layout([({"org.opencontainers.image.ref.name": "busybox:1"}, [gzip.compress(BASE)], [BASE]),
                        ({"org.opencontainers.image.ref.name": "latest"}, [APP], [APP])])
    (tmp_path / "oci.tar").write_bytes(make_tar(files))
    loaded = load(other, tmp_path / "oci.tar")
    # skopeo writes "name:tag" (a name); Docker writes only the tag, which names no repository
    assert loaded[0] == "busybox:1"
    assert loaded[1].startswith("sha256:")
    image = other.resolve("busybox:1")
    assert image.layers[0].media_type == OCI_LAYER_GZIP
    # the manifest is stored byte for byte
    assert other.read_blob(image.manifest_digest) == files[blob_name(other.read_blob(image.manifest_digest))]


def test_load_picks_this_hosts_platform_from_a_nested_index(other, tmp_path):
    files = oci_layout([(None, [BASE], [BASE]), (None, [APP], [APP])])
    inner = json.loads(files["index.json"])
    inner["manifests"][0]["platform"] = {"os": "linux", "architecture": "s390x"}
    inner["manifests"][1]["platform"] = host_platform()
    inner_bytes = js(inner)
    files[blob_name(inner_bytes)] = inner_bytes
    files["index.json"] = js({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": sha256_digest(inner_bytes), "size": len(inner_bytes),
         "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}}]})
    (tmp_path / "multi.tar").write_bytes(make_tar(files))
    assert load(other, tmp_path / "multi.tar") == ["multi:1"]
    assert other.resolve("multi:1").diff_ids == [sha256_digest(APP)]


def test_load_reports_progress_per_layer(store, other, tmp_path):
    make_image(store, ["a:1"], BASE, APP)
    save(store, ["a:1"], tmp_path / "a.tar")
    events = []
    load(other, tmp_path / "a.tar", progress=events.append)
    assert [(e.id, e.current) for e in events if e.current == e.total] == \
        [(sha256_digest(BASE).split(":")[1][:12], len(BASE)), (sha256_digest(APP).split(":")[1][:12], len(APP))]


def test_loading_again_moves_nothing_and_reuses_blobs(store, other, tmp_path):
    make_image(store, ["a:1"], BASE)
    save(store, ["a:1"], tmp_path / "a.tar")
    load(other, tmp_path / "a.tar")
    before = snapshot(other)
    events = []
    assert load(other, tmp_path / "a.tar", progress=events.append) == ["a:1"]
    assert snapshot(other) == before
    assert [e.status for e in events] == ["Already exists"]


# ---------------------------------------------------------------- load: refused, nothing half-imported

def good_archive(store, tmp_path):
    make_image(store, ["a:1"], BASE, APP)
    save(store, ["a:1"], tmp_path / "good.tar")
    files, _ = read_archive(tmp_path / "good.tar")
    return {name: data for name, data in files.items() if data is not None}


@pytest.mark.parametrize("bad_name", ["../evil", "/etc/evil", "blobs/../../evil"])
def test_path_traversal_in_member_names_is_refused(store, other, tmp_path, bad_name):
    files = good_archive(store, tmp_path)
    files[bad_name] = b"boom"
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(UnsafeArchive, match="refusing the archive"):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_links_leaving_the_archive_are_refused(other, tmp_path, target):
    files, _ = legacy_docker_archive([BASE])
    entries = [member(name, data) for name, data in files.items() if not name.endswith("layer.tar")]
    layer_path = next(name for name in files if name.endswith("layer.tar"))
    entries.append(member(layer_path, kind=tarfile.SYMTYPE, linkname=target))
    (tmp_path / "bad.tar").write_bytes(make_tar(entries))
    with pytest.raises(UnsafeArchive, match="points outside"):
        load(other, tmp_path / "bad.tar")
    assert other.list_images() == []


def test_duplicate_members_and_device_nodes_are_refused(store, other, tmp_path):
    files = good_archive(store, tmp_path)
    entries = [member(n, d) for n, d in files.items()] + [member("manifest.json", b"[]")]
    (tmp_path / "dup.tar").write_bytes(make_tar(entries))
    with pytest.raises(UnsafeArchive, match="appears twice"):
        load(other, tmp_path / "dup.tar")
    entries = [member(n, d) for n, d in files.items()] + [member("dev/sda", kind=tarfile.BLKTYPE)]
    (tmp_path / "dev.tar").write_bytes(make_tar(entries))
    with pytest.raises(UnsafeArchive, match="device"):
        load(other, tmp_path / "dev.tar")


def test_a_missing_layer_is_refused_and_nothing_is_imported(store, other, tmp_path):
    files = good_archive(store, tmp_path)
    del files[blob_name(APP)]
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(ArchiveError, match="no file .*" + blob_name(APP)):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before       # BASE was stored first, and removed again


def test_a_tampered_layer_fails_its_diff_id_and_nothing_is_imported(store, other, tmp_path):
    files = good_archive(store, tmp_path)
    files[blob_name(APP)] = APP.replace(b"app", b"bad", 1)          # same name, other content
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(DigestMismatch):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before


def test_a_tampered_oci_blob_fails_its_digest(other, tmp_path):
    files = oci_layout([({"io.containerd.image.name": "docker.io/library/x:1"}, [BASE, APP], [BASE, APP])])
    files[blob_name(APP)] = APP.replace(b"app", b"bad", 1)
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(DigestMismatch, match="expected " + sha256_digest(APP)):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before


def test_a_second_broken_image_undoes_the_first(store, other, tmp_path):
    files = oci_layout([({"io.containerd.image.name": "docker.io/library/good:1"}, [BASE], [BASE]),
                        ({"io.containerd.image.name": "docker.io/library/bad:1"}, [APP], [APP])])
    del files[blob_name(APP)]
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(ArchiveError):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before


def test_a_failed_load_keeps_blobs_other_images_use(other, tmp_path):
    make_image(other, ["mine:1"], BASE)
    before = snapshot(other)
    files = oci_layout([({"io.containerd.image.name": "docker.io/library/x:1"}, [BASE, APP], [BASE, APP])])
    del files[blob_name(APP)]
    (tmp_path / "bad.tar").write_bytes(make_tar(files))
    with pytest.raises(ArchiveError):
        load(other, tmp_path / "bad.tar")
    assert snapshot(other) == before
    assert other.read_blob(sha256_digest(BASE)) == BASE


def test_zstd_layers_are_refused_with_a_clear_message(other, tmp_path):
    zstd_layer = b"\x28\xb5\x2f\xfd" + b"\x00" * 20
    files, _ = legacy_docker_archive([zstd_layer])
    (tmp_path / "zstd.tar").write_bytes(make_tar(files))
    with pytest.raises(LayerError, match="zstd-compressed"):
        load(other, tmp_path / "zstd.tar")
    assert other.list_images() == []
    files = oci_layout([(None, [BASE], [BASE])])
    manifest_name = next(n for n in files if n.startswith("blobs/") and b'"schemaVersion"' in files[n])
    manifest = json.loads(files.pop(manifest_name))
    manifest["layers"][0]["mediaType"] = OCI_LAYER_ZSTD
    data = js(manifest)
    files[blob_name(data)] = data
    files["index.json"] = js({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256_digest(data), "size": len(data)}]})
    (tmp_path / "zstd2.tar").write_bytes(make_tar(files))
    with pytest.raises(LayerError, match="zstd"):
        load(other, tmp_path / "zstd2.tar")


def test_a_truncated_gzip_layer_is_refused(other, tmp_path):
    files, _ = legacy_docker_archive([gzip.compress(APP)[:-30]], plain=[APP])
    (tmp_path / "cut.tar").write_bytes(make_tar(files))
    before = snapshot(other)
    with pytest.raises(LayerError, match="truncated or corrupt gzip"):
        load(other, tmp_path / "cut.tar")
    assert snapshot(other) == before


@pytest.mark.parametrize("content, message", [
    (b"not a tar at all" * 64, "not a readable tar|neither manifest.json nor index.json"),
    (make_tar({"hello.txt": b"hi"}), "neither manifest.json nor index.json"),
    (make_tar({"manifest.json": b"{not json"}), "not valid JSON"),
    (make_tar({"manifest.json": b'[{"Config": "c.json"}]'}), "needs \"Config\" and \"Layers\""),
])
def test_malformed_archives_are_refused(other, tmp_path, content, message):
    (tmp_path / "bad.tar").write_bytes(content)
    with pytest.raises(ArchiveError, match=message):
        load(other, tmp_path / "bad.tar")


def test_a_missing_archive_is_not_found(other, tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        load(other, tmp_path / "nope.tar")


def test_a_directory_layout_cannot_reach_outside_through_a_symlink(other, tmp_path):
    layout = tmp_path / "layout"
    for name, data in oci_layout([(None, [BASE], [BASE])]).items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    secret = tmp_path / "secret"
    secret.write_bytes(BASE)                      # outside the layout, with the right content
    os.unlink(layout / blob_name(BASE))
    os.symlink(secret, layout / blob_name(BASE))  # absolute: resolved inside the layout, so missing
    with pytest.raises(ArchiveError, match="no file"):
        load(other, layout)


# ---------------------------------------------------------------- platform selection

def index_of(*platforms, attestation=False):
    manifests = [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + f"{i:064x}", "size": 1, "platform": p}
                 for i, p in enumerate(platforms)]
    if attestation:
        manifests.insert(0, {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 1,
                             "platform": {"os": "unknown", "architecture": "unknown"},
                             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


def test_select_manifest_picks_the_platform_and_skips_attestations():
    index = index_of({"os": "linux", "architecture": "arm64", "variant": "v8"},
                     {"os": "linux", "architecture": "amd64"}, attestation=True)
    assert select_manifest(index, "linux/amd64")["platform"]["architecture"] == "amd64"
    assert select_manifest(index, "linux/arm64")["platform"]["architecture"] == "arm64"
    assert select_manifest(index, "linux/arm64/v8")["platform"]["architecture"] == "arm64"


def test_select_manifest_defaults_to_this_host(monkeypatch):
    index = index_of({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"})
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(("Linux", "h", "6", "#1", "aarch64")))
    assert host_platform() == {"os": "linux", "architecture": "arm64"}
    assert select_manifest(index)["platform"]["architecture"] == "arm64"
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(("Linux", "h", "6", "#1", "x86_64")))
    assert select_manifest(index)["platform"]["architecture"] == "amd64"


def test_select_manifest_matches_variants():
    index = index_of({"os": "linux", "architecture": "arm", "variant": "v6"},
                     {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert select_manifest(index, "linux/arm/v7")["platform"]["variant"] == "v7"
    with pytest.raises(NotFound, match="linux/arm/v5.*linux/arm/v6, linux/arm/v7"):
        select_manifest(index, "linux/arm/v5")


def test_select_manifest_names_what_is_available():
    with pytest.raises(NotFound, match="no manifest for platform linux/amd64 in the image; it has: linux/s390x"):
        select_manifest(index_of({"os": "linux", "architecture": "s390x"}), "linux/amd64")
