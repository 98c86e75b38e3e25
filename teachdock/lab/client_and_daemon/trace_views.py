"""What the API tracer records, and ways to look at it: one TraceEntry per call, what each
call does (``meaning``), a table, a timeline and a sequence diagram.

The recording itself (the proxy between a client and the daemon) is in ``api_tracer``; these
functions only read entries, so they work as well on a trace saved from an earlier run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import escape

from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

#: How much of each body the tracer keeps: enough to read, not a whole image.
BODY_KEEP = 4096

#: The API version prefix of a path (``/v1.45``), and a full 64-hex id: both hidden when naming a call.
VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")
_LONG_HEX = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass
class TraceEntry:
    """One API call: the request, the response, and when each happened (seconds since the
    tracer started)."""

    number: int
    connection: int
    method: str
    target: str                                  # as sent: "/v1.45/containers/create?name=x"
    request_headers: dict = field(default_factory=dict)
    request_body: bytes = b""                    # the first BODY_KEEP bytes
    request_bytes: int = 0                       # the whole body's size
    status: int | None = None
    reason: str = ""
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""                   # the first BODY_KEEP bytes (after 101: of the raw stream)
    response_bytes: int = 0
    sent: float = 0.0                            # the request's head arrived from the client
    answered: float | None = None                # the response's head arrived from the daemon
    finished: float | None = None                # the response's body ended (or the upgraded stream closed)
    streamed: float | None = None                # after 101: the first bytes of the raw stream arrived
    upgraded: bool = False                       # 101: the connection became a raw stream

    @property
    def path(self) -> str:
        """The target without the query."""
        return self.target.split("?", 1)[0]

    @property
    def endpoint(self) -> str:
        """The path as the API reference writes it: no ``/v1.45`` prefix, container ids as {id}."""
        path = VERSION_PREFIX.sub("", self.path)
        return _LONG_HEX.sub("{id}", path)

    @property
    def call(self) -> str:
        """``POST /containers/create``: method and endpoint, the name of the call."""
        return f"{self.method} {self.endpoint}"

    @property
    def short_target(self) -> str:
        """The target as sent, with long ids cut to 12 hex digits: readable in a table."""
        return _LONG_HEX.sub(lambda m: m.group(0)[:12] + "…", self.target)

    @property
    def seconds(self) -> float | None:
        """From request to the end of the answer (None while it is still open)."""
        return None if self.finished is None else self.finished - self.sent

    @property
    def meaning(self) -> str:
        return meaning(self)


# ------------------------------------------------------------------ what each call does

def _meanings() -> list[tuple[str, str]]:
    """(endpoint, what the call does), made when asked: the sentences are in the learner's language."""
    return [
        ("/_ping", say("is a daemon there? (its API version is in the headers)")),
        ("/version", say("the daemon's version")),
        ("/info", say("facts about the daemon and its host")),
        ("/containers/create", say("create the container from the image (nothing runs yet)")),
        ("/containers/{id}/attach", say("attach to its stdout/stderr: the connection becomes a raw stream")),
        ("/containers/{id}/wait", say("wait for it to exit: the answer is held until then")),
        ("/containers/{id}/start", say("start it: now the process runs")),
        ("/containers/{id}/json", say("inspect it")),
        ("/containers/{id}/logs", say("read its log")),
        ("/containers/{id}/stop", say("stop it (SIGTERM, then SIGKILL)")),
        ("/containers/{id}/kill", say("send it a signal")),
        ("/containers/{id}/exec", say("prepare a process to run inside it")),
        ("/containers/{id}/resize", say("tell it the terminal size")),
        ("/containers/json", say("list containers")),
        ("/images/create", say("pull the image from a registry")),
        ("/images/json", say("list images")),
        ("/events", say("the event stream")),
        ("/exec/{id}/start", say("run the exec'd process")),
    ]


def meaning(entry: TraceEntry) -> str:
    """What this call does in the life of a ``docker`` command, in a few words."""
    endpoint = re.sub(r"^/containers/[^/]+/", "/containers/{id}/", entry.endpoint)
    endpoint = re.sub(r"^/exec/[^/]+/", "/exec/{id}/", endpoint)
    if entry.method == "DELETE" and endpoint.startswith("/containers/"):
        return say("remove the container")
    if endpoint.startswith("/images/") and endpoint.endswith("/json"):
        return say("inspect the image")
    if endpoint == "/containers/create" and entry.status == 404:
        return say("create refused: no such image here")
    return dict(_meanings()).get(endpoint, "")


# ------------------------------------------------------------------ showing a trace


def short_body(data: bytes, limit: int = 80) -> str:
    """A body as one readable line: text as text, other bytes escaped, cut at ``limit``."""
    if not data:
        return ""
    text = data.decode("utf-8", "backslashreplace")
    if not text.isprintable():
        text = repr(data)[2:-1]
    text = " ".join(text.split()) if text.isprintable() else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def trace_rows(entries: list[TraceEntry]) -> list[dict]:
    """One row per call: step, connection, method, path, status, times in ms, bodies, meaning."""
    rows = []
    for entry in entries:
        rows.append({
            "step": entry.number,
            "conn": entry.connection,
            "method": entry.method,
            "path": entry.short_target,
            "status": "" if entry.status is None else entry.status,
            "sent ms": round(entry.sent * 1000, 1),
            "answer ms": "" if entry.answered is None else round((entry.answered - entry.sent) * 1000, 1),
            "open ms": "" if entry.seconds is None else round(entry.seconds * 1000, 1),
            "request body": short_body(entry.request_body, 60),
            "response": (say("raw stream, {count} bytes:", count=entry.response_bytes) + " " if entry.upgraded
                         else "") + short_body(entry.response_body, 60),
            "meaning": entry.meaning,
        })
    return rows


#: The arrows' labels: monospace for the HTTP lines, then sans-serif for the glyphs a monospace font lacks
#: (in Korean, say() puts a Hangul font first there; matplotlib falls back along the list).
LABEL_FONTS = ["monospace", "sans-serif"]
_STATUS_COLOURS = {1: "#e6eefb", 2: "#d9f2e6", 3: "#e6eefb", 4: "#fbdada", 5: "#fbdada"}


def column_labels() -> dict[str, str]:
    """The table's column headers in the learner's language (the rows keep English keys)."""
    return {"step": say("step"), "conn": say("conn"), "method": say("method"), "path": say("path"),
            "status": say("status"), "sent ms": say("sent ms"), "answer ms": say("answer ms"),
            "open ms": say("open ms"), "request body": say("request body"), "response": say("response"),
            "meaning": say("meaning")}


def trace_table(entries: list[TraceEntry], title: str = "") -> TextAndHTML:
    """The calls as a table (green 2xx, blue 101, red 4xx/5xx); a terminal gets plain text."""
    rows = trace_rows(entries)
    columns = ["step", "conn", "method", "path", "status", "sent ms", "answer ms", "open ms", "request body",
               "response", "meaning"]
    html_rows = []
    for row in rows:
        status = row["status"] or 0
        colour = _STATUS_COLOURS.get(status // 100, "#ffffff")
        cells = "".join(
            f"<td style='text-align:left'><code>{escape(str(row[c]))}</code></td>"
            if c in ("path", "request body", "response") else f"<td style='text-align:left'>{escape(str(row[c]))}</td>"
            for c in columns)
        html_rows.append(f"<tr style='background:{colour}'>{cells}</tr>")
    labels = column_labels()
    head = "".join(f"<th style='text-align:left'>{escape(labels[c])}</th>" for c in columns)
    caption = f"<b>{escape(title)}</b>" if title else ""
    html = f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
    lines = [title] if title else []
    lines += [f"{r['step']:>2} c{r['conn']:<2} {r['method']:<6} {r['path'][:70]:<70} {r['status']!s:>3}  {r['meaning']}"
              for r in rows]
    return TextAndHTML(html, "\n".join(lines))


def timeline(entries: list[TraceEntry]) -> list[dict]:
    """Every moment of the trace in time order: a request sent, an answer begun, the first bytes
    on a raw stream, a held answer or a raw stream ended. Keys: time, entry, kind ("request" /
    "response" / "stream" / "end")."""
    moments = []
    for entry in entries:
        moments.append({"time": entry.sent, "entry": entry, "kind": "request"})
        if entry.answered is not None:
            moments.append({"time": entry.answered, "entry": entry, "kind": "response"})
        if entry.streamed is not None:
            moments.append({"time": entry.streamed, "entry": entry, "kind": "stream"})
        held = entry.finished is not None and entry.answered is not None and (
            entry.upgraded or entry.finished - entry.answered > 0.005)
        if held:
            moments.append({"time": entry.finished, "entry": entry, "kind": "end"})
    order = {"request": 0, "response": 1, "stream": 2, "end": 3}
    return sorted(moments, key=lambda m: (m["time"], m["entry"].number, order[m["kind"]]))


def _moment_label(moment: dict) -> str:
    entry, kind = moment["entry"], moment["kind"]
    if kind == "request":
        return f"{entry.method} {VERSION_PREFIX.sub('', entry.short_target)}"
    if kind == "response":
        return f"{entry.status} {entry.reason}".strip() + (f"  ({entry.meaning})" if entry.meaning else "")
    if kind == "stream":
        return say("on the stream of step {step}: {body}", step=entry.number, body=short_body(entry.response_body, 50))
    if entry.upgraded:
        return say("stream of step {step} closed ({count} bytes in all)", step=entry.number,
                   count=entry.response_bytes)
    return say("answer to step {step} ends: {body}", step=entry.number, body=short_body(entry.response_body, 50))


def plot_trace(entries: list[TraceEntry], title: str | None = None, client: str = "docker CLI"):
    """A sequence diagram: the client on the left, the daemon on the right, one row per moment
    in the order it happened; the step number on each request. A raw stream (``attach``) gets
    an arrow when its first bytes come and a dotted one when it closes; a held answer (``wait``)
    a dotted one when it ends."""
    from matplotlib.figure import Figure

    title = say("the API calls") if title is None else title
    moments = timeline(entries)
    left, right = 1.5, 8.5
    top = len(moments) + 0.6
    fig = Figure(figsize=(11, 1.3 + 0.34 * len(moments)), layout="constrained")
    ax = fig.subplots()
    for name, x in ((client, left), ("teachdockd", right)):
        ax.plot([x, x], [0, top], color="#999999", linewidth=1, linestyle="--")
        ax.text(x, top + 0.2, name, ha="center", va="bottom", fontsize=10, weight="bold",
                bbox={"boxstyle": "round", "facecolor": "#eeeeee", "edgecolor": "#999999"})
    for row, moment in enumerate(moments):
        y = top - 0.8 - row
        entry, kind = moment["entry"], moment["kind"]
        if kind == "request":
            start, end, colour, style = left, right, "#0072B2", "-"
            ax.text(left - 0.3, y, str(entry.number), ha="right", va="center", fontsize=8, color="#555555")
        else:
            start, end, style = right, left, {"response": "--", "stream": "-"}.get(kind, ":")
            colour = "#8f1d1d" if (entry.status or 0) >= 400 else ("#6a3d9a" if entry.upgraded else "#009E73")
        ax.annotate("", xy=(end, y), xytext=(start, y),
                    arrowprops={"arrowstyle": "->", "color": colour, "linestyle": style})
        ax.text((left + right) / 2, y + 0.08, _moment_label(moment), ha="center", va="bottom", fontsize=7.5,
                color=colour, family=LABEL_FONTS)
        ax.text(right + 0.3, y, f"{moment['time'] * 1000:.0f} ms", ha="left", va="center", fontsize=7,
                color="#777777")
    ax.set_xlim(0, right + 1.6)
    ax.set_ylim(-0.5, top + 1.0)
    ax.axis("off")
    ax.set_title(title)
    return fig


def entry_details(entry: TraceEntry) -> str:
    """One call in full, as HTML: request line, headers and body; status, headers and body."""
    def headers(values: dict) -> str:
        return "".join(f"<div><code>{escape(k)}: {escape(v)}</code></div>" for k, v in values.items()) \
            or f"<div><i>{escape(say('(none)'))}</i></div>"

    def body(data: bytes, total: int, raw: bool = False) -> str:
        if not data:
            return f"<div><i>{escape(say('(no body)'))}</i></div>"
        text = data.decode("utf-8", "backslashreplace")
        if not raw:
            try:
                text = json.dumps(json.loads(text), indent=2)
            except ValueError:
                pass
        if raw or not all(c.isprintable() or c in "\n\r\t" for c in text):
            text = repr(data)[2:-1]          # a raw stream, or binary: show the bytes escaped
        more = (say("body (first {shown} of {total} bytes)", shown=f"{len(data):,}", total=f"{total:,}")
                if total > len(data) else say("body ({total} bytes)", total=f"{total:,}"))
        return (f"<div><i>{escape(more)}</i></div><pre style='max-height:16em;overflow:auto;margin:2px 0'>"
                f"{escape(text)}</pre>")

    status = say("(no answer yet)") if entry.status is None else f"{entry.status} {entry.reason}"
    return (f"<div style='font-size:90%'><b>{escape(entry.method)}</b> <code>{escape(entry.target)}</code>"
            f" <i>{escape(say('(connection {number})', number=entry.connection))}</i>"
            f"<div style='margin:4px 0 0 12px'><b>{escape(say('request headers'))}</b>{headers(entry.request_headers)}"
            f"{body(entry.request_body, entry.request_bytes)}</div>"
            f"<div style='margin:4px 0 0 12px'><b>{escape(say('response: {status}', status=status))}</b>{headers(entry.response_headers)}"
            f"{body(entry.response_body, entry.response_bytes, raw=entry.upgraded)}</div>"
            f"<div style='margin:4px 0 0 12px'><i>{escape(entry.meaning)}</i></div></div>")
