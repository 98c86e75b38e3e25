"""A container's configuration: what ``POST /containers/create`` is given, checked and completed.

The create body carries ``Config`` fields at its top level (Image, Cmd, Env, User, ...) and
``HostConfig`` inside it. Before anything exists on disk the daemon checks their types (a
400 that names the field, not a crash deep in the runtime), fills in what the image says
(ENTRYPOINT, CMD, ENV, USER, WORKDIR) and what dockerd fills in (LogConfig, ShmSize, ...),
so that ``docker inspect`` shows the settings that take effect. The result is stored in
container.json; oci.py later turns it into the runtime's spec.
"""

from __future__ import annotations

import json

from teachdock.daemon import volumes
from teachdock.daemon.oci import device_requests, env_dict, security_options
from teachdock.errors import InvalidConfig
from teachdock.image.dockerfile import config_env
from teachdock.runtime import capabilities, devices
from teachdock.runtime.seccomp import compile_filter
from teachdock.runtime.seccomp_profile import resolve
from teachdock.runtime.spec import DEFAULT_CAPABILITIES


# What the API accepts for each field: a body that breaks these gets a 400 naming the
# field, not a crash deep in the runtime.
_STRING_LISTS = ("Cmd", "Entrypoint", "Env")
_STRINGS = ("Image", "User", "WorkingDir", "Hostname", "StopSignal")
_HOST_INTEGERS = ("Memory", "NanoCpus", "CpuShares", "PidsLimit", "MemorySwap", "ShmSize")


def check_types(body: dict) -> None:
    """Raise InvalidConfig (a 400) naming the first field of the create body of the wrong type."""
    for field in _STRING_LISTS:
        value = body.get(field)
        if value is not None and not isinstance(value, str) and not (
                isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise InvalidConfig(f"{field} must be a list of strings, not {json.dumps(value)[:80]}")
    for field in _STRINGS:
        if body.get(field) is not None and not isinstance(body[field], str):
            raise InvalidConfig(f"{field} must be a string, not {json.dumps(body[field])[:80]}")
    check_healthcheck(body.get("Healthcheck"))
    host = body.get("HostConfig")
    if host is None:
        return
    if not isinstance(host, dict):
        raise InvalidConfig("HostConfig must be an object")
    size = host.get("ConsoleSize")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and
                                 all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 65536 for v in size)):
        raise InvalidConfig(f"HostConfig.ConsoleSize must be [height, width], not {json.dumps(size)[:80]}")
    for field in _HOST_INTEGERS:
        value = host.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidConfig(f"HostConfig.{field} must be an integer, not {json.dumps(value)[:80]}")
        if isinstance(value, int) and value < -1:
            raise InvalidConfig(f"HostConfig.{field} cannot be negative: {value}")


def _as_list(value) -> list | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _merge_env(image_env, given) -> dict:
    """Image Env first, then the user's ``-e``: a later value for the same key wins."""
    env = dict(image_env) if isinstance(image_env, dict) else env_dict(image_env)
    env.update(env_dict(given))
    return env


def host_config(host: dict, *, swap_accounting: bool = True) -> dict:
    """Fill in what dockerd fills in, so ``inspect`` shows the effective settings.

    ``swap_accounting``: whether this kernel limits swap per cgroup (runtime.cgroups.swap_accounting).
    """
    host = dict(host)
    memory_and_swap(host, swap_accounting)
    volumes.requested_mounts(host)  # a bad -v or --mount is a 400 at create, before anything exists
    check_security_options(host.get("SecurityOpt"))
    check_privileges(host)
    log_config = host.get("LogConfig") or {}
    host["LogConfig"] = {"Type": log_config.get("Type") or "json-file", "Config": log_config.get("Config") or {}}
    if host.get("NetworkMode") in (None, ""):
        host["NetworkMode"] = "default"  # the default network: container_networks.configure names it
    if not isinstance(host["NetworkMode"], str) or host["NetworkMode"] == "container:":
        raise InvalidConfig(f"invalid network mode: {host['NetworkMode']}")
    host.setdefault("ShmSize", 64 * 1024 * 1024)
    host["ShmSize"] = host["ShmSize"] or 64 * 1024 * 1024
    host.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    host.setdefault("AutoRemove", False)
    return host


SWAP_WARNING = ("Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                "Memory limited without swap.")  # dockerd's words, in the create answer's Warnings


def memory_and_swap(host: dict, swap_accounting: bool) -> None:
    """``--memory`` and ``--memory-swap`` as dockerd reads them (moby's adaptContainerSettings and
    verifyPlatformContainerResources): MemorySwap counts memory + swap; left at 0 with a memory limit
    it becomes twice the memory (swap as large as the limit); -1 is unlimited swap; where the kernel
    cannot limit swap, a memory limit runs with unlimited swap (and the create answer warns)."""
    memory, swap = host.get("Memory") or 0, host.get("MemorySwap") or 0
    if swap > 0 and memory == 0:
        raise InvalidConfig("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swap > 0 and swap < memory:
        raise InvalidConfig("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory > 0 and swap == 0:
        host["MemorySwap"] = 2 * memory
    if memory > 0 and host["MemorySwap"] > 0 and not swap_accounting:
        host["MemorySwap"] = -1


def swap_warnings(asked: dict, swap_accounting: bool) -> list[str]:
    """The create answer's warning when ``--memory`` runs without a swap limit on this kernel."""
    return [SWAP_WARNING] if (asked.get("Memory") or 0) > 0 and (asked.get("MemorySwap") or 0) != -1 \
        and not swap_accounting else []


def check_privileges(host: dict) -> None:
    """--cap-add/--cap-drop stored as dockerd stores them (``CAP_SYS_ADMIN``; an unknown name is its 400,
    ``invalid CapAdd: unknown capability: "CAP_FOO"``) and --device looked up on the host now (dockerd
    does it at start; its words, but a 400 before anything exists). A capability this machine cannot grant
    is refused here too."""
    for field in ("CapAdd", "CapDrop"):
        if host.get(field) is not None:
            host[field] = capabilities.normalize(host[field], field)
    capabilities.tweak(DEFAULT_CAPABILITIES, host.get("CapAdd"), host.get("CapDrop"),
                       privileged=bool(host.get("Privileged")))
    if host.get("Privileged") and host.get("SecurityOpt") is None:
        host["SecurityOpt"] = ["label=disable"]  # what dockerd's generateSecurityOpt writes (no SELinux here either)
    requests = device_requests(host.get("Devices"))
    for host_path, inside, permissions in requests:
        devices.from_host(host_path, inside, permissions)
    rules = host.get("DeviceCgroupRules")
    if rules is not None and not isinstance(rules, list):
        raise InvalidConfig(f"HostConfig.DeviceCgroupRules must be a list of strings, not {json.dumps(rules)[:80]}")
    for rule in rules or []:
        devices.cgroup_rule(rule)  # dockerd's words, at create rather than at start
    if host.get("Devices") is not None:
        host["Devices"] = [{"PathOnHost": host_path, "PathInContainer": inside, "CgroupPermissions": permissions}
                           for host_path, inside, permissions in requests]


def check_security_options(security_opt) -> None:
    """An unknown --security-opt or a seccomp profile the runtime would refuse is a 400 at create,
    before anything exists (dockerd itself finds a bad profile only at start, from runc)."""
    seccomp = security_options(security_opt)["seccomp"]
    if not isinstance(seccomp, dict):
        return
    try:
        resolved = resolve(seccomp, DEFAULT_CAPABILITIES)
        if resolved is not None:
            compile_filter(resolved)
    except InvalidConfig as error:
        raise InvalidConfig("seccomp profile: " + str(error).removeprefix("config.json: linux.seccomp: ")) from None


def command(body: dict, image_config: dict) -> tuple[list[str], list[str]]:
    """(entrypoint, cmd): the body's, else the image's; a body's Entrypoint drops the image's CMD, as in Docker."""
    settings = image_config.get("config") or {}
    entrypoint = _as_list(body.get("Entrypoint"))
    cmd = _as_list(body.get("Cmd"))
    if entrypoint is None:
        entrypoint = _as_list(settings.get("Entrypoint")) or []
        cmd = cmd or _as_list(settings.get("Cmd")) or []
    cmd = cmd or []
    if not entrypoint + cmd:
        raise InvalidConfig("no command specified: the image has no CMD or ENTRYPOINT, so give one")
    return entrypoint, cmd


def config(body: dict, image_config: dict, container_id: str, entrypoint: list[str], cmd: list[str]) -> dict:
    """The record's ``Config``: the body's settings, the image's where the body gives none."""
    settings = image_config.get("config") or {}
    env = _merge_env(config_env(image_config), body.get("Env") or [])
    # the body's ports and the image's EXPOSE together, as dockerd merges them (what -P publishes)
    exposed = {**(settings.get("ExposedPorts") or {}), **(body.get("ExposedPorts") or {})}
    return {
        "Hostname": body.get("Hostname") or container_id[:12], "Domainname": "",
        "User": body.get("User") or settings.get("User") or "",
        "AttachStdin": bool(body.get("AttachStdin")), "AttachStdout": bool(body.get("AttachStdout")),
        "AttachStderr": bool(body.get("AttachStderr")), "Tty": bool(body.get("Tty")),
        "OpenStdin": bool(body.get("OpenStdin")), "StdinOnce": bool(body.get("StdinOnce")),
        "Env": [f"{k}={v}" for k, v in env.items()], "Cmd": cmd,
        "Entrypoint": entrypoint or None, "Image": body.get("Image") or "",
        "WorkingDir": body.get("WorkingDir") or settings.get("WorkingDir") or "",
        "Labels": body.get("Labels") or {}, "Volumes": body.get("Volumes") or None,
        "StopSignal": body.get("StopSignal") or "SIGTERM", "StopTimeout": body.get("StopTimeout"),
        **({"ExposedPorts": exposed} if exposed else {}),  # omitted when empty, as in dockerd's JSON
        **healthcheck(body.get("Healthcheck"), settings.get("Healthcheck")),
    }


_HEALTH_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")
_MINIMUM_DURATION = 1_000_000  # 1 ms, moby's container.MinimumDuration


def check_healthcheck(given) -> None:
    """A create body's ``Healthcheck``: dockerd's checks (and their words), plus a Test that
    must be a probe teachdockd can run, where dockerd would silently never probe."""
    if given is None:
        return
    if not isinstance(given, dict):
        raise InvalidConfig("Healthcheck must be an object")
    test = given.get("Test")
    if test is not None and not (isinstance(test, list) and all(isinstance(item, str) for item in test)):
        raise InvalidConfig(f"Healthcheck.Test must be a list of strings, not {json.dumps(test)[:80]}")
    if test and (test[0] not in ("NONE", "CMD", "CMD-SHELL") or (test[0] != "NONE" and len(test) < 2)):
        raise InvalidConfig(f"Healthcheck.Test must be [], [\"NONE\"], [\"CMD\", program, args...] or "
                            f"[\"CMD-SHELL\", command], not {json.dumps(test)[:80]}")
    for field in (*_HEALTH_DURATIONS, "Retries"):
        value = given.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidConfig(f"Healthcheck.{field} must be an integer, not {json.dumps(value)[:80]}")
    for field in _HEALTH_DURATIONS:
        if given.get(field) and given[field] < _MINIMUM_DURATION:
            raise InvalidConfig(f"{field} in Healthcheck cannot be less than 1ms")
    if (given.get("Retries") or 0) < 0:
        raise InvalidConfig("Retries in Healthcheck cannot be negative")


def healthcheck(given: dict | None, from_image: dict | None) -> dict:
    """``{"Healthcheck": ...}`` for the record's Config, or ``{}`` for none: the body's fields,
    the image's where the body leaves one empty or zero (moby's daemon/commit.go merge)."""
    if not given and not from_image:
        return {}
    merged = {}
    for key in ("Test", *_HEALTH_DURATIONS, "Retries"):  # Go's field order, as inspect shows it
        value = (given or {}).get(key) or (from_image or {}).get(key)
        if value:
            merged[key] = value
    return {"Healthcheck": merged}
