"""Throw-away registries and small images for the registry and archive tests.

The registry itself comes from ``teachdock.lab.registries.registry_lab`` (the registries chapter starts
one the same way): Debian's ``docker-registry`` on 127.0.0.1, a free port, its own session,
always stopped by its PID when the ``with`` block ends::

    from tests.support.registry import local_registry

    with local_registry(tmp_path) as registry:       # registry.host == "127.0.0.1:PORT"
        ...
    with local_registry(tmp_path, htpasswd=("user", "secret")) as registry: ...
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

from teachdock.image.manifest import OCI_LAYER, OCI_LAYER_GZIP
# The registry and its helpers are the lab's own (chapter 06 starts one the same way); the tests
# take them from here, beside the image helpers below.
from teachdock.lab.registries.registry_lab import TokenServer, free_port, local_registry  # noqa: F401

REGISTRY_BINARY = shutil.which("docker-registry")
HTPASSWD_BINARY = shutil.which("htpasswd")
OPENSSL_BINARY = shutil.which("openssl")


def layer_tar(files: dict[str, bytes], *, mode: int = 0o755) -> bytes:
    """An uncompressed layer tar holding ``files`` (parent directories included)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(store, names, layers: list[bytes], *, gzip_layers: bool = False, cmd=("sh",)):
    """Store the layers (plain or gzipped) and an image of them under ``names``."""
    descriptors, diff_ids = [], []
    for data in layers:
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        if gzip_layers:
            descriptors.append(store.put_blob(gzip.compress(data, mtime=0), media_type=OCI_LAYER_GZIP))
        else:
            descriptors.append(store.put_blob(data, media_type=OCI_LAYER))
    config = {
        "created": "2024-05-01T12:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-05-01T12:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return store.add_image(config, descriptors, names)
