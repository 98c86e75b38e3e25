"""The state directory: how a container's processes and the commands that inspect it meet.

One directory per container under the state root (``/run/teachdock/runtime/<id>/``, runc's
is ``/run/runc/<id>/``), so ``teachdock runtime start`` from another shell finds what
``create`` made:

- ``state.json``  the OCI state (status, pid, bundle) plus exit code and OOM flag, written
  by the caller while creating and by the monitor ever after;
- ``exec.fifo``   ``start`` writes one byte into it; the monitor then tells init to exec;
- ``config.json`` the config the container was created from (``exec`` reads it);
- ``etc/``        only when the runtime made the spec itself (``Container.create(rootfs=...,
  args=...)``): the container's own hostname, hosts and resolv.conf, listed as bind mounts
  in that config.

State files are replaced atomically but not fsynced: the state root lives on the /run tmpfs
and means nothing after a reboot, and an fsync per state change would cost milliseconds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from teachdock.errors import Conflict, NotFound
from teachdock.files import write_json_atomically


def make_state_dir(state_root: Path, container_id: str) -> Path:
    """Create ``<state root>/<id>``; Conflict when a container of that id exists already."""
    state_root.mkdir(parents=True, exist_ok=True)
    state_dir = state_root / container_id
    try:
        state_dir.mkdir(mode=0o711)  # searchable: a user-namespaced container binds files from etc/
    except FileExistsError:
        raise Conflict(f"a container with id {container_id!r} already exists (see `teachdock runtime list`; "
                       f"remove it with `teachdock runtime delete {container_id}`)") from None
    return state_dir


def read_state(state_dir: Path) -> dict:
    try:
        with open(state_dir / "state.json") as f:
            return json.load(f)
    except FileNotFoundError:
        raise NotFound(f"no such container: {state_dir.name}") from None


def write_state(state_dir: Path, state: dict) -> None:
    """Readers see the old state or the new one, never half of one (rename is atomic)."""
    write_json_atomically(state_dir / "state.json", state, durable=False)


def write_config(state_dir: Path, config: dict) -> None:
    write_json_atomically(state_dir / "config.json", config, durable=False)


def read_config(state_dir: Path) -> dict:
    return json.loads((state_dir / "config.json").read_text())


def state_age(state_dir: Path) -> float:
    """Seconds since the state last changed."""
    return time.time() - (state_dir / "state.json").stat().st_mtime


def remove_state_dir(state_dir: Path) -> None:
    """Remove the directory and what is in it (a few files, and etc/); what will not go stays.

    By hand rather than shutil.rmtree: importing shutil (with bz2 and lzma) costs ~3 ms, paid
    by every `teachdock runtime run`.
    """
    for directory, subdirectories, names in os.walk(state_dir, topdown=False):
        for name in names:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
        for name in subdirectories:  # a symlink to a directory is listed here too: unlink it
            path = os.path.join(directory, name)
            try:
                os.unlink(path) if os.path.islink(path) else os.rmdir(path)
            except OSError:
                pass
    try:
        os.rmdir(state_dir)
    except OSError:
        pass


def now() -> str:
    """UTC time in RFC 3339 form, as runc writes it."""
    stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1e6):06d}Z"
