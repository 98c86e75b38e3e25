"""Helpers for the registries chapter (06): a throw-away local registry, and the HTTP
exchange of a pull or push turned into a table and a sequence diagram.

``local_registry()`` starts Debian's ``docker-registry`` (distribution 2.8, the same server
Docker Hub grew from) as a child process listening on 127.0.0.1 only, on a free port, with its
blobs in a directory of its own. When the ``with`` block ends, it is stopped by its PID (TERM,
then KILL) and its files are removed; an ``atexit`` hook does the same if the kernel exits
first. ``htpasswd=(user, password)`` switches on HTTP Basic auth; ``token_server=`` a
``TokenServer`` switches on distribution's token (Bearer) auth, as Docker Hub does it.

The ``trace=`` list that ``teachdock.image.registry.pull``/``push`` fill holds one dict per
real HTTP exchange (method, url, status, headers, digest). ``trace_rows`` makes table rows of
it, ``sequence_arrows`` the arrows of a sequence diagram, and ``plot_sequence`` draws them.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from teachdock.errors import NotFound, TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

INSTALL_HINT = "apt-get install docker-registry"
HTPASSWD_HINT = "apt-get install apache2-utils"

CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: teachdock-lab-only
health:
  storagedriver:
    enabled: false
{auth}"""

HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: {realm}
    path: {path}
"""

TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {cert}
"""

#: What a team's own registry would run with (shown in the notebook, never started here).
TEAM_CONFIG = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /srv/registry          # or s3: / gcs: / azure: for shared storage
  delete:
    enabled: true                         # allow DELETE; space comes back with garbage-collect
http:
  addr: 0.0.0.0:443
  host: https://registry.team.example
  tls:
    certificate: /etc/docker/registry/tls/fullchain.pem
    key: /etc/docker/registry/tls/privkey.pem
auth:
  htpasswd:                               # or token: realm/service/issuer/rootcertbundle
    realm: team-registry
    path: /etc/docker/registry/htpasswd   # bcrypt lines: htpasswd -nbB alice secret
"""


class RegistryLabError(NotFound):
    """The local registry cannot be started here (package missing, or it did not come up)."""


@dataclass
class LocalRegistry:
    """A running ``docker-registry``: where it listens, its PID and where it keeps blobs."""

    host: str          # "127.0.0.1:PORT", the first part of an image name on it
    pid: int
    storage: Path      # distribution's filesystem driver keeps everything under here
    directory: Path    # config.yml, htpasswd, registry.log and storage
    credentials: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def config_text(self) -> str:
        return (self.directory / "config.yml").read_text()

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob: ``blobs/sha256/<first 2 hex>/<hex>/data``."""
        algorithm, _, hexpart = digest.partition(":")
        return self.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"

    def log(self) -> str:
        path = self.directory / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""


def registry_binary() -> str:
    """The path of ``docker-registry``, or a clear error saying how to install it."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryLabError(say("Debian's docker-registry is not installed, so this chapter cannot start a local "
                                   "registry. Install it with `{command}` (as root) and run the cell again.",
                                   command=INSTALL_HINT))
    return binary


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd line (distribution accepts only bcrypt), made by apache2-utils' htpasswd."""
    binary = shutil.which("htpasswd")
    if binary is None:
        raise RegistryLabError(say("htpasswd is not installed; `{command}` provides it.", command=HTPASSWD_HINT))
    done = subprocess.run([binary, "-nbB", user, password], capture_output=True, text=True, check=True)
    return done.stdout.strip() + "\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


@contextlib.contextmanager
def local_registry(directory: str | os.PathLike | None = None, *, htpasswd: tuple[str, str] | None = None,
                   realm: str = "teachdock-lab", token_server: TokenServer | None = None):
    """Run ``docker-registry`` on 127.0.0.1 for the length of a ``with`` block.

    ``directory``: where its config, log and storage go (a new temp dir if None); all of it
    is removed at the end. ``htpasswd=(user, password)`` requires HTTP Basic auth;
    ``token_server`` requires Bearer tokens signed by that server.
    """
    binary = registry_binary()
    parent = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix="registry-", dir=parent))
    process = None

    def stop() -> None:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    try:
        auth = ""
        if htpasswd is not None:
            (workdir / "htpasswd").write_text(htpasswd_line(*htpasswd))
            auth = HTPASSWD_AUTH.format(realm=realm, path=workdir / "htpasswd")
        if token_server is not None:
            auth = TOKEN_AUTH.format(realm=token_server.realm, service=token_server.service,
                                     issuer=token_server.issuer, cert=token_server.cert)
        storage = workdir / "storage"
        for _attempt in range(3):          # someone may take the free port before the registry binds it
            port = free_port()
            (workdir / "config.yml").write_text(CONFIG.format(storage=storage, port=port, auth=auth))
            with open(workdir / "registry.log", "ab") as log:
                process = subprocess.Popen([binary, "serve", str(workdir / "config.yml")], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            registry = LocalRegistry(f"127.0.0.1:{port}", process.pid, storage, workdir, htpasswd)
            if _wait_ready(registry.url, process):
                break
            _stop(process)
            process = None
        else:
            raise RegistryLabError(say("docker-registry did not start; the end of its log:\n{log}",
                                       log=(workdir / "registry.log").read_text(errors="replace")[-1500:]))
        yield registry
    finally:
        stop()
        atexit.unregister(stop)


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 15.0) -> bool:
    """``GET /v2/`` answers 200 (or 401 with auth on): ready. The process exiting: not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "/v2/", timeout=1) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen) -> None:
    """TERM the registry by its PID, KILL it if it lingers, and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class TokenServer:
    """The token endpoint of distribution's token auth (``docs/spec/auth/token.md``), small.

    ``GET /token?service=...&scope=repository:NAME:pull,push`` with HTTP Basic ``user`` and
    ``password`` answers ``{"token": <JWT>, "expires_in": 300}`` granting what was asked;
    without them, 401. The JWT is signed (RS256) by openssl with a throw-away key; its header
    carries the certificate (``x5c``), which the registry trusts through ``rootcertbundle``.
    It serves on 127.0.0.1 from a thread of this process; ``close()`` (or ``with``) stops it.
    """

    service = "teachdock-lab-registry"
    issuer = "teachdock-lab-token-issuer"

    def __init__(self, directory: str | os.PathLike, user: str, password: str):
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RegistryLabError(say("openssl is not installed; `{command}` provides it.",
                                       command="apt-get install openssl"))
        self._openssl = openssl
        self.directory = Path(tempfile.mkdtemp(prefix="token-", dir=directory))
        self.key, self.cert = self.directory / "key.pem", self.directory / "cert.pem"
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=teachdock-lab-token"],
                       check=True, capture_output=True)
        der = subprocess.run([openssl, "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self._x5c = base64.b64encode(der).decode()
        self.user, self.password = user, password
        self.requests: list[dict] = []      # what was asked: scope, and whether the password was right
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server._answer(self)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._http.server_address[1]}/token"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
            self._http.server_close()
            self._thread.join()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TokenServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _answer(self, handler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        wanted = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        authorized = handler.headers.get("Authorization") == wanted
        self.requests.append({"scope": query.get("scope", [""])[0], "authorized": authorized})
        if authorized:
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            status, body = 200, json.dumps({"token": self._jwt(access), "expires_in": 300}).encode()
        else:
            status, body = 401, b'{"details": "incorrect username or password"}'
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _jwt(self, access: list) -> str:
        now = int(time.time())

        def part(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        header = part({"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]})
        claims = part({"iss": self.issuer, "sub": self.user, "aud": self.service, "exp": now + 300,
                       "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access})
        signature = subprocess.run([self._openssl, "dgst", "-sha256", "-sign", str(self.key)],
                                   input=f"{header}.{claims}".encode(), check=True, capture_output=True).stdout
        return f"{header}.{claims}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def jwt_claims(token: str) -> dict:
    """The claims (middle part) of a JWT, decoded without checking the signature: to look at."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ------------------------------------------------------------------ content addressing

def flip_byte(data: bytes, index: int = 0) -> bytes:
    """The same bytes with one bit changed at ``index``: the smallest possible tampering."""
    if not data:
        raise TeachdockError(say("cannot change a byte of empty data"))
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def tamper_blob(registry: LocalRegistry, digest: str, index: int = 100) -> Path:
    """Change one byte of a blob *inside the registry's storage*, as a broken disk or an
    attacker on the server would; the file keeps its name (the digest) and its size."""
    path = registry.blob_file(digest)
    if not path.exists():
        raise NotFound(say("the registry has no blob {digest} (looked at {path})", digest=digest, path=path))
    path.write_bytes(flip_byte(path.read_bytes(), index))
    return path


# ------------------------------------------------------------------ the HTTP exchange

_UPLOAD_ID = re.compile(r"(/blobs/uploads/)([0-9a-f-]{36})")
_SHA = re.compile(r"sha256:([0-9a-f]{64})")


def short_digest(text: str, keep: int = 12) -> str:
    """``sha256:31f2c65946c5…`` for every full sha256 digest in ``text``."""
    return _SHA.sub(lambda m: f"sha256:{m.group(1)[:keep]}…", text)


def short_path(url: str) -> str:
    """The request target without host, upload state token or long hex: readable in a table."""
    split = urllib.parse.urlsplit(url)
    path = _UPLOAD_ID.sub(lambda m: m.group(1) + m.group(2)[:8] + "…", split.path)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(split.query) if k != "_state"]
    text = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    return short_digest(text)


def party(entry: dict) -> str:
    """Who answered this exchange: the registry, or its token server (a name the code keys on)."""
    return "token server" if entry.get("note") == "token" else "registry"


def party_label(name: str) -> str:
    """A party of the diagram as the learner reads it."""
    return {"client": say("client"), "registry": say("registry"), "token server": say("token server")}[name]


def key_headers(entry: dict) -> str:
    """The headers that explain an exchange, in a few words."""
    parts = []
    if entry.get("auth"):
        parts.append(f"Authorization: {entry['auth'].capitalize()} …")
    request, response = entry.get("request") or {}, entry.get("response") or {}
    sent = request.get("Content-Length", entry.get("body_bytes"))   # body_bytes: a chunked body, counted
    if entry["method"] in ("PUT", "PATCH") and sent is not None:
        parts.append(say("sent {count} bytes", count=f"{int(sent):,}"))
    if entry["method"] == "PUT" and "/manifests/" in entry["url"] and "Content-Type" in request:
        parts.append(f"Content-Type: {request['Content-Type']}")
    if "WWW-Authenticate" in response:
        parts.append(f"WWW-Authenticate: {response['WWW-Authenticate']}")
    if "Location" in response and entry["method"] == "POST":
        parts.append(f"Location: {short_path(response['Location'])}")
    if entry["method"] == "GET" and entry["status"] == 200 and "Content-Length" in response:
        parts.append(say("received {count} bytes", count=f"{int(response['Content-Length']):,}"))
    return "; ".join(parts)


def meaning(entry: dict) -> str:
    """What this exchange means in the pull/push algorithm."""
    method, status, url = entry["method"], entry["status"], entry["url"]
    if entry.get("note") == "token":
        return say("token issued") if status == 200 else say("token refused")
    if status == 401:
        return say("credentials needed")
    if url.rstrip("/").endswith("/v2"):
        return say("registry answers (version check)")
    if "/blobs/uploads/" in url:
        if method == "POST":
            return say("upload started")
        if method == "PATCH":
            return say("chunk stored")
        return say("blob stored") if method == "PUT" else say("upload")
    if "/blobs/" in url:
        if method == "HEAD":
            return say("blob already there: skip it") if status == 200 else say("blob missing: upload it")
        return say("blob downloaded") if status == 200 else say("blob not found")
    if "/manifests/" in url:
        if method == "PUT":
            return say("manifest published under the tag")
        return say("manifest found") if status == 200 else say("manifest not found")
    if "/tags/list" in url:
        return say("tag list")
    return ""


def trace_rows(trace: list[dict]) -> list[dict]:
    """One row per exchange: step, method, path, status, key headers, digest, meaning."""
    return [{
        "step": number,
        "method": entry["method"],
        "path": short_path(entry["url"]),
        "to": party(entry),
        "status": entry["status"],
        "headers": key_headers(entry),
        "digest": short_digest(entry.get("digest") or ""),
        "meaning": meaning(entry),
    } for number, entry in enumerate(trace, 1)]


#: The arrows' labels: monospace for the HTTP lines, then sans-serif for the glyphs a monospace font lacks
#: (in Korean, say() puts a Hangul font first there; matplotlib falls back along the list).
LABEL_FONTS = ["monospace", "sans-serif"]
_STATUS_COLOURS = {2: "#d9f2e6", 3: "#e6eefb", 4: "#fbdada", 5: "#fbdada"}


def column_labels() -> dict[str, str]:
    """The table's column headers in the learner's language (the rows keep English keys)."""
    return {"step": say("step"), "method": say("method"), "path": say("path"), "status": say("status"),
            "headers": say("headers"), "digest": say("digest"), "meaning": say("meaning")}


def trace_table(trace: list[dict], title: str = "") -> TextAndHTML:
    """The exchange as a table: green 2xx, red 4xx (a 404 to a HEAD is not an error, though)."""
    rows = trace_rows(trace)
    columns = ["step", "method", "path", "status", "headers", "digest", "meaning"]
    html_rows = []
    for row in rows:
        colour = _STATUS_COLOURS.get(row["status"] // 100, "#ffffff")
        cells = "".join(f"<td style='text-align:left'><code>{escape(str(row[c]))}</code></td>"
                        if c in ("path", "digest") else f"<td style='text-align:left'>{escape(str(row[c]))}</td>"
                        for c in columns)
        html_rows.append(f"<tr style='background:{colour}'>{cells}</tr>")
    head = "".join(f"<th style='text-align:left'>{escape(column_labels()[c])}</th>" for c in columns)
    caption = f"<b>{escape(title)}</b>" if title else ""
    html = f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(html_rows)}</tbody></table>"
    text_lines = [title] if title else []
    text_lines += [f"{r['step']:>2} {r['method']:<5} {r['path']:<62} {r['status']}  {r['meaning']}" for r in rows]
    return TextAndHTML(html, "\n".join(text_lines))


def sequence_arrows(trace: list[dict]) -> list[dict]:
    """The arrows of a sequence diagram, in order: each exchange is a request from the
    client and a response back. Keys: source, target, label, kind ("request"/"response")."""
    arrows = []
    for entry in trace:
        other = party(entry)
        arrows.append({"source": "client", "target": other, "kind": "request",
                       "label": f"{entry['method']} {short_path(entry['url'])}"})
        answer = f"{entry['status']} {entry.get('reason', '')}".strip()
        if meaning(entry):
            answer += f"  ({meaning(entry)})"
        arrows.append({"source": other, "target": "client", "kind": "response", "label": answer})
    return arrows


def plot_sequence(trace: list[dict], title: str | None = None):
    """A sequence diagram drawn from the trace: lifelines, then one arrow per message, in order.

    Built with matplotlib's object API (no pyplot), so returning it from a cell shows it once.
    """
    from matplotlib.figure import Figure

    title = say("the HTTP exchange") if title is None else title
    arrows = sequence_arrows(trace)
    parties = ["client"] + [p for p in ("registry", "token server") if any(a["target"] == p for a in arrows)]
    x = {name: 1.5 + 5.0 * i for i, name in enumerate(parties)}
    height = 1.2 + 0.32 * len(arrows)
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.subplots()
    top = len(arrows) + 0.6
    for name, position in x.items():
        ax.plot([position, position], [0, top], color="#999999", linewidth=1, linestyle="--")
        ax.text(position, top + 0.2, party_label(name), ha="center", va="bottom", fontsize=10, weight="bold",
                bbox={"boxstyle": "round", "facecolor": "#eeeeee", "edgecolor": "#999999"})
    for row, arrow in enumerate(arrows):
        y = top - 0.8 - row
        start, end = x[arrow["source"]], x[arrow["target"]]
        request = arrow["kind"] == "request"
        colour = "#0072B2" if request else ("#8f1d1d" if arrow["label"][:1] in "45" else "#009E73")
        ax.annotate("", xy=(end, y), xytext=(start, y),
                    arrowprops={"arrowstyle": "->", "color": colour, "linestyle": "-" if request else "--"})
        ax.text((start + end) / 2, y + 0.08, arrow["label"], ha="center", va="bottom", fontsize=7.5,
                color=colour, family=LABEL_FONTS)
        if request:
            ax.text(x["client"] - 0.3, y, str(row // 2 + 1), ha="right", va="center", fontsize=8, color="#555555")
    ax.set_xlim(0, max(x.values()) + 1.5)
    ax.set_ylim(-0.5, top + 1.0)
    ax.axis("off")
    ax.set_title(title)
    return fig


def exchange_details(entry: dict) -> str:
    """One exchange in full, as HTML: the whole URL, every recorded header both ways."""
    def header_lines(headers: dict) -> str:
        return "".join(f"<div><code>{escape(k)}: {escape(str(v))}</code></div>" for k, v in headers.items()) \
            or f"<div><i>{escape(say('(none recorded)'))}</i></div>"

    request = dict(entry.get("request") or {})
    status = f"{entry['status']} {entry.get('reason', '')}".strip()
    if entry.get("auth"):
        request["Authorization"] = say("{scheme} … (not recorded)", scheme=entry["auth"].capitalize())
    return (f"<div style='font-size:90%'><b>{escape(entry['method'])}</b> <code>{escape(entry['url'])}</code>"
            f"<div style='margin:4px 0 0 12px'><b>{escape(say('request headers'))}</b>{header_lines(request)}</div>"
            f"<div style='margin:4px 0 0 12px'><b>{escape(say('response: {status}', status=status))}</b>"
            f" ({entry.get('ms', 0)} ms){header_lines(entry.get('response') or {})}</div>"
            f"<div style='margin:4px 0 0 12px'><i>{escape(meaning(entry))}</i></div></div>")


class ExchangeInspector:
    """Pick a recorded pull or push, then one of its exchanges, and see it in full."""

    def __init__(self, traces: dict[str, list[dict]]):
        import ipywidgets as widgets

        self.traces = traces
        self.trace_choice = widgets.Dropdown(options=list(traces), description=say("exchange"))
        self.step_choice = widgets.Dropdown(description=say("step"))
        self.details = widgets.HTML()
        self.trace_choice.observe(lambda change: self._steps(), names="value")
        self.step_choice.observe(lambda change: self._show(), names="value")
        self._steps()
        self.widget = widgets.VBox([widgets.HBox([self.trace_choice, self.step_choice]), self.details])

    def _steps(self) -> None:
        rows = trace_rows(self.traces[self.trace_choice.value])
        self.step_choice.options = [(f"{r['step']}. {r['method']} {r['path'][:40]} → {r['status']}", r["step"] - 1)
                                    for r in rows]
        self.step_choice.value = 0 if rows else None
        self._show()

    def _show(self) -> None:
        trace, index = self.traces[self.trace_choice.value], self.step_choice.value
        self.details.value = exchange_details(trace[index]) if index is not None and index < len(trace) else ""


__all__ = ["ExchangeInspector", "LocalRegistry", "RegistryLabError", "TEAM_CONFIG", "TokenServer", "exchange_details", "flip_byte", "htpasswd_line",
           "jwt_claims", "key_headers",
           "local_registry", "meaning", "plot_sequence", "process_running", "sequence_arrows", "short_digest",
           "short_path", "tamper_blob", "trace_rows", "trace_table"]
