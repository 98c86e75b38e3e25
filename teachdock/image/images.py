"""``Images``: everything about images under one data root, in one object.

    images = Images()                       # $TEACHDOCK_DATA_ROOT or /var/lib/teachdock
    images.bootstrap_busybox()              # busybox:latest, built offline
    result = images.build("ctx", tags=["hello"], progress=print)
    images.run("hello", ["cat", "/greeting"]).stdout
    images.disk_usage()                     # what the containers share on disk

Under the data root::

    images/        the content store: an OCI image layout (blobs, index.json)
    snapshots/     unpacked layers, one directory per chain id
    containers/    each container's upper/work dirs and overlay mount point
    buildcache/    the Dockerfile builder's step cache
    rootfs/busybox the plain busybox tree the runtime notebooks use

It puts the pieces together (store, snapshotter, builder, commit); each piece is usable on
its own too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from teachdock import paths
from teachdock.image import busybox as busybox_rootfs
from teachdock.image.build import BuildResult, Builder, run_settings
from teachdock.image.commit import commit, layer_from_tree
from teachdock.image.dockerfile import DEFAULT_PATH, timestamp
from teachdock.image.manifest import Image
from teachdock.image.platforms import host_platform
from teachdock.image.snapshots import DiskUsage, Snapshot, Snapshotter
from teachdock.image.store import ImageStore

BUSYBOX_IMAGE = "busybox:latest"


class Images:
    """The image store, snapshots, builder and commit of one data root.

    driver: snapshot driver, "overlay", "copy" or "auto" (overlay where it works).
    state_root: where the runtime keeps the state of the containers run here (build RUN
    steps, :meth:`run`); default: the runtime's own (/run/teachdock/runtime).
    """

    def __init__(self, data_root: str | os.PathLike | None = None, *, driver: str = "auto",
                 state_root: str | os.PathLike | None = None, container_prefix: str = "build"):
        self.data_root = Path(data_root).absolute() if data_root is not None else paths.data_root()
        self.state_root = state_root
        self.store = ImageStore(self.data_root / "images")
        self.snapshots = Snapshotter(self.data_root, self.store, driver=driver)
        self.builder = Builder(self.store, self.snapshots, data_root=self.data_root, state_root=state_root,
                               container_prefix=container_prefix)

    # ---- looking at images

    def list(self) -> list[Image]:
        return self.store.list_images()

    def get(self, image: str) -> Image:
        """An image by name (``busybox``) or id (prefix); ImageNotFound otherwise."""
        return self.store.resolve(image)

    def inspect(self, image: str) -> dict:
        return self.store.inspect(image)

    def history(self, image: str) -> list[dict]:
        return self.store.history(image)

    def tag(self, image: str, new_name: str):
        return self.store.tag(image, new_name)

    # ---- removing

    def remove(self, image: str, *, force: bool = False) -> list[dict]:
        """``docker rmi``: untag/delete (refused while a container uses it); unpacked layers
        nothing needs any more are deleted too."""
        report = self.store.remove(image, force=force)
        self.snapshots.prune()
        return report

    def prune(self, *, build_cache: bool = False) -> dict:
        """Remove untagged images no container uses, unpacked layers nothing needs, and with
        ``build_cache`` the builder's cached layers (like ``docker builder prune``)."""
        removed = []
        in_use = {snapshot.image_id for snapshot in self.snapshots.list()}
        for image in self.store.list_images():
            if not image.names and image.id not in in_use:
                removed += self.store.remove(image.id)
        cache = self.builder.cache.clear() if build_cache else []
        layers = self.snapshots.prune()
        return {"images": removed, "build_cache": cache, "snapshots": layers}

    # ---- making images

    def bootstrap_busybox(self, *, force: bool = False, busybox: str | os.PathLike | None = None,
                          progress=None) -> Image:
        """Build the busybox rootfs (kept at <data root>/rootfs/busybox) and import it as the
        one-layer image ``busybox:latest``. The tree has fixed times, so the same busybox
        gives the same layer and image digests on every run."""
        say = progress or (lambda line: None)
        rootfs = busybox_rootfs.build_busybox_rootfs(self.data_root / "rootfs" / "busybox", busybox,
                                                     force=force, progress=progress)
        marker = busybox_rootfs.read_marker(rootfs) or {}
        say(f"importing {rootfs} as the image {BUSYBOX_IMAGE}")
        layer = layer_from_tree(self.store, rootfs)
        created = timestamp(os.stat(rootfs / "bin" / "busybox").st_mtime)
        config = {
            "created": created, **host_platform(),
            "config": {"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [
                {"created": created, "created_by": f"teachdock store bootstrap busybox (BusyBox "
                                                   f"v{marker.get('busybox_version', '?')}, static, "
                                                   f"{marker.get('applets', '?')} applets)"},
                {"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
            ],
        }
        image = self.store.add_image(config, [layer.descriptor], [BUSYBOX_IMAGE])
        say(f"{BUSYBOX_IMAGE}: {image.id}")
        return image

    def build(self, context: str | os.PathLike, *, tags=(), dockerfile=None, build_args=None,
              no_cache: bool = False, progress=None) -> BuildResult:
        """``docker build``: see :meth:`teachdock.image.build.Builder.build`."""
        return self.builder.build(context, tags=list(tags), dockerfile=dockerfile, build_args=build_args,
                                  no_cache=no_cache, progress=progress)

    def commit(self, container_id: str, reference: str | None = None, **options) -> Image:
        """``docker commit``: see :func:`teachdock.image.commit.commit`."""
        return commit(self.store, self.snapshots, container_id, reference, **options)

    # ---- containers' root filesystems

    def prepare(self, image: str | Image, container_id: str) -> Snapshot:
        """A root filesystem for a new container (an overlay mount, or a copy)."""
        return self.snapshots.prepare(image, container_id)

    def release(self, container_id: str) -> None:
        """Unmount and delete a container's root filesystem (after the container is deleted)."""
        self.snapshots.remove(container_id)

    def disk_usage(self) -> DiskUsage:
        return self.snapshots.disk_usage()

    def run(self, image: str, args: list[str] | None = None, *, container_id: str | None = None,
            keep: bool = False, **options):
        """Run a command in a new container of ``image`` and wait: a small ``docker run --rm``.

        The image's Entrypoint, Cmd, Env, WorkingDir and User apply; ``options`` are those
        of :func:`teachdock.runtime.run` (``memory="64m"``, ``input=...``, ``env={...}``).
        With ``keep`` the root filesystem stays, for :meth:`commit`; remove it with
        :meth:`release`.
        """
        from teachdock.runtime import run  # noqa: PLC0415 - the runtime is needed only to run something

        container_id = container_id or f"img-{secrets.token_hex(6)}"
        img = self.store.resolve(image)
        snapshot = self.snapshots.prepare(img, container_id)
        try:
            settings = run_settings(img.config, args)
            env = {**settings["env"], **options.pop("env", {})}
            options.setdefault("cwd", settings["cwd"])
            options.setdefault("user", settings["user"])
            options.setdefault("readonly", False)
            return run(settings["args"], str(snapshot.rootfs), container_id=container_id,
                       state_root=self.state_root, env=env, **options)
        finally:
            if not keep:
                self.snapshots.remove(container_id)
