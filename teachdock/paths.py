"""Where teachdock keeps things on the host: one definition that every layer uses.

Two roots, both overridable with an environment variable so that several engines (or a
test suite) can run side by side without touching each other's files:

- the *data root* holds what must survive a reboot: images, base rootfs trees, volumes;
- the *state root* holds the runtime's per-container state, which dies with the machine
  (``/run`` is a tmpfs), just like runc's ``/run/runc``.
"""

from __future__ import annotations

import os

# No `import pathlib` at the top: the client imports this module for the socket's address on
# every `teachdock run`, and pathlib (with what it pulls in) costs that command ~8 ms. The
# functions below, which only the engine calls, import it themselves.

DEFAULT_DATA_ROOT = "/var/lib/teachdock"
DEFAULT_STATE_ROOT = "/run/teachdock/runtime"
DEFAULT_EXEC_ROOT = "/run/teachdock"  #: the daemon's runtime state (dockerd: /run/docker)
DEFAULT_SOCKET = "/run/teachdock/teachdock.sock"  #: the daemon's socket (dockerd: /run/docker.sock)
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"  #: the same socket as a client's -H address


def data_root() -> Path:
    """$TEACHDOCK_DATA_ROOT, or /var/lib/teachdock (Docker's is /var/lib/docker)."""
    from pathlib import Path  # noqa: PLC0415 - see the note at the top
    return Path(os.environ.get("TEACHDOCK_DATA_ROOT") or DEFAULT_DATA_ROOT)


def state_root() -> Path:
    """$TEACHDOCK_STATE_ROOT, or /run/teachdock/runtime (runc's is /run/runc).

    Without root, $XDG_RUNTIME_DIR/teachdock/runtime (or /tmp/teachdock-<uid>/runtime), as
    rootless runc does: /run belongs to root.
    """
    from pathlib import Path  # noqa: PLC0415 - see the note at the top
    if os.environ.get("TEACHDOCK_STATE_ROOT"):
        return Path(os.environ["TEACHDOCK_STATE_ROOT"])
    if os.geteuid() == 0:
        return Path(DEFAULT_STATE_ROOT)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/teachdock-{os.geteuid()}"
    return Path(runtime_dir) / "teachdock" / "runtime"


def default_rootfs_path() -> Path:
    """<data root>/rootfs/busybox: the base rootfs ``teachdock store bootstrap busybox`` builds,
    where the lab, the runtime's ``run()`` and the tests expect it."""
    return data_root() / "rootfs" / "busybox"
