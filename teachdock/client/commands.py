"""The container verbs of the ``teachdock`` CLI (run, ps, logs, stop, start, kill, rm, inspect,
exec, wait), and what every verb module shares: dispatch, error reporting, plain tables.

Exit statuses follow the docker CLI: ``run`` exits with the program's status, or 125 when
the daemon fails it (126/127 when the program cannot be executed / is not found); other
verbs exit 1 on an error; a command line the verb cannot take exits 125.
"""

from __future__ import annotations

import os
import re
import sys
import time

from teachdock.client.flags import Flag, UsageError, Verb
from teachdock.client.specs import healthcheck
from teachdock.errors import TeachdockError
from teachdock.units import human_duration, human_size  # noqa: F401 - the verbs' modules take them from here


# --- shared by the verb modules -----------------------------------------------------------------------
class Session:
    """What a verb gets: its options and arguments, and a client made on first use."""

    def __init__(self, host: str | None, options, args: list[str], tls: dict | None = None):
        self.host = host
        self.tls = tls or {}  # the global --tls/--tlsverify/--tlscacert/--tlscert/--tlskey
        self.options = options
        self.args = args
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from teachdock.client.api import Client  # noqa: PLC0415
            from teachdock.client.hosts import TLSFlags  # noqa: PLC0415

            self._client = Client(self.host, tls=TLSFlags(**self.tls))
            self._client.on_autostart = lambda daemon: print(
                f"teachdock: no daemon answered on {daemon.host}: started teachdockd (pid {daemon.pid}, "
                f"log {daemon.log_path}); stop it with `kill {daemon.pid}`", file=sys.stderr)
        return self._client


def dispatch(verbs: dict, name: str, argv: list[str], host: str | None, tls: dict | None = None) -> int:
    """Parse ``argv`` for verb ``name`` and run it; errors become docker-style messages."""
    verb, function = verbs[name]
    failure_status = 125 if name in ("run", "create") else 1
    try:
        options, args = verb.parse(argv)
    except UsageError as error:
        print(f"teachdock {name}: {error}\nSee 'teachdock {name} --help'.", file=sys.stderr)
        return 125
    if options.help:
        print(verb.help_text(), end="")
        return 0
    session = Session(host, options, args, tls)
    try:
        return function(session) or 0
    except UsageError as error:
        print(f"teachdock {name}: {error}\nSee 'teachdock {name} --help'.", file=sys.stderr)
        return 125
    except TeachdockError as error:
        report(error)
        return failure_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `teachdock ps | head -1`
        return 0
    finally:
        if session._client is not None:
            session._client.close()


def report(error: Exception) -> None:
    from teachdock.client.transport import APIError  # noqa: PLC0415

    if isinstance(error, APIError):
        print(f"Error response from daemon: {error.message}", file=sys.stderr)
    else:
        print(f"teachdock: {error}", file=sys.stderr)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns as ``docker ps`` prints them: left-aligned, three spaces apart."""
    widths = [max([len(h)] + [len(str(row[i])) for row in rows]) for i, h in enumerate(headers)]
    lines = ["   ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
             for line in [headers, *rows]]
    return "\n".join(lines) + "\n"


def ago(unix_seconds: float) -> str:
    if not unix_seconds:
        return ""
    return f"{human_duration(time.time() - unix_seconds)} ago"


def print_inspected(names: list[str], inspect) -> int:
    """``docker image inspect`` / ``network inspect``: one JSON array of ``inspect(name)`` for
    every name found, an error line for each one that is not; exit status 1 if any was not."""
    import json  # noqa: PLC0415

    found, status = [], 0
    for name in names:
        try:
            found.append(inspect(name))
        except TeachdockError as error:
            report(error)
            status = 1
    print(json.dumps(found, indent=4))
    return status


def for_each(names: list[str], action, *, quiet_not_found: bool = False) -> int:
    """Run ``action(name)`` for each name, printing the name on success (docker stop/rm/kill)."""
    from teachdock.client.transport import NotFoundError  # noqa: PLC0415

    status = 0
    for name in names:
        try:
            action(name)
            print(name)
        except TeachdockError as error:
            report(error)
            if not (quiet_not_found and isinstance(error, NotFoundError)):
                status = 1
    return status


def write_output(stream_id: int, data: bytes) -> None:
    target = sys.stderr if stream_id == 2 else sys.stdout
    target.buffer.write(data)
    target.buffer.flush()


# --- run ------------------------------------------------------------------------------------------------
RUN_FLAGS = [
    Flag("--rm", "remove the container when it exits (HostConfig.AutoRemove)"),
    Flag("-d,--detach", "start it and print its id; do not wait"),
    Flag("-i,--interactive", "send this command's stdin to the program (OpenStdin, attach stdin=1)"),
    Flag("-t,--tty", "give the program a terminal (a pty; one raw stream, resized with yours)"),
    Flag("-e,--env", "set an environment variable", value="KEY=VALUE", repeat=True),
    Flag("-w,--workdir", "working directory inside the container", value="DIR"),
    Flag("-u,--user", "user[:group] to run as", value="USER"),
    Flag("--name", "give the container a name", value="NAME"),
    Flag("-m,--memory", "memory limit (64m, 1g): the memory cgroup", value="SIZE"),
    Flag("--memory-swap", "memory + swap limit (128m; -1: unlimited swap); default twice --memory, as Docker",
         value="SIZE"),
    Flag("--cpus", "CPU limit in CPUs (0.5): the cpu cgroup's quota/period", value="N"),
    Flag("--pids-limit", "most processes at once: the pids cgroup", value="N"),
    Flag("-v,--volume", "mount a volume or a host path: SRC:DST[:ro]", value="SRC:DST", repeat=True),
    Flag("--network", "network to join: bridge (the default), none, host, container:NAME, or one made "
                      "with `network create`", value="NAME"),
    Flag("--network-alias", "another name for the container on its network (user networks)", value="NAME",
         repeat=True),
    Flag("-p,--publish", "publish a port: [IP:][HOSTPORT:]PORT[/udp] (a DNAT rule on the host)", value="SPEC",
         repeat=True),
    Flag("-P,--publish-all", "publish every port the image EXPOSEs, each on a free host port"),
    Flag("--health-cmd", "command to run to check health (the daemon runs it as an exec)", value="CMD"),
    Flag("--health-interval", "time between probes (30s, 1m30s; default 30s)", value="TIME"),
    Flag("--health-timeout", "longest a probe may run (default 30s)", value="TIME"),
    Flag("--health-retries", "failures in a row that make it unhealthy (default 3)", value="N"),
    Flag("--health-start-period", "failures in this time after start do not count", value="TIME"),
    Flag("--health-start-interval", "time between probes during the start period", value="TIME"),
    Flag("--no-healthcheck", "switch off the image's HEALTHCHECK"),
    Flag("--read-only", "mount the container's root filesystem read-only"),
    Flag("--privileged", "every capability, no seccomp filter, every host device, no masked paths, writable /sys"),
    Flag("--cap-add", "add a capability (NET_ADMIN, CAP_SYS_ADMIN, ALL)", value="CAP", repeat=True),
    Flag("--cap-drop", "drop a capability (CHOWN, ALL)", value="CAP", repeat=True),
    Flag("--device", "give it a host device: /dev/x[:/dev/y][:rwm] (a node and a device rule)", value="DEV",
         repeat=True),
    Flag("--device-cgroup-rule", "let it use devices it makes itself: \"c 1:3 rwm\", \"b 7:* rw\"", value="RULE",
         repeat=True),
    Flag("--security-opt", "seccomp=unconfined|PROFILE.json, no-new-privileges", value="OPT", repeat=True),
]


def cmd_run(session: Session) -> int:
    o, args = session.options, session.args
    client = session.client
    image, command = args[0], args[1:] or None

    def pulling(message: dict) -> None:
        if not pulling.started:
            pulling.started = True
            print(f"Unable to find image '{_with_tag(image)}' locally", file=sys.stderr)
        if message.get("local"):
            return
        line = message.get("status", "")
        if message.get("id"):
            line = f"{message['id']}: {line}"
        if "progressDetail" not in message:
            print(line, file=sys.stderr)
    pulling.started = False

    def started(container_id: str) -> None:
        if o.tty:  # Ctrl-C is a byte for the container's terminal now, not a signal for us
            follow_terminal_size(lambda rows, columns: client.resize(container_id, rows, columns))
        else:
            proxy_signals(session, container_id)

    try:
        check = healthcheck(cmd=o.health_cmd, interval=o.health_interval, timeout=o.health_timeout,
                            start_period=o.health_start_period, start_interval=o.health_start_interval,
                            retries=o.health_retries, disabled=o.no_healthcheck)
        with Terminal(raw=o.tty and o.interactive):
            result = client.run(image, command, name=o.name, detach=o.detach, remove=o.rm, environment=o.env,
                                workdir=o.workdir, user=o.user, memory=o.memory, memory_swap=o.memory_swap, cpus=o.cpus,
                                pids_limit=o.pids_limit, volumes=o.volume, network=o.network,
                                publish=o.publish, publish_all=o.publish_all, network_aliases=o.network_alias,
                                healthcheck=check, read_only=o.read_only, privileged=o.privileged,
                                cap_add=o.cap_add, cap_drop=o.cap_drop, devices=o.device,
                                device_cgroup_rules=o.device_cgroup_rule,
                                security_opt=o.security_opt,
                                input=sys.stdin.buffer if o.interactive else None, tty=o.tty,
                                console_size=terminal_size() if o.tty else None, output=write_output,
                                progress=pulling, started=started)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if o.detach:
        print(result.id)
        return 0
    if result.stderr:  # a failed start: the daemon's reason
        print(f"teachdock: Error response from daemon: {result.stderr}", file=sys.stderr)
    return result.exit_code


class Terminal:
    """``-it``: the user's terminal in raw mode while attached (each key goes to the container
    as typed, Ctrl-C included), restored afterwards whatever happens."""

    def __init__(self, raw: bool):
        self.raw = raw and sys.stdin.isatty()
        self.saved = None

    def __enter__(self):
        if self.raw:
            import termios  # noqa: PLC0415
            import tty  # noqa: PLC0415

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios  # noqa: PLC0415

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def terminal_size() -> tuple[int, int] | None:
    """(rows, columns) of our stdout's terminal; None when it is not one."""
    import os  # noqa: PLC0415

    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.lines, size.columns


def follow_terminal_size(resize) -> None:
    """Send our terminal's size now and on every SIGWINCH (``POST .../resize?h=&w=``)."""
    import signal  # noqa: PLC0415

    def send(*_args) -> None:
        size = terminal_size()
        if size is not None:
            try:
                resize(*size)
            except TeachdockError:
                pass

    send()
    signal.signal(signal.SIGWINCH, send)


def proxy_signals(session: Session, container_id: str) -> None:
    """docker's --sig-proxy: Ctrl-C (SIGINT) and SIGTERM go to the container as
    ``POST /containers/ID/kill?signal=...``; the third one makes the CLI give up (exit 130)."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    received = []

    def forward(number, _frame) -> None:
        received.append(number)
        if len(received) >= 3:
            print(f"got {len(received)} signals, exiting without waiting for the container", file=sys.stderr)
            os._exit(130)
        from teachdock.client.api import Client  # noqa: PLC0415 - a fresh connection: the main one is busy

        try:
            with Client(session.client.host, autostart=False, tls=session.client.tls) as client:
                client.kill(container_id, signal.Signals(number).name)
        except TeachdockError:
            pass  # it has exited meanwhile

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)


def _with_tag(image: str) -> str:
    from teachdock.client.api import split_reference  # noqa: PLC0415

    name, tag = split_reference(image)
    return f"{name}{'@' if tag.startswith('sha256:') else ':'}{tag}"


# --- ps, inspect, logs ----------------------------------------------------------------------------------
def cmd_ps(session: Session) -> int:
    o = session.options
    containers = session.client.containers(all=o.all)
    if o.quiet:
        for c in containers:
            print(c["Id"][:12])
        return 0
    rows = []
    for c in containers:
        command = c.get("Command", "")
        command = f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"'
        rows.append([c["Id"][:12], c.get("Image", ""), command, ago(c.get("Created", 0)), c.get("Status", ""),
                     ports_column(c.get("Ports") or []), ",".join(name.lstrip("/") for name in c.get("Names") or [])])
    sys.stdout.write(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))
    return 0


def ports_column(ports: list[dict]) -> str:
    """docker ps's PORTS from /containers/json's Ports: ``0.0.0.0:8080->80/tcp, 53/udp`` (exposed, not published)."""
    shown = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""))):
        private = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        shown.append(f"{p.get('IP') or '0.0.0.0'}:{p['PublicPort']}->{private}" if p.get("PublicPort") else private)
    return ", ".join(dict.fromkeys(shown))


def cmd_inspect(session: Session) -> int:
    """Container, then image, network, volume: the first that knows the name, as docker does."""
    import json  # noqa: PLC0415

    from teachdock.client.transport import NotFoundError  # noqa: PLC0415

    client, found, status = session.client, [], 0
    for name in session.args:
        for path in (f"/containers/{name}/json", f"/images/{name}/json", f"/networks/{name}", f"/volumes/{name}"):
            try:
                found.append(client.request("GET", path).json())
                break
            except NotFoundError:
                continue
        else:
            print(f"Error: No such object: {name}", file=sys.stderr)
            status = 1
    print(json.dumps(found, indent=4))
    return status


def cmd_logs(session: Session) -> int:
    o = session.options
    for stream_id, data in session.client.log_frames(session.args[0], o.tail, follow=o.follow,
                                                     timestamps=o.timestamps):
        write_output(stream_id, data)
    return 0


def port_lines(ports: dict, private_port: str | None, container: str) -> list[str]:
    """What ``docker port`` prints from inspect's NetworkSettings.Ports, naturally sorted (80 before 443)."""
    def join(frontend: dict) -> str:  # Go's net.JoinHostPort: [::]:8080
        host = frontend.get("HostIp", "")
        return f"{f'[{host}]' if ':' in host else host}:{frontend.get('HostPort', '')}"

    if private_port:
        number, _, protocol = private_port.partition("/")
        if not number.isdigit() or int(number) > 65535:
            raise TeachdockError(f"Error: invalid port ({number})")
        frontends = (ports or {}).get(f"{number}/{protocol or 'tcp'}")
        if not frontends:
            raise TeachdockError(f"Error: No public port '{private_port}' published for {container}")
        lines = [join(frontend) for frontend in frontends]
    else:
        lines = [f"{key} -> {join(frontend)}" for key, frontends in (ports or {}).items() for frontend in frontends or []]
    return sorted(lines, key=lambda line: [int(part) if part.isdigit() else part
                                           for part in re.split(r"(\d+)", line)])


def cmd_port(session: Session) -> int:
    container, *private_port = session.args
    ports = session.client.inspect(container).get("NetworkSettings", {}).get("Ports")
    try:
        lines = port_lines(ports, private_port[0] if private_port else None, container)
    except TeachdockError as error:
        print(error, file=sys.stderr)
        return 1
    if lines:
        print("\n".join(lines))
    return 0


# --- lifecycle ------------------------------------------------------------------------------------------
def cmd_start(session: Session) -> int:
    o = session.options
    return for_each(session.args, lambda name: session.client.start(name, checkpoint=o.checkpoint,
                                                                    checkpoint_dir=o.checkpoint_dir))


def cmd_stop(session: Session) -> int:
    o = session.options
    return for_each(session.args, lambda name: session.client.stop(
        name, None if o.time is None else float(o.time), o.signal))


def cmd_kill(session: Session) -> int:
    return for_each(session.args, lambda name: session.client.kill(name, session.options.signal))


def cmd_pause(session: Session) -> int:
    return for_each(session.args, session.client.pause)


def cmd_unpause(session: Session) -> int:
    return for_each(session.args, session.client.unpause)


def cmd_restart(session: Session) -> int:
    timeout = session.options.time
    return for_each(session.args, lambda name: session.client.restart(name, None if timeout is None else float(timeout)))


def cmd_rename(session: Session) -> int:
    old, new = session.args
    try:
        session.client.rename(old, new)
    except TeachdockError as error:
        report(error)
        return 1
    return 0


def cmd_top(session: Session) -> int:
    name, *ps_args = session.args
    try:
        listing = session.client.top(name, " ".join(ps_args) or None)
    except TeachdockError as error:
        report(error)
        return 1
    rows = [listing["Titles"], *listing["Processes"]]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(listing["Titles"]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_cp(session: Session) -> int:
    """``teachdock cp CONTAINER:SRC DEST`` or ``cp SRC CONTAINER:DEST``, as docker cp."""
    source, destination = session.args
    try:
        if ":" in source and not os.path.exists(source):
            container, path = source.split(":", 1)
            copy_out(session.client, container, path, destination)
        elif ":" in destination:
            container, path = destination.split(":", 1)
            copy_in(session.client, source, container, path)
        else:
            raise UsageError("one side must be CONTAINER:PATH (copying between two host paths is cp's job)")
    except TeachdockError as error:
        report(error)
        return 1
    return 0


def copy_out(client, container: str, path: str, destination: str) -> None:
    """GET the archive, unpack it safely (an untrusted tar: see teachdock.client.untar) beside
    the destination, then move its top entry into place under the destination's name."""
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from teachdock.client.untar import extract, member_path  # noqa: PLC0415 - only cp pays for tarfile

    target = os.path.abspath(destination)
    if os.path.isdir(target):
        target = os.path.join(target, os.path.basename(path.rstrip("/")) or "root")
    scratch = tempfile.mkdtemp(prefix=".teachdock-cp-", dir=os.path.dirname(target) or ".")
    try:
        with tempfile.TemporaryFile(dir=scratch) as archive:
            stat = client.get_archive(container, path, archive)
            archive.seek(0)
            os.mkdir(os.path.join(scratch, "unpacked"))
            extract(archive, os.path.join(scratch, "unpacked"))
        top = member_path(os.path.join(scratch, "unpacked"), stat.get("name") or os.path.basename(path.rstrip("/")))
        if os.path.isdir(top) and os.path.isdir(target) and not os.path.islink(target):
            shutil.copytree(top, target, symlinks=True, dirs_exist_ok=True)
        else:
            os.replace(top, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_in(client, source: str, container: str, path: str) -> None:
    """Tar SOURCE (links as links) and PUT it into the container's directory PATH, or into its
    parent under PATH's name when PATH is not an existing directory."""
    import io  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    if not os.path.lexists(source):
        raise UsageError(f"no such file or directory on this machine: {source}")
    stat = client.stat_path(container, path)
    is_directory = stat is not None and bool(stat["mode"] & (1 << 31))  # Go's os.ModeDir
    directory, name = (path, os.path.basename(source.rstrip("/"))) if is_directory else \
        (os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path.rstrip("/")))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=name)
    client.put_archive(container, directory, archive.getvalue())


def cmd_rm(session: Session) -> int:
    force = session.options.force
    return for_each(session.args, lambda name: session.client.remove(name, force=force), quiet_not_found=force)


def cmd_wait(session: Session) -> int:
    status = 0
    for name in session.args:
        try:
            print(session.client.wait(name))
        except TeachdockError as error:
            report(error)
            status = 1
    return status


def cmd_exec(session: Session) -> int:
    o, args, client = session.options, session.args, session.client

    def started(exec_id: str) -> None:
        if o.tty:
            follow_terminal_size(lambda rows, columns: client.resize_exec(exec_id, rows, columns))

    with Terminal(raw=o.tty and o.interactive):
        result = client.exec(args[0], args[1:], detach=o.detach, environment=o.env, workdir=o.workdir,
                             user=o.user, input=sys.stdin.buffer if o.interactive else None, tty=o.tty,
                             console_size=terminal_size() if o.tty else None, output=write_output,
                             started=started, privileged=o.privileged)
    return 0 if o.detach else (result.exit_code if result.exit_code is not None else 0)


VERBS = {
    "run": (Verb("run", "IMAGE [COMMAND] [ARG...]", "Create and run a container, like `docker run`.",
                 "POST /containers/create (404 -> POST /images/create to pull, then create again), "
                 "POST /containers/ID/attach (101 hijack, multiplexed stdout/stderr), "
                 "POST /containers/ID/wait?condition=next-exit (removed with --rm), POST /containers/ID/start; "
                 "the exit code comes from the wait. With -d: create, then start.",
                 RUN_FLAGS, min_args=1, interspersed=False), cmd_run),
    "ps": (Verb("ps", "", "List containers (running ones; -a for all).", "GET /containers/json[?all=1]",
                [Flag("-a,--all", "show stopped containers too"), Flag("-q,--quiet", "only the ids")],
                max_args=0), cmd_ps),
    "inspect": (Verb("inspect", "NAME|ID [NAME|ID...]", "Everything the daemon knows about an object, as JSON.",
                     "GET /containers/NAME/json; on 404 GET /images/NAME/json, /networks/NAME, /volumes/NAME",
                     min_args=1), cmd_inspect),
    "logs": (Verb("logs", "CONTAINER", "What a container wrote on stdout and stderr.",
                  "GET /containers/ID/logs?stdout=1&stderr=1&tail=all[&follow=1] (multiplexed stream)",
                  [Flag("-f,--follow", "keep printing until the container stops"),
                   Flag("-n,--tail", "only the last N lines", value="N"),
                   Flag("-t,--timestamps", "show the time of each line")], min_args=1, max_args=1), cmd_logs),
    "start": (Verb("start", "CONTAINER [CONTAINER...]", "Start stopped containers (in the background).",
                   "POST /containers/ID/start[?checkpoint=NAME&checkpoint-dir=DIR] (204; 304 when it runs already)",
                   [Flag("--checkpoint", "restore from this checkpoint (CRIU) instead of starting anew", value="NAME"),
                    Flag("--checkpoint-dir", "where that checkpoint is, if not with the container", value="DIR")],
                   min_args=1), cmd_start),
    "stop": (Verb("stop", "CONTAINER [CONTAINER...]", "Stop containers: the stop signal, then SIGKILL after a grace "
                  "period.", "POST /containers/ID/stop[?t=SECONDS&signal=SIG]",
                  [Flag("-t,--time", "seconds to wait before SIGKILL (default 10)", value="SECONDS"),
                   Flag("-s,--signal", "signal to send first (default: the image's StopSignal, SIGTERM)",
                        value="SIG")], min_args=1), cmd_stop),
    "kill": (Verb("kill", "CONTAINER [CONTAINER...]", "Send a signal (SIGKILL by default) to containers' PID 1.",
                  "POST /containers/ID/kill[?signal=SIG]",
                  [Flag("-s,--signal", "signal to send", value="SIG")], min_args=1), cmd_kill),
    "rm": (Verb("rm", "CONTAINER [CONTAINER...]", "Remove containers (their snapshot, logs and record).",
                "DELETE /containers/ID[?force=1]",
                [Flag("-f,--force", "kill it first if it runs")], min_args=1), cmd_rm),
    "pause": (Verb("pause", "CONTAINER [CONTAINER...]", "Freeze every process of containers where they stand "
                   "(the freezer cgroup; no signal, they cannot notice).", "POST /containers/ID/pause",
                   min_args=1), cmd_pause),
    "unpause": (Verb("unpause", "CONTAINER [CONTAINER...]", "Let paused containers run on.",
                     "POST /containers/ID/unpause", min_args=1), cmd_unpause),
    "restart": (Verb("restart", "CONTAINER [CONTAINER...]", "Stop containers, then start them again.",
                     "POST /containers/ID/restart[?t=SECONDS]",
                     [Flag("-t,--time", "seconds to wait before SIGKILL (default 10)", value="SECONDS")],
                     min_args=1), cmd_restart),
    "port": (Verb("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "The host ports a container's ports are published "
                  "on (-p, -P).", "GET /containers/ID/json (NetworkSettings.Ports)", min_args=1, max_args=2), cmd_port),
    "rename": (Verb("rename", "CONTAINER NEW_NAME", "Give a container another name (its id stays).",
                    "POST /containers/ID/rename?name=NEW_NAME", min_args=2, max_args=2), cmd_rename),
    "top": (Verb("top", "CONTAINER [ps OPTIONS]", "The container's processes, as the host's ps sees them "
                 "(host PIDs).", "GET /containers/ID/top[?ps_args=...]", min_args=1, interspersed=False), cmd_top),
    "cp": (Verb("cp", "CONTAINER:SRC DEST | SRC CONTAINER:DEST", "Copy files out of or into a container, "
                "running or not (a volume's files too).",
                "HEAD/GET /containers/ID/archive?path=SRC (a tar out); PUT /containers/ID/archive?path=DIR (a tar in)",
                min_args=2, max_args=2), cmd_cp),
    "wait": (Verb("wait", "CONTAINER [CONTAINER...]", "Block until containers stop; print their exit codes.",
                  "POST /containers/ID/wait", min_args=1), cmd_wait),
    "exec": (Verb("exec", "CONTAINER COMMAND [ARG...]", "Run a command in a running container.",
                  "POST /containers/ID/exec, POST /exec/EID/start (101 hijack; with -d a plain 200), "
                  "GET /exec/EID/json for the exit code",
                  [Flag("-d,--detach", "run it in the background"),
                   Flag("-i,--interactive", "send this command's stdin to it"),
                   Flag("-t,--tty", "give it a terminal"),
                   Flag("-e,--env", "set an environment variable", value="KEY=VALUE", repeat=True),
                   Flag("-w,--workdir", "working directory", value="DIR"),
                   Flag("-u,--user", "user[:group]", value="USER"),
                   Flag("--privileged", "every capability the machine grants, for this command")],
                  min_args=2, interspersed=False), cmd_exec),
}
