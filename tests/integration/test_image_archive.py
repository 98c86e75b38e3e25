"""Archives against real tools: what teachdock saves, skopeo, umoci and podman read (podman
runs it), and what skopeo and podman write, teachdock loads.

The image is a runnable one-layer busybox image made from the host's static busybox.
podman runs with its own storage root (vfs driver: no overlay mounts to leave behind), its
image is removed and its ``libpod_parent`` cgroups are removed afterwards.
"""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from teachdock.image.archive import save
from teachdock.image.archive_load import load
from teachdock.image.digest import sha256_digest
from teachdock.image.layers import LayerError, diff_layer
from teachdock.image.manifest import OCI_LAYER, OCI_LAYER_GZIP
from teachdock.image.store import ImageStore

SKOPEO, UMOCI, PODMAN = shutil.which("skopeo"), shutil.which("umoci"), shutil.which("podman")
NAME = "teachdock-it/busybox:1"
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="needs skopeo (apt-get install skopeo)")


def run(*args, timeout=120, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def workdir():
    directory = Path(tempfile.mkdtemp(prefix="teachdock-archive-it-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def busybox_image(workdir, rootfs):
    """(store, image, path of its saved archive): the busybox rootfs as one plain layer."""
    store = ImageStore(workdir / "images")
    layer_path = workdir / "layer.tar"
    with open(layer_path, "wb") as out:
        diff = diff_layer(rootfs, out, mtime=1_700_000_000)
    descriptor = store.put_blob(layer_path, media_type=OCI_LAYER)
    assert descriptor.digest == diff.diff_id
    config = {"created": "2024-05-01T12:00:00Z", "architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff.diff_id]},
              "history": [{"created": "2024-05-01T12:00:00Z", "created_by": "teachdock: busybox rootfs"}]}
    image = store.add_image(config, [descriptor], [NAME])
    archive = workdir / "busybox.tar"
    save(store, [NAME], archive)
    return store, image, archive


def unpack(archive, directory):
    with tarfile.open(archive) as tar:
        tar.extractall(directory)
    return directory


# ---------------------------------------------------------------- skopeo reads teachdock's archives

@needs_skopeo
def test_skopeo_inspects_the_saved_archive_as_docker_archive_and_oci(busybox_image, tmp_path):
    store, image, archive = busybox_image
    raw_config = run(SKOPEO, "inspect", "--config", "--raw", f"docker-archive:{archive}")
    assert sha256_digest(raw_config.encode()) == image.id          # the config came through byte for byte
    info = json.loads(run(SKOPEO, "inspect", f"docker-archive:{archive}"))
    assert (info["Architecture"], info["Os"], info["Layers"]) == ("amd64", "linux", image.diff_ids)

    oci_info = json.loads(run(SKOPEO, "inspect", f"oci-archive:{archive}:1"))
    assert oci_info["Layers"] == image.diff_ids
    layout = unpack(archive, tmp_path / "layout")
    dir_info = json.loads(run(SKOPEO, "inspect", f"oci:{layout}:1"))
    assert dir_info["Digest"] == oci_info["Digest"]


@pytest.mark.skipif(UMOCI is None, reason="needs umoci (apt-get install umoci)")
def test_umoci_unpacks_the_saved_layout_into_a_bundle(busybox_image, tmp_path, rootfs):
    _, _, archive = busybox_image
    layout = unpack(archive, tmp_path / "layout")
    bundle = tmp_path / "bundle"
    rootless = [] if os.geteuid() == 0 else ["--rootless"]
    run(UMOCI, "unpack", *rootless, "--image", f"{layout}:1", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in config["process"]["env"]
    assert (bundle / "rootfs" / "bin" / "busybox").read_bytes() == (rootfs / "bin" / "busybox").read_bytes()
    assert os.readlink(bundle / "rootfs" / "bin" / "sh") == os.readlink(rootfs / "bin" / "sh")


# ---------------------------------------------------------------- teachdock loads skopeo's archives

@needs_skopeo
def test_load_of_a_skopeo_written_docker_archive(busybox_image, tmp_path):
    _, image, archive = busybox_image
    copied = tmp_path / "skopeo.tar"
    run(SKOPEO, "copy", f"docker-archive:{archive}", f"docker-archive:{copied}:copied/busybox:2")
    with tarfile.open(copied) as tar:
        assert "index.json" not in tar.getnames()                 # skopeo's own layout, not ours
    other = ImageStore(tmp_path / "other")
    assert load(other, copied) == ["copied/busybox:2"]
    loaded = other.resolve("copied/busybox:2")
    assert (loaded.id, loaded.diff_ids) == (image.id, image.diff_ids)


@needs_skopeo
def test_load_of_a_skopeo_written_gzip_oci_archive(busybox_image, tmp_path):
    _, image, archive = busybox_image
    copied = tmp_path / "skopeo-oci.tar"
    run(SKOPEO, "copy", "--dest-compress", "--dest-compress-format", "gzip",
        f"docker-archive:{archive}", f"oci-archive:{copied}:copied/busybox:3")
    other = ImageStore(tmp_path / "other")
    assert load(other, copied) == ["copied/busybox:3"]
    loaded = other.resolve("copied/busybox:3")
    assert loaded.diff_ids == image.diff_ids
    assert [layer.media_type for layer in loaded.layers] == [OCI_LAYER_GZIP]


@needs_skopeo
def test_load_refuses_skopeos_zstd_layers_cleanly(busybox_image, tmp_path):
    _, _, archive = busybox_image
    copied = tmp_path / "zstd"
    done = subprocess.run([SKOPEO, "copy", "--dest-compress", "--dest-compress-format", "zstd",
                           f"docker-archive:{archive}", f"oci:{copied}:zstd:1"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this skopeo cannot write zstd layers: {done.stderr.strip()}")
    other = ImageStore(tmp_path / "other")
    with pytest.raises(LayerError, match="zstd"):
        load(other, copied)
    assert os.listdir(other.blobs_dir) == [] and other.list_images() == []


# ---------------------------------------------------------------- podman loads and runs it

def _podman_cgroups():
    return {os.path.join(controller.path, "libpod_parent") for controller in os.scandir("/sys/fs/cgroup")
            if os.path.isdir(os.path.join(controller.path, "libpod_parent"))}


@pytest.fixture
def podman(tmp_path):
    """``podman(*args)`` with a private storage root; image, state and new cgroups removed after."""
    if PODMAN is None:
        pytest.skip("needs podman (apt-get install podman)")
    if os.geteuid() != 0:
        pytest.skip("podman run here needs root (rootless podman needs subuid ranges this machine lacks)")
    if shutil.which("runc") is None:
        pytest.skip("needs runc: podman's default crun refuses this host's hybrid cgroups")
    state = Path(tempfile.mkdtemp(prefix="teachdock-podman-"))
    base = [PODMAN, "--root", str(state / "root"), "--runroot", str(state / "run"), "--tmpdir", str(state / "tmp"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    cgroups_before = _podman_cgroups()

    def podman_command(*args, check=True, timeout=120):
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done

    yield podman_command
    podman_command("rm", "--all", "--force", check=False)
    podman_command("rmi", "--all", "--force", check=False)
    leftover_mounts = [line for line in open("/proc/mounts") if str(state) in line]
    for cgroup in _podman_cgroups() - cgroups_before:
        for sub in ("conmon", ""):
            try:
                os.rmdir(os.path.join(cgroup, sub))
            except OSError:
                pass
    shutil.rmtree(state, ignore_errors=True)
    assert not leftover_mounts, f"podman left mounts behind: {leftover_mounts}"


@pytest.mark.root
def test_podman_loads_and_runs_a_teachdock_saved_image(busybox_image, podman, tmp_path):
    _, image, archive = busybox_image
    loaded = podman("load", "-i", str(archive)).stdout
    assert f"docker.io/{NAME}" in loaded
    podman_id = podman("inspect", "--format", "{{.Id}}", f"docker.io/{NAME}").stdout.strip()
    assert "sha256:" + podman_id == image.id
    ran = podman("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=4096:4096", "--runtime", "runc", f"docker.io/{NAME}", "echo", "ok")
    assert ran.stdout == "ok\n"

    # and back: podman's own docker-archive and OCI archive load into teachdock as the same image
    for kind in ("docker-archive", "oci-archive"):
        out = tmp_path / f"podman-{kind}.tar"
        podman("save", "--format", kind, "-o", str(out), f"docker.io/{NAME}")
        other = ImageStore(tmp_path / f"other-{kind}")
        names = load(other, out)
        assert other.resolve(names[0]).id == image.id, kind
        if kind == "docker-archive":
            assert names == [NAME]
