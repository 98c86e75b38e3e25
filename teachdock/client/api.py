"""``Client``: the Engine API from Python, one method per thing docker does.

Each method is a few HTTP requests to teachdockd (see the API digest for what the docker CLI
sends); ``client.trace`` keeps every request made, with its status and duration, so that a
notebook can show what ``run`` really is: create -> attach -> wait -> start.
"""

from __future__ import annotations

import json
import os

from teachdock.client.checkpoints import CheckpointCalls
from teachdock.client.hosts import resolve_host, resolve_tls
from teachdock.client.create_body import create_body
from teachdock.client.transfers import TransferMethods
from teachdock.client.transport import (STDERR, STDIN, STDOUT, APIError, Connection, DaemonUnavailable,
                                        ImageNotFoundError, NotFoundError, RawStream, Response, TLSConfig, TraceEntry,
                                        api_error, parse_host, quote, split_frames, urlencode)

API_PREFIX = "/v1.45"


class RunOutput:
    """What ``run`` and ``exec`` give back. ``exit_code`` is None for a detached run."""

    __slots__ = ("id", "exit_code", "stdout", "stderr")

    def __init__(self, id: str, exit_code: int | None, stdout: str = "", stderr: str = ""):  # noqa: A002
        self.id, self.exit_code, self.stdout, self.stderr = id, exit_code, stdout, stderr

    def __repr__(self) -> str:
        return (f"RunOutput(id={self.id[:12]!r}, exit_code={self.exit_code!r}, stdout={self.stdout!r}, "
                f"stderr={self.stderr!r})")


class Client(TransferMethods, CheckpointCalls):
    """A connection to one teachdockd (export and import: teachdock.client.transfers; checkpoints:
    teachdock.client.checkpoints).

    ``host``: ``unix:///path`` or ``tcp://127.0.0.1:PORT``; None picks it as the docker CLI
    would (see teachdock.client.hosts). ``autostart`` (default on; ``$TEACHDOCK_AUTOSTART=0``
    turns the default off): if nothing answers on a unix socket, start a daemon there (data
    root ``$TEACHDOCK_DATA_ROOT`` or /var/lib/teachdock) and keep it in ``started_daemon``.
    """

    def __init__(self, host: str | None = None, *, autostart: bool | None = None, timeout: float | None = None,
                 tls=None):
        self.host = resolve_host(host)
        self.kind, _ = parse_host(self.host)
        # tls: a TLSConfig, or the command line's TLSFlags, or None ($DOCKER_TLS_VERIFY decides)
        self.tls = tls if isinstance(tls, TLSConfig) else resolve_tls(self.host, tls)
        if autostart is None:  # on, unless $TEACHDOCK_AUTOSTART says 0/no/false
            autostart = os.environ.get("TEACHDOCK_AUTOSTART", "1").lower() not in ("0", "no", "false", "off")
        self.autostart = autostart and self.kind == "unix"
        self.timeout = timeout
        self.trace: list[TraceEntry] = []
        self.started_daemon = None  # the EmbeddedDaemon autostart made, if any
        self.on_autostart = None    # called with it (the CLI says so on stderr)
        self._idle: list[Connection] = []

    def __repr__(self) -> str:
        return f"Client(host={self.host!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    # --- HTTP --------------------------------------------------------------------------------------------
    def _connect(self) -> Connection:
        if self._idle:
            return self._idle.pop()
        try:
            return Connection(self.host, self.timeout, self.tls)
        except DaemonUnavailable as error:
            if not self.autostart or self.started_daemon is not None or not error.nobody_listens:
                raise
        from teachdock.client.autostart import start_daemon  # noqa: PLC0415 - only when needed

        from teachdock import paths  # noqa: PLC0415

        self.started_daemon = start_daemon(self.host, paths.data_root())
        if self.on_autostart is not None:
            self.on_autostart(self.started_daemon)
        return Connection(self.host, self.timeout)

    def _send(self, method: str, path: str, query=None, body=None, headers=None) -> tuple[Connection, Response, TraceEntry]:
        """Send one request and read the answer's head; a reused connection the daemon has
        closed meanwhile is replaced once."""
        encoded = urlencode(_query_items(query)) if query else ""
        if encoded:
            path += "?" + encoded
        versioned = path == "/_ping" or (path.startswith("/v") and path[2:3].isdigit())  # "/v1.45/..." given
        full_path = path if versioned else API_PREFIX + path
        all_headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        entry = TraceEntry(method, path)
        self.trace.append(entry)
        for attempt in (1, 2):
            connection = self._connect()
            reused = connection.used > 0
            try:
                connection.send_request(method, full_path, body, all_headers)
                response = connection.read_response(method)
            except (ConnectionResetError, BrokenPipeError):
                connection.close()
                if reused and attempt == 1 and (body is None or isinstance(body, bytes)):
                    continue
                raise
            except OSError as error:
                connection.close()
                hint = (" (over TLS, right after the handshake: the daemon refuses this client's certificate, or "
                        "none was sent: --tlscert/--tlskey or $DOCKER_CERT_PATH/cert.pem)") if self.tls and not reused else ""
                raise DaemonUnavailable(f"lost the connection to teachdockd at {self.host}: {error}{hint}") from None
            entry.status = response.status
            return connection, response, entry
        raise AssertionError("unreachable")

    def _release(self, connection: Connection) -> None:
        if connection.reusable:
            self._idle.append(connection)
        else:
            connection.close()

    def request(self, method: str, path: str, *, query=None, body=None, headers=None) -> Response:
        """One request, the whole answer read; an APIError for a status of 400 or more."""
        connection, response, entry = self._send(method, path, query, body, headers)
        try:
            response.body  # noqa: B018 - reads it, so that the connection can take the next request
        except OSError:
            connection.close()
            raise
        entry.done()
        self._release(connection)
        if response.status >= 400:
            raise api_error(response.status, response.body, method, path)
        return response

    def stream(self, method: str, path: str, *, query=None, body=None, headers=None):
        """The answer's body as it comes, one JSON object per line (pull, build, events)."""
        connection, response, entry = self._open_stream(method, path, query, body, headers)
        yield from self._drain(connection, entry, response.iter_lines())

    def stream_bytes(self, method: str, path: str, *, query=None, on_headers=None):
        """Raw body chunks (logs -f, save, cp); ``on_headers(response)`` sees the headers first."""
        connection, response, entry = self._open_stream(method, path, query)
        if on_headers is not None:
            on_headers(response)
        yield from self._drain(connection, entry, response.iter_chunks())

    def _open_stream(self, method: str, path: str, query=None, body=None, headers=None):
        """Send a request whose answer is read as it comes: an error status is read whole and
        raised as an APIError; otherwise (connection, response, trace entry), body unread."""
        connection, response, entry = self._send(method, path, query, body, headers)
        if response.status >= 400:
            data = response.body
            entry.done()
            self._release(connection)
            raise api_error(response.status, data, method, path)
        return connection, response, entry

    def _drain(self, connection: Connection, entry: TraceEntry, items):
        """Yield ``items`` (the body, piece by piece); the connection is reused once the body
        is read to its end, closed when the caller stops early (events, logs -f)."""
        try:
            yield from items
        except GeneratorExit:
            connection.close()  # the rest is never read
            raise
        finally:
            entry.done()
        self._release(connection)

    def hijack(self, method: str, path: str, *, query=None, body=None) -> RawStream:
        """A request answered by ``101 UPGRADED``: the socket becomes a raw stream (attach, exec)."""
        connection, response, entry = self._send(method, path, query, body,
                                                 {"Connection": "Upgrade", "Upgrade": "tcp"})
        entry.done()
        if response.status != 101:
            data = response.body
            connection.close()
            if response.status >= 400:
                raise api_error(response.status, data, method, path)
            raise APIError(response.status, f"expected 101 UPGRADED from {path}, got {response.status}")
        connection.sock.settimeout(None)
        return RawStream(connection)

    # --- system ---------------------------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when a daemon answers (never starts one)."""
        autostart, self.autostart = self.autostart, False
        try:
            return self.request("GET", "/_ping").body == b"OK"
        except (DaemonUnavailable, APIError):
            return False
        finally:
            self.autostart = autostart

    def version(self) -> dict:
        return self.request("GET", "/version").json()

    def info(self) -> dict:
        return self.request("GET", "/info").json()

    def events(self, since=None, until=None, filters: dict | None = None):
        """Iterator of events (dicts); without ``until`` it waits for new ones forever."""
        query = {"since": since, "until": until, "filters": json.dumps(filters) if filters else None}
        return self.stream("GET", "/events", query=query)

    # --- containers -------------------------------------------------------------------------------------
    def create(self, image: str, command=None, *, name=None, progress=None, **settings) -> str:
        """``POST /containers/create`` (pulling the image on a 404 "No such image", as docker does).

        ``settings``: ``docker run``'s flags as keywords — environment, workdir, user, memory, cpus,
        pids_limit, volumes, network, remove, stdin_open, tty, console_size, entrypoint, labels,
        publish, publish_all, network_aliases, healthcheck, read_only, privileged, cap_add,
        cap_drop, devices, device_cgroup_rules, security_opt (:func:`teachdock.client.create_body.create_body`)."""
        body = create_body(image, command, **settings)
        query = {"name": name} if name else None
        try:
            return self.request("POST", "/containers/create", query=query, body=body).json()["Id"]
        except ImageNotFoundError:
            if progress is not None:  # the CLI says "Unable to find image ... locally" now, before the pull
                progress({"status": "image not found locally", "local": True})
            self.pull(image, progress=progress)
            return self.request("POST", "/containers/create", query=query, body=body).json()["Id"]

    def run(self, image: str, command=None, *, name=None, detach=False, remove=False, input=None,  # noqa: A002
            output=None, progress=None, started=None, **settings) -> RunOutput:
        """``docker run``: create -> attach (101) -> wait -> start -> output -> exit code.

        ``input``: bytes or str for the program's stdin (``-i``), or a binary file object to
        copy (the CLI's own stdin). ``output(stream, data)``, when given, gets each piece of
        output as it comes (stream 1 = stdout, 2 = stderr) instead of collecting it.
        ``progress(message)`` sees the pull, if one is needed; ``started(id)`` is called once
        the program runs (the CLI forwards Ctrl-C to it from then on). ``tty``: the program
        gets a terminal (``-t``; ``console_size=(rows, columns)``) and its output is one raw
        stream, all of it "stdout".
        """
        container_id = self.create(image, command, name=name, remove=remove, stdin_open=input is not None,
                                   progress=progress, **settings)
        tty = bool(settings.get("tty"))
        if detach:
            self.start(container_id)
            return RunOutput(container_id, None)
        attach_query = {"stream": 1, "stdout": 1, "stderr": 1}
        if input is not None:
            attach_query["stdin"] = 1
        stream = self.hijack("POST", f"/containers/{container_id}/attach", query=attach_query)
        try:
            _feed(stream, input)
            # The wait goes out before start, on its own connection: its headers come at once,
            # its body (the exit code) when the condition is met.
            wait_conn, wait_response, wait_entry = self._send(
                "POST", f"/containers/{container_id}/wait",
                {"condition": "removed" if remove else "next-exit"})
            if wait_response.status >= 400:
                error = api_error(wait_response.status, wait_response.body, "POST", wait_entry.path)
                wait_conn.close()
                raise error
            try:
                self.start(container_id)
            except APIError as error:
                wait_conn.close()
                return RunOutput(container_id, start_failure_code(error.message), "", error.message)
            if started is not None:
                started(container_id)
            collected = {STDOUT: [], STDERR: []}
            for stream_id, data in _output_of(stream, tty):
                if stream_id == STDIN:
                    stream_id = STDOUT
                if output is not None:
                    output(stream_id, data)
                elif stream_id in collected:
                    collected[stream_id].append(data)
        finally:
            stream.close()
        try:
            result = json.loads(wait_response.body)
        finally:
            wait_entry.done()
            self._release(wait_conn)
        code = result.get("StatusCode", 125)
        if (result.get("Error") or {}).get("Message") and code == 0:
            code = 125
        return RunOutput(container_id, code, b"".join(collected[STDOUT]).decode(errors="replace"),
                         b"".join(collected[STDERR]).decode(errors="replace"))

    def containers(self, all: bool = False, filters: dict | None = None) -> list[dict]:  # noqa: A002
        query = {"all": 1 if all else None, "filters": json.dumps(filters) if filters else None}
        return self.request("GET", "/containers/json", query=query).json()

    def inspect(self, container: str) -> dict:
        return self.request("GET", f"/containers/{_seg(container)}/json").json()

    def logs(self, container: str, tail=None, *, timestamps=False) -> str:
        """Everything logged so far (stdout and stderr interleaved as written)."""
        return b"".join(data for _, data in self.log_frames(container, tail, timestamps=timestamps)).decode(
            errors="replace")

    def log_frames(self, container: str, tail=None, *, follow=False, timestamps=False):
        """(stream id, bytes) from ``GET /containers/ID/logs``; with ``follow`` as they are
        written, until the container stops (``logs -f``). A container with a terminal (-t)
        logs one raw stream: its bytes come as stream 1."""
        query = {"stdout": 1, "stderr": 1, "follow": 1 if follow else None, "tail": "all" if tail is None else tail,
                 "timestamps": 1 if timestamps else None}
        connection, response, entry = self._open_stream("GET", f"/containers/{_seg(container)}/logs", query)
        raw = response.headers.get("content-type", "") == "application/vnd.docker.raw-stream"

        def frames():
            pending = b""
            for chunk in response.iter_chunks():
                if raw:
                    yield STDOUT, chunk
                    continue
                complete, pending = split_frames(pending + chunk)
                yield from complete

        yield from self._drain(connection, entry, frames())

    def start(self, container: str, *, checkpoint: str | None = None, checkpoint_dir: str | None = None) -> bool:
        """False if it was running already (304). ``checkpoint``: run that checkpoint's processes instead."""
        query = {"checkpoint": checkpoint, "checkpoint-dir": checkpoint_dir}
        return self.request("POST", f"/containers/{_seg(container)}/start", query=query).status == 204

    def stop(self, container: str, timeout: float | None = None, signal: str | None = None) -> bool:
        query = {"t": None if timeout is None else int(timeout), "signal": signal}
        return self.request("POST", f"/containers/{_seg(container)}/stop", query=query).status == 204

    def kill(self, container: str, signal: str | None = None) -> None:
        self.request("POST", f"/containers/{_seg(container)}/kill", query={"signal": signal})

    def pause(self, container: str) -> None:
        """Freeze every process of the container (the freezer cgroup)."""
        self.request("POST", f"/containers/{_seg(container)}/pause")

    def unpause(self, container: str) -> None:
        self.request("POST", f"/containers/{_seg(container)}/unpause")

    def restart(self, container: str, timeout: float | None = None) -> None:
        self.request("POST", f"/containers/{_seg(container)}/restart",
                     query={"t": None if timeout is None else int(timeout)})

    def rename(self, container: str, new_name: str) -> None:
        self.request("POST", f"/containers/{_seg(container)}/rename", query={"name": new_name})

    def top(self, container: str, ps_args: str | None = None) -> dict:
        """{"Titles": [...], "Processes": [[...], ...]}: the host's ps, the container's processes."""
        return self.request("GET", f"/containers/{_seg(container)}/top", query={"ps_args": ps_args}).json()

    def remove(self, container: str, force: bool = False) -> None:
        self.request("DELETE", f"/containers/{_seg(container)}", query={"force": 1 if force else None})

    def wait(self, container: str, condition: str = "not-running") -> int:
        result = self.request("POST", f"/containers/{_seg(container)}/wait", query={"condition": condition}).json()
        return result["StatusCode"]

    def exec(self, container: str, cmd, *, detach=False, environment=None, workdir=None, user=None,
             input=None, tty=False, console_size=None, output=None, started=None,  # noqa: A002
             privileged=False) -> RunOutput:
        """``docker exec``: POST /containers/ID/exec, POST /exec/EID/start (101), GET /exec/EID/json.
        ``privileged``: every capability the machine grants (``docker exec --privileged``)."""
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        env = environment or []
        if isinstance(env, dict):
            env = [f"{key}={value}" for key, value in env.items()]
        body = {"Cmd": list(cmd), "AttachStdin": input is not None, "AttachStdout": not detach,
                "AttachStderr": not detach, "Tty": bool(tty), "Env": list(env) or None,
                "WorkingDir": workdir or "", "User": user or "", "Detach": detach, "Privileged": bool(privileged)}
        if console_size:
            body["ConsoleSize"] = list(console_size)
        exec_id = self.request("POST", f"/containers/{_seg(container)}/exec", body=body).json()["Id"]
        if detach:
            self.request("POST", f"/exec/{exec_id}/start", body={"Detach": True, "Tty": False})
            return RunOutput(exec_id, None)
        stream = self.hijack("POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": bool(tty)})
        collected = {STDOUT: [], STDERR: []}
        try:
            _feed(stream, input)
            if started is not None:
                started(exec_id)
            for stream_id, data in _output_of(stream, tty):
                if output is not None:
                    output(stream_id, data)
                elif stream_id in collected:
                    collected[stream_id].append(data)
        finally:
            stream.close()
        code = self.request("GET", f"/exec/{exec_id}/json").json().get("ExitCode")
        return RunOutput(exec_id, code, b"".join(collected[STDOUT]).decode(errors="replace"),
                         b"".join(collected[STDERR]).decode(errors="replace"))

    def resize(self, container: str, rows: int, columns: int) -> None:
        """The terminal's size, for a container made with ``tty=True`` (the CLI sends it after
        start and on every SIGWINCH)."""
        self.request("POST", f"/containers/{_seg(container)}/resize", query={"h": rows, "w": columns})

    def resize_exec(self, exec_id: str, rows: int, columns: int) -> None:
        self.request("POST", f"/exec/{exec_id}/resize", query={"h": rows, "w": columns})

    def stats(self, container: str) -> dict:
        """One sample (``docker stats --no-stream``)."""
        return self.request("GET", f"/containers/{_seg(container)}/stats", query={"stream": 0}).json()

    def stream_stats(self, container: str):
        return self.stream("GET", f"/containers/{_seg(container)}/stats", query={"stream": 1})

    def prune_containers(self, filters: dict | None = None) -> dict:
        """``POST /containers/prune``: stopped containers go (teachdockd also sweeps crash leftovers).
        ``filters={"label": {"k=v": True}}`` limits it to containers with that label."""
        return self.request("POST", "/containers/prune",
                            query={"filters": json.dumps(filters) if filters else None}).json()

    def commit(self, container: str, repository: str | None = None, tag: str | None = None, *,
               message: str | None = None, author: str | None = None, changes=()) -> str:
        query = [("container", container), ("repo", repository), ("tag", tag), ("comment", message),
                 ("author", author)] + [("changes", change) for change in changes]
        return self.request("POST", "/commit", query=query).json()["Id"]

    # --- images --------------------------------------------------------------------------------------------
    def images(self, all: bool = False) -> list[dict]:  # noqa: A002
        return self.request("GET", "/images/json", query={"all": 1 if all else None}).json()

    def inspect_image(self, image: str) -> dict:
        return self.request("GET", f"/images/{quote(image, safe='/:@')}/json").json()

    def image_history(self, image: str) -> list[dict]:
        """``docker history``: the steps that made an image, newest first."""
        return self.request("GET", f"/images/{quote(image, safe='/:@')}/history").json()

    def prune_images(self, all: bool = False) -> dict:  # noqa: A002
        """``docker image prune [-a]``: untagged images, or (``all``) every image no container uses."""
        filters = json.dumps({"dangling": ["false"]}) if all else None
        return self.request("POST", "/images/prune", query={"filters": filters}).json()

    def pull(self, reference: str, progress=None) -> list[dict]:
        """``POST /images/create?fromImage=...&tag=...``; ``progress(message)`` gets each line.
        A failure in the middle of the stream (``errorDetail``) raises APIError."""
        name, tag = split_reference(reference)
        messages = []
        for message in self.stream("POST", "/images/create", query={"fromImage": name, "tag": tag}):
            if "errorDetail" in message or "error" in message:
                detail = message.get("errorDetail") or {}
                raise APIError(500, detail.get("message") or message.get("error"), "POST", "/images/create")
            messages.append(message)
            if progress is not None:
                progress(message)
        return messages

    def tag(self, image: str, repository: str, tag: str | None = None) -> None:
        self.request("POST", f"/images/{quote(image, safe='/:@')}/tag", query={"repo": repository, "tag": tag})

    def remove_image(self, image: str, force: bool = False) -> list[dict]:
        return self.request("DELETE", f"/images/{quote(image, safe='/:@')}", query={"force": 1 if force else None}).json()

    def build(self, context_dir: str, *, tags=(), dockerfile: str | None = None, build_args: dict | None = None,
              nocache: bool = False):
        """Stream of ``{"stream": ...}`` / ``{"aux": {"ID": ...}}`` lines; the context goes up as a tar."""
        import tarfile  # noqa: PLC0415 - only build needs it
        import tempfile  # noqa: PLC0415

        query = [("t", t) for t in tags] + [("dockerfile", dockerfile or "Dockerfile"),
                                            ("buildargs", json.dumps(build_args) if build_args else None),
                                            ("nocache", 1 if nocache else None)]
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                tar.add(context_dir, arcname=".")
            archive.seek(0)
            yield from self.stream("POST", "/build", query=query, body=archive,
                                   headers={"Content-Type": "application/x-tar"})

    def save(self, images, out) -> None:
        """``GET /images/get?names=...``: the archive, written to the binary file ``out``."""
        names = [images] if isinstance(images, str) else list(images)
        for chunk in self.stream_bytes("GET", "/images/get", query=[("names", n) for n in names]):
            out.write(chunk)

    def load(self, archive) -> list[dict]:
        """``POST /images/load``: ``archive`` a binary file object (its size must be known)."""
        return list(self.stream("POST", "/images/load", query={"quiet": 1}, body=archive,
                                headers={"Content-Type": "application/x-tar"}))

    # --- files in and out (docker cp) ---------------------------------------------------------------------
    def stat_path(self, container: str, path: str) -> dict | None:
        """``HEAD /containers/ID/archive``: name, size, mode (Go's bits) of a path; None if missing."""
        try:
            response = self.request("HEAD", f"/containers/{_seg(container)}/archive", query={"path": path})
        except NotFoundError as error:
            if "No such container" in str(error):
                raise
            return None
        import base64  # noqa: PLC0415 - only cp needs it

        return json.loads(base64.b64decode(response.headers.get("x-docker-container-path-stat", "") or b"e30="))

    def get_archive(self, container: str, path: str, out) -> dict:
        """``GET /containers/ID/archive``: ``path`` as a tar written to ``out``; returns its stat."""
        import base64  # noqa: PLC0415 - only cp needs it

        stat = {}

        def headers(response) -> None:
            stat.update(json.loads(base64.b64decode(response.headers.get("x-docker-container-path-stat", "e30="))))

        for chunk in self.stream_bytes("GET", f"/containers/{_seg(container)}/archive", query={"path": path},
                                       on_headers=headers):
            out.write(chunk)
        return stat

    def put_archive(self, container: str, path: str, archive) -> None:
        """``PUT /containers/ID/archive``: unpack the tar ``archive`` (bytes or a binary file)
        into the container's directory ``path``."""
        self.request("PUT", f"/containers/{_seg(container)}/archive", query={"path": path}, body=archive,
                     headers={"Content-Type": "application/x-tar"})

    # --- networks and volumes --------------------------------------------------------------------------------
    def networks(self) -> list[dict]:
        return self.request("GET", "/networks").json()

    def create_network(self, name: str, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, *, ip_range: str | None = None, internal: bool = False,
                       labels: dict | None = None) -> dict:
        ipam_config = {key: value for key, value in (("Subnet", subnet), ("Gateway", gateway), ("IPRange", ip_range))
                       if value}
        body = {"Name": name, "Driver": driver, "Internal": bool(internal), "Labels": labels or {},
                "IPAM": {"Driver": "default", "Config": [ipam_config] if ipam_config else []}}
        return self.request("POST", "/networks/create", body=body).json()

    def inspect_network(self, name: str) -> dict:
        return self.request("GET", f"/networks/{_seg(name)}").json()

    def connect_network(self, network: str, container: str, *, aliases=(), ip: str | None = None) -> None:
        """``docker network connect``: a running container gets the interface (eth1, ...) at once."""
        endpoint = {"Aliases": list(aliases) or None, "IPAMConfig": {"IPv4Address": ip} if ip else None}
        self.request("POST", f"/networks/{_seg(network)}/connect", body={"Container": container,
                                                                         "EndpointConfig": endpoint})

    def disconnect_network(self, network: str, container: str, force: bool = False) -> None:
        self.request("POST", f"/networks/{_seg(network)}/disconnect", body={"Container": container, "Force": force})

    def prune_networks(self) -> dict:
        return self.request("POST", "/networks/prune").json()

    def remove_network(self, name: str) -> None:
        self.request("DELETE", f"/networks/{_seg(name)}")

    def volumes(self) -> list[dict]:
        return self.request("GET", "/volumes").json().get("Volumes") or []

    def create_volume(self, name: str | None = None, driver: str = "local") -> dict:
        body = {"Driver": driver}
        if name:
            body["Name"] = name
        return self.request("POST", "/volumes/create", body=body).json()

    def remove_volume(self, name: str, force: bool = False) -> None:
        self.request("DELETE", f"/volumes/{_seg(name)}", query={"force": 1 if force else None})


# --- helpers --------------------------------------------------------------------------------------------
def _seg(name: str) -> str:
    return quote(str(name), safe="")


def _query_items(query):
    items = query.items() if isinstance(query, dict) else query
    for key, value in items:
        if value is None:
            continue
        yield key, ("1" if value is True else str(value))


def split_reference(reference: str) -> tuple[str, str]:
    """``busybox`` -> ("busybox", "latest"); ``reg:5000/a/b:v1`` -> ("reg:5000/a/b", "v1");
    ``x@sha256:...`` -> ("x", "sha256:...") (how the CLI sends a digest pull)."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, "latest"


def start_failure_code(message: str) -> int:
    """Exit status for a failed start, as the docker CLI computes it (run.go, toStatusError)."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 125


def _raw_reader(source):
    """read(n) for a file: os.read on its descriptor when it has one. A thread blocked in
    ``sys.stdin.buffer.read`` holds the buffer's lock, and the interpreter aborts at exit
    ("could not acquire lock for <stdin>"); os.read holds nothing."""
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):
        return getattr(source, "read1", source.read)
    return lambda size: os.read(fd, size)


def _output_of(stream: RawStream, tty: bool):
    """(stream id, bytes): frames without a terminal, one raw stream (called stdout) with one."""
    if not tty:
        return stream.frames()
    return ((STDOUT, data) for data in stream.chunks())


def _feed(stream: RawStream, data):
    """Send ``data`` (bytes, str or a binary file) as stdin, then half-close; or, with no
    input, half-close at once (the daemon must not wait for stdin that never comes)."""
    if data is None:
        stream.close_write()
        return None
    import threading  # noqa: PLC0415 - only runs with stdin need a thread

    def copy() -> None:
        try:
            if isinstance(data, (bytes, bytearray, str)):
                stream.send(data.encode() if isinstance(data, str) else bytes(data))
            else:
                reader = _raw_reader(data)
                while block := reader(65536):
                    stream.send(block)
        except OSError:
            pass  # the container has exited: nobody reads any more
        finally:
            stream.close_write()

    thread = threading.Thread(target=copy, daemon=True, name="stdin-feeder")
    thread.start()
    return thread

