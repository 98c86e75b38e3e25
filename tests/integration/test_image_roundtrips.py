"""Round trips through the whole image stack, each ending in a container that shows the result.

    build -> save -> load (into a second, empty data root) -> run
    build -> push -> rm (+ prune) -> pull -> run        (a real registry on 127.0.0.1)
    run -> commit -> run
    whiteouts and opaque directories made by RUN steps -> run (overlay and copy drivers)
    two containers of one image -> one copy of each layer on disk
    cache hits and misses
    broken archives given to load -> refused, the store exactly as before

Every data root is a fresh directory; every container id carries the test's prefix, so
the leak check sees its cgroups; the registry is stopped by its PID when the test ends.
"""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from teachdock.image.archive import save
from teachdock.image.archive_load import ArchiveError, UnsafeArchive, load
from teachdock.image.digest import DigestMismatch, chain_id
from teachdock.image.images import Images
from teachdock.image.registry import pull, push
from teachdock.image.store import ImageNotFound

from tests.support.registry import REGISTRY_BINARY, local_registry


pytestmark = [
    pytest.mark.root,
    pytest.mark.usefixtures("leak_check"),
]
needs_registry = pytest.mark.skipif(REGISTRY_BINARY is None,
                                    reason="needs Debian's docker-registry (apt-get install docker-registry)")

APP = """\
FROM busybox
ENV WHO=roundtrip
WORKDIR /app
COPY note.txt ./
RUN echo "built for $WHO" >> note.txt && echo layer > /from-run
CMD ["cat", "/app/note.txt"]
"""
APP_OUTPUT = "from the context\nbuilt for roundtrip\n"


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture
def images(data_roots):
    return data_roots()


@pytest.fixture
def registry(tmp_path):
    if REGISTRY_BINARY is None:
        pytest.skip("needs Debian's docker-registry (apt-get install docker-registry)")
    with local_registry(tmp_path) as running:
        yield running


def blobs(images) -> set[str]:
    return {"sha256:" + name for name in os.listdir(images.store.blobs_dir) if not name.startswith(".")}


def layer_members(images, digest: str) -> list[str]:
    """Member names of a stored (gzipped or plain) layer blob."""
    with images.store.open_blob(digest) as blob, tarfile.open(fileobj=blob, mode="r:*") as tar:
        return tar.getnames()


def store_state(images) -> dict[str, str]:
    """Every file under the store, hashed: equal before and after means nothing changed."""
    state = {}
    for directory, _dirs, files in os.walk(images.store.root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as fh:
                state[os.path.relpath(path, images.store.root)] = hashlib.sha256(fh.read()).hexdigest()
    return state


# ---------------------------------------------------------------------------- the round trips

def test_build_save_load_into_an_empty_data_root_runs_the_build_s_change(data_roots, context, tmp_path, new_id):
    first = data_roots()
    built = first.build(context(Dockerfile=APP, **{"note.txt": "from the context\n"}), tags=["app:1"])
    archive = tmp_path / "app.tar"
    events = []
    save(first.store, ["app:1"], archive, progress=events.append)
    assert {event.status for event in events} == {"Saving layer"}

    second = data_roots(bootstrap=False)
    assert second.list() == []
    assert load(second.store, archive) == ["app:1"]
    loaded = second.get("app:1")
    assert loaded.id == built.id and loaded.diff_ids == built.image.diff_ids
    result = second.run("app:1", container_id=new_id())
    assert (result.exit_code, result.stdout) == (0, APP_OUTPUT)
    assert second.run("app:1", ["cat", "/from-run"], container_id=new_id()).stdout == "layer\n"


@needs_registry
def test_push_rm_pull_run(images, context, registry, new_id):
    built = images.build(context(Dockerfile=APP, **{"note.txt": "from the context\n"}), tags=["app:1"])
    name = f"{registry.host}/team/app:1"
    images.tag("app:1", name)
    pushed = []
    digest = push(images.store, name, progress=pushed.append, docker_config=False)
    assert {e.status for e in pushed} >= {"Pushing", "Pushed"}

    images.remove(name)
    images.remove("app:1")
    images.prune(build_cache=True)                      # the build cache held the layers: let them go
    own_layers = [layer.digest for layer in built.image.layers[1:]]
    assert not set(own_layers) & blobs(images)
    with pytest.raises(ImageNotFound):
        images.get(name)

    pulled_events = []
    pulled = pull(images.store, name, progress=pulled_events.append, docker_config=False)
    assert pulled.id == built.id and pulled.manifest_digest == digest
    completed = {e.id for e in pulled_events if e.status == "Pull complete"}
    assert completed == {layer[7:19] for layer in own_layers} | {built.id[7:19]}   # config + own layers
    assert any(e.status == "Already exists" for e in pulled_events)                 # busybox's layer
    result = images.run(name, container_id=new_id())
    assert (result.exit_code, result.stdout) == (0, APP_OUTPUT)


def test_commit_then_run_shows_the_change(images, new_id):
    container_id = new_id()
    changed = images.run("busybox", ["sh", "-c", "echo committed > /c && rm /etc/os-release"],
                         container_id=container_id, keep=True)
    assert changed.exit_code == 0, changed.stderr
    try:
        image = images.commit(container_id, "committed:1", changes=['CMD ["cat", "/c"]'])
    finally:
        images.release(container_id)
    assert len(image.layers) == 2
    assert "etc/.wh.os-release" in layer_members(images, image.layers[-1].digest)
    result = images.run("committed:1", container_id=new_id())
    assert (result.exit_code, result.stdout) == (0, "committed\n")
    gone = images.run("committed:1", ["sh", "-c", "test -e /etc/os-release || echo gone"], container_id=new_id())
    assert gone.stdout == "gone\n"
    assert images.run("busybox", ["cat", "/etc/os-release"], container_id=new_id()).exit_code == 0  # base intact


@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_whiteouts_and_opaque_dirs_from_run_steps(data_roots, context, tmp_path, new_id, driver):
    """RUN rm of a base file -> a whiteout; RUN rm -rf of a base dir, then recreating it ->
    an opaque dir (overlay) or a whiteout per old entry (copy). A container of the image,
    and of the image saved and loaded elsewhere, sees the deletions and only the new dir."""
    images = data_roots(driver=driver)
    dockerfile = ("FROM busybox\n"
                  "RUN rm /etc/os-release\n"
                  "RUN rm -rf /usr/sbin && mkdir /usr/sbin && echo new > /usr/sbin/only\n")
    base_sbin = sorted(os.listdir(images.data_root / "rootfs" / "busybox" / "usr" / "sbin"))
    assert len(base_sbin) > 5 and "only" not in base_sbin
    built = images.build(context(Dockerfile=dockerfile), tags=["gone:1"])
    rm_layer, opaque_layer = (layer_members(images, layer.digest) for layer in built.image.layers[1:])
    assert "etc/.wh.os-release" in rm_layer
    if driver == "overlay":
        assert "usr/sbin/.wh..wh..opq" in opaque_layer
    else:
        assert {f"usr/sbin/.wh.{name}" for name in base_sbin} <= set(opaque_layer)
    assert "usr/sbin/only" in opaque_layer

    look = "ls -A /usr/sbin; test -e /etc/os-release && echo present || echo deleted; cat /usr/sbin/only"
    expected = "only\ndeleted\nnew\n"
    result = images.run("gone:1", ["sh", "-c", look], container_id=new_id())
    assert (result.exit_code, result.stdout) == (0, expected), result.stderr

    archive = tmp_path / "gone.tar"
    save(images.store, ["gone:1"], archive)
    elsewhere = data_roots(driver=driver, bootstrap=False)
    load(elsewhere.store, archive)
    again = elsewhere.run("gone:1", ["sh", "-c", look], container_id=new_id())
    assert (again.exit_code, again.stdout) == (0, expected), again.stderr


def test_two_containers_of_one_image_share_one_copy_of_each_layer(images, context, new_id):
    built = images.build(context(Dockerfile=APP, **{"note.txt": "from the context\n"}), tags=["app:1"])
    chains = [chain_id(built.image.diff_ids[:i + 1])[7:] for i in range(len(built.image.diff_ids))]
    first, second = new_id(), new_id()
    try:
        for container_id in (first, second):
            result = images.run("app:1", ["sh", "-c", f"echo {container_id} > /mine"], container_id=container_id,
                                keep=True)
            assert result.exit_code == 0, result.stderr
        one, two = images.snapshots.get(first), images.snapshots.get(second)
        assert one.lowers == two.lowers == tuple(images.snapshots.layer_dir(c) for c in reversed(chains))
        on_disk = sorted(p.name for p in (images.data_root / "snapshots").iterdir() if len(p.name) == 64)
        assert on_disk == sorted(chains)                          # each layer unpacked once
        assert (one.upper / "mine").read_text() == f"{first}\n"   # each container's own change, in its own upper
        assert (two.upper / "mine").read_text() == f"{second}\n"
        assert not (images.snapshots.layer_dir(chains[-1]) / "mine").exists()

        usage = images.disk_usage()
        layers = {layer.chain_id[7:]: layer for layer in usage.layers}
        for chain in chains:
            assert set(layers[chain].containers) == {first, second}
        shared = sum(layers[chain].bytes for chain in chains)
        assert shared > 1_000_000                                 # busybox alone is about 2 MB
        assert usage.saved_bytes == shared                        # the second container's copy is what's saved
    finally:
        images.release(first)
        images.release(second)


def test_cache_hits_and_misses(images, context):
    ctx = context(Dockerfile=APP, **{"note.txt": "one\n"})
    first = images.build(ctx, tags=["app"])
    assert [step.cached for step in first.steps] == [False] * 6

    again = images.build(ctx, tags=["app"])
    assert [step.cached for step in again.steps] == [False] + [True] * 5
    assert again.id == first.id

    (ctx / "note.txt").write_text("two\n")                     # COPY's source changed: a miss from step 4 on
    changed = images.build(ctx, tags=["app"])
    assert [step.cached for step in changed.steps] == [False, True, True, False, False, False]
    assert changed.id != first.id

    (ctx / "Dockerfile").write_text(APP.replace('CMD ["cat", "/app/note.txt"]', 'CMD ["cat", "/from-run"]'))
    last_step = images.build(ctx, tags=["app"])
    assert [step.cached for step in last_step.steps] == [False] + [True] * 4 + [False]
    assert last_step.image.layers == changed.image.layers       # only the config differs

    forced = images.build(ctx, tags=["app"], no_cache=True)
    assert not any(step.cached for step in forced.steps)


# ---------------------------------------------------------------------------- broken archives

def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _rewrite(archive: bytes, replace: dict[str, bytes]) -> bytes:
    """The archive with some members' contents replaced (names and order kept)."""
    members = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isreg() else None
            members.append((info, replace.get(info.name, data)))
    return _tar_bytes(members)


def broken_archives(good: bytes, layer_member: str) -> dict[str, tuple[bytes, type]]:
    """name -> (archive bytes, the error load must raise)."""
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["evil:1"], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        tampered = bytearray(tar.extractfile(layer_member).read())
    tampered[len(tampered) // 2] ^= 0xFF                       # one byte in the middle of the layer
    zipped = gzip.compress(good, mtime=0)
    return {
        "path traversal": (_tar_bytes([_file("manifest.json", manifest), _file("../escaped-by-load", b"x")]),
                           UnsafeArchive),
        "absolute path": (_tar_bytes([_file("manifest.json", manifest), _file("/tmp/escaped-by-load", b"x")]),
                          UnsafeArchive),
        "symlink escape": (_tar_bytes([_file("manifest.json", manifest),
                                       _link("config.json", "../../../../etc/passwd")]), UnsafeArchive),
        "hardlink escape": (_tar_bytes([_file("manifest.json", manifest),
                                        _link("config.json", "../outside", tarfile.LNKTYPE)]), UnsafeArchive),
        "truncated gzip": (zipped[:len(zipped) // 2], ArchiveError),
        "wrong digest": (_rewrite(good, {layer_member: bytes(tampered)}), DigestMismatch),
    }


def test_broken_archives_are_refused_and_the_store_is_unchanged(images, tmp_path):
    buffer = io.BytesIO()
    save(images.store, ["busybox"], buffer)
    good = buffer.getvalue()
    layer_member = "blobs/sha256/" + images.get("busybox").diff_ids[0][7:]
    before = store_state(images)
    written = set()

    for name, (data, error) in broken_archives(good, layer_member).items():
        path = tmp_path / f"{name.replace(' ', '-')}.tar"
        path.write_bytes(data)
        written.add(path.name)
        with pytest.raises(error) as raised:
            load(images.store, path)
        assert str(raised.value), name
        assert store_state(images) == before, f"{name}: the store changed"
        assert {p.name for p in tmp_path.iterdir()} == written, f"{name}: something appeared beside the archive"
        assert not os.path.exists("/tmp/escaped-by-load") and not os.path.exists(tmp_path.parent / "escaped-by-load")

    # the same archive unbroken loads, and the tampered one fails only because of its one byte
    fresh = Images(tmp_path / "fresh")
    assert load(fresh.store, io.BytesIO(good)) == ["busybox:latest"]
