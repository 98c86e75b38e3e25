"""The body of ``POST /containers/create``: ``docker run``'s flags as the Engine API's fields.

``Client.create`` and ``Client.run`` take these keywords; this module turns them into the
JSON the docker CLI sends (``Config`` fields at the top, ``HostConfig`` inside). Whether the
values make sense is the daemon's to say (it answers 400 with dockerd's words); only what the
docker CLI itself works out is done here, e.g. reading the file of ``seccomp=FILE``.
"""

from __future__ import annotations

import json

from teachdock.client.specs import parse_bytes, port_bindings


def create_body(image: str, command=None, *, environment=None, workdir=None, user=None, memory=None, memory_swap=None,
                cpus=None, pids_limit=None, volumes=None, network=None, remove=False, stdin_open=False, tty=False,
                console_size=None, entrypoint=None, labels=None, publish=None, publish_all=False,
                network_aliases=None, healthcheck=None, read_only=False, privileged=False, cap_add=None,
                cap_drop=None, devices=None, device_cgroup_rules=None, security_opt=None) -> dict:
    """The create body for these settings (each keyword is a ``docker run`` flag).

    ``publish``: ``-p`` specs ("8080:80", "127.0.0.1::80/udp", "80"); ``network_aliases``: more
    names on ``network``; ``healthcheck``: Config.Healthcheck (``specs.healthcheck`` makes it).
    ``memory_swap`` (``--memory-swap``: memory + swap, ``-1`` unlimited) becomes HostConfig.MemorySwap.
    ``read_only`` (``--read-only``), ``privileged`` (``--privileged``), ``cap_add``/``cap_drop``
    (``["NET_ADMIN"]``, ``["ALL"]``), ``devices`` (``["/dev/x[:/dev/y][:rwm]"]``) and
    ``device_cgroup_rules`` (``["c 1:3 rwm"]``), ``security_opt`` (``["seccomp=unconfined"]``,
    ``["seccomp=/path/profile.json"]``, ``["no-new-privileges"]``) become HostConfig's ReadonlyRootfs,
    Privileged, CapAdd, CapDrop, Devices, DeviceCgroupRules and SecurityOpt.
    """
    if isinstance(command, str):
        command = ["sh", "-c", command]
    env = environment or []
    if isinstance(env, dict):
        env = [f"{key}={value}" for key, value in env.items()]
    host_config = {"AutoRemove": bool(remove), "NetworkMode": network or "default"}
    if memory is not None:
        host_config["Memory"] = parse_bytes(memory)
    if memory_swap is not None:  # memory + swap, bytes; -1 unlimited; the daemon checks it against Memory
        host_config["MemorySwap"] = parse_bytes(memory_swap)
    if cpus is not None:
        host_config["NanoCpus"] = int(float(cpus) * 1e9)
    if pids_limit is not None:
        host_config["PidsLimit"] = int(pids_limit)
    if volumes:
        host_config["Binds"] = list(volumes)
    exposed = {}
    if publish:
        host_config["PortBindings"] = port_bindings(publish)
        exposed = {port: {} for port in host_config["PortBindings"]}
    if publish_all:
        host_config["PublishAllPorts"] = True
    if console_size:
        host_config["ConsoleSize"] = list(console_size)
    if read_only:
        host_config["ReadonlyRootfs"] = True
    if privileged:
        host_config["Privileged"] = True
    if cap_add:
        host_config["CapAdd"] = list(cap_add)
    if cap_drop:
        host_config["CapDrop"] = list(cap_drop)
    if devices:
        host_config["Devices"] = [device_mapping(device) for device in devices]
    if device_cgroup_rules:
        host_config["DeviceCgroupRules"] = list(device_cgroup_rules)
    if security_opt:
        host_config["SecurityOpt"] = security_options(security_opt)
    body = {"Image": image, "Cmd": command, "Env": list(env), "WorkingDir": workdir or "", "User": user or "",
            "AttachStdin": bool(stdin_open), "AttachStdout": True, "AttachStderr": True, "Tty": bool(tty),
            "OpenStdin": bool(stdin_open), "StdinOnce": bool(stdin_open), "Labels": labels or {},
            "HostConfig": host_config}
    if entrypoint is not None:
        body["Entrypoint"] = entrypoint
    if exposed:
        body["ExposedPorts"] = exposed
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if network_aliases:
        body["NetworkingConfig"] = {"EndpointsConfig": {network or "default": {"Aliases": list(network_aliases)}}}
    return body


def device_mapping(device: str) -> dict:
    """``--device /dev/x[:/dev/y][:rwm]`` -> HostConfig.Devices' entry, split as the docker CLI splits it
    (``/dev/x:r`` is the permissions, not a path); the daemon looks the device up and checks it."""
    parts = device.split(":")
    host, inside, permissions = parts[0], parts[0], "rwm"
    if len(parts) >= 3:
        inside, permissions = parts[1], ":".join(parts[2:])
    elif len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm"):
            permissions = parts[1]
        else:
            inside = parts[1]
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": permissions}


def security_options(options) -> list[str]:
    """``--security-opt`` values as the docker CLI sends them: ``seccomp=FILE`` becomes the file's
    JSON (compacted); ``seccomp=unconfined``/``builtin`` and every other option go as written."""
    sent = []
    for option in options:
        key, separator, value = option.partition("=")
        if key == "seccomp" and separator and value not in ("unconfined", "builtin"):
            try:
                with open(value) as profile:
                    value = json.dumps(json.load(profile), separators=(",", ":"))
            except OSError as error:
                raise ValueError(f"opening seccomp profile ({value}) failed: {error.strerror.lower()}") from None
            except json.JSONDecodeError as error:
                raise ValueError(f"compacting json for seccomp profile ({value}) failed: {error}") from None
            option = f"seccomp={value}"
        sent.append(option)
    return sent
