"""Start and stop a throw-away registry (Debian's ``docker-registry``, i.e. distribution 2.8)
on 127.0.0.1 for a test, and build small images in a teachdock store.

Imported by path from the registry and archive tests (tests/ is not a package)::

    registry_util = _import_by_path("registry_util", Path(__file__).with_name("registry_util.py"))

    with registry_util.local_registry(tmp_path) as registry:       # registry.host == "127.0.0.1:PORT"
        ...
    with registry_util.local_registry(tmp_path, htpasswd=("user", "secret")) as registry: ...

The registry runs as a child process in its own session, listens on a free port, keeps
its blobs in a directory under the given one, and is always stopped by its PID (TERM,
then KILL) when the ``with`` block ends. No root needed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGISTRY_BINARY = shutil.which("docker-registry")
HTPASSWD_BINARY = shutil.which("htpasswd")
OPENSSL_BINARY = shutil.which("openssl")

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
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  secret: teachdock-test-only
health:
  storagedriver:
    enabled: false
{auth}"""

HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: teachdock-test
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


@dataclass
class Registry:
    host: str                 # "127.0.0.1:PORT"
    pid: int
    storage: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry (distribution accepts only bcrypt), made by apache2-utils' htpasswd."""
    done = subprocess.run([HTPASSWD_BINARY, "-nbB", user, password], capture_output=True, text=True, check=True)
    return done.stdout.strip() + "\n"


@contextlib.contextmanager
def local_registry(directory: Path, *, htpasswd: tuple[str, str] | None = None, token_server=None):
    """A running registry; stopped (by PID) and its files removed when the block ends.

    ``htpasswd=(user, password)``: Basic auth. ``token_server=TokenServer(...)``: Bearer
    tokens from that server, the registry trusting its certificate.
    """
    directory = Path(directory) / f"registry-{os.getpid()}-{time.monotonic_ns()}"
    directory.mkdir(parents=True)
    storage = directory / "data"
    auth = ""
    if htpasswd is not None:
        password_file = directory / "htpasswd"
        password_file.write_text(htpasswd_line(*htpasswd))
        auth = HTPASSWD_AUTH.format(path=password_file)
    if token_server is not None:
        auth = TOKEN_AUTH.format(realm=token_server.realm, service=token_server.service,
                                 issuer=token_server.issuer, cert=token_server.cert)
    log = directory / "registry.log"
    process = None
    try:
        for _attempt in range(3):          # a free port can be taken by someone else before we bind it
            port = free_port()
            config = directory / "config.yml"
            config.write_text(CONFIG.format(storage=storage, port=port, auth=auth))
            with open(log, "ab") as log_file:
                process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdin=subprocess.DEVNULL,
                                           stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            registry = Registry(f"127.0.0.1:{port}", process.pid, storage, log)
            if _wait_ready(registry, process):
                break
            _stop(process)
            process = None
        else:
            raise RuntimeError(f"docker-registry did not come up; log:\n{log.read_text()[-2000:]}")
        yield registry
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(registry: Registry, process: subprocess.Popen, timeout: float = 15.0) -> bool:
    """GET /v2/ answers (200, or 401 with auth on) -> ready; the process exiting -> not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(registry.url + "/v2/", timeout=1) as response:
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
    """The token endpoint of distribution's token auth (docs/spec/auth/token.md), for tests.

    ``GET /token?service=...&scope=repository:NAME:pull,push`` with HTTP Basic ``user`` and
    ``password`` answers ``{"token": <JWT>}`` granting what was asked; without them, 401.
    The JWT is signed RS256 by openssl with a throw-away key; its header carries the
    certificate (``x5c``), which the registry trusts through ``rootcertbundle``.
    """

    service = "teachdock-test-registry"
    issuer = "teachdock-test-token-issuer"

    def __init__(self, directory: Path, user: str, password: str):
        self.directory = Path(directory) / f"token-{os.getpid()}-{time.monotonic_ns()}"
        self.directory.mkdir(parents=True)
        self.key, self.cert = self.directory / "key.pem", self.directory / "cert.pem"
        subprocess.run([OPENSSL_BINARY, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=teachdock-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run([OPENSSL_BINARY, "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.user, self.password = user, password
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.handle(self)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._http.server_address[1]}/token"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def handle(self, h) -> None:
        import urllib.parse
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        wanted = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        authorized = h.headers.get("Authorization") == wanted
        self.requests.append({"scope": query.get("scope", [""])[0], "authorized": authorized})
        if not authorized:
            body = b'{"details": "incorrect username or password"}'
            status = 401
        else:
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            body = json.dumps({"token": self.jwt(access), "expires_in": 300}).encode()
            status = 200
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def jwt(self, access: list) -> str:
        now = int(time.time())

        def part(obj) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        header = part({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]})
        claims = part({"iss": self.issuer, "sub": self.user, "aud": self.service, "exp": now + 300,
                       "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access})
        signing_input = f"{header}.{claims}"
        signature = subprocess.run([OPENSSL_BINARY, "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True, capture_output=True).stdout
        return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


# ------------------------------------------------------------------ small images

def layer_tar(files: dict[str, bytes], *, mode: int = 0o755) -> bytes:
    """An uncompressed layer tar holding ``files`` (parent directories included)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(store, names, layers: list[bytes], *, gzip_layers: bool = False, cmd=("sh",)):
    """Store the layers (plain or gzipped) and an image of them under ``names``."""
    import gzip
    import hashlib

    from teachdock.image.store import OCI_LAYER, OCI_LAYER_GZIP

    descriptors, diff_ids = [], []
    for data in layers:
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        if gzip_layers:
            descriptors.append(store.put_blob(gzip.compress(data, mtime=0), media_type=OCI_LAYER_GZIP))
        else:
            descriptors.append(store.put_blob(data, media_type=OCI_LAYER))
    config = {
        "created": "2024-05-01T12:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-05-01T12:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }
    return store.add_image(config, descriptors, names)
