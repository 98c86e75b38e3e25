"""Container root filesystems from images: overlay snapshots (and the copy fallback).

The busybox base becomes a one-layer image; containers of it run from an overlay mount
whose read-only layer directory all of them share (one copy on disk); deleting a file in
one container hides it there only. Each test gets its own data root under the session's
scratch directory, and checks that no mount, snapshot directory or holder is left.
"""

import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from teachdock import kernel
from teachdock.errors import Conflict, TeachdockError
from teachdock.image import busybox
from teachdock.image.images import Images
from teachdock.image.overlay import mount_points
from teachdock.runtime import run

pytestmark = [
    pytest.mark.root,
    pytest.mark.usefixtures("leak_check"),
]


def make_images(scratch_dir, state_root, prefix, driver):
    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    data_root = Path(tempfile.mkdtemp(prefix="images-", dir=scratch_dir))
    data_root.chmod(0o755)
    images = Images(data_root, driver=driver, state_root=state_root, container_prefix=prefix)
    images.bootstrap_busybox()
    return images


def leftovers(images) -> list[str]:
    """What a test must not leave behind in its data root: mounts, container dirs, holds."""
    root = str(images.data_root)
    problems = [f"mount {point}" for point in mount_points() if point.startswith(root + "/")]
    containers = images.data_root / "containers"
    if containers.is_dir() and any(containers.iterdir()):
        problems.append(f"container dirs {sorted(p.name for p in containers.iterdir())}")
    holders = images.store.root + "/holders.json"
    if os.path.exists(holders):
        with open(holders) as fh:
            held = [h for users in json.load(fh).values() for h in users if h.startswith("container:")]
        if held:
            problems.append(f"holders {held}")
    return problems


def destroy(images) -> None:
    for point in sorted(mount_points(), reverse=True):
        if point.startswith(str(images.data_root) + "/"):
            kernel.umount2(point, kernel.MNT_DETACH)
    shutil.rmtree(images.data_root, ignore_errors=True)


@pytest.fixture
def images(scratch_dir, state_root, new_id):
    """A fresh data root with busybox:latest, overlay snapshots."""
    images = make_images(scratch_dir, state_root, new_id.prefix, "overlay")
    yield images
    problems = leftovers(images)
    destroy(images)
    assert not problems, f"the test left behind: {problems}"


@pytest.fixture(params=["overlay", "copy"])
def any_images(request, scratch_dir, state_root, new_id):
    """The same, once per snapshot driver."""
    images = make_images(scratch_dir, state_root, new_id.prefix, request.param)
    yield images
    problems = leftovers(images)
    destroy(images)
    assert not problems, f"the test left behind: {problems}"


def run_in(snapshot, state_root, container_id, script):
    return run(["sh", "-c", script], rootfs=snapshot.rootfs, state_root=state_root, container_id=container_id,
               readonly=False, timeout=30)


def mount_type(path) -> str | None:
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            if fields[4] == str(path):
                return fields[fields.index("-") + 1]
    return None


# ---------------------------------------------------------------------------- the base image

def test_bootstrap_imports_busybox_as_a_one_layer_image(images):
    image = images.get("busybox")
    assert image.repo_tags == ["busybox:latest"]
    assert len(image.layers) == 1 and image.layers[0].media_type.endswith("tar+gzip")
    assert image.config["config"]["Cmd"] == ["sh"]
    assert [bool(step.get("empty_layer")) for step in image.history] == [False, True]
    assert (images.data_root / "rootfs" / "busybox" / "bin" / "busybox").is_file()   # the plain tree stays

    again = images.bootstrap_busybox(force=True)            # rebuilds the tree: same bytes, same digests
    assert (again.id, again.manifest_digest, again.layers) == (image.id, image.manifest_digest, image.layers)
    assert [i.id for i in images.list()] == [image.id]


def test_a_container_runs_echo_hi_on_an_overlay_snapshot(images, state_root, new_id):
    container_id = new_id()
    snapshot = images.prepare("busybox", container_id)
    try:
        assert snapshot.driver == "overlay"
        assert mount_type(snapshot.rootfs) == "overlay"
        assert images.store.holders(images.get("busybox").id) == [f"container:{container_id}"]
        result = run_in(snapshot, state_root, container_id, "echo hi")
        assert (result.exit_code, result.stdout) == (0, "hi\n")
    finally:
        images.release(container_id)
    assert mount_type(snapshot.rootfs) is None
    assert not snapshot.directory.exists()
    assert images.store.holders(images.get("busybox").id) == []


def test_images_run_applies_the_image_config(any_images, new_id):
    result = any_images.run("busybox", ["sh", "-c", "echo $PATH; pwd; id -u"], container_id=new_id())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/", "0"]


def test_preparing_the_same_container_twice_is_refused_and_harms_nothing(images, new_id):
    container_id = new_id()
    first = images.prepare("busybox", container_id)
    try:
        with pytest.raises(Conflict):
            images.prepare("busybox", container_id)
        assert mount_type(first.rootfs) == "overlay"
        assert (first.rootfs / "bin" / "busybox").exists()
    finally:
        images.release(container_id)
    images.release(container_id)                          # removing twice is fine


# ---------------------------------------------------------------------------- sharing and whiteouts

def test_two_containers_share_one_copy_of_the_layer(images, state_root, new_id):
    one, two = new_id(), new_id()
    first = images.prepare("busybox", one)
    second = images.prepare("busybox", two)
    try:
        assert first.lowers == second.lowers                  # the same read-only directory
        (layer,) = first.lowers
        assert layer.parent == images.data_root / "snapshots"
        assert len([p for p in layer.parent.iterdir() if len(p.name) == 64]) == 1
        # what each container sees is that one file, not a copy
        inode = os.stat(layer / "bin" / "busybox").st_ino
        assert os.stat(first.rootfs / "bin" / "busybox").st_ino == inode
        assert os.stat(second.rootfs / "bin" / "busybox").st_ino == inode

        assert run_in(first, state_root, one, "echo mine > /only-here").exit_code == 0
        assert (first.upper / "only-here").exists()
        assert not (second.rootfs / "only-here").exists()

        usage = images.disk_usage()
        (shared,) = [entry for entry in usage.layers if entry.path == layer]
        assert sorted(shared.containers) == sorted([one, two])
        assert len(usage.layers) == 1                          # listed once
        assert shared.bytes > 1_000_000                        # the busybox binary
        assert {c.container_id: c.shared_bytes for c in usage.containers} == {one: shared.bytes, two: shared.bytes}
        assert usage.total_bytes == shared.bytes + sum(c.own_bytes for c in usage.containers)
        assert usage.saved_bytes == shared.bytes               # the second container's copy we did not make
        print(f"\n{usage}")
    finally:
        images.release(one)
        images.release(two)


def test_a_copy_snapshot_shares_nothing(scratch_dir, state_root, new_id):
    images = make_images(scratch_dir, state_root, new_id.prefix, "copy")
    try:
        one, two = new_id(), new_id()
        first, second = images.prepare("busybox", one), images.prepare("busybox", two)
        assert first.driver == "copy" and mount_type(first.rootfs) is None
        assert os.stat(first.rootfs / "bin" / "busybox").st_ino != os.stat(second.rootfs / "bin" / "busybox").st_ino
        usage = images.disk_usage()
        assert usage.saved_bytes == 0
        assert all(c.own_bytes > 1_000_000 for c in usage.containers)
        images.release(one)
        images.release(two)
        assert leftovers(images) == []
    finally:
        destroy(images)


def test_deleting_a_file_in_one_container_hides_it_there_only(any_images, state_root, new_id):
    images = any_images
    one, two = new_id(), new_id()
    first = images.prepare("busybox", one)
    second = images.prepare("busybox", two)
    try:
        result = run_in(first, state_root, one, "rm /bin/vi /etc/hostname-missing 2>/dev/null; "
                                                "rm -r /home; ls /bin/vi /home")
        assert result.exit_code != 0 and "No such file" in result.stderr
        assert run_in(second, state_root, two, "ls /bin/vi && ls -d /home").exit_code == 0
        layer = images.snapshots.flat_tree(images.get("busybox").chain_id) if images.snapshots.driver == "copy" \
            else first.lowers[0]
        assert os.path.lexists(layer / "bin" / "vi")            # the image is untouched
        if first.driver == "overlay":
            whiteout = os.lstat(first.upper / "bin" / "vi")      # overlay's whiteout: a 0/0 character device
            assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0

        with tempfile.TemporaryFile() as tar_file:                # and the diff says so, the OCI way
            first.diff(tar_file)
            tar_file.seek(0)
            names = tarfile.open(fileobj=tar_file).getnames()
        assert "bin/.wh.vi" in names and ".wh.home" in names
        assert not any(name.startswith("home/") for name in names)
    finally:
        images.release(one)
        images.release(two)
    three = new_id()
    third = images.prepare("busybox", three)
    try:
        assert (third.rootfs / "bin" / "vi").is_symlink()       # a new container has it again
    finally:
        images.release(three)
