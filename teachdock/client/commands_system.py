"""The system verbs of the ``teachdock`` CLI: info, version, events, stats, volume,
context, system prune."""

from __future__ import annotations

import json
import sys
import time

from teachdock.client.commands import Session, human_size, report, table
from teachdock.client.flags import Flag, UsageError, Verb
from teachdock.errors import TeachdockError


# --- info, version ----------------------------------------------------------------------------------------
def cmd_version(session: Session) -> int:
    import platform  # noqa: PLC0415

    from teachdock import __version__  # noqa: PLC0415
    from teachdock.client.api import API_PREFIX  # noqa: PLC0415

    print("Client:")
    print(f" Version:           {__version__}")
    print(f" API version:       {API_PREFIX.lstrip('/v')}")
    print(f" Python version:    {platform.python_version()}")
    print(f" OS/Arch:           linux/{platform.machine()}")
    print(f" Context:           {_current_context()}")
    print(f" Host:              {session.client.host}")
    session.client.autostart = False  # asking for a version is no reason to start a daemon
    server = session.client.version()
    print(f"\nServer: {server.get('Platform', {}).get('Name', '')}")
    print(" Engine:")
    for label, key in (("Version", "Version"), ("API version", "ApiVersion"), ("Minimum API version", "MinAPIVersion"),
                       ("Go version", "GoVersion"), ("Git commit", "GitCommit"), ("OS/Arch", None),
                       ("Kernel version", "KernelVersion")):
        value = f"{server.get('Os', '')}/{server.get('Arch', '')}" if key is None else server.get(key, "")
        print(f"  {label + ':':<20} {value}")
    return 0


def _current_context() -> str:
    from teachdock.client import hosts  # noqa: PLC0415

    return next(row["name"] for row in hosts.list_contexts() if row["current"])


def cmd_info(session: Session) -> int:
    info = session.client.info()
    print(f"Client:\n Context:    {_current_context()}\n Host:       {session.client.host}\n")
    print("Server:")
    print(f" Containers: {info.get('Containers', 0)}")
    for label, key in (("Running", "ContainersRunning"), ("Paused", "ContainersPaused"),
                       ("Stopped", "ContainersStopped")):
        print(f"  {label}: {info.get(key, 0)}")
    print(f" Images: {info.get('Images', 0)}")
    for label, key in (("Server Version", "ServerVersion"), ("Storage Driver", "Driver"),
                       ("Logging Driver", "LoggingDriver"), ("Cgroup Driver", "CgroupDriver"),
                       ("Cgroup Version", "CgroupVersion"), ("Default Runtime", "DefaultRuntime"),
                       ("Kernel Version", "KernelVersion"), ("Operating System", "OperatingSystem"),
                       ("OSType", "OSType"), ("Architecture", "Architecture"), ("CPUs", "NCPU"),
                       ("Name", "Name"), ("ID", "ID"), ("Docker Root Dir", "DockerRootDir")):
        print(f" {label}: {info.get(key, '')}")
    print(f" Total Memory: {human_size(info.get('MemTotal', 0))}")
    for warning in info.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


# --- events ---------------------------------------------------------------------------------------------
def parse_time(text: str | None, now: float | None = None) -> float | None:
    """``1700000000``, ``10m`` / ``2h`` / ``30s`` ago, or an ISO date: -> unix seconds."""
    if not text:
        return None
    now = time.time() if now is None else now
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
            return now - float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        pass
    from datetime import datetime  # noqa: PLC0415

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UsageError(f"invalid time {text!r}: unix seconds, a duration like 10m, or 2026-11-28T01:00:00") from None


def format_event(event: dict) -> str:
    """As ``docker events`` prints one: time, type, action, id, (attributes)."""
    from datetime import datetime, timezone  # noqa: PLC0415

    nanos = event.get("timeNano") or int(event.get("time", 0) * 1e9)
    stamp = datetime.fromtimestamp(nanos // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    actor = event.get("Actor") or {}
    attributes = ", ".join(f"{k}={v}" for k, v in sorted((actor.get("Attributes") or {}).items()))
    return (f"{stamp}.{nanos % 10**9:09d}Z {event.get('Type', '')} {event.get('Action', '')} "
            f"{actor.get('ID', '')}" + (f" ({attributes})" if attributes else ""))


def cmd_events(session: Session) -> int:
    o = session.options
    filters = {}
    for item in o.filter:
        key, _, value = item.partition("=")
        filters.setdefault(key, {})[value] = True
    since, until = parse_time(o.since), parse_time(o.until)
    for event in session.client.events(since=since, until=until, filters=filters or None):
        print(json.dumps(event) if o.format == "json" else format_event(event), flush=True)
    return 0


# --- stats ----------------------------------------------------------------------------------------------
def stats_row(name: str, sample: dict) -> list[str]:
    """One ``docker stats`` line from a stats object, computed as the docker CLI does."""
    cpu, precpu = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (precpu.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - precpu.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_percent = 0.0  # a first sample has no previous one (precpu_stats empty): no rate yet
    if precpu.get("system_cpu_usage") and cpu_delta > 0 and system_delta > 0:
        cpu_percent = cpu_delta / system_delta * cpus * 100
    memory = sample.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("total_inactive_file", details.get("inactive_file", 0)) or 0
    used = max(0, (memory.get("usage") or 0) - cache)
    limit = memory.get("limit") or 0
    pids = (sample.get("pids_stats") or {}).get("current", 0)
    return [sample.get("id", "")[:12], name, f"{cpu_percent:.2f}%",
            f"{_binary_size(used)} / {_binary_size(limit)}", f"{used / limit * 100:.2f}%" if limit else "0.00%",
            str(pids)]


STATS_HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]


def _binary_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.4g}{unit}"
        size /= 1024
    return f"{size:.4g}TiB"


def cmd_stats(session: Session) -> int:
    client, names = session.client, list(session.args)
    if not names:
        names = [c["Names"][0].lstrip("/") for c in client.containers()]
    if session.options.no_stream:
        rows = [stats_row(name, client.stats(name)) for name in names]
        sys.stdout.write(table(STATS_HEADERS, rows))
        return 0
    from rich.live import Live  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    def render(rows):
        view = Table(*STATS_HEADERS, box=None)
        for row in rows:
            view.add_row(*row)
        return view

    with Live(render([]), refresh_per_second=4) as live:
        while True:
            rows = []
            for name in names:
                try:
                    rows.append(stats_row(name, client.stats(name)))
                except TeachdockError:
                    rows.append(["--", name, "--", "-- / --", "--", "--"])
            live.update(render(rows))
            time.sleep(1)


# --- volumes -----------------------------------------------------------------------------------
def cmd_volume_ls(session: Session) -> int:
    volumes = session.client.volumes()
    if session.options.quiet:
        for volume in volumes:
            print(volume["Name"])
        return 0
    sys.stdout.write(table(["DRIVER", "VOLUME NAME"], [[v.get("Driver", "local"), v["Name"]] for v in volumes]))
    return 0


def cmd_volume_create(session: Session) -> int:
    print(session.client.create_volume(session.args[0] if session.args else None)["Name"])
    return 0


def cmd_volume_rm(session: Session) -> int:
    from teachdock.client.commands import for_each  # noqa: PLC0415

    return for_each(session.args, lambda name: session.client.remove_volume(name, force=session.options.force))


# --- contexts ----------------------------------------------------------------------------------------------
def cmd_context_create(session: Session) -> int:
    from teachdock.client import hosts  # noqa: PLC0415

    if not session.options.host:
        raise UsageError("give the daemon's address: --host unix:///path/to/sock (or tcp://HOST:PORT)")
    hosts.create_context(session.args[0], session.options.host, session.options.description or "")
    print(session.args[0])
    return 0


def cmd_context_ls(session: Session) -> int:
    from teachdock.client import hosts  # noqa: PLC0415

    rows = [[row["name"] + (" *" if row["current"] else ""), row["description"], row["host"]]
            for row in hosts.list_contexts()]
    sys.stdout.write(table(["NAME", "DESCRIPTION", "TEACHDOCK ENDPOINT"], rows))
    return 0


def cmd_context_use(session: Session) -> int:
    from teachdock.client import hosts  # noqa: PLC0415

    hosts.use_context(session.args[0])
    print(session.args[0])
    import os  # noqa: PLC0415

    if os.environ.get("TEACHDOCK_HOST"):
        print("Warning: TEACHDOCK_HOST is set and overrides the current context", file=sys.stderr)
    return 0


def cmd_context_rm(session: Session) -> int:
    from teachdock.client import hosts  # noqa: PLC0415

    status = 0
    for name in session.args:
        try:
            hosts.remove_context(name)
            print(name)
        except TeachdockError as error:
            report(error)
            status = 1
    return status


def cmd_context_inspect(session: Session) -> int:
    from teachdock.client import hosts  # noqa: PLC0415

    rows = {row["name"]: row for row in hosts.list_contexts()}
    names = session.args or [next(name for name, row in rows.items() if row["current"])]
    missing = [name for name in names if name not in rows]
    print(json.dumps([rows[name] for name in names if name in rows], indent=4))
    for name in missing:
        print(f"context {name!r} not found", file=sys.stderr)
    return 1 if missing else 0


# --- system prune -------------------------------------------------------------------------------------------
PRUNE_CALLS = [("containers", "POST /containers/prune", "ContainersDeleted"),
               ("networks", "POST /networks/prune", "NetworksDeleted"),
               ("volumes", "POST /volumes/prune", "VolumesDeleted"),
               ("images", "POST /images/prune", "ImagesDeleted")]


def cmd_system_prune(session: Session) -> int:
    from teachdock.client.transport import NotFoundError  # noqa: PLC0415

    if not session.options.force:
        print("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one "
              "container\n  - all anonymous volumes not used by at least one container\n  - all dangling images\n"
              "  - what a crashed daemon left behind (half-created containers, orphaned snapshots)\n")
        sys.stdout.write("Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("Total reclaimed space: 0B")
            return 0
    total, status = 0, 0
    for kind, call, key in PRUNE_CALLS:
        method, path = call.split(" ")
        try:
            result = session.client.request(method, path).json() or {}
        except NotFoundError:
            print(f"(skipped {kind}: this daemon has no {path} route)")
            continue
        except TeachdockError as error:
            report(error)
            status = 1
            continue
        removed = result.get(key) or []
        total += result.get("SpaceReclaimed") or 0
        if removed:
            print(f"Deleted {kind.capitalize()}:")
            for item in removed:
                print(item if isinstance(item, str) else " ".join(f"{k}: {v}" for k, v in item.items()))
            print()
        for line in result.get("Swept") or []:
            print(f"swept: {line}")
    print(f"Total reclaimed space: {human_size(total)}")
    return status


VERBS = {
    "version": (Verb("version", "", "Versions of this client and of the daemon it talks to.", "GET /version",
                     max_args=0), cmd_version),
    "info": (Verb("info", "", "What the daemon has and how it is set up.", "GET /info", max_args=0), cmd_info),
    "events": (Verb("events", "", "Print the daemon's events as they happen (or between --since and --until).",
                    "GET /events?since=...&until=...&filters=... (one JSON object per line, kept open without until)",
                    [Flag("--since", "from this time (unix seconds, 10m, or an ISO date)", value="TIME"),
                     Flag("--until", "up to this time, then stop", value="TIME"),
                     Flag("-f,--filter", "type=container, event=die, container=NAME, image=NAME", value="K=V",
                          repeat=True),
                     Flag("--format", "json: print the raw objects", value="FORMAT")], max_args=0), cmd_events),
    "stats": (Verb("stats", "[CONTAINER...]", "CPU, memory and pids of running containers, live.",
                   "GET /containers/ID/stats?stream=0 (one sample per container, every second)",
                   [Flag("--no-stream", "one sample, then exit")]), cmd_stats),
    "volume ls": (Verb("volume ls", "", "List volumes.", "GET /volumes", [Flag("-q,--quiet", "only the names")],
                       max_args=0), cmd_volume_ls),
    "volume create": (Verb("volume create", "[NAME]", "Create a named volume.",
                           "POST /volumes/create {\"Name\": NAME, \"Driver\": \"local\"}", max_args=1),
                      cmd_volume_create),
    "volume rm": (Verb("volume rm", "VOLUME [VOLUME...]", "Remove volumes.", "DELETE /volumes/NAME",
                       [Flag("-f,--force", "force")], min_args=1), cmd_volume_rm),
    "context create": (Verb("context create", "NAME", "Name a daemon's address, to switch to it with `context use`.",
                            "none: writes contexts.json under $TEACHDOCK_CONFIG or ~/.teachdock",
                            [Flag("--host", "the daemon's address", value="unix://PATH"),
                             Flag("--description", "a note", value="TEXT")], min_args=1, max_args=1),
                       cmd_context_create),
    "context ls": (Verb("context ls", "", "List contexts; * marks the current one.", "none: reads contexts.json",
                        max_args=0), cmd_context_ls),
    "context use": (Verb("context use", "NAME", "Make NAME the current context (`default`: the default socket).",
                         "none: writes contexts.json", min_args=1, max_args=1), cmd_context_use),
    "context rm": (Verb("context rm", "NAME [NAME...]", "Remove contexts.", "none: writes contexts.json",
                        min_args=1), cmd_context_rm),
    "context inspect": (Verb("context inspect", "[NAME...]", "A context as JSON.", "none: reads contexts.json"),
                        cmd_context_inspect),
    "system prune": (Verb("system prune", "", "Remove stopped containers, unused networks and volumes, dangling "
                          "images, and what a crash left behind.",
                          "POST /containers/prune, /networks/prune, /volumes/prune, /images/prune",
                          [Flag("-f,--force", "do not ask for confirmation")], max_args=0), cmd_system_prune),
}
