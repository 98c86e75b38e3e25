"""Health checks: the daemon runs a container's probe, again and again, and keeps the verdict.

A probe is the image's ``HEALTHCHECK`` or ``docker run --health-cmd``, merged into the record's
``Config.Healthcheck`` at create (container_config.healthcheck). While the container runs, one
thread per container runs it as an *exec* in the container — ``exec_create``, ``exec_start``
and ``exec_die`` events, exactly as dockerd's probes show in ``docker events`` — every
``Interval``, and writes ``State.Health`` into the record (and so onto disk)::

    {"Status": "starting" | "healthy" | "unhealthy", "FailingStreak": 2,
     "Log": [{"Start": ..., "End": ..., "ExitCode": 1, "Output": "..."}]}     (the last 5)

The rules are moby's (daemon/health.go): exit code 0 is healthy, anything else a failure;
``Retries`` failures in a row make the container unhealthy; failures during ``StartPeriod``
do not count while it is still "starting"; a probe that outlives ``Timeout`` is killed and
counts as a failure with exit code -1. A change of status is a ``health_status: healthy``
event, which is what ``docker compose``'s ``condition: service_healthy`` waits for. When the
container stops or pauses the probes stop and the status becomes "unhealthy", as dockerd's
does "for compatibility"; a new start begins at "starting" again, keeping the log.
"""

from __future__ import annotations

import calendar
import os
import selectors
import signal
import threading
import time

from teachdock.daemon.containers import ContainerManager, ContainerRecord, now_iso
from teachdock.daemon.execs import ExecManager
from teachdock.errors import InvalidConfig, TeachdockError
from teachdock.units import go_duration

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND   # moby's defaultProbeInterval
DEFAULT_TIMEOUT = 30 * SECOND    # defaultProbeTimeout
DEFAULT_RETRIES = 3              # defaultProbeRetries
MAX_LOG_ENTRIES = 5              # maxLogEntries
MAX_OUTPUT = 4096                # maxOutputLen: longer output is cut and ends in "..."
STATUSES = ("starting", "healthy", "unhealthy", "none")  # what ``ps --filter health=`` accepts


# --- what the record says ---------------------------------------------------------------------------------
def probe_command(check: dict | None) -> list[str] | None:
    """The program a probe runs, or None when there is no probe (none given, or ``NONE``)."""
    test = (check or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return list(test[1:])  # "CMD"


def status_of(data: dict) -> str:
    """``starting``, ``healthy``, ``unhealthy``, or ``none`` for a container that was never probed."""
    health = data["State"].get("Health")
    return health["Status"] if health else "none"


def ps_status_suffix(data: dict) -> str:
    """What ``docker ps``'s STATUS adds to "Up 5 seconds": " (healthy)", " (health: starting)"."""
    state = data["State"]
    if state.get("Status") != "running" or not state.get("Health"):
        return ""
    status = state["Health"]["Status"]
    return f" (health: {status})" if status == "starting" else f" ({status})"


def health_filter(values: list[str] | None):
    """``docker ps --filter health=healthy``: a predicate on a record's data; a 400 naming the
    value for anything but starting, healthy, unhealthy and none (dockerd's words)."""
    if not values:
        return lambda data: True
    for value in values:
        if value not in STATUSES:
            raise InvalidConfig(f"Unrecognised filter value for health: {value}")
    return lambda data: status_of(data) in values


# --- the rules, without threads (tests/unit/test_daemon_health.py) -----------------------------------------
def record_result(health: dict, result: dict, *, retries: int, in_start_period: bool) -> dict:
    """A new ``State.Health`` after one probe ``result`` (moby's handleProbeResult).

    ``retries``: failures in a row that make it unhealthy (0: the default, 3).
    ``in_start_period``: the probe started within StartPeriod of the container's start."""
    log = [*(health.get("Log") or []), result][-MAX_LOG_ENTRIES:]
    status, streak = health["Status"], health.get("FailingStreak", 0)
    if result["ExitCode"] == 0:
        status, streak = "healthy", 0
    elif not (status == "starting" and in_start_period):  # a slow start is not a failure yet
        streak += 1
        if streak >= (retries if retries > 0 else DEFAULT_RETRIES):
            status = "unhealthy"
    return {"Status": status, "FailingStreak": streak, "Log": log}


def probe_interval(check: dict, status: str, since_start: int) -> float:
    """Seconds until the next probe: ``Interval``; ``StartInterval`` instead while still
    "starting" inside ``StartPeriod``, when one is given (Docker 25's --health-start-interval)."""
    interval = check.get("Interval") or DEFAULT_INTERVAL
    start_interval = check.get("StartInterval")
    if start_interval and status == "starting" and since_start < (check.get("StartPeriod") or 0):
        interval = start_interval
    return interval / SECOND


def output_text(data: bytes) -> str:
    """The probe's stdout and stderr as the log keeps them: the first 4096 bytes, then "..."."""
    if len(data) > MAX_OUTPUT:
        return data[:MAX_OUTPUT].decode(errors="replace") + "..."
    return data.decode(errors="replace")


# --- the monitor -------------------------------------------------------------------------------------------
class HealthMonitor:
    """Starts a probe thread when a container with a probe starts, stops it when it stops.

    It listens to the container manager's lifecycle (``containers.listeners``); containers
    found running when the daemon starts (``restore``) get their probes again at once."""

    def __init__(self, containers: ContainerManager, execs: ExecManager):
        self.containers = containers  # its listeners tell us of starts and stops; it publishes our events
        self.execs = execs            # each probe is an exec instance, as in dockerd
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        containers.listeners.append(self.container_changed)
        for record in containers.list():
            if record.status == "running":
                self.container_changed(record, "start")

    def container_changed(self, record: ContainerRecord, action: str) -> None:
        if action in ("start", "unpause"):
            self._begin(record, fresh=action == "start")
        elif action in ("die", "pause", "destroy"):
            self._end(record)

    def _begin(self, record: ContainerRecord, *, fresh: bool) -> None:
        check = record.data["Config"].get("Healthcheck")
        if probe_command(check) is None:
            return
        stop = threading.Event()
        with self._lock:
            old = self._stops.pop(record.id, None)
            if old is not None:
                old.set()
            self._stops[record.id] = stop
        with record.changed:
            health = record.data["State"].get("Health") or {"Log": []}
            if fresh or not record.data["State"].get("Health"):  # dockerd: a start begins at "starting"
                health = {"Status": "starting", "FailingStreak": 0, "Log": list(health.get("Log") or [])}
            record.data["State"]["Health"] = health
            if not record.removed:
                record.save()
        threading.Thread(target=self._run, args=(record, check, stop), daemon=True,
                         name=f"health-{record.id[:12]}").start()

    def _end(self, record: ContainerRecord) -> None:
        with self._lock:
            stop = self._stops.pop(record.id, None)
        if stop is None:
            return
        with record.changed:
            stop.set()  # under the record's lock: a probe finishing now sees it and drops its result
            health = record.data["State"].get("Health")
            if health and not record.removed:
                record.data["State"]["Health"] = {**health, "Status": "unhealthy"}  # as dockerd, no event
                record.save()

    def _run(self, record: ContainerRecord, check: dict, stop: threading.Event) -> None:
        while not stop.wait(probe_interval(check, status_of(record.data), nanoseconds_since_start(record))):
            since_start = nanoseconds_since_start(record)  # when this probe began, as moby counts it
            result = self.probe(record, check)
            with record.changed:
                if stop.is_set() or record.removed:
                    return
                old = record.data["State"]["Health"]
                new = record_result(old, result, retries=check.get("Retries") or 0,
                                    in_start_period=since_start < (check.get("StartPeriod") or 0))
                record.data["State"]["Health"] = new  # a new dict: an inspect being written keeps the old one
                record.save()
            if new["Status"] != old["Status"]:
                self.containers.publish(record, f"health_status: {new['Status']}")

    def probe(self, record: ContainerRecord, check: dict) -> dict:
        """Run the probe once as an exec; its exit code and output, or -1 and why."""
        start, began = now_iso(), time.monotonic()
        timeout = (check.get("Timeout") or DEFAULT_TIMEOUT) / SECOND
        instance = None
        try:
            instance = self.execs.create(record, {"Cmd": probe_command(check), "AttachStdout": True,
                                                  "AttachStderr": True})
            self.execs.start(instance, attached=True)
            output = _read_until(instance.process, began + timeout)
            if not instance.finished.wait(max(0.0, began + timeout - time.monotonic())):
                instance.process.kill(signal.SIGKILL)
                instance.finished.wait(5)  # dying probes must not pile up
                return {"Start": start, "End": now_iso(), "ExitCode": -1,
                        "Output": f"Health check exceeded timeout ({go_duration(int(timeout * SECOND))})"}
            return {"Start": start, "End": now_iso(), "ExitCode": instance.exit_code, "Output": output_text(output)}
        except (TeachdockError, OSError) as error:  # not running, paused meanwhile, the program missing ...
            return {"Start": start, "End": now_iso(), "ExitCode": -1, "Output": str(error)}
        finally:
            if instance is not None:
                self.execs.forget(instance)


def nanoseconds_since_start(record: ContainerRecord) -> int:
    """Since State.StartedAt (our own "2026-12-07T06:39:35.161740148Z"): the start period counts
    from the container's start, also across a pause or a restart of the daemon."""
    stamp = record.data["State"]["StartedAt"]
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    started = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * SECOND + int((fraction + "0" * 9)[:9])
    return time.time_ns() - started


def _read_until(process, deadline: float) -> bytes:
    """stdout and stderr together, as they come, until both close or ``deadline``; closes them."""
    fds = [fd for fd in (process.stdout, process.stderr) if fd is not None]
    process.stdout = process.stderr = None
    output = bytearray()
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map() and time.monotonic() < deadline:
                for key, _events in selector.select(max(0.0, deadline - time.monotonic())):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        if len(output) <= MAX_OUTPUT:
                            output += chunk
                    else:
                        selector.unregister(key.fd)
        finally:
            for fd in fds:
                os.close(fd)
    return bytes(output)
