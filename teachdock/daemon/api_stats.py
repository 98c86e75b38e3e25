"""Routes for stats: a container's resource usage, once or streamed (``docker stats``).

``GET /containers/{id}/stats?stream=1|0&one-shot=1`` answers with the JSON dockerd sends on
cgroup v1 (captured from dockerd 20.10 on this machine). The figures come from the container's
cgroup (``Container.metrics()``); a few that ``Metrics`` does not carry (CPU time split into
user and kernel, per-CPU time, ``memory.stat``) are read beside it from the same cgroup.

How the CLI turns two samples into "CPU %" explains the shape::

    cpu %   = (cpu_stats.cpu_usage.total_usage - precpu_stats.cpu_usage.total_usage)
            / (cpu_stats.system_cpu_usage   - precpu_stats.system_cpu_usage) * online_cpus * 100

``system_cpu_usage`` is the whole machine's CPU time (/proc/stat) in nanoseconds, so each
sample needs a *previous* one. dockerd therefore answers ``stream=0`` after a second, with
both samples; ``one-shot=1`` answers at once with an empty ``precpu_stats``; ``stream=1``
sends one sample per second, each carrying the one before.
"""

from __future__ import annotations

import json
import os
import time

from teachdock.daemon.logs import timestamp
from teachdock.daemon.server import HTTPError
from teachdock.errors import TeachdockError

INTERVAL = 1.0             # seconds between two samples, as dockerd's collector
ZERO_TIME = "0001-01-01T00:00:00Z"
_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/stat and cpuacct.stat count in these


# --- the machine ------------------------------------------------------------------------------------
def system_cpu_ns() -> int:
    """All CPUs' time since boot in nanoseconds: the first line of /proc/stat, as moby sums it
    (user, nice, system, idle, iowait, irq, softirq)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(value) for value in fields[1:8]) * 1_000_000_000 // _TICKS


def host_memory_bytes() -> int:
    """MemTotal: dockerd reports it as the limit of a container without one."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


# --- one container ------------------------------------------------------------------------------------
def _read_keyed(path: str | None) -> dict[str, int]:
    """'key value' lines (memory.stat, cpuacct.stat, cpu.stat) -> dict; {} if unreadable."""
    values = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if value.strip().lstrip("-").isdigit():
                    values[key] = int(value)
    except (OSError, TypeError):
        pass
    return values


def _cgroup_extras(cgroup) -> dict:
    """What ``Metrics`` lacks, from the cgroup's own files: memory.stat, user/kernel CPU time
    and per-CPU time (v1's cpuacct; v2's cpu.stat has no per-CPU figures)."""
    dirs = getattr(cgroup, "dirs", None)
    if dirs is not None:  # v1: one directory per controller
        memory, cpuacct = dirs.get("memory"), dirs.get("cpuacct")
        times = _read_keyed(cpuacct and os.path.join(cpuacct, "cpuacct.stat"))
        try:
            with open(os.path.join(cpuacct, "cpuacct.usage_percpu")) as f:
                percpu = [int(value) for value in f.read().split()]
        except (OSError, TypeError, ValueError):
            percpu = None
        return {"memory_stat": _read_keyed(memory and os.path.join(memory, "memory.stat")),
                "user_ns": times.get("user", 0) * 1_000_000_000 // _TICKS,
                "kernel_ns": times.get("system", 0) * 1_000_000_000 // _TICKS, "percpu": percpu}
    directory = getattr(cgroup, "dir", None)  # v2: one directory
    cpu = _read_keyed(directory and os.path.join(directory, "cpu.stat"))
    return {"memory_stat": _read_keyed(directory and os.path.join(directory, "memory.stat")),
            "user_ns": cpu.get("user_usec", 0) * 1000, "kernel_ns": cpu.get("system_usec", 0) * 1000,
            "percpu": None}


def _networks(pid: int | None) -> dict | None:
    """Per-interface byte and packet counts from the container's netns (/proc/PID/net/dev);
    None when it has no interface but lo (``--network none``: dockerd omits the key)."""
    if not pid:
        return None
    networks = {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return None
    for line in lines:
        name, _, counters = line.partition(":")
        name, values = name.strip(), [int(v) for v in counters.split()]
        if name == "lo" or len(values) < 16:
            continue
        networks[name] = {"rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2],
                          "rx_dropped": values[3], "tx_bytes": values[8], "tx_packets": values[9],
                          "tx_errors": values[10], "tx_dropped": values[11]}
    return networks or None


def _empty_cpu() -> dict:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def _empty_blkio(value) -> dict:
    keys = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
            "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
            "io_time_recursive", "sectors_recursive")
    return {key: (list(value) if isinstance(value, list) else value) for key in keys}


def empty_stats(record) -> dict:
    """What dockerd answers for a container that does not run: zeros, with its name and id."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {}, "blkio_stats": _empty_blkio(None),
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _empty_cpu(), "precpu_stats": _empty_cpu(),
            "memory_stats": {}, "name": record.name, "id": record.id}


def sample(record) -> dict | None:
    """One sample of a running container (the ``read``/``cpu_stats``/... half of a stats
    object), or None when it does not run (any more)."""
    runtime = record.runtime
    if runtime is None or not record.running:
        return None
    try:
        cgroup = runtime.cgroup  # the same as runtime.metrics() reads, opened once
        metrics = cgroup.metrics()
        extras = _cgroup_extras(cgroup)
        pid = runtime.pid
    except (TeachdockError, OSError):
        return None  # it exited between the check and the read
    cpu_usage = {"total_usage": metrics.cpu_usage_ns or 0,
                 "usage_in_kernelmode": extras["kernel_ns"], "usage_in_usermode": extras["user_ns"]}
    if extras["percpu"]:
        cpu_usage["percpu_usage"] = extras["percpu"]
    pids = {"current": metrics.pids_current or 0}
    if metrics.pids_limit:
        pids["limit"] = metrics.pids_limit
    memory = {"usage": metrics.memory_bytes or 0, "stats": extras["memory_stat"],
              "limit": metrics.memory_limit_bytes or host_memory_bytes()}
    if metrics.memory_peak_bytes is not None:
        memory["max_usage"] = metrics.memory_peak_bytes
    result = {
        "read": timestamp(), "pids_stats": pids, "blkio_stats": _empty_blkio([]), "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {"cpu_usage": cpu_usage, "system_cpu_usage": system_cpu_ns(),
                      "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN"),
                      "throttling_data": {"periods": metrics.cpu_periods or 0,
                                          "throttled_periods": metrics.cpu_throttled_periods or 0,
                                          "throttled_time": metrics.cpu_throttled_ns or 0}},
        "memory_stats": memory,
    }
    networks = _networks(pid)
    if networks:
        result["networks"] = networks
    return result


def combine(record, current: dict, previous: dict | None) -> dict:
    """A full stats object: this sample, the one before as ``precpu_stats``, name and id."""
    return {
        "read": current["read"], "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": current["pids_stats"], "blkio_stats": current["blkio_stats"], "num_procs": 0,
        "storage_stats": {}, "cpu_stats": current["cpu_stats"],
        "precpu_stats": previous["cpu_stats"] if previous else _empty_cpu(),
        "memory_stats": current["memory_stats"], "name": record.name, "id": record.id,
        **({"networks": current["networks"]} if "networks" in current else {}),
    }


# --- the route ----------------------------------------------------------------------------------------
def _sleep_unless(seconds: float, stop) -> bool:
    """Sleep in short steps; True as soon as ``stop()`` says so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop():
            return True
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return stop()


def container_stats(daemon, request, name) -> None:
    record = daemon.containers.get(name)
    stream = request.flag("stream", default=True)
    one_shot = request.flag("one-shot")
    if stream and one_shot:
        raise HTTPError(400, "cannot have stream=true and one-shot=true")
    handler = request.handler
    if not stream:
        first = sample(record)
        if first is None:
            handler.send_json(200, empty_stats(record))
            return
        if one_shot:
            handler.send_json(200, combine(record, first, None))
            return
        time.sleep(INTERVAL)  # a second sample, so that CPU % means something
        second = sample(record)
        handler.send_json(200, combine(record, second, first) if second else empty_stats(record))
        return

    # stream: one object per second until the container stops or the client goes away
    handler.start_chunks(200, "application/json")
    previous = None
    while not request.client_gone():
        current = sample(record)
        if current is None:
            handler.write_chunk(json.dumps(empty_stats(record)).encode() + b"\n")
            break
        handler.write_chunk(json.dumps(combine(record, current, previous)).encode() + b"\n")
        previous = current
        if _sleep_unless(INTERVAL, request.client_gone):
            return  # nobody to send the end of the stream to
    handler.end_chunks()


def register(router) -> None:
    router.add("GET", "/containers/{name}/stats", container_stats)
