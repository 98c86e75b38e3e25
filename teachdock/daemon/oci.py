"""From a container record to the OCI spec: what ``docker run``'s flags become in config.json.

The daemon keeps what the user asked for in Docker's words (the create body's ``Config`` and
``HostConfig``, stored in container.json); the runtime understands only the OCI runtime spec.
This module is the translation, as moby's ``daemon/oci_linux.go`` is dockerd's: each Docker
field on one line, next to the spec option it becomes. It is pure: no file is read, nothing
is looked up. What needs the disk — the user's uid in the image's /etc/passwd, the volumes
to create — is done by the caller and handed in.

    docker run flag          record field                   spec option (runtime.make_spec)
    -h / --hostname          Config.Hostname                hostname
    -e / image ENV           Config.Env                     env
    -w / image WORKDIR       Config.WorkingDir              cwd
    -u / image USER          Config.User (resolved)         user, additional_gids
    -t                       Config.Tty, HostConfig.ConsoleSize   terminal, console_size
    --read-only              HostConfig.ReadonlyRootfs      readonly (and no writable /tmp)
    --init                   HostConfig.Init                init
    -m / --memory            HostConfig.Memory              memory
    --memory-swap            HostConfig.MemorySwap          memory_swap (memory + swap; dockerd's default
                                                            2 x memory is filled in at create; -1 unlimited)
    --cpus                   HostConfig.NanoCpus            cpus
    -c / --cpu-shares        HostConfig.CpuShares           cpu_shares
    --pids-limit             HostConfig.PidsLimit           pids_limit
    --network host           HostConfig.NetworkMode         namespaces (no network namespace)
    --network container:X    (X's PID 1, found by the caller)  namespaces (X's: {"type": "network", "path": ...})
    -v / --mount / VOLUME    (resolved by volumes.resolve)  mounts
    (the daemon's own files) /etc/hostname, hosts, resolv.conf   mounts (bind, see etc_mounts)
    --cgroup-parent (daemon) the daemon's cgroup parent     cgroups_path
    --security-opt seccomp=  HostConfig.SecurityOpt         seccomp ("default": Docker's profile, None, a profile)
    --security-opt no-new-privileges   HostConfig.SecurityOpt   no_new_privileges (off by default, as Docker)
    --cap-add / --cap-drop   HostConfig.CapAdd, CapDrop     cap_add, cap_drop (on Docker's 14 defaults)
    --privileged             HostConfig.Privileged          privileged (all capabilities, no seccomp, all devices,
                                                            no masked or read-only paths, writable /sys)
    --device                 HostConfig.Devices             devices ("host:container:rwm": node + allow rule)
    --device-cgroup-rule     HostConfig.DeviceCgroupRules   device_cgroup_rules ("c 1:3 rwm": allow rule only)
"""

from __future__ import annotations

import json

from teachdock.errors import InvalidConfig
from teachdock.runtime.seccomp_profile import parse_profile

# Every namespace but the network one: what ``--network host`` leaves out.
HOST_NETWORK_NAMESPACES = ("pid", "mount", "uts", "ipc")

# The files the daemon writes for each container and binds over the image's own (Docker's policy;
# the runtime adds nothing the spec does not list).
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def spec_options(record: dict, *, user: str | None, additional_gids: list[int], mounts: list[dict],
                 cgroup_parent: str, etc_files: dict[str, str] | None = None,
                 network_namespace: str | None = None) -> dict:
    """The keyword arguments of :func:`teachdock.runtime.make_spec` for this container record.

    ``record`` is container.json (``Id``, ``Config``, ``HostConfig``); ``user`` is
    ``Config.User`` ("name", "uid", "name:group" …: make_spec looks it up in the image),
    ``additional_gids`` the user's supplementary groups there; ``mounts`` the OCI mounts of its volumes and binds;
    ``etc_files`` maps /etc/hostname, /etc/hosts and /etc/resolv.conf to the daemon's copies
    on the host, when the daemon wrote them (they become bind mounts); ``network_namespace``
    the namespace to join instead of making one (``/proc/PID/ns/net`` of ``--network container:X``).
    """
    config, host = record["Config"], record["HostConfig"]
    options = {
        "hostname": config["Hostname"],
        "env": env_dict(config["Env"]),
        "cwd": config["WorkingDir"] or "/",
        "user": user,
        "additional_gids": additional_gids,
        "readonly": bool(host.get("ReadonlyRootfs")),
        "writable_tmp": False,  # Docker gives no private /tmp: the rootfs is the container's own
        "init": bool(host.get("Init")),
        "memory": host.get("Memory") or None,
        "memory_swap": (host.get("MemorySwap") or None) if host.get("Memory") else None,
        "cpus": (host.get("NanoCpus") or 0) / 1e9 or None,
        "cpu_shares": host.get("CpuShares") or None,
        "pids_limit": host.get("PidsLimit") if (host.get("PidsLimit") or 0) > 0 else None,  # 0 and -1: unlimited
        "cgroups_path": f"/{cgroup_parent.strip('/')}/{record['Id']}",
        "mounts": [*mounts, *etc_mounts(etc_files or {}, mounts, read_only=bool(host.get("ReadonlyRootfs")))],
        **security_options(host.get("SecurityOpt")),
        "privileged": bool(host.get("Privileged")),
        "cap_add": host.get("CapAdd") or None,
        "cap_drop": host.get("CapDrop") or None,
        "devices": device_requests(host.get("Devices")),
        "device_cgroup_rules": host.get("DeviceCgroupRules") or None,
    }
    if host.get("NetworkMode") == "host":
        options["namespaces"] = HOST_NETWORK_NAMESPACES
    elif network_namespace:
        options["namespaces"] = (*HOST_NETWORK_NAMESPACES, {"type": "network", "path": network_namespace})
    if config.get("Tty"):
        options["terminal"] = True
        options["console_size"] = host.get("ConsoleSize") or None
    return options


# Go's strconv.ParseBool, which dockerd uses for no-new-privileges=VALUE
_BOOLEANS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
             **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}


def security_options(security_opt) -> dict:
    """``HostConfig.SecurityOpt`` -> make_spec's ``seccomp`` and ``no_new_privileges``, read as
    moby's ``parseSecurityOpt``, with dockerd's words for an option it does not know.

    ``seccomp=unconfined`` (no filter), ``seccomp=builtin`` (Docker's profile, the default) or
    ``seccomp=<the profile's JSON>`` (the docker CLI sends the file's content); ``no-new-privileges``
    or ``no-new-privileges=BOOL``; ``KEY:VALUE`` is the old spelling of ``KEY=VALUE``.
    teachdock has neither AppArmor nor SELinux: ``apparmor=unconfined`` and ``label=disable`` (or
    ``disable``) ask for what it already is and are accepted; a profile or a label it cannot apply
    is refused, never dropped silently.
    """
    options = {"seccomp": "default", "no_new_privileges": False}
    if security_opt is None:
        return options
    if not isinstance(security_opt, list) or not all(isinstance(opt, str) for opt in security_opt):
        raise InvalidConfig(f"HostConfig.SecurityOpt must be a list of strings, not {json.dumps(security_opt)[:80]}")
    for opt in security_opt:
        if opt == "no-new-privileges":
            options["no_new_privileges"] = True
            continue
        if opt == "disable":
            continue
        separator = "=" if "=" in opt else ":" if ":" in opt else None
        if separator is None:
            raise InvalidConfig(f"invalid --security-opt 1: {json.dumps(opt)}")
        key, value = opt.split(separator, 1)
        if key == "seccomp":
            options["seccomp"] = (None if value == "unconfined" else "default" if value == "builtin"
                                  else parse_profile(value))
        elif key == "no-new-privileges" and value in _BOOLEANS:
            options["no_new_privileges"] = _BOOLEANS[value]
        elif key == "apparmor" and value != "unconfined":
            raise InvalidConfig(f"--security-opt {opt}: teachdock has no AppArmor support and cannot confine a "
                                "container with a profile (only apparmor=unconfined is accepted)")
        elif key == "label" and value != "disable":
            raise InvalidConfig(f"--security-opt {opt}: teachdock has no SELinux support and cannot apply a "
                                "label (only label=disable is accepted)")
        elif key not in ("apparmor", "label"):
            raise InvalidConfig(f"invalid --security-opt 2: {json.dumps(opt)}")
    return options


def device_requests(devices) -> list[tuple[str, str, str]]:
    """``HostConfig.Devices`` -> make_spec's ``devices``: (on host, in container, cgroup permissions);
    an empty PathInContainer is the host's path and empty permissions are rwm, as the docker CLI fills them."""
    if devices is None:
        return []
    if not isinstance(devices, list) or not all(isinstance(device, dict) for device in devices):
        raise InvalidConfig(f"HostConfig.Devices must be a list of objects, not {json.dumps(devices)[:80]}")
    requests = []
    for device in devices:
        fields = [device.get(key) or "" for key in ("PathOnHost", "PathInContainer", "CgroupPermissions")]
        if not all(isinstance(field, str) for field in fields):
            raise InvalidConfig("HostConfig.Devices: PathOnHost, PathInContainer and CgroupPermissions are strings")
        host, inside, permissions = fields
        requests.append((host, inside or host, permissions or "rwm"))
    return requests


def etc_mounts(etc_files: dict[str, str], user_mounts: list[dict], *, read_only: bool = False) -> list[dict]:
    """Bind the daemon's /etc/hostname, /etc/hosts and /etc/resolv.conf into the container.

    ``etc_files`` maps each destination to its file on the host. A file the user mounted
    themselves (``-v /my/hosts:/etc/hosts``) is left to them, as dockerd does, and so is one
    inside a directory the user mounted (``-v conf:/etc``): a bind mount there would leave an
    empty mount-point file in their volume. With ``--read-only`` the files are read-only too.
    """
    def covered(destination: str) -> bool:
        return any(destination == mount["destination"].rstrip("/")
                   or destination.startswith(mount["destination"].rstrip("/") + "/") for mount in user_mounts)

    return [{"destination": destination, "type": "bind", "source": etc_files[destination],
             "options": ["rbind", "rprivate", "ro" if read_only else "rw"]}
            for destination in ETC_FILES if destination in etc_files and not covered(destination)]


def env_dict(items) -> dict:
    """``["KEY=value", ...]`` (Docker's Env) -> ``{"KEY": "value"}``; a later KEY wins."""
    env = {}
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env
