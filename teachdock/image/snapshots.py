"""Snapshots: a container's root filesystem, made from an image's layers.

An image is a stack of layers. Unpacking the whole stack into a fresh directory for every
container would cost time and disk for each one. Docker's overlay2 driver (and containerd's
overlayfs snapshotter) do this instead, and so do we::

    <data root>/snapshots/<chain id>/          one layer, unpacked ONCE, read-only from then on
    <data root>/containers/<id>/upper/         this container's changes (new and changed files)
    <data root>/containers/<id>/work/          overlayfs' scratch space (same filesystem as upper)
    <data root>/containers/<id>/merged/        the container's root: an overlay mount
    <data root>/containers/<id>/snapshot.json  which image and layers, which driver

    mount -t overlay overlay -o lowerdir=<top layer>:...:<base layer>,upperdir=upper,workdir=work merged

A layer directory is keyed by its *chain id* (the digest of the layer and everything below
it), so two images that share a base share its directories, and N containers of one image
share all of them: one copy on disk, whatever N is. Deleting a file in a container puts a
whiteout (a 0/0 character device) in that container's upper dir; the layer below is untouched.

Where overlayfs is missing (no root, or a filesystem overlayfs refuses as upper dir), the
*copy* driver stands in, like Docker's ``vfs``: ``snapshots/flat/<chain id>/`` holds the
layers applied one on top of the other, and each container gets a full copy in
``containers/<id>/rootfs/``. Its changes are found by comparing the copy with the flat tree.
The mount itself lives in ``overlay.py``, the copy and its comparison in ``copy_driver.py``.

Mount namespaces. The overlay mount is made in the mount namespace of the process that calls
:meth:`Snapshotter.prepare` (a notebook kernel, the CLI, the daemon: normally the host's).
The runtime then creates the container's own mount namespace as a copy of that one, so the
container sees the mount and bind-mounts it onto itself before pivot_root. A process in
another mount namespace does not see it, and if the process that made it lives in a
private namespace, the mount dies with that namespace. :meth:`Snapshotter.remove` must run
after the container is deleted: a running container keeps its copy of the mount alive in
its own namespace even after we unmount ours, and its upper dir must not vanish under it.

Each container is a *holder* of its image's blobs in the image store, so ``image rm``
refuses an image a container uses, and a force-removed image stays (untagged) until the
last container is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.files import write_atomically
from teachdock.image.copy_driver import changed_entries, copy_tree
from teachdock.image.digest import chain_id
from teachdock.image.layers import LayerDiff, diff_layer, unpack_layer
from teachdock.image.manifest import Descriptor, Image
from teachdock.image.overlay import mount_overlay, mount_points, probe_overlay, unmount
from teachdock.image.store import ImageStore
from teachdock.units import human_size

OVERLAY = "overlay"
COPY = "copy"
DRIVERS = (OVERLAY, COPY)


def holder_name(container_id: str) -> str:
    """How a container appears among a blob's holders in the image store."""
    return f"container:{container_id}"


# --------------------------------------------------------------------------- the snapshot

@dataclass(frozen=True)
class Snapshot:
    """One container's root filesystem: give ``rootfs`` to the runtime as root.path."""

    container_id: str
    driver: str                   # "overlay" or "copy"
    directory: Path               # <data root>/containers/<id>
    rootfs: Path                  # overlay: the mount point (merged); copy: the private copy
    upper: Path | None            # overlay: where this container's changes land
    work: Path | None             # overlay: overlayfs' work dir
    lowers: tuple[Path, ...]      # overlay: layer dirs, top first (lowerdir order); copy: (flat tree,)
    chain_ids: tuple[str, ...]    # base first: the layer stack this snapshot shows
    image_id: str = ""            # config digest of the image, when made from one
    manifest_digest: str = ""
    held: tuple[str, ...] = field(default=(), compare=False)   # blob digests held in the store

    def diff(self, out: str | os.PathLike | BinaryIO) -> LayerDiff | None:
        """Write this container's changes as an OCI layer tar; None (nothing written) when
        there are none. overlay: the upper dir as it is; copy: the copy compared with the
        flat tree it was made from."""
        if self.driver == OVERLAY:
            with os.scandir(self.upper) as entries:
                if not any(entries):
                    return None
            return diff_layer(self.upper, out)
        with tempfile.TemporaryDirectory(prefix=".changes-", dir=self.directory) as changes:
            base = self.lowers[0] if self.lowers else None
            if not changed_entries(base, self.rootfs, changes):
                return None
            return diff_layer(changes, out)

    def to_json(self) -> dict:
        return {"container_id": self.container_id, "driver": self.driver, "directory": str(self.directory),
                "rootfs": str(self.rootfs), "upper": str(self.upper) if self.upper else None,
                "work": str(self.work) if self.work else None, "lowers": [str(p) for p in self.lowers],
                "chain_ids": list(self.chain_ids), "image_id": self.image_id,
                "manifest_digest": self.manifest_digest, "held": list(self.held)}

    @classmethod
    def from_json(cls, obj: dict) -> Snapshot:
        optional = lambda value: Path(value) if value else None  # noqa: E731
        return cls(obj["container_id"], obj["driver"], Path(obj["directory"]), Path(obj["rootfs"]),
                   optional(obj.get("upper")), optional(obj.get("work")), tuple(Path(p) for p in obj["lowers"]),
                   tuple(obj["chain_ids"]), obj.get("image_id", ""), obj.get("manifest_digest", ""),
                   tuple(obj.get("held", ())))


# --------------------------------------------------------------------------- disk usage

@dataclass(frozen=True)
class LayerUsage:
    """One unpacked layer (overlay) or flat tree (copy) and the containers using it."""

    chain_id: str
    path: Path
    bytes: int                    # on disk, each inode counted once
    containers: tuple[str, ...]


@dataclass(frozen=True)
class ContainerUsage:
    container_id: str
    image_id: str
    driver: str
    path: Path
    own_bytes: int                # upper dir (overlay) or whole private copy (copy)
    shared_bytes: int             # read-only layers it uses, which other containers share


@dataclass(frozen=True)
class DiskUsage:
    """What snapshots cost on disk, and what sharing the read-only layers saves."""

    layers: tuple[LayerUsage, ...]
    containers: tuple[ContainerUsage, ...]

    @property
    def total_bytes(self) -> int:
        """Everything on disk: every layer once, plus each container's own bytes."""
        return sum(layer.bytes for layer in self.layers) + sum(c.own_bytes for c in self.containers)

    @property
    def unshared_bytes(self) -> int:
        """What it would cost if every container had its own copy of its layers."""
        unused = sum(layer.bytes for layer in self.layers if not layer.containers)
        return unused + sum(c.own_bytes + c.shared_bytes for c in self.containers)

    @property
    def saved_bytes(self) -> int:
        return self.unshared_bytes - self.total_bytes

    def __str__(self) -> str:
        lines = [f"{'LAYER (chain id)':<22} {'SIZE':>10}  USED BY"]
        for layer in self.layers:
            used = ", ".join(layer.containers) or "-"
            lines.append(f"{layer.chain_id.removeprefix('sha256:')[:20]:<22} {human_size(layer.bytes):>10}  {used}")
        lines.append("")
        lines.append(f"{'CONTAINER':<22} {'DRIVER':<8} {'OWN':>10} {'SHARED':>10}")
        for c in self.containers:
            lines.append(f"{c.container_id:<22} {c.driver:<8} {human_size(c.own_bytes):>10} "
                         f"{human_size(c.shared_bytes):>10}")
        lines.append("")
        lines.append(f"on disk: {human_size(self.total_bytes)}; with a full copy per container: "
                     f"{human_size(self.unshared_bytes)}; saved by sharing: {human_size(self.saved_bytes)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the snapshotter

class Snapshotter:
    """Unpacked layers and container root filesystems under one data root.

    driver: "overlay", "copy", or "auto" (overlay when a probe mount works, else copy).
    """

    def __init__(self, data_root: str | os.PathLike, store: ImageStore, *, driver: str = "auto"):
        if driver not in (*DRIVERS, "auto"):
            raise InvalidConfig(f"unknown snapshot driver {driver!r}: use overlay, copy or auto")
        self.data_root = Path(data_root).absolute()
        self.store = store
        self.layers_dir = self.data_root / "snapshots"
        self.flat_dir = self.layers_dir / "flat"
        self.containers_dir = self.data_root / "containers"
        self._wanted_driver = driver
        self._driver: str | None = None
        self.driver_reason = ""

    # ---- which driver

    @property
    def driver(self) -> str:
        """The driver in use; "auto" is decided on first use by a probe mount (cached)."""
        if self._driver is None:
            self.layers_dir.mkdir(parents=True, exist_ok=True)
            if self._wanted_driver == "auto":
                problem = probe_overlay(self.layers_dir)
                self._driver = OVERLAY if problem is None else COPY
                self.driver_reason = "overlayfs works here" if problem is None else f"no overlayfs: {problem}"
            else:
                if self._wanted_driver == OVERLAY:
                    problem = probe_overlay(self.layers_dir)
                    if problem is not None:
                        raise InvalidConfig(f"the overlay snapshot driver cannot work here: {problem}; "
                                            "use the copy driver")
                self._driver = self._wanted_driver
                self.driver_reason = "chosen explicitly"
        return self._driver

    # ---- layers, each unpacked once

    def layer_dir(self, chain: str) -> Path:
        """Where the layer whose chain id is ``chain`` is (or will be) unpacked for overlay."""
        return self.layers_dir / chain.removeprefix("sha256:")

    def flat_tree(self, chain: str) -> Path:
        """Where the copy driver keeps all layers up to ``chain`` applied into one tree."""
        return self.flat_dir / chain.removeprefix("sha256:")

    def ensure_layers(self, layers: list[Descriptor], diff_ids: list[str]) -> list[Path]:
        """Unpack whatever is not unpacked yet; return the directories, base first.

        overlay: one directory per layer; copy: one flat tree per chain prefix (the last
        one is the whole image). Every layer is checked against its digest and diff_id.
        """
        with self._locked():
            return self._unpack(layers, diff_ids)

    def _unpack(self, layers: list[Descriptor], diff_ids: list[str]) -> list[Path]:
        """ensure_layers' work; the caller holds the lock."""
        if len(layers) != len(diff_ids):
            raise InvalidConfig(f"{len(layers)} layers but {len(diff_ids)} diff_ids")
        chains = [chain_id(diff_ids[:i + 1]) for i in range(len(diff_ids))]
        if self.driver == COPY:
            return [self._flatten(layers, diff_ids, chains)] if layers else []
        directories = []
        for layer, diff_id, chain in zip(layers, diff_ids, chains):
            target = self.layer_dir(chain)
            if not target.is_dir():
                with self.store.open_blob(layer.digest) as blob:
                    unpack_layer(blob, target, for_overlay=True, expected_digest=layer.digest,
                                 expected_diff_id=diff_id)
            directories.append(target)
        return directories

    def _flatten(self, layers: list[Descriptor], diff_ids: list[str], chains: list[str]) -> Path:
        """copy driver: all layers applied into one tree, starting from the longest stack
        already flattened (prune keeps only the stacks images and containers use)."""
        self.flat_dir.mkdir(exist_ok=True)
        done = max((i for i, chain in enumerate(chains) if self.flat_tree(chain).is_dir()), default=-1)
        for i in range(done + 1, len(chains)):
            with self.store.open_blob(layers[i].digest) as blob:
                unpack_layer(blob, self.flat_tree(chains[i]), base=self.flat_tree(chains[i - 1]) if i else None,
                             expected_digest=layers[i].digest, expected_diff_id=diff_ids[i])
            if i - 1 > done:
                _remove_path(self.flat_tree(chains[i - 1]))   # a step on the way, made just now
        return self.flat_tree(chains[-1])

    # ---- containers

    def prepare(self, image: str | Image, container_id: str) -> Snapshot:
        """A fresh root filesystem for container ``container_id`` from ``image`` (name or id).

        The container becomes a holder of the image's blobs. Undo with :meth:`remove`.
        """
        img = image if isinstance(image, Image) else self.store.resolve(image)
        return self.prepare_layers(img.layers, img.diff_ids, container_id, image_id=img.id,
                                   manifest_digest=img.manifest_digest)

    def prepare_layers(self, layers: list[Descriptor], diff_ids: list[str], container_id: str, *,
                       image_id: str = "", manifest_digest: str = "") -> Snapshot:
        """Like :meth:`prepare` for a layer stack that need not be a named image (a build step)."""
        _check_id(container_id)
        directory = self.containers_dir / container_id
        meta = directory / "snapshot.json"
        self.containers_dir.mkdir(parents=True, exist_ok=True)
        directory.mkdir(exist_ok=True)
        holder = holder_name(container_id)
        held: list[str] = []
        made: list[Path] = []
        mounted = None
        try:
            with self._locked():
                if meta.exists():
                    raise Conflict(f"container {container_id} has a snapshot already "
                                   f"(remove it first: {meta})")
                directories = self._unpack(layers, diff_ids)
                for digest in dict.fromkeys([manifest_digest, image_id, *(layer.digest for layer in layers)]):
                    if digest:
                        self.store.add_holder(digest, holder)
                        held.append(digest)
                chains = tuple(chain_id(diff_ids[:i + 1]) for i in range(len(diff_ids)))
                if self.driver == OVERLAY:
                    lowers = tuple(reversed(directories)) or (self._empty_dir(),)
                    snapshot = Snapshot(container_id, OVERLAY, directory, directory / "merged", directory / "upper",
                                        directory / "work", lowers, chains, image_id, manifest_digest, tuple(held))
                else:
                    lowers = (directories[-1],) if directories else ()
                    snapshot = Snapshot(container_id, COPY, directory, directory / "rootfs", None, None, lowers,
                                        chains, image_id, manifest_digest, tuple(held))
                write_atomically(meta, json.dumps(snapshot.to_json(), indent=2) + "\n")     # written under the lock: prune sees it
                made.append(meta)
            if snapshot.driver == OVERLAY:
                for path in (snapshot.upper, snapshot.work, snapshot.rootfs):
                    path.mkdir()
                    made.append(path)
                os.chmod(snapshot.upper, 0o755)
                mount_overlay(snapshot.lowers, snapshot.upper, snapshot.work, snapshot.rootfs)
                mounted = snapshot.rootfs
            else:
                made.append(snapshot.rootfs)
                if lowers:
                    copy_tree(lowers[0], snapshot.rootfs)
                else:
                    snapshot.rootfs.mkdir(mode=0o755)
            return snapshot
        except BaseException:
            if mounted is not None:
                unmount(mounted)
            for path in reversed(made):
                _remove_path(path)
            for digest in held:
                self.store.remove_holder(digest, holder)
            with contextlib.suppress(OSError):
                directory.rmdir()
            raise

    def get(self, container_id: str) -> Snapshot:
        """The snapshot of container ``container_id`` (NotFound if it has none)."""
        _check_id(container_id)
        try:
            return Snapshot.from_json(json.loads((self.containers_dir / container_id / "snapshot.json").read_text()))
        except FileNotFoundError:
            raise NotFound(f"container {container_id} has no snapshot under {self.containers_dir}") from None

    def list(self) -> list[Snapshot]:
        """Every container snapshot under this data root."""
        found = []
        if self.containers_dir.is_dir():
            for entry in sorted(self.containers_dir.iterdir()):
                with contextlib.suppress(NotFound, ValueError, KeyError):
                    found.append(self.get(entry.name))
        return found

    def is_mounted(self, container_id: str) -> bool:
        """Is the container's overlay mounted in *our* mount namespace?"""
        return str(self.containers_dir / container_id / "merged") in mount_points()

    def remove(self, container_id: str) -> None:
        """Unmount and delete a container's snapshot, and drop its holds on the image's blobs.

        Call it after the container itself is deleted. Removing a snapshot that does not
        exist is not an error (so clean-up code can call it unconditionally).
        """
        _check_id(container_id)
        directory = self.containers_dir / container_id
        meta = directory / "snapshot.json"
        merged = directory / "merged"
        if str(merged) in mount_points():
            unmount(merged)
        for name in ("upper", "work", "merged", "rootfs"):
            _remove_path(directory / name)
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()                    # only when nothing else (the daemon's files) is there
        self.store.release(holder_name(container_id))

    # ---- clean-up and figures

    def prune(self) -> list[str]:
        """Delete unpacked layers no image in the store and no container needs; return their chain ids.

        overlay needs every layer of a stack; the copy driver only the stack's whole tree.
        """
        if not self.layers_dir.is_dir():
            return []
        layers_needed: set[str] = set()
        flat_needed: set[str] = set()
        for img in self.store.list_images():
            chains = [chain_id(img.diff_ids[:i + 1]).removeprefix("sha256:") for i in range(len(img.diff_ids))]
            layers_needed.update(chains)
            flat_needed.update(chains[-1:])
        removed = []
        with self._locked():
            for snapshot in self.list():
                chains = [chain.removeprefix("sha256:") for chain in snapshot.chain_ids]
                layers_needed.update(chains)
                flat_needed.update(chains[-1:])
            for parent, needed in ((self.layers_dir, layers_needed), (self.flat_dir, flat_needed)):
                if not parent.is_dir():
                    continue
                for entry in parent.iterdir():
                    name = entry.name
                    if len(name) == 64 and name not in needed:
                        _remove_path(entry)
                        removed.append("sha256:" + name)
                    elif name.startswith(".") and name.endswith(".unpacking"):
                        _remove_path(entry)          # left by a crash; we hold the lock, nobody unpacks
        return removed

    def disk_usage(self) -> DiskUsage:
        """Bytes on disk of every unpacked layer and every container snapshot (each inode once)."""
        seen: set[tuple[int, int]] = set()
        users: dict[str, list[str]] = {}
        snapshots = self.list()
        for snapshot in snapshots:
            if snapshot.driver != OVERLAY:
                continue                         # a copy shares nothing at run time
            for chain in snapshot.chain_ids:
                users.setdefault(chain.removeprefix("sha256:"), []).append(snapshot.container_id)
        layers = []
        sizes: dict[str, int] = {}
        for parent in (self.layers_dir, self.flat_dir):
            if not parent.is_dir():
                continue
            for entry in sorted(parent.iterdir()):
                if len(entry.name) == 64:
                    size = tree_bytes(entry, seen)
                    sizes[entry.name] = size
                    layers.append(LayerUsage("sha256:" + entry.name, entry, size,
                                             tuple(users.get(entry.name, ()))))
        containers = []
        for snapshot in snapshots:
            own_dir = snapshot.upper if snapshot.driver == OVERLAY else snapshot.rootfs
            own = tree_bytes(own_dir, seen) if own_dir and own_dir.exists() else 0
            shared = 0
            if snapshot.driver == OVERLAY:
                shared = sum(sizes.get(chain.removeprefix("sha256:"), 0) for chain in snapshot.chain_ids)
            containers.append(ContainerUsage(snapshot.container_id, snapshot.image_id, snapshot.driver,
                                             snapshot.directory, own, shared))
        return DiskUsage(tuple(layers), tuple(containers))

    # ---- internals

    def _empty_dir(self) -> Path:
        """overlayfs needs at least one lower dir: an image without layers gets this empty one."""
        empty = self.layers_dir / "empty"
        empty.mkdir(mode=0o755, exist_ok=True)
        return empty

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """flock on the snapshots directory: one unpacker or pruner at a time, across processes."""
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.layers_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- small helpers

def tree_bytes(path: Path, seen: set[tuple[int, int]]) -> int:
    """Disk blocks under ``path`` (like ``du``), skipping inodes already in ``seen``."""
    total = 0
    for directory, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            try:
                st = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
    return total


def _check_id(container_id: str) -> None:
    if not container_id or "/" in container_id or container_id.startswith(".") or len(container_id) > 128:
        raise InvalidConfig(f"invalid container id {container_id!r} for a snapshot")


def _remove_path(path: Path) -> None:
    """Delete a file or a directory tree; what is already gone is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
