"""The builder and snapshots without containers or mounts: the copy driver, COPY/ADD, the cache.

RUN needs a container (tests/integration/test_image_build.py); everything else the
builder does is plain file work, tested here with the copy snapshot driver.
"""

import gzip
import io
import json
import os
import tarfile

import pytest

from teachdock.errors import Conflict
from teachdock.image.build import Builder, run_settings
from teachdock.image.copy_driver import changed_entries
from teachdock.image.dockerfile import BuildError
from teachdock.image.images import Images
from teachdock.image.manifest import OCI_LAYER
from teachdock.image.snapshots import ContainerUsage, DiskUsage, LayerUsage
from teachdock.runtime.spec import make_spec
from teachdock.runtime.users import resolve_user


def tar_bytes(files: dict) -> bytes:
    """{name: bytes | None (a directory) | ('link', target)} -> a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BASE_FILES = {
    "etc": None,
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    "etc/group": b"root:x:0:\nstaff:x:50:\n",
    "bin": None,
    "bin/tool": b"tool v1\n",
    "usr": None,
    "usr/bin": None,
    "sbin": ("link", "usr/bin"),
}


@pytest.fixture
def images(tmp_path):
    images = Images(tmp_path / "data", driver="copy", state_root=tmp_path / "state")
    layer = images.store.put_blob(tar_bytes(BASE_FILES), media_type=OCI_LAYER)
    config = {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
              "history": [{"created_by": "base"}], "created": "2024-01-01T00:00:00Z"}
    images.store.add_image(config, [layer], ["base:latest"])
    return images


@pytest.fixture
def context(tmp_path):
    directory = tmp_path / "ctx"
    directory.mkdir()

    def fill(**files):
        for name, content in files.items():
            path = directory / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return directory

    return fill


def files_of(images, image_name) -> dict:
    """{path: content | 'dir' | '-> target'} of an image, read through a copy snapshot."""
    snapshot = images.prepare(image_name, "reader")
    try:
        found = {}
        for directory, dirnames, filenames in os.walk(snapshot.rootfs):
            for name in dirnames + filenames:
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, snapshot.rootfs)
                if os.path.islink(path):
                    found[rel] = "-> " + os.readlink(path)
                elif os.path.isdir(path):
                    found[rel] = "dir"
                else:
                    with open(path, "rb") as fh:
                        found[rel] = fh.read()
        return found
    finally:
        images.release("reader")


# ---------------------------------------------------------------------------- builds without RUN

def test_copy_env_workdir_cmd_build_and_cache(images, context):
    ctx = context(Dockerfile="FROM base\nENV DIR=/app\nWORKDIR $DIR\nCOPY a.txt sub ./\nCMD [\"cat\", \"a.txt\"]\n",
                  **{"a.txt": "A\n", "sub__b.txt": "B\n", "sub__deep__c.txt": "C\n"})
    lines = []
    result = images.build(ctx, tags=["app:1"], progress=lines.append)
    files = files_of(images, "app:1")
    assert files["app/a.txt"] == b"A\n" and files["app/b.txt"] == b"B\n" and files["app/deep/c.txt"] == b"C\n"
    assert files["bin/tool"] == b"tool v1\n"
    config = result.image.config
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Cmd"] == ["cat", "a.txt"]
    assert "DIR=/app" in config["config"]["Env"]
    assert [bool(h.get("empty_layer")) for h in config["history"][1:]] == [True, False, False, True]
    assert lines[:2] == ["Step 1/5 : FROM base", f" ---> {images.get('base').short_id}"]
    assert lines[-1] == "Successfully tagged app:1"

    again = images.build(ctx, tags=["app:1"])
    assert again.id == result.id and again.cached_steps == 4

    (ctx / "sub" / "deep" / "c.txt").write_text("changed\n")
    third = images.build(ctx, tags=["app:1"])
    assert [step.cached for step in third.steps] == [False, True, True, False, False]
    assert files_of(images, "app:1")["app/deep/c.txt"] == b"changed\n"


def test_copy_rules_for_destinations_wildcards_symlinks_and_owners(images, context):
    ctx = context(Dockerfile="FROM base\n"
                             "COPY one.txt /renamed.txt\n"
                             "COPY one.txt /dir/\n"
                             "COPY *.cfg /configs/\n"
                             "COPY --chown=app:staff --chmod=640 one.txt /owned\n"
                             "COPY tree/ /sbin/\n",                     # /sbin -> usr/bin: followed
                  **{"one.txt": "1\n", "a.cfg": "a\n", "b.cfg": "b\n", "tree__x": "x\n"})
    os.symlink("one.txt", ctx / "link.txt")
    (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text() + "COPY link.txt /via-link\n")
    result = images.build(ctx, tags=["rules"])
    files = files_of(images, "rules")
    assert files["renamed.txt"] == files["dir/one.txt"] == files["via-link"] == b"1\n"
    assert files["configs/a.cfg"] == b"a\n" and files["configs/b.cfg"] == b"b\n"
    assert files["sbin"] == "-> usr/bin" and files["usr/bin/x"] == b"x\n"
    snapshot = images.prepare("rules", "owner-check")
    try:
        st = os.stat(snapshot.rootfs / "owned")
        assert oct(st.st_mode & 0o777) == "0o640"
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (1000, 50)
    finally:
        images.release("owner-check")
    assert "COPY --chmod=640 --chown=app:staff file:" in result.image.history[4]["created_by"]


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM base\nCOPY ../outside /x\n", "Dockerfile:2: COPY failed: forbidden path outside the build context"),
    ("FROM base\nCOPY missing.txt /x\n", "Dockerfile:2: COPY failed: file not found in build context"),
    ("FROM base\nCOPY *.none /x/\n", "Dockerfile:2: COPY failed: no source files were specified"),
    ("FROM base\nCOPY a.txt a.txt /x\n", "Dockerfile:2: When using COPY with more than one source file"),
    ("FROM base\nADD http://example.org/x /x\n", "Dockerfile:2: ADD http://example.org/x: fetching URLs"),
    ("FROM base\nCOPY --from=builder /a /b\n", "Dockerfile:2: COPY --from needs a multi-stage build"),
    ("ENV A=b\nFROM base\n", "Dockerfile:1: ENV before FROM"),
    ("FROM base\nFROM base\n", "Dockerfile:2: a second FROM"),
    ("FROM nothing:here\n", "Dockerfile:1: No such image: nothing:here"),
    ("# no FROM\nRUN true\n", "Dockerfile has no FROM instruction"),
    ("FROM base\nCOPY secret.key /x\n", "Dockerfile:2: COPY failed: file not found in build context or excluded"),
    ("FROM base\nUSER ghost\nCOPY --chown=ghost a.txt /a\n", "Dockerfile:3: unable to find user ghost"),
])
def test_build_errors_name_the_line_and_leave_no_image(images, context, dockerfile, message):
    ctx = context(Dockerfile=dockerfile, **{"a.txt": "a\n", "secret.key": "k\n", ".dockerignore": "*.key\n"})
    before = [(image.id, image.names) for image in images.list()]
    with pytest.raises(BuildError) as caught:
        images.build(ctx, tags=["never"])
    assert str(caught.value).startswith(message)
    assert [(image.id, image.names) for image in images.list()] == before
    containers = images.data_root / "containers"
    assert not containers.exists() or not any(containers.iterdir())


def test_add_unpacks_a_local_archive_and_refuses_an_unsafe_one(images, context):
    good = gzip.compress(tar_bytes({"pkg": None, "pkg/file": b"inside\n"}))
    evil = tar_bytes({"../../escape": b"no\n"})
    ctx = context(Dockerfile="FROM base\nADD good.tgz /opt\n", **{"good.tgz": good, "evil.tar": evil})
    images.build(ctx, tags=["added"])
    assert files_of(images, "added")["opt/pkg/file"] == b"inside\n"

    (ctx / "Dockerfile").write_text("FROM base\nADD evil.tar /opt\n")
    with pytest.raises(BuildError, match=r"Dockerfile:2: .*'\.\.' path component refused"):
        images.build(ctx, tags=["evil"])
    assert not (images.data_root.parent / "escape").exists()


def test_args_default_override_and_unused_warning(images, context):
    ctx = context(Dockerfile="ARG TAG=latest\nFROM base:$TAG\nARG NAME=world\nENV GREETING=hello-$NAME\n")
    lines = []
    result = images.build(ctx, build_args={"NAME": "you", "UNUSED": "1"}, progress=lines.append)
    assert "GREETING=hello-you" in result.image.config["config"]["Env"]
    assert "[Warning] One or more build-args ['UNUSED'] were not consumed" in lines
    assert result.image.names == ()                           # no -t: an untagged image


def test_scratch_images_and_no_cache(images, context):
    ctx = context(Dockerfile="FROM scratch\nCOPY hello /\nCMD [\"/hello\"]\n", hello="#!\n")
    result = images.build(ctx, tags=["tiny"])
    assert len(result.image.layers) == 1 and result.image.history[0]["created_by"].startswith("/bin/sh -c #(nop) COPY")
    assert files_of(images, "tiny") == {"hello": b"#!\n"}
    assert images.build(ctx, tags=["tiny"]).cached_steps == 2
    assert images.build(ctx, tags=["tiny"], no_cache=True).cached_steps == 0


def test_the_build_cache_holds_its_layers_until_cleared(images, context):
    ctx = context(Dockerfile="FROM base\nCOPY a /a\n", a="a\n")
    result = images.build(ctx, tags=["cached"])
    layer = result.image.layers[-1].digest
    images.remove("cached")
    assert images.store.has_blob(layer)                       # the cache still has it ...
    assert images.build(ctx, tags=["cached"]).cached_steps == 1
    images.remove("cached")
    cleared = images.prune(build_cache=True)
    assert layer in cleared["build_cache"] and not images.store.has_blob(layer)
    assert images.build(ctx, tags=["cached"]).cached_steps == 0


# ---------------------------------------------------------------------------- snapshots (copy driver)

def test_copy_snapshots_hold_the_image_and_diff_like_an_upper_dir(images):
    snapshot = images.prepare("base", "c1")
    base_id = images.get("base").id
    assert images.store.holders(base_id) == ["container:c1"]
    with pytest.raises(Conflict):
        images.prepare("base", "c1")
    root = snapshot.rootfs
    (root / "bin" / "tool").write_text("tool v2\n")           # changed
    (root / "etc" / "group").unlink()                          # deleted
    (root / "new").mkdir()
    (root / "new" / "file").write_text("n\n")                 # added, in a new directory
    (root / "sbin").unlink()
    (root / "sbin").mkdir()                                     # a link replaced by a directory
    with open(images.data_root / "diff.tar", "wb") as out:
        assert snapshot.diff(out) is not None
    with tarfile.open(images.data_root / "diff.tar") as tar:
        names = tar.getnames()
    assert names == ["bin", "bin/tool", "etc", "etc/.wh.group", "new", "new/file", "sbin"]
    images.release("c1")
    assert images.store.holders(base_id) == []
    assert not (images.data_root / "containers" / "c1").exists()


def test_an_unchanged_copy_snapshot_has_no_diff(images, tmp_path):
    snapshot = images.prepare("base", "c2")
    try:
        assert snapshot.diff(tmp_path / "none.tar") is None
        assert not (tmp_path / "none.tar").exists()
        (tmp_path / "out").mkdir()
        assert not changed_entries(snapshot.lowers[0], snapshot.rootfs, tmp_path / "out")
        assert not any((tmp_path / "out").iterdir())
    finally:
        images.release("c2")


def test_prune_keeps_the_trees_images_and_containers_use(images, context):
    ctx = context(Dockerfile="FROM base\nCOPY a /a\nCOPY b /b\n", a="a\n", b="b\n")
    image = images.build(ctx, tags=["pruned"]).image
    flat = images.data_root / "snapshots" / "flat"
    base_tree = images.get("base").chain_id[7:]
    assert {p.name for p in flat.iterdir()} == {base_tree}   # the tree after "COPY a" went after the build
    images.prepare("pruned", "user")
    tops = {base_tree, image.chain_id[7:]}
    assert {p.name for p in flat.iterdir()} == tops
    images.remove("pruned", force=True)                        # untagged but in use: its tree stays
    assert {p.name for p in flat.iterdir()} == tops
    images.release("user")
    images.prune()
    assert {p.name for p in flat.iterdir()} == {base_tree}


def test_disk_usage_arithmetic():
    layer = LayerUsage("sha256:" + "a" * 64, None, 1000, ("c1", "c2"))
    unused = LayerUsage("sha256:" + "b" * 64, None, 50, ())
    usage = DiskUsage((layer, unused), (ContainerUsage("c1", "", "overlay", None, 10, 1000),
                                        ContainerUsage("c2", "", "overlay", None, 20, 1000)))
    assert usage.total_bytes == 1080
    assert usage.unshared_bytes == 50 + 1010 + 1020
    assert usage.saved_bytes == 1000
    assert "saved by sharing: 1kB" in str(usage)


# ---------------------------------------------------------------------------- image config -> process

def test_run_settings_and_users(images):
    snapshot = images.prepare("base", "c3")
    try:
        config = {"config": {"Entrypoint": ["/bin/tool"], "Cmd": ["--help"], "Env": ["A=1"], "User": "app",
                             "WorkingDir": "/srv"}}
        assert run_settings(config) == {"args": ["/bin/tool", "--help"], "env": {"A": "1"},
                                        "cwd": "/srv", "user": "app"}
        assert run_settings(config, ["-v"])["args"] == ["/bin/tool", "-v"]
        # make_spec looks the user up in the image's own files, as a RUN step or `docker run` does
        assert make_spec(["true"], snapshot.rootfs, user="app")["process"]["user"] == {"uid": 1000, "gid": 1001}
        assert resolve_user(snapshot.rootfs, "app:staff") == (1000, 50)
        assert resolve_user(snapshot.rootfs, "4242") == (4242, 0)
        assert resolve_user(snapshot.rootfs, "1000") == (1000, 1001)
        assert resolve_user(snapshot.rootfs, "") == (0, 0)
    finally:
        images.release("c3")


def test_builder_output_is_docker_s(images, context):
    ctx = context(Dockerfile="FROM base\nLABEL a=b\n")
    lines = []
    Builder(images.store, images.snapshots, data_root=images.data_root).build(ctx, progress=lines.append)
    assert lines[0] == "Step 1/2 : FROM base"
    assert lines[2] == "Step 2/2 : LABEL a=b"
    assert lines[3].startswith(" ---> ") and len(lines[3]) == 6 + 12
    assert lines[-1].startswith("Successfully built ")
    json.dumps(lines)
