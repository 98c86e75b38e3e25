"""Registry client: challenges, credentials, and pull/push against a small in-process fake
registry (http.server on 127.0.0.1) that can demand Basic or Bearer auth, redirect blobs,
lie about digests and corrupt blobs."""

import base64
import gzip
import io
import json
import re
import tarfile
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from teachdock.image.digest import DigestMismatch, sha256_digest
from teachdock.image.layers import LayerError
from teachdock.image.manifest import (DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
                                      OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST)
from teachdock.image.platforms import host_platform
from teachdock.image.registry import pull, push
from teachdock.image.registry_client import (MANIFEST_ACCEPT, Challenge, ManifestUnknown, RegistryAuthError,
                                             RegistryClient, RegistryError, RegistryUnreachable,
                                             docker_config_credentials, parse_challenges)
from teachdock.image.store import ImageStore


# ---------------------------------------------------------------- challenges and credentials

def test_parse_a_bearer_challenge_with_a_comma_in_the_scope():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/alpine:pull,push"')
    assert parse_challenges(header) == [Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull,push"})]


def test_parse_several_challenges_unquoted_values_and_escapes():
    header = 'Basic realm="Registry \\"realm\\"", Bearer realm="http://h/token",service=reg,error="invalid_token"'
    assert parse_challenges(header) == [
        Challenge("basic", {"realm": 'Registry "realm"'}),
        Challenge("bearer", {"realm": "http://h/token", "service": "reg", "error": "invalid_token"}),
    ]
    assert parse_challenges("") == []


def test_docker_config_credentials(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:s3cret:with:colons").decode()},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"bob:hub").decode()},
    }}))
    assert docker_config_credentials("127.0.0.1:5000", config) == ("alice", "s3cret:with:colons")
    assert docker_config_credentials("registry-1.docker.io", config) == ("bob", "hub")
    assert docker_config_credentials("other:5000", config) is None
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_config_credentials("127.0.0.1:5000") == ("alice", "s3cret:with:colons")
    assert docker_config_credentials("127.0.0.1:5000", tmp_path / "missing.json") is None


@pytest.mark.parametrize("host, scheme", [("127.0.0.1:5000", "http"), ("localhost:5000", "http"),
                                          ("[::1]:5000", "http"), ("registry.example.com", "https"),
                                          ("10.0.0.1:5000", "https")])
def test_plain_http_only_for_loopback_unless_insecure(host, scheme):
    assert RegistryClient(host, docker_config=False).base_url == f"{scheme}://{host}"
    assert RegistryClient(host, insecure=True, docker_config=False).base_url == f"http://{host}"


# ---------------------------------------------------------------- a fake registry

class FakeRegistry:
    """Just enough of the distribution API, with knobs for misbehaviour."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.basic: tuple[str, str] | None = None          # demand Basic auth with these
        self.bearer: str | None = None                      # demand this Bearer token
        self.token_credentials: tuple[str, str] | None = None  # the token endpoint demands these
        self.token_requests: list[dict] = []
        self.corrupt: set[str] = set()
        self.lie_about_digests = False
        self.redirect_blobs_to: str | None = None
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True       # headers and body are two writes

            def log_message(self, *args):
                pass

            def do_GET(self):
                registry.handle(self, "GET")

            def do_HEAD(self):
                registry.handle(self, "HEAD")

            def do_POST(self):
                registry.handle(self, "POST")

            def do_PATCH(self):
                registry.handle(self, "PATCH")

            def do_PUT(self):
                registry.handle(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    # -- helpers for tests
    def add_manifest(self, repo, ref, data, media_type):
        self.manifests[(repo, ref)] = (data, media_type)
        self.manifests[(repo, sha256_digest(data))] = (data, media_type)

    def calls(self, method=None, pattern=""):
        return [(m, p) for m, p, _ in self.requests if (method is None or m == method) and re.search(pattern, p)]

    # -- the protocol
    def reply(self, h, status, body=b"", headers=None, method="GET"):
        h.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        if method != "HEAD" and body:
            h.wfile.write(body)

    def error(self, h, status, code, method="GET", headers=None):
        body = json.dumps({"errors": [{"code": code, "message": code.lower().replace("_", " ")}]}).encode()
        self.reply(h, status, body, {"Content-Type": "application/json", **(headers or {})}, method)

    def handle(self, h, method):
        split = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(split.query)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.requests.append((method, h.path, dict(h.headers)))
        if split.path == "/token":
            return self.token(h, query)
        if not self.authorized(h, method, split.path):
            return
        if split.path == "/v2/":
            return self.reply(h, 200, b"{}", {"Content-Type": "application/json"}, method)
        if match := re.fullmatch(r"/v2/(.+)/blobs/uploads/([^/]*)", split.path):
            return self.upload(h, method, match.group(1), match.group(2), query, body)
        if match := re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", split.path):
            repo, ref = match.groups()
            if method == "PUT":
                digest = sha256_digest(body)
                self.add_manifest(repo, ref, body, h.headers["Content-Type"])
                announced = "sha256:" + "0" * 64 if self.lie_about_digests else digest
                return self.reply(h, 201, headers={"Docker-Content-Digest": announced,
                                                   "Location": f"/v2/{repo}/manifests/{digest}"})
            if (repo, ref) not in self.manifests:
                return self.error(h, 404, "MANIFEST_UNKNOWN", method)
            data, media_type = self.manifests[(repo, ref)]
            announced = "sha256:" + "0" * 64 if self.lie_about_digests else sha256_digest(data)
            return self.reply(h, 200, data, {"Content-Type": media_type, "Docker-Content-Digest": announced}, method)
        if match := re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", split.path):
            digest = match.group(2)
            if digest not in self.blobs:
                return self.error(h, 404, "BLOB_UNKNOWN", method)
            if self.redirect_blobs_to and method == "GET":
                return self.reply(h, 307, headers={"Location": f"{self.redirect_blobs_to}/cdn/{digest}"})
            data = self.blobs[digest]
            if digest in self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return self.reply(h, 200, data, {"Content-Type": "application/octet-stream",
                                             "Docker-Content-Digest": digest}, method)
        if match := re.fullmatch(r"/cdn/(sha256:[0-9a-f]{64})", split.path):
            return self.reply(h, 200, self.origin.blobs[match.group(1)], method=method)
        return self.error(h, 404, "NAME_UNKNOWN", method)

    def authorized(self, h, method, path):
        given = h.headers.get("Authorization") or ""
        if self.basic is not None:
            wanted = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
            if given != wanted:
                self.error(h, 401, "UNAUTHORIZED", method, {"WWW-Authenticate": 'Basic realm="fake"'})
                return False
        if self.bearer is not None and given != f"Bearer {self.bearer}":
            challenge = f'Bearer realm="http://{self.host}/token",service="fake"'
            if match := re.match(r"/v2/(.+)/(manifests|blobs)/", path):
                actions = "pull" if method in ("GET", "HEAD") else "pull,push"
                challenge += f',scope="repository:{match.group(1)}:{actions}"'
            self.error(h, 401, "UNAUTHORIZED", method, {"WWW-Authenticate": challenge})
            return False
        return True

    def token(self, h, query):
        self.token_requests.append({k: v[0] for k, v in query.items()})
        if self.token_credentials is not None:
            wanted = "Basic " + base64.b64encode(":".join(self.token_credentials).encode()).decode()
            if h.headers.get("Authorization") != wanted:
                return self.reply(h, 401, b'{"details":"incorrect username or password"}')
        return self.reply(h, 200, json.dumps({"token": self.bearer, "expires_in": 300}).encode(),
                          {"Content-Type": "application/json"})

    def upload(self, h, method, repo, upload_id, query, body):
        if method == "POST":
            new_id = str(uuid.uuid4())
            self.uploads[new_id] = bytearray()
            return self.reply(h, 202, headers={"Location": f"/v2/{repo}/blobs/uploads/{new_id}?_state=abc",
                                               "Range": "0-0", "Docker-Upload-UUID": new_id})
        data = self.uploads[upload_id]
        if method == "PATCH":
            start = int(h.headers["Content-Range"].split("-")[0])
            if start != len(data):
                return self.error(h, 416, "BLOB_UPLOAD_INVALID")
            data += body
            return self.reply(h, 202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload_id}?_state=abc",
                                               "Range": f"0-{len(data) - 1}"})
        data += body
        digest = query["digest"][0]
        if sha256_digest(bytes(data)) != digest:
            return self.error(h, 400, "DIGEST_INVALID")
        self.blobs[digest] = bytes(data)
        announced = "sha256:" + "0" * 64 if self.lie_about_digests else digest
        return self.reply(h, 201, headers={"Docker-Content-Digest": announced,
                                           "Location": f"/v2/{repo}/blobs/{digest}"})


@pytest.fixture
def fake():
    registry = FakeRegistry()
    yield registry
    registry.stop()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def publish(fake, repo, tag, layers, *, arch="amd64", docker_types=False, gzip_layers=True):
    """Put an image's blobs and manifest into the fake; returns (manifest bytes, config bytes)."""
    diff_ids, descriptors = [], []
    for data in layers:
        diff_ids.append(sha256_digest(data))
        blob = gzip.compress(data, mtime=0) if gzip_layers else data
        fake.blobs[sha256_digest(blob)] = blob
        kind = (DOCKER_LAYER_GZIP if docker_types else OCI_LAYER_GZIP) if gzip_layers else OCI_LAYER
        descriptors.append({"mediaType": kind, "digest": sha256_digest(blob), "size": len(blob)})
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    fake.blobs[sha256_digest(config)] = config
    manifest_type = DOCKER_MANIFEST if docker_types else OCI_MANIFEST
    manifest = json.dumps({"schemaVersion": 2, "mediaType": manifest_type,
                           "config": {"mediaType": DOCKER_CONFIG if docker_types else OCI_CONFIG,
                                      "digest": sha256_digest(config), "size": len(config)},
                           "layers": descriptors}, indent=3).encode()       # odd formatting: kept byte for byte
    if tag is not None:
        fake.add_manifest(repo, tag, manifest, manifest_type)
    else:
        fake.add_manifest(repo, sha256_digest(manifest), manifest, manifest_type)
    return manifest, config


def publish_index(fake, repo, tag, platforms, *, docker_types=False):
    entries = []
    for arch in platforms:
        manifest, _ = publish(fake, repo, None, [layer({f"{arch}.txt": arch.encode() * 100})], arch=arch,
                              docker_types=docker_types)
        entries.append({"mediaType": DOCKER_MANIFEST if docker_types else OCI_MANIFEST,
                        "digest": sha256_digest(manifest), "size": len(manifest),
                        "platform": {"os": "linux", "architecture": arch}})
    kind = DOCKER_MANIFEST_LIST if docker_types else OCI_INDEX
    index = json.dumps({"schemaVersion": 2, "mediaType": kind, "manifests": entries}).encode()
    fake.add_manifest(repo, tag, index, kind)
    return index


def blob_files(store):
    import os
    return sorted(os.listdir(store.blobs_dir))


# ---------------------------------------------------------------- pull

def test_pull_stores_manifest_config_and_layers_byte_for_byte(fake, store):
    manifest, config = publish(fake, "team/app", "1", [layer({"a": b"a" * 3000}), layer({"b": b"b"})])
    image = pull(store, f"{fake.host}/team/app:1", docker_config=False)
    assert store.read_blob(image.manifest_digest) == manifest
    assert store.read_blob(image.id) == config
    assert [store.read_blob(l.digest) for l in image.layers] == \
        [fake.blobs[l["digest"]] for l in json.loads(manifest)["layers"]]
    assert image.names == (f"{fake.host}/team/app:1", f"{fake.host}/team/app@{sha256_digest(manifest)}")


def test_pull_sends_accept_for_all_manifest_kinds_and_traces_the_exchange(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    trace = []
    pull(store, f"{fake.host}/team/app:1", trace=trace, docker_config=False)
    [(_, _, headers)] = [r for r in fake.requests if "/manifests/" in r[1]]
    assert set(headers["Accept"].split(", ")) == set(MANIFEST_ACCEPT)
    assert [(t["method"], re.sub(r"sha256:\w+", "D", t["url"].split(fake.host)[1]), t["status"]) for t in trace] == [
        ("GET", "/v2/", 200), ("GET", "/v2/team/app/manifests/1", 200),
        ("GET", "/v2/team/app/blobs/D", 200), ("GET", "/v2/team/app/blobs/D", 200)]
    assert trace[1]["response"]["Content-Type"] == OCI_MANIFEST
    assert trace[1]["digest"].startswith("sha256:")


@pytest.mark.parametrize("docker_types", [False, True])
def test_pull_picks_the_platform_from_an_index(fake, store, docker_types):
    index = publish_index(fake, "team/multi", "1", ["arm64", "amd64", "s390x"], docker_types=docker_types)
    image = pull(store, f"{fake.host}/team/multi:1", platform="linux/s390x", docker_config=False)
    assert image.config["architecture"] == "s390x"
    # the digest recorded is the one the tag points to: the index's (as Docker's RepoDigests)
    assert f"{fake.host}/team/multi@{sha256_digest(index)}" in image.names
    host = pull(store, f"{fake.host}/team/multi:1", docker_config=False)
    assert host.config["architecture"] == host_platform()["architecture"]


def test_pull_of_a_missing_platform_names_the_available_ones(fake, store):
    publish_index(fake, "team/multi", "1", ["s390x", "ppc64le"])
    with pytest.raises(Exception, match="no manifest for platform linux/riscv64.*linux/ppc64le, linux/s390x"):
        pull(store, f"{fake.host}/team/multi:1", platform="linux/riscv64", docker_config=False)


def test_blobs_already_in_the_store_are_not_fetched(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    publish(fake, "team/app", "2", [layer({"a": b"a"}), layer({"b": b"b"})])
    pull(store, f"{fake.host}/team/app:1", docker_config=False)
    fake.requests.clear()
    events = []
    pull(store, f"{fake.host}/team/app:2", progress=events.append, docker_config=False)
    assert len(fake.calls("GET", "/blobs/")) == 2             # new config and new layer only
    assert [e.status for e in events if e.status in ("Already exists", "Pull complete")] == \
        ["Pull complete", "Already exists", "Pull complete"]
    downloading = [e for e in events if e.status == "Downloading"]
    assert downloading and downloading[-1].current == downloading[-1].total


def test_a_missing_image_says_so(fake, store):
    with pytest.raises(ManifestUnknown, match=f"No such image on registry: {fake.host}/team/nope:1"):
        pull(store, f"{fake.host}/team/nope:1", docker_config=False)


def test_something_that_is_not_a_registry(store):
    class NotARegistry(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotARegistry)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(RegistryError, match=f"answered 404 .*{host} does not look like an OCI registry"):
            pull(store, f"{host}/team/app:1", docker_config=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_unreachable_registry_names_the_address(store):
    import socket
    with socket.socket() as sock:               # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}.*connection refused"):
            pull(store, f"127.0.0.1:{port}/team/app:1", docker_config=False)


def test_a_manifest_digest_header_that_lies_is_refused(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    fake.lie_about_digests = True
    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    assert blob_files(store) == []


def test_a_corrupt_blob_is_refused_and_the_pull_leaves_nothing(fake, store):
    manifest, _ = publish(fake, "team/app", "1", [layer({"a": b"a"}), layer({"b": b"b"})])
    fake.corrupt.add(json.loads(manifest)["layers"][1]["digest"])
    with pytest.raises(DigestMismatch, match=json.loads(manifest)["layers"][1]["digest"]):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    assert blob_files(store) == []                  # config and first layer were removed again
    assert store.list_images() == []


def test_a_plain_layer_whose_diff_id_lies_is_refused(fake, store):
    manifest, config = publish(fake, "team/app", "1", [layer({"a": b"a"})], gzip_layers=False)
    wrong = json.loads(config)
    wrong["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64]
    wrong_config = json.dumps(wrong).encode()
    fake.blobs[sha256_digest(wrong_config)] = wrong_config
    document = json.loads(manifest)
    document["config"].update(digest=sha256_digest(wrong_config), size=len(wrong_config))
    fake.add_manifest("team/app", "1", json.dumps(document).encode(), OCI_MANIFEST)
    with pytest.raises(DigestMismatch, match="diff_id"):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    assert blob_files(store) == []


def test_zstd_layers_are_refused_before_downloading(fake, store):
    manifest, _ = publish(fake, "team/app", "1", [layer({"a": b"a"})])
    document = json.loads(manifest)
    document["layers"][0]["mediaType"] = OCI_LAYER_ZSTD
    fake.add_manifest("team/app", "1", json.dumps(document).encode(), OCI_MANIFEST)
    with pytest.raises(LayerError, match="zstd"):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    assert fake.calls("GET", "/blobs/") == []


def test_schema1_manifests_are_refused(fake, store):
    fake.add_manifest("team/old", "1", b'{"schemaVersion": 1}', "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(RegistryError, match="schema 1"):
        pull(store, f"{fake.host}/team/old:1", docker_config=False)


def test_a_blob_redirect_to_another_host_gets_no_credentials(fake, store):
    cdn = FakeRegistry()
    try:
        cdn.origin = fake
        publish(fake, "team/app", "1", [layer({"a": b"a"})])
        fake.bearer = "tok-123"
        fake.redirect_blobs_to = f"http://{cdn.host}"
        image = pull(store, f"{fake.host}/team/app:1", docker_config=False)
        assert len(cdn.requests) == 2                                   # config and layer
        assert all("Authorization" not in headers for _, _, headers in cdn.requests)
        assert store.read_blob(image.layers[0].digest) == fake.blobs[image.layers[0].digest]
    finally:
        cdn.stop()


# ---------------------------------------------------------------- auth

def test_bearer_flow_anonymous_token(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    fake.bearer = "anon-token"
    trace = []
    pull(store, f"{fake.host}/team/app:1", trace=trace, docker_config=False)
    # ping -> 401 with the challenge; one token for the pull scope; then every request carries it
    assert (trace[0]["status"], trace[0]["response"]["WWW-Authenticate"]) == \
        (401, f'Bearer realm="http://{fake.host}/token",service="fake"')
    assert fake.token_requests == [{"service": "fake", "scope": "repository:team/app:pull"}]
    assert trace[1]["note"] == "token" and trace[1]["status"] == 200
    assert all(t["auth"] == "bearer" and t["status"] == 200 for t in trace[2:])


def test_bearer_flow_with_credentials(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    fake.bearer, fake.token_credentials = "user-token", ("alice", "pw")
    with pytest.raises(RegistryAuthError, match="token server .* refused anonymous access"):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        pull(store, f"{fake.host}/team/app:1", credentials=("alice", "wrong"), docker_config=False)
    image = pull(store, f"{fake.host}/team/app:1", credentials=("alice", "pw"), docker_config=False)
    assert image.names[0] == f"{fake.host}/team/app:1"


def test_bearer_token_for_push_asks_for_pull_and_push(fake, store):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    pull(store, f"{fake.host}/team/app:1", docker_config=False)
    store.tag(f"{fake.host}/team/app:1", f"{fake.host}/team/copy:1")
    fake.bearer = "push-token"
    push(store, f"{fake.host}/team/copy:1", docker_config=False)
    assert [t["scope"] for t in fake.token_requests] == ["repository:team/copy:pull,push"]


def test_basic_auth(fake, store, tmp_path, monkeypatch):
    publish(fake, "team/app", "1", [layer({"a": b"a"})])
    fake.basic = ("bob", "builder")
    with pytest.raises(RegistryAuthError, match="requires authentication .* no credentials were given"):
        pull(store, f"{fake.host}/team/app:1", docker_config=False)
    with pytest.raises(RegistryAuthError, match="refused the credentials given"):
        pull(store, f"{fake.host}/team/app:1", credentials=("bob", "nope"), docker_config=False)
    trace = []
    pull(store, f"{fake.host}/team/app:1", credentials=("bob", "builder"), trace=trace, docker_config=False)
    assert [t["auth"] for t in trace] == ["", "basic", "basic", "basic"]
    # credentials from `docker login`'s config file
    (tmp_path / "config.json").write_text(json.dumps(
        {"auths": {fake.host: {"auth": base64.b64encode(b"bob:builder").decode()}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert pull(ImageStore(tmp_path / "second"), f"{fake.host}/team/app:1").names


# ---------------------------------------------------------------- push

def local_image(store, name, sizes=(3000, 10)):
    import os
    descriptors, diff_ids = [], []
    for i, size in enumerate(sizes):
        data = layer({f"f{i}": os.urandom(size)})
        diff_ids.append(sha256_digest(data))
        descriptors.append(store.put_blob(gzip.compress(data, mtime=0), media_type=OCI_LAYER_GZIP))
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return store.add_image(config, descriptors, [name])


def test_push_uploads_blobs_then_the_manifest_byte_for_byte(fake, store):
    image = local_image(store, f"{fake.host}/team/app:1")
    digest = push(store, f"{fake.host}/team/app:1", docker_config=False)
    assert digest == image.manifest_digest
    assert fake.manifests[("team/app", "1")] == (store.read_blob(image.manifest_digest), OCI_MANIFEST)
    for descriptor in [*image.layers, image.manifest_descriptor]:
        if descriptor is not image.manifest_descriptor:
            assert fake.blobs[descriptor.digest] == store.read_blob(descriptor.digest)
    assert fake.blobs[image.id] == store.read_blob(image.id)
    assert f"{fake.host}/team/app@{digest}" in store.resolve(image.id).names
    assert len(fake.calls("PATCH")) == 0                       # small blobs: one PUT each


def test_push_in_chunks_for_big_blobs(fake, store):
    image = local_image(store, f"{fake.host}/team/app:1", sizes=(250_000, 10))
    size = image.layers[0].size
    events = []
    push(store, f"{fake.host}/team/app:1", chunk_size=64 * 1024, progress=events.append, docker_config=False)
    assert len(fake.calls("PATCH")) == -(-size // (64 * 1024))
    assert fake.blobs[image.layers[0].digest] == store.read_blob(image.layers[0].digest)
    pushing = [e for e in events if e.id == image.layers[0].digest.split(":")[1][:12] and e.status == "Pushing"]
    assert pushing[-1].current == size == pushing[-1].total


def test_push_skips_blobs_the_registry_has(fake, store):
    local_image(store, f"{fake.host}/team/app:1")
    push(store, f"{fake.host}/team/app:1", docker_config=False)
    fake.requests.clear()
    events = []
    push(store, f"{fake.host}/team/app:1", progress=events.append, docker_config=False)
    assert fake.calls("POST") == [] and len(fake.calls("HEAD")) == 3
    assert [e.status for e in events][:3] == ["Layer already exists"] * 3


def test_push_checks_the_digests_the_registry_reports(fake, store):
    local_image(store, f"{fake.host}/team/app:1")
    fake.lie_about_digests = True
    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        push(store, f"{fake.host}/team/app:1", docker_config=False)


def test_push_traces_the_upload(fake, store):
    image = local_image(store, f"{fake.host}/team/app:1", sizes=(100,))
    trace = []
    push(store, f"{fake.host}/team/app:1", trace=trace, docker_config=False)
    assert [(t["method"], t["status"]) for t in trace] == [
        ("GET", 200),
        ("HEAD", 404), ("POST", 202), ("PUT", 201),            # the layer
        ("HEAD", 404), ("POST", 202), ("PUT", 201),            # the config
        ("PUT", 201)]                                          # the manifest
    assert trace[-1]["request"]["Content-Type"] == OCI_MANIFEST
    assert trace[-1]["digest"] == image.manifest_digest
