"""Container routes: create, start, attach, wait, logs, stop, kill, rm, inspect, ps.

``docker run --rm busybox echo hi`` in the foreground is five requests, in this order
(see the API digest, section 2): create -> attach (101 hijack) -> wait?condition=removed
(headers flushed at once) -> start -> output on the attach socket, which closes when the
program exits; then the wait body carries the exit code the CLI exits with.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import threading
import time

from teachdock.daemon import api_checkpoints, container_config, filters, health, logs, volumes
from teachdock.daemon.container_networks import HOST_PORTS_WARNING, ps_ports
from teachdock.daemon.containers import ContainerRecord, parse_signal, unix_seconds
from teachdock.daemon.server import HTTPError
from teachdock.errors import Conflict, TeachdockError
from teachdock.units import human_duration

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"  # a container with a terminal (-t): one stream, no frames


def _framer(record: ContainerRecord):
    """How output goes on the wire: multiplexed frames, or raw bytes with a terminal."""
    if record.data["Config"].get("Tty"):
        return lambda _stream, data: data
    return logs.frame


# --- create, start, inspect, list ---------------------------------------------------------------------
def create(daemon, request) -> None:
    body = request.json()
    record = daemon.containers.create(body, request.query.get("name") or None)
    host = record.data["HostConfig"]
    warnings = [HOST_PORTS_WARNING] if host.get("NetworkMode") == "host" and (
        host.get("PortBindings") or host.get("PublishAllPorts")) else []
    warnings += container_config.swap_warnings(body.get("HostConfig") or {}, daemon.containers.swap_accounting)
    request.handler.send_json(201, {"Id": record.id, "Warnings": warnings})


def start(daemon, request, name: str) -> None:
    record = daemon.containers.get(name)
    if request.query.get("checkpoint"):  # docker start --checkpoint NAME: its saved processes run on
        started = api_checkpoints.start_from_checkpoint(daemon, request, record)
    else:
        started = daemon.containers.start(record)
    request.handler.send_bytes(204 if started else 304, b"", None)


def inspect(daemon, request, name: str) -> None:
    request.handler.send_json(200, inspect_json(daemon, daemon.containers.get(name)))


def inspect_json(daemon, record: ContainerRecord) -> dict:
    data = dict(record.data)
    data["State"] = dict(data["State"])
    data["Mounts"] = mounts_of(record)
    data["NetworkSettings"] = daemon.containers.networking.inspect(record)
    data["ResolvConfPath"] = data["HostnamePath"] = data["HostsPath"] = ""
    data["MountLabel"] = data["ProcessLabel"] = data["AppArmorProfile"] = ""
    data["ExecIDs"] = None
    data["GraphDriver"] = {"Name": data.get("Driver", ""), "Data": {"MergedDir": data.get("Rootfs", "")}}
    data.pop("Rootfs", None)
    return data


def mounts_of(record: ContainerRecord) -> list[dict]:
    """What it mounted at its last start, or, before any start, what it will mount."""
    if "Mounts" in record.data:
        return record.data["Mounts"]
    return volumes.planned_mounts(record.data)


def list_containers(daemon, request) -> None:
    """``docker ps [-a] [--filter ...]``; compose lists its containers by label this way."""
    show_all = request.flag("all")
    wanted = request.filters()
    filters.check_keys(wanted, filters.CONTAINER_KEYS)
    health_matches = health.health_filter(wanted.pop("health", None))  # --filter health=healthy
    summaries = []
    for record in daemon.containers.list():
        if not show_all and not record.running and "status" not in wanted:  # moby: status= shows all
            continue
        networks = daemon.containers.networking.inspect(record)["Networks"]
        if wanted and not filters.container_matches(
                wanted, container_id=record.id, name=record.name, status=record.status,
                data={**record.data, "Mounts": mounts_of(record)},
                networks=[(network.get("NetworkID") or "", name) for name, network in networks.items()]):
            continue
        if not health_matches(record.data):
            continue
        config = record.data["Config"]
        summaries.append({
            "Id": record.id, "Names": [record.name], "Image": config["Image"], "ImageID": record.data["Image"],
            "Command": shlex.join([record.data["Path"], *record.data["Args"]]),  # quoted as dockerd does
            "Created": unix_seconds(record.data["Created"]), "State": record.status,
            "Status": status_text(record),
            "Ports": ps_ports((record.data.get("NetworkSettings") or {}).get("Ports")), "Labels": config.get("Labels") or {},
            **(_sizes(daemon, record) if request.flag("size") else {}), "Mounts": mounts_of(record),
            "HostConfig": {"NetworkMode": record.data["HostConfig"].get("NetworkMode", "none")},
            "NetworkSettings": {"Networks": networks},
        })
    request.handler.send_json(200, summaries)


def _sizes(daemon, record: ContainerRecord) -> dict:
    """``docker ps --size``: SizeRw, the bytes of the files the container wrote or changed (its
    overlay upper dir), and SizeRootFs, those plus its image unpacked (the "virtual" size)."""
    written = 0
    try:
        upper = daemon.images.snapshots.get(record.id).upper
    except TeachdockError:
        upper = None
    for directory, _subdirs, files in os.walk(upper) if upper else ():
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            written += info.st_size if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode) else 0
    try:
        image_size = daemon.images.store.unpacked_size(daemon.images.get(record.data["Image"]))
    except TeachdockError:
        image_size = 0
    return {"SizeRw": written, "SizeRootFs": written + image_size}


def status_text(record: ContainerRecord) -> str:
    """The STATUS column of ``docker ps``: "Up 5 seconds", "Exited (0) 3 minutes ago", "Created"."""
    state = record.data["State"]
    if record.running:
        paused = " (Paused)" if record.status == "paused" else ""
        return f"Up {human_duration(time.time() - unix_seconds(state['StartedAt']))}{paused}" \
               f"{health.ps_status_suffix(record.data)}"
    if record.status == "exited":
        return f"Exited ({state['ExitCode']}) {human_duration(time.time() - unix_seconds(state['FinishedAt']))} ago"
    return record.status.capitalize()


# --- stop, kill, remove --------------------------------------------------------------------------------------
def stop(daemon, request, name: str) -> None:
    record = daemon.containers.get(name)
    timeout = request.query.get("t")
    sig = request.query.get("signal")
    stopped = daemon.containers.stop(record, None if timeout in (None, "") else float(timeout),
                                     parse_signal(sig) if sig else None)
    request.handler.send_bytes(204 if stopped else 304, b"", None)


def kill(daemon, request, name: str) -> None:
    record = daemon.containers.get(name)
    try:
        daemon.containers.kill(record, parse_signal(request.query.get("signal") or "SIGKILL"))
    except Conflict:  # dockerd names the container as the user did
        raise Conflict(f"Cannot kill container: {name}: Container {record.id} is not running") from None
    request.handler.send_bytes(204, b"", None)


def remove(daemon, request, name: str) -> None:
    daemon.containers.remove(daemon.containers.get(name), force=request.flag("force"), remove_volumes=request.flag("v"))
    request.handler.send_bytes(204, b"", None)


# --- wait ---------------------------------------------------------------------------------------------------
def wait(daemon, request, name: str) -> None:
    """Headers first (flushed), body when the condition is met: ``docker run`` sends ``start``
    only after these headers arrive, so writing nothing until the exit would deadlock."""
    record = daemon.containers.get(name)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise HTTPError(400, f"invalid condition: {condition!r}")
    handler = request.handler
    handler.start_chunks(200, "application/json")
    if condition == "removed":
        code = daemon.containers.wait_removed(record, cancelled=request.client_gone)
    else:
        code = daemon.containers.wait_exit(record, None, next_exit=condition == "next-exit",
                                           cancelled=request.client_gone)
    if code is None and request.client_gone():
        handler.close_connection = True  # `docker run -d` left without waiting: nothing to say
        return
    # dockerd's wait carries no Error for a program that failed to start: the start request
    # already said why, and the CLI would print it twice.
    error = record.data["State"].get("Error") if record.status == "exited" else ""
    body = {"StatusCode": code if code is not None else record.data["State"]["ExitCode"],
            "Error": {"Message": error} if error else None}
    handler.write_chunk(json_line(body))
    handler.end_chunks()


def json_line(value) -> bytes:
    import json  # noqa: PLC0415

    return json.dumps(value).encode() + b"\n"


# --- logs and attach ------------------------------------------------------------------------------------------
def _streams(request) -> set[str]:
    wanted = {name for name in ("stdout", "stderr") if request.flag(name)}
    return wanted


def container_logs(daemon, request, name: str) -> None:
    """``docker logs [-f] [--tail N] [-t]``: the json-file, re-framed for the multiplexed stream."""
    record = daemon.containers.get(name)
    wanted = _streams(request)
    if not wanted:
        raise HTTPError(400, "Bad parameters: you must choose at least one stream")
    tail_text = request.query.get("tail", "all")
    tail = None if tail_text in ("", "all") or not tail_text.lstrip("-").isdigit() or int(tail_text) < 0 else int(tail_text)
    timestamps = request.flag("timestamps")
    handler = request.handler
    framer = _framer(record)
    handler.start_chunks(200, RAW if record.data["Config"].get("Tty") else MULTIPLEXED)
    for entry in logs.read_entries(record.log_path, tail=tail, follow=request.flag("follow"),
                                   still_running=lambda: _active(record), pause=_pause_until_changed(record)):
        if entry.get("stream") not in wanted:
            continue
        text = entry.get("log", "")
        if timestamps:
            text = f"{entry.get('time', '')} {text}"
        handler.write_chunk(framer(entry["stream"], text.encode()))
    handler.end_chunks()


def _pause_until_changed(record: ContainerRecord):
    """A pause for log followers that ends early when the container exits or is removed."""
    def pause(seconds: float) -> None:
        with record.changed:
            record.changed.wait(seconds)
    return pause


def _active(record: ContainerRecord) -> bool:
    """Output may still come: the container runs, or it was created and waits for ``start``."""
    if record.removed:
        return False
    # created and not yet started; a start that failed leaves "created" with an Error: done
    return record.running or (record.status == "created" and not record.data["State"].get("Error"))


def attach(daemon, request, name: str) -> None:
    """``docker run`` (foreground) attaches before it starts the container; output from then on
    goes out as multiplexed frames, and the socket closes once the program has exited.

    Without ``stdin=1`` the CLI half-closes its side at once: that is not a disconnect, so
    nothing is read. With ``stdin=1`` (``docker run -i``) a thread copies what the client
    sends into the container's stdin — piped input arrives even before ``start`` — and the
    client's end-of-file closes that stdin when the container was created with StdinOnce.
    """
    record = daemon.containers.get(name)
    wanted = _streams(request)
    with_stdin = request.flag("stdin")
    if with_stdin and not record.data["Config"].get("OpenStdin"):
        raise HTTPError(409, "the container was created without OpenStdin (docker run -i): cannot attach stdin")
    handler = request.handler
    framer = _framer(record)
    content_type = RAW if record.data["Config"].get("Tty") else MULTIPLEXED
    if request.headers.get("Upgrade", "").lower() == "tcp":
        sock = handler.hijack(content_type)
    else:  # an old-style attach: a plain response whose body ends when the connection closes
        sock = handler.start_raw_stream(content_type)
    if with_stdin:
        threading.Thread(target=_copy_stdin, args=(daemon, record, handler.rfile), daemon=True,
                         name=f"stdin-{record.id[:12]}").start()
    try:
        if wanted:
            # logs=1: what was written so far too; otherwise only output from now on.
            for entry in logs.read_entries(record.log_path, from_end=not request.flag("logs"), follow=True,
                                           still_running=lambda: _active(record), pause=_pause_until_changed(record)):
                if entry.get("stream") in wanted:
                    sock.sendall(framer(entry["stream"], entry.get("log", "").encode()))
        elif with_stdin:
            daemon.containers.wait_exit(record, None)
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # also wakes the stdin thread blocked in a read
        except OSError:
            pass


def _copy_stdin(daemon, record: ContainerRecord, source) -> None:
    """Client -> container stdin, until the client's end-of-file (its half-close)."""
    once = bool(record.data["Config"].get("StdinOnce"))
    try:
        while chunk := source.read1(65536):  # read1: bytes buffered with the request come first
            daemon.containers.write_stdin(record, chunk)
    except OSError:
        pass
    daemon.containers.write_stdin(record, b"", end=once)


def pause(daemon, request, name: str) -> None:
    daemon.containers.pause(daemon.containers.get(name))
    request.handler.send_bytes(204, b"", None)


def unpause(daemon, request, name: str) -> None:
    daemon.containers.unpause(daemon.containers.get(name))
    request.handler.send_bytes(204, b"", None)


def restart(daemon, request, name: str) -> None:
    """``docker restart``: stop (grace period ``t``), then start again."""
    timeout = request.query.get("t")
    daemon.containers.restart(daemon.containers.get(name), None if timeout in (None, "") else float(timeout))
    request.handler.send_bytes(204, b"", None)


def rename(daemon, request, name: str) -> None:
    new_name = request.query.get("name", "")
    if not new_name:
        raise HTTPError(400, "Neither old nor new names may be empty")
    daemon.containers.rename(daemon.containers.get(name), new_name)
    request.handler.send_bytes(204, b"", None)


def top(daemon, request, name: str) -> None:
    """``docker top``: what dockerd does — run the host's ``ps`` and keep the rows whose PID
    is in the container's cgroup. The PIDs are the host's, not the container's own."""
    record = daemon.containers.get(name)
    if not record.running or record.runtime is None:
        raise Conflict(f"Container {record.id} is not running")
    pids = {str(pid) for pid in record.runtime.cgroup.processes()}
    arguments = (request.query.get("ps_args") or "-ef").split()
    result = subprocess.run(["ps", *arguments], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise HTTPError(500, f"ps {' '.join(arguments)} failed: {result.stderr.strip()}")
    header, *rows = result.stdout.splitlines()
    titles = header.split()
    if "PID" not in titles:
        raise HTTPError(500, f"ps {' '.join(arguments)} has no PID column")
    column = titles.index("PID")
    processes = []
    for row in rows:
        fields = row.split(None, len(titles) - 1)  # the last column (the command) keeps its spaces
        if len(fields) > column and fields[column] in pids:
            processes.append(fields)
    request.handler.send_json(200, {"Titles": titles, "Processes": processes})


def terminal_size(request) -> tuple[int, int]:
    """``?h=ROWS&w=COLUMNS`` of a /resize request (containers and exec instances alike)."""
    try:
        height, width = int(request.query.get("h", "")), int(request.query.get("w", ""))
    except ValueError:
        raise HTTPError(400, "resize needs h and w, the terminal's rows and columns, as numbers") from None
    if not (0 <= height < 65536 and 0 <= width < 65536):
        raise HTTPError(400, f"impossible terminal size {height}x{width}")
    return height, width


def resize(daemon, request, name: str) -> None:
    """``POST /containers/{id}/resize?h=&w=``: the size of the user's terminal (``run -it``)."""
    record = daemon.containers.get(name)
    daemon.containers.resize(record, *terminal_size(request))
    request.handler.send_bytes(200, b"", None)


def register(router) -> None:
    router.add("POST", "/containers/{name}/resize", resize)
    router.add("POST", "/containers/{name}/restart", restart)
    router.add("POST", "/containers/{name}/pause", pause)
    router.add("POST", "/containers/{name}/unpause", unpause)
    router.add("POST", "/containers/{name}/rename", rename)
    router.add("GET", "/containers/{name}/top", top)
    router.add("GET", "/containers/json", list_containers)
    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/{name}/json", inspect)
    router.add("POST", "/containers/{name}/start", start)
    router.add("POST", "/containers/{name}/stop", stop)
    router.add("POST", "/containers/{name}/kill", kill)
    router.add("POST", "/containers/{name}/wait", wait)
    router.add("POST", "/containers/{name}/attach", attach)
    router.add("GET", "/containers/{name}/logs", container_logs)
    router.add("DELETE", "/containers/{name}", remove)
