"""Checkpoints of a container, as dockerd's experimental API keeps them.

``docker checkpoint create C NAME`` asks the runtime to save C's processes with CRIU
(:mod:`teachdock.runtime.checkpoint`) into ``<container dir>/checkpoints/NAME/``, or into
``<checkpoint-dir>/NAME/`` when the client names a directory of its own (the way a
checkpoint travels: copy that directory to another machine, point its daemon at it).
``docker start --checkpoint NAME C2`` then starts C2 with the saved processes instead of
its program: they carry on from where they were, with C2's root filesystem, mounts and logs.

The errors are dockerd's: a container that is not running, one with a terminal, a name
outside ``[a-zA-Z0-9][a-zA-Z0-9_.-]``, a name taken, a checkpoint that does not exist. And
where CRIU cannot work, criu check's own words (HTTP 501), never a pretend checkpoint.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from teachdock.daemon.containers import ContainerManager, ContainerRecord
from teachdock.errors import Conflict, InvalidConfig, NotFound
from teachdock.runtime import checkpoint as criu

#: moby's RestrictedNamePattern, for container and checkpoint names alike
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
NAME_PATTERN = re.compile(rf"^{NAME_CHARS}+$")


def checkpoint_dir(record: ContainerRecord, name: str, directory: str | None) -> Path:
    """Where checkpoint ``name`` of ``record`` lives: under ``directory`` when given, else with the record."""
    if not NAME_PATTERN.match(name or ""):
        raise InvalidConfig(f"Invalid checkpoint ID ({name}), only {NAME_CHARS} are allowed")
    if directory and not Path(directory).is_absolute():
        raise InvalidConfig(f"checkpoint-dir {directory!r} must be an absolute path (it is the daemon's, not the "
                            "client's)")
    return Path(directory) / name if directory else record.directory / "checkpoints" / name


def create(containers: ContainerManager, record: ContainerRecord, name: str, directory: str | None = None,
           exit: bool = True) -> Path:
    """Save the processes of running ``record`` as checkpoint ``name``; ``exit`` stops it (dockerd's default)."""
    if not record.running or record.runtime is None:
        raise Conflict(f"Container {record.name.lstrip('/')} not running")
    if record.data["Config"].get("Tty"):
        raise InvalidConfig("checkpoint not support on containers with tty")
    path = checkpoint_dir(record, name, directory)
    reason = criu.why_criu_cannot_run()
    if reason is not None:
        raise criu.CriuUnavailable(f"Cannot checkpoint container {record.name.lstrip('/')}: {reason}")
    if path.exists():
        raise Conflict(f"checkpoint with name {name} already exists for container {record.name.lstrip('/')}")
    try:
        criu.checkpoint(record.runtime, path, leave_running=not exit)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    containers.events.publish("container", "checkpoint", record.id, image=record.data["Config"]["Image"],
                              name=record.name.lstrip("/"))
    return path


def listing(record: ContainerRecord, directory: str | None = None) -> list[dict]:
    """``[{"Name": ...}]``, the checkpoints of ``record`` (those under ``directory`` when given)."""
    top = Path(directory) if directory else record.directory / "checkpoints"
    if not top.is_dir():
        return []
    return [{"Name": entry.name} for entry in sorted(top.iterdir())
            if entry.is_dir() and (entry / criu.DESCRIPTORS).exists()]


def existing(record: ContainerRecord, name: str, directory: str | None = None) -> Path:
    """The directory of checkpoint ``name``, which must exist (to restore from it or delete it)."""
    path = checkpoint_dir(record, name, directory)
    if not (path / criu.DESCRIPTORS).exists():
        raise NotFound(f"checkpoint {name} does not exist for container {record.name.lstrip('/')}")
    return path


def delete(record: ContainerRecord, name: str, directory: str | None = None) -> None:
    shutil.rmtree(existing(record, name, directory))


def start_from(containers: ContainerManager, record: ContainerRecord, name: str,
               directory: str | None = None) -> bool:
    """``start?checkpoint=NAME``: run ``record`` with the processes of that checkpoint."""
    path = existing(record, name, directory)
    if record.data["Config"].get("Tty"):
        raise InvalidConfig("checkpoint not support on containers with tty")
    reason = criu.why_criu_cannot_run()
    if reason is not None:
        raise criu.CriuUnavailable(f"Cannot restore container {record.name.lstrip('/')}: {reason}")
    return containers.start(record, restore_from=path)
