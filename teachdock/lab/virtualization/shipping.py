"""Chapter 01's shipping container: one small application packed, moved elsewhere, run the same.

Docker's pitch in 2013 was the shipping container: detach an application, with everything it
needs, from the machine it was made on, and attach it elsewhere. ``build_application()`` makes
the smallest such application: a directory with a static busybox, ``/app/run.sh`` and the one
data file it reads. ``pack_application()`` packs it as an image layer (a tar, named by its
sha256, as ``docker save`` or a registry carries layers); ``unpack_application()`` unpacks it
at the other end, refusing it if a single byte changed on the way. teachdock.runtime.run runs
it at both ends; the tar's bytes are all that travel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from teachdock.lab.virtualization.measurements import BUSYBOX

APP_SCRIPT = """\
#!/bin/sh
echo "$(cat /app/greeting)"
busybox | head -n 1
sha256sum /bin/busybox /app/run.sh
"""
APP_COMMAND = ["/bin/sh", "/app/run.sh"]
APPLETS = ("sh", "cat", "head", "sha256sum")


def build_application(directory, greeting: str = "hello", busybox: str = BUSYBOX) -> Path:
    """A root filesystem that holds the application and all it needs: busybox and two files."""
    root = Path(directory)
    (root / "bin").mkdir(parents=True)
    (root / "app").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "app" / "run.sh").write_text(APP_SCRIPT)
    (root / "app" / "run.sh").chmod(0o755)
    (root / "app" / "greeting").write_text(greeting + "\n")
    return root


def pack_application(root, tarball) -> str:
    """Pack the root filesystem as one image layer (a tar); returns its sha256 (the diff_id).

    Every timestamp is set to 0 and owners are left unnamed, so the same files always give the
    same tar and the same digest.
    """
    from teachdock.image.layers import diff_layer

    return diff_layer(root, tarball, mtime=0).diff_id


def unpack_application(tarball, root, diff_id: str) -> Path:
    """Unpack the layer into the new directory ``root``, checking its sha256 on the way in."""
    from teachdock.image.layers import unpack_layer

    unpack_layer(tarball, root, expected_diff_id=diff_id)
    return Path(root)
