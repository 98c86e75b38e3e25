"""Where teachdock keeps things on the host: one definition that every layer uses.

Two roots, both overridable with an environment variable so that several engines (or a
test suite) can run side by side without touching each other's files:

- the *data root* holds what must survive a reboot: images, base rootfs trees, volumes;
- the *state root* holds the runtime's per-container state, which dies with the machine
  (``/run`` is a tmpfs), just like runc's ``/run/runc``.
"""

import os
from pathlib import Path

DEFAULT_DATA_ROOT = "/var/lib/teachdock"
DEFAULT_STATE_ROOT = "/run/teachdock/runtime"


def data_root() -> Path:
    """$TEACHDOCK_DATA_ROOT, or /var/lib/teachdock (Docker's is /var/lib/docker)."""
    return Path(os.environ.get("TEACHDOCK_DATA_ROOT") or DEFAULT_DATA_ROOT)


def state_root() -> Path:
    """$TEACHDOCK_STATE_ROOT, or /run/teachdock/runtime (runc's is /run/runc).

    Without root, $XDG_RUNTIME_DIR/teachdock/runtime (or /tmp/teachdock-<uid>/runtime), as
    rootless runc does: /run belongs to root.
    """
    if os.environ.get("TEACHDOCK_STATE_ROOT"):
        return Path(os.environ["TEACHDOCK_STATE_ROOT"])
    if os.geteuid() == 0:
        return Path(DEFAULT_STATE_ROOT)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/teachdock-{os.geteuid()}"
    return Path(runtime_dir) / "teachdock" / "runtime"
