"""The OCI runtime bundle: ``config.json`` plus a root filesystem.

A bundle is what Docker hands to runc: everything the runtime needs to know about one
container, written down as JSON (https://github.com/opencontainers/runtime-spec).
This module reads a bundle, checks it, and writes one. ``make_spec`` builds the same
config Docker would give a ``docker run`` container (namespaces, mounts, capabilities,
masked paths), so the Python API needs no hand-written JSON.

Only the fields teachdock implements are accepted with a value it would ignore silently
rejected: a learner who asks for something the runtime does not do gets told so.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from teachdock.errors import InvalidConfig, NotFound
from teachdock.files import write_atomically
from teachdock.kernel import CAP_NUMBER, NAMESPACES
from teachdock.runtime import capabilities as capability_sets
from teachdock.runtime import devices as host_devices
from teachdock.runtime.seccomp import check as check_seccomp
from teachdock.runtime.seccomp_profile import docker_default, resolve as resolve_seccomp
from teachdock.runtime.cgroups import Resources
from teachdock.runtime.securejoin import secure_join
from teachdock.runtime.users import resolve_user

OCI_VERSION = "1.0.2"  # the newest version both runc 1.1 and crun 1.8 accept, so bundles can swap runtimes
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Docker's 14 default capabilities (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

#: Files under /proc and /sys a container must not read (Docker's defaults).
DEFAULT_MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]

#: Paths a container may read but never write (Docker's defaults).
DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DEFAULT_NAMESPACES = ("pid", "mount", "uts", "ipc", "network")

#: Which device nodes a container may open (runc's and Docker's default allow list): deny
#: all, allow creating any node (m) but opening only the harmless ones.
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, None))),
]

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def default_mounts() -> list[dict]:
    """The mounts Docker gives every container, in the order they are made."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


def check_container_id(container_id: str) -> str:
    """Container ids name directories and cgroups, so only a safe alphabet is allowed."""
    if not isinstance(container_id, str) or not _ID_PATTERN.match(container_id):
        raise InvalidConfig(
            f"invalid container id {container_id!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit")
    return container_id


def parse_memory(value) -> int | None:
    """'64m', '1g', '512k' or a byte count -> bytes. None stays None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidConfig(f"memory limit {value!r} is not a size")
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", str(value).lower())
        if not match:
            raise InvalidConfig(f"memory limit {value!r} is not a size: write e.g. 64m, 512k or 1g")
        number = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])
    if number <= 0:
        raise InvalidConfig(f"memory limit {value!r} must be positive")
    return number


def make_spec(args, rootfs, *, namespaces=DEFAULT_NAMESPACES, hostname: str | None = "teachdock",
              env=None, cwd: str = "/", user: str | int | None = None, readonly: bool = True,
              memory=None, memory_swap=None, cpus: float | None = None, cpu_shares: int | None = None,
              pids_limit: int | None = None, capabilities=None, no_new_privileges: bool = True,
              uid_map: tuple[int, int, int] | None = None, mounts=None, masked_paths=None,
              readonly_paths=None, cgroups_path: str | None = None, rlimits=None,
              time_offsets: dict | None = None, init: bool = False, terminal: bool = False,
              console_size: tuple[int, int] | None = None, additional_gids=None,
              writable_tmp: bool = True, etc_directory=None, rootless: bool | None = None,
              seccomp: dict | str | None = "default", cap_add=None, cap_drop=None,
              privileged: bool = False, devices=None, device_cgroup_rules=None) -> dict:
    """Build an OCI config.json (as a dict) the way Docker would for ``docker run``.

    ``cpus=0.5`` becomes quota 50000 per 100000 µs period, as ``docker run --cpus`` does.
    With ``"user"`` in ``namespaces`` root in the container maps to a host id:
    ``uid_map=(0, host_id, count)`` in /proc/<pid>/uid_map's order (default (0, 100000, 65536),
    a range no real account uses). ``readonly=True`` keeps the shared
    rootfs untouched; /tmp is then a private tmpfs so programs still have somewhere to write
    (``writable_tmp=False``: not even there, as ``docker run --read-only``).
    ``additional_gids``: supplementary groups (Docker gives the user's groups from the image).
    ``terminal=True`` (``docker run -t``): the program gets a terminal of its own, whose
    master side comes back over ``Container.create(console_socket=...)``; ``console_size``
    is its (rows, columns). ``user`` is "name", "uid", "name:group" or "uid:gid", looked up in
    the rootfs's /etc/passwd and /etc/group as ``docker run --user`` does.
    ``etc_directory``: Docker's own /etc/hostname, /etc/hosts and /etc/resolv.conf for the
    container, written into this directory (the bundle, or the container's own directory)
    and listed as bind mounts, as dockerd does; without it the container sees the rootfs's.
    ``rootless``: a spec for a caller without root (as ``runc spec --rootless``): a user
    namespace mapping root to the caller's own uid, no cgroup device rules, devpts without
    the tty group. None (the default): rootless exactly when this process is not root.
    ``seccomp``: "default" is Docker's default profile, resolved against ``capabilities``
    (:mod:`teachdock.runtime.seccomp_profile`); None or "unconfined" gives no filter (as
    ``--security-opt seccomp=unconfined``); a dict is a profile in Docker's format (as
    ``--security-opt seccomp=FILE``), resolved the same way.
    ``cap_add``/``cap_drop``: names as ``docker run --cap-add/--cap-drop`` takes them (``sys_admin``,
    ``CAP_SYS_ADMIN``, ``ALL``), applied to ``capabilities`` (Docker's defaults when None) in moby's
    order (:mod:`teachdock.runtime.capabilities`). ``devices``: ``["/dev/x[:/dev/y][:rwm]", ...]``
    as ``--device``: a node in linux.devices and an allow rule each (:mod:`teachdock.runtime.devices`);
    ``device_cgroup_rules``: ``["c 1:3 rwm", "b 7:* rw"]`` as ``--device-cgroup-rule``: allow rules only.
    ``privileged=True`` is ``docker run --privileged``: every capability the machine grants, no
    seccomp filter, every host device (``a *:* rwm``), no masked or read-only paths, /sys (unless
    the root is read-only) and the cgroup mount writable.
    """
    if rootless is None:
        rootless = os.geteuid() != 0
    if isinstance(args, str):
        raise InvalidConfig("args must be a list such as ['sh', '-c', 'echo hi'], not a string")
    environment = [DEFAULT_PATH]
    if hostname:
        environment.append(f"HOSTNAME={hostname}")
    for key, value in (env or {}).items():
        environment = [item for item in environment if not item.startswith(f"{key}=")]
        environment.append(f"{key}={value}")
    if rootless and "user" not in namespaces:
        namespaces = (*namespaces, "user")  # without root, a user namespace is what grants the rest
    uid, gid = resolve_user(rootfs, user)
    caps = capability_sets.tweak(DEFAULT_CAPABILITIES if capabilities is None else capabilities, cap_add, cap_drop,
                                 privileged=privileged)
    process = {
        "terminal": bool(terminal),
        "user": {"uid": uid, "gid": gid, **({"additionalGids": list(additional_gids)} if additional_gids else {})},
        "args": list(args),
        "env": environment,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privileges,
    }
    if terminal and console_size and all(console_size):
        process["consoleSize"] = {"height": int(console_size[0]), "width": int(console_size[1])}
    if rlimits:
        process["rlimits"] = [{"type": kind, "hard": hard, "soft": soft} for kind, (soft, hard) in rlimits.items()]
    all_mounts = default_mounts()
    if rootless:  # group 5 (tty) is not mapped, so devpts cannot use it (as `runc spec --rootless`)
        for mount in all_mounts:
            mount["options"] = [option for option in mount["options"] if option != "gid=5"]
    if readonly and writable_tmp:
        all_mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]})
    if etc_directory is not None:
        all_mounts += etc_mounts(etc_directory, rootfs, hostname)
    if privileged:  # as moby: /sys writable unless the whole root is read-only; the cgroup mount writable
        for mount in all_mounts:
            if mount["type"] == "cgroup" or (mount["destination"] == "/sys" and not readonly):
                mount["options"] = [option for option in mount["options"] if option != "ro"]
        masked_paths = [] if masked_paths is None else masked_paths
        readonly_paths = [] if readonly_paths is None else readonly_paths
        seccomp = None
    all_mounts += list(mounts or [])
    device_nodes, device_rules = _devices(devices, privileged)
    device_rules += [host_devices.cgroup_rule(rule) for rule in device_cgroup_rules or []]
    linux: dict = {
        # a kind is made new; {"type": kind, "path": ...} joins an existing one (docker run --network container:X)
        "namespaces": [dict(kind) if isinstance(kind, dict) else {"type": kind} for kind in namespaces],
        "maskedPaths": list(DEFAULT_MASKED_PATHS if masked_paths is None else masked_paths),
        "readonlyPaths": list(DEFAULT_READONLY_PATHS if readonly_paths is None else readonly_paths),
        "resources": {"devices": device_rules} if not rootless else {},
    }
    if device_nodes:
        linux["devices"] = device_nodes
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    filter_ = seccomp_for(seccomp, caps)
    if filter_ is not None:
        linux["seccomp"] = filter_
    if time_offsets:  # e.g. {"boottime": 86400}: the container's uptime starts a day ahead
        linux["timeOffsets"] = {clock: {"secs": int(seconds), "nanosecs": 0} for clock, seconds in time_offsets.items()}
    if "user" in namespaces:
        if rootless:  # the kernel lets us map our own ids only
            linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
            linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        else:
            _, host_id, size = uid_map or (0, 100000, 65536)
            linux["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
            linux["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    resources = linux["resources"]
    memory_bytes = parse_memory(memory)
    if memory_bytes is not None:
        resources["memory"] = {"limit": memory_bytes}
        if memory_swap is not None:  # memory + swap, as OCI and --memory-swap count it; -1: unlimited swap
            resources["memory"]["swap"] = -1 if memory_swap == -1 else parse_memory(memory_swap)
    if cpus is not None or cpu_shares is not None:
        resources["cpu"] = {}
        if cpus is not None:
            if not isinstance(cpus, (int, float)) or cpus <= 0:
                raise InvalidConfig(f"cpus={cpus!r}: give a positive number of CPUs, e.g. 0.5")
            resources["cpu"].update({"period": 100000, "quota": int(round(cpus * 100000))})
        if cpu_shares is not None:
            resources["cpu"]["shares"] = cpu_shares
    if pids_limit is not None:
        resources["pids"] = {"limit": pids_limit}
    spec = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": os.fspath(rootfs), "readonly": readonly},
        "hostname": hostname,
        "mounts": all_mounts,
        "linux": linux,
    }
    if not hostname:
        del spec["hostname"]
    if init:
        spec["annotations"] = {"org.teachdock.init": "true"}
    validate(spec)
    return spec


def _devices(requested, privileged: bool) -> tuple[list[dict], list[dict]]:
    """(linux.devices, linux.resources.devices) for ``--device`` requests and ``--privileged``.

    Privileged (as moby): every host device, and the default deny followed by allow-all. moby then
    forgets ``--device``; here a device asked for under another name (``/dev/null:/dev/mynull``) is made too.
    """
    nodes, rules = [], [dict(rule) for rule in DEFAULT_DEVICE_RULES]
    for request in requested or []:
        host, inside, permissions = (host_devices.parse(request) if isinstance(request, str) else request)
        more_nodes, more_rules = host_devices.from_host(host, inside, permissions)
        nodes += more_nodes
        rules += more_rules
    if privileged:
        every = host_devices.host_devices()
        present = {node["path"] for node in every}
        return every + [node for node in nodes if node["path"] not in present], [
            dict(DEFAULT_DEVICE_RULES[0]), dict(host_devices.ALLOW_ALL)]
    return nodes, rules


def seccomp_for(seccomp, capabilities) -> dict | None:
    """make_spec's ``seccomp`` argument -> ``linux.seccomp`` (None: no filter)."""
    if seccomp is None or seccomp == "unconfined":
        return None
    if seccomp == "default":
        return docker_default(capabilities)
    if isinstance(seccomp, dict):
        return resolve_seccomp(seccomp, capabilities)
    raise InvalidConfig(f"seccomp={seccomp!r}: give \"default\", \"unconfined\" (or None), or a profile as a dict")


def write_etc_files(directory, rootfs, hostname: str | None, *, address: str | None = None,
                    nameservers=None, search=(), options=(), note: str = "") -> dict[str, str]:
    """Write a container's own /etc/hostname, /etc/hosts and /etc/resolv.conf into ``directory``,
    as dockerd does for each container; return {destination: file on the host}.

    ``address``: the container's IPv4 address, the line of its own name in /etc/hosts (else
    127.0.1.1). ``nameservers`` (with ``search`` and ``options``): the resolv.conf lines, e.g.
    127.0.0.11 for the daemon's embedded resolver or the host's own; None: no nameserver at all
    (a container with no route out). ``note``: a comment line at its top saying where they come from.

    Only for the files the rootfs has (a relative rootfs is relative to ``directory``, as
    root.path is to its bundle): a mount point the image lacks would have to be created in
    the image's own tree. Whoever makes the spec lists them as bind mounts (``etc_mounts``
    here, ``daemon/oci.py`` for the daemon): the runtime only does what config.json says.
    """
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / rootfs  # an absolute rootfs stays as it is
    name = hostname or "localhost"
    if nameservers is None:
        resolv_conf = "# teachdock: this container has no route to the outside world, so no nameserver.\n"
    else:
        resolv_conf = (f"# {note}\n" if note else "") + "".join(f"nameserver {server}\n" for server in nameservers)
        resolv_conf += (f"search {' '.join(search)}\n" if search else "") + (
            f"options {' '.join(options)}\n" if options else "")
    contents = {
        "/etc/hostname": f"{name}\n",
        "/etc/hosts": ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                       "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                       f"ff02::2\tip6-allrouters\n{address or '127.0.1.1'}\t{name}\n"),
        "/etc/resolv.conf": resolv_conf,
    }
    written = {}
    for destination, content in contents.items():
        inside = secure_join(str(root), destination)
        if not os.path.isfile(inside) or os.path.islink(inside):
            continue
        source = directory / os.path.basename(destination)
        source.write_text(content)
        written[destination] = str(source)
    return written


def etc_mounts(directory, rootfs, hostname: str | None) -> list[dict]:
    """:func:`write_etc_files`, listed as read-write bind mounts (``make_spec(etc_directory=...)``)."""
    return [{"destination": destination, "type": "bind", "source": source, "options": ["rbind", "rprivate"]}
            for destination, source in write_etc_files(directory, rootfs, hostname).items()]


# --- reading and checking a bundle -----------------------------------------------------------------
def load_bundle(bundle) -> tuple[dict, Path]:
    """Read and check ``<bundle>/config.json``; return it with the absolute rootfs path."""
    bundle = Path(bundle).absolute()
    config_path = bundle / "config.json"
    if not bundle.is_dir():
        raise NotFound(f"bundle {bundle} does not exist or is not a directory")
    try:
        text = config_path.read_text()
    except FileNotFoundError:
        raise NotFound(f"bundle {bundle} has no config.json (create one with `teachdock runtime spec`)") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidConfig(f"{config_path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    validate(config)
    return config, rootfs_path(config, bundle)


def rootfs_path(config: dict, bundle=None) -> Path:
    """root.path, relative to the bundle when not absolute; must exist as a directory."""
    root = Path(config["root"]["path"])
    if not root.is_absolute():
        if bundle is None:
            raise InvalidConfig(f"root.path {str(root)!r} is relative but there is no bundle directory")
        root = Path(bundle) / root
    if not root.is_dir():
        raise NotFound(f"rootfs {root} does not exist or is not a directory "
                       "(build the base one with `teachdock store bootstrap busybox`)")
    return root


def write_bundle(bundle, config: dict) -> Path:
    """Write ``config.json`` into ``bundle`` (created if missing), atomically."""
    validate(config)
    bundle = Path(bundle)
    bundle.mkdir(parents=True, exist_ok=True)
    target = bundle / "config.json"
    write_atomically(target, json.dumps(config, indent=2) + "\n")
    return target


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidConfig(f"config.json: {message}")


def _is_uint(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def validate(config) -> None:
    """Check the fields teachdock implements; raise InvalidConfig naming the first bad one."""
    _require(isinstance(config, dict), "the top level must be a JSON object")
    _require(isinstance(config.get("ociVersion"), str), "ociVersion is required (e.g. \"1.2.0\")")
    root = config.get("root")
    _require(isinstance(root, dict) and isinstance(root.get("path"), str) and root["path"],
             "root.path is required (the rootfs directory)")
    _require(isinstance(root.get("readonly", False), bool), "root.readonly must be true or false")
    process = config.get("process")
    _require(isinstance(process, dict), "process is required")
    args = process.get("args")
    _require(isinstance(args, list) and args and all(isinstance(a, str) for a in args),
             "process.args must be a non-empty list of strings")
    _require(isinstance(process.get("cwd"), str) and process["cwd"].startswith("/"),
             "process.cwd is required and must be an absolute path")
    _require(all(isinstance(e, str) and "=" in e for e in process.get("env", [])),
             "process.env entries must be strings of the form KEY=VALUE")
    user = process.get("user", {"uid": 0, "gid": 0})
    _require(isinstance(user, dict) and _is_uint(user.get("uid")) and _is_uint(user.get("gid")),
             "process.user needs non-negative integer uid and gid")
    _require(all(_is_uint(g) for g in user.get("additionalGids", [])), "process.user.additionalGids must be ids")
    _require(isinstance(process.get("terminal", False), bool), "process.terminal must be true or false")
    for kind, names in (process.get("capabilities") or {}).items():
        _require(kind in ("bounding", "effective", "permitted", "inheritable", "ambient"),
                 f"process.capabilities.{kind} is not a capability set")
        unknown = [name for name in names if name not in CAP_NUMBER]
        _require(not unknown, f"process.capabilities.{kind}: unknown capability {unknown[:1]}")
    for index, rlimit in enumerate(process.get("rlimits", [])):
        _require(isinstance(rlimit, dict) and str(rlimit.get("type", "")).startswith("RLIMIT_")
                 and _is_uint(rlimit.get("soft")) and _is_uint(rlimit.get("hard")),
                 f"process.rlimits[{index}] needs type RLIMIT_*, and soft and hard as non-negative integers")
        _require(rlimit["soft"] <= rlimit["hard"], f"process.rlimits[{index}]: soft limit above hard limit")
        import resource  # noqa: PLC0415 - only needed when rlimits are given

        _require(hasattr(resource, rlimit["type"]), f"process.rlimits[{index}]: unknown type {rlimit['type']}")
    hostname = config.get("hostname")
    _require(hostname is None or (isinstance(hostname, str) and 0 < len(hostname) <= 64),
             "hostname must be a string of 1-64 characters")
    for index, mount in enumerate(config.get("mounts", [])):
        _require(isinstance(mount, dict) and isinstance(mount.get("destination"), str)
                 and mount["destination"].startswith("/"),
                 f"mounts[{index}].destination is required and must be absolute")
        _require(all(isinstance(o, str) for o in mount.get("options", [])), f"mounts[{index}].options must be strings")
    linux = config.get("linux", {})
    _require(isinstance(linux, dict), "linux must be an object")
    kinds = []
    for index, namespace in enumerate(linux.get("namespaces", [])):
        kind = namespace.get("type") if isinstance(namespace, dict) else None
        _require(kind in NAMESPACES,
                 f"linux.namespaces[{index}].type {kind!r} is not a namespace (known: {', '.join(NAMESPACES)})")
        _require(kind not in kinds, f"linux.namespaces lists {kind!r} twice")
        kinds.append(kind)
        path = namespace.get("path")
        _require(path is None or (isinstance(path, str) and path.startswith("/")),
                 f"linux.namespaces[{index}].path must be an absolute path")
    _require("mount" in kinds and not any(n.get("path") for n in linux["namespaces"] if n["type"] == "mount"),
             "linux.namespaces needs a new mount namespace: the runtime mounts /proc, /dev, ... and pivots "
             "the root there; in a shared mount namespace that would change the root of every process in it")
    _require(bool(hostname) is False or "uts" in kinds,
             "hostname is set but there is no uts namespace: the host's name would change")
    if "user" in kinds and not any(n.get("path") for n in linux["namespaces"] if n["type"] == "user"):
        for field in ("uidMappings", "gidMappings"):
            maps = linux.get(field)
            _require(isinstance(maps, list) and maps, f"linux.{field} is required with a new user namespace")
            for entry in maps:
                _require(all(_is_uint(entry.get(k)) for k in ("containerID", "hostID", "size")) and entry["size"] > 0,
                         f"linux.{field} entries need containerID, hostID and a positive size")
    _require(not ("user" in kinds and "pid" not in kinds) or any(n.get("path") for n in linux["namespaces"]),
             "a new user namespace needs a new pid namespace too: the kernel lets a user namespace mount "
             "/proc only for a pid namespace it owns")
    offsets = linux.get("timeOffsets")
    if offsets is not None:
        _require("time" in kinds, "linux.timeOffsets needs a time namespace in linux.namespaces")
        _require(isinstance(offsets, dict) and set(offsets) <= {"monotonic", "boottime"}
                 and all(isinstance(v, dict) and isinstance(v.get("secs", 0), int)
                         and isinstance(v.get("nanosecs", 0), int) for v in offsets.values()),
                 "linux.timeOffsets takes monotonic and/or boottime, each {\"secs\": N, \"nanosecs\": N}")
    cgroups_path = linux.get("cgroupsPath")
    _require(cgroups_path is None or (isinstance(cgroups_path, str) and ".." not in cgroups_path.split("/")),
             "linux.cgroupsPath must be a path without '..'")
    Resources.from_oci(linux.get("resources"))  # checks every limit, with the kernel's bounds
    for index, device in enumerate(linux.get("devices") or []):
        _require(isinstance(device, dict) and isinstance(device.get("path"), str) and device["path"].startswith("/")
                 and device.get("type") in ("c", "b", "u", "p")
                 and all(_is_uint(device.get(key, 0)) for key in ("major", "minor", "fileMode", "uid", "gid")),
                 f"linux.devices[{index}] needs an absolute path, type c, b, u or p, and non-negative "
                 "major, minor, fileMode, uid and gid")
    for field in ("maskedPaths", "readonlyPaths"):
        _require(all(isinstance(p, str) and p.startswith("/") for p in linux.get(field, [])),
                 f"linux.{field} must be absolute paths")
    if linux.get("seccomp") is not None:
        check_seccomp(linux["seccomp"])
