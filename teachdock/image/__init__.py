"""teachdock.image: images like Docker's — content store, layers, snapshots, builds, commit.

The names below are imported on first use (PEP 562), so ``import teachdock.image.busybox``
or ``teachdock store --help`` do not pay for the whole package::

    from teachdock.image import Images
    images = Images("/tmp/td")               # or Images() for $TEACHDOCK_DATA_ROOT
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Images": "images",
    "ImageStore": "store", "Image": "store", "Descriptor": "store", "ImageNotFound": "store",
    "ImageInUse": "store",
    "Reference": "reference", "parse_reference": "reference", "InvalidReference": "reference",
    "Snapshotter": "snapshots", "Snapshot": "snapshots", "DiskUsage": "snapshots",
    "Builder": "build", "BuildResult": "build", "BuildStepFailed": "build", "BuildCache": "build",
    "BuildError": "dockerfile", "parse_dockerfile": "dockerfile", "DockerIgnore": "dockerfile",
    "unpack_layer": "layers", "apply_layer_onto": "layers", "diff_layer": "layers", "LayerError": "layers",
    "UnsafeLayer": "layers",
    "build_busybox_rootfs": "busybox",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'teachdock.image' has no attribute {name!r}")
    return getattr(importlib.import_module(f"teachdock.image.{module}"), name)
