"""Host devices for a container: ``--device /dev/x[:/dev/y][:rwm]`` and ``--privileged``.

A device the container may use needs two things in config.json, as dockerd writes them:
a node in ``linux.devices`` (the runtime makes it in the container's /dev with the host's
type, numbers, mode and owner) and an allow rule in ``linux.resources.devices`` (the devices
cgroup, or on cgroup v2 the eBPF program, lets it be opened). Read after moby's
``daemon/oci_linux.go`` (``WithDevices``) and runc's ``devices.HostDevices``.
"""

from __future__ import annotations

import os
import re
import stat

from teachdock.errors import InvalidConfig

_MODES = set("rwm")
# What runc's HostDevices skips under /dev: mounts of their own, and the console (the runtime's).
_SKIPPED_DIRECTORIES = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def parse(device: str) -> tuple[str, str, str]:
    """``"/dev/x[:/dev/y][:rwm]"`` (the docker CLI's ``--device``) -> (on host, in container, permissions),
    with the CLI's words for a bad one."""
    parts = device.split(":")
    if not parts[0] or len(parts) > 3:
        raise InvalidConfig(f"invalid device specification: {device}")
    host, inside, permissions = parts[0], parts[0], "rwm"
    if len(parts) == 3:
        inside, permissions = parts[1], parts[2]
    elif len(parts) == 2:
        if parts[1] and set(parts[1]) <= _MODES and len(parts[1]) <= 3:
            permissions = parts[1]
        else:
            inside = parts[1]
    check(host, inside, permissions)
    return host, inside, permissions


def check(host: str, inside: str, permissions: str) -> None:
    """What a device request must be before anything is looked up (the docker CLI's checks)."""
    if not permissions or not set(permissions) <= _MODES or len(permissions) > 3:
        raise InvalidConfig(f"bad mode specified: {permissions}")
    for path in (host, inside):
        if not path.startswith("/"):
            raise InvalidConfig(f"{path} is not an absolute path")


def _node(path: str, inside: str, info: os.stat_result) -> dict:
    kind = "c" if stat.S_ISCHR(info.st_mode) else "b"
    return {"path": inside, "type": kind, "major": os.major(info.st_rdev), "minor": os.minor(info.st_rdev),
            "fileMode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}


def _rule(node: dict, permissions: str) -> dict:
    return {"allow": True, "type": node["type"], "major": node["major"], "minor": node["minor"],
            "access": permissions}


def from_host(host: str, inside: str, permissions: str = "rwm") -> tuple[list[dict], list[dict]]:
    """(linux.devices nodes, allow rules) for one ``--device``: one node, or every node under a
    directory (``--device /dev/net``), as dockerd gathers them; its words when the path is no device."""
    check(host, inside, permissions)
    try:
        info = os.stat(host)
    except OSError as error:
        raise InvalidConfig(f'error gathering device information while adding custom device "{host}": '
                            f"{os.strerror(error.errno).lower()}") from None
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        nodes = [_node(host, inside, info)]
    elif stat.S_ISDIR(info.st_mode):
        nodes = [_node(path, os.path.join(inside, os.path.relpath(path, host)), os.stat(path))
                 for path in _device_files(host)]
    else:
        raise InvalidConfig(f'error gathering device information while adding custom device "{host}": '
                            "not a device node")
    return nodes, [_rule(node, permissions) for node in nodes]


def _device_files(directory: str, *, whole_dev: bool = False) -> list[str]:
    """The device nodes under ``directory``; for the host's whole /dev without runc's skipped entries."""
    found = []
    for top, directories, files in os.walk(directory):
        skipped = _SKIPPED_DIRECTORIES if whole_dev and top == directory else set()
        directories[:] = sorted(name for name in directories if name not in skipped)
        for name in sorted(files):
            path = os.path.join(top, name)
            if whole_dev and top == directory and name == "console":
                continue
            try:
                mode = os.lstat(path).st_mode
            except OSError:  # gone meanwhile
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                found.append(path)
    return found


def host_devices(directory: str = "/dev") -> list[dict]:
    """Every device node under the host's /dev, for ``--privileged`` (runc's HostDevices)."""
    return [_node(path, path, os.lstat(path)) for path in _device_files(directory, whole_dev=True)]


_CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")  # moby's deviceCgroupRuleRegex


def cgroup_rule(text: str) -> dict:
    """``--device-cgroup-rule "c 1:3 rwm"`` (``*`` for any number) -> an OCI allow rule, in dockerd's
    words when it is not one; the device itself is not given to the container (``mknod`` it)."""
    match = _CGROUP_RULE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidConfig(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = match.groups()
    return {"allow": True, "type": kind, "major": None if major == "*" else int(major),
            "minor": None if minor == "*" else int(minor), "access": access}


#: The rule ``--privileged`` adds: every device, every access (``a *:* rwm``).
ALLOW_ALL = {"allow": True, "access": "rwm"}
