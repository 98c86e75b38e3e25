"""Pull and push against a real registry: Debian's ``docker-registry`` (distribution 2.8)
started on 127.0.0.1 by the test, without auth, with htpasswd (Basic) auth, and with token
(Bearer) auth served by a small token endpoint the test runs; skopeo as a second client.

No root needed. Every registry is stopped by its PID when its test (or module) ends.
"""

import base64
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from teachdock.image.archive import save
from teachdock.image.registry import pull, push
from teachdock.image.registry_client import ManifestUnknown, RegistryAuthError, RegistryUnreachable
from teachdock.image.store import ImageStore

from tests.support.registry import (HTPASSWD_BINARY, OPENSSL_BINARY, REGISTRY_BINARY, TokenServer, free_port, layer_tar,
                                    local_registry, make_image)


pytestmark = pytest.mark.skipif(REGISTRY_BINARY is None,
                                reason="needs Debian's docker-registry (apt-get install docker-registry)")
SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="needs skopeo (apt-get install skopeo)")


@pytest.fixture(scope="module")
def workdir():
    directory = Path(tempfile.mkdtemp(prefix="teachdock-registry-it-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(workdir):
    with local_registry(workdir) as running:
        yield running


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def small_image(store, name, gzip_layers=True, sizes=(4000, 20)):
    layers = [layer_tar({f"bin/file{i}": os.urandom(size)}) for i, size in enumerate(sizes)]
    return make_image(store, [name], layers, gzip_layers=gzip_layers)


def blobs_of(store, image):
    """Every blob of an image, by digest, as bytes: manifest, config, layers."""
    digests = [image.manifest_digest, image.id, *(layer.digest for layer in image.layers)]
    return {digest: store.read_blob(digest) for digest in digests}


def test_push_rm_pull_round_trip_is_byte_for_byte(registry, store):
    name = f"{registry.host}/team/roundtrip:1"
    image = small_image(store, name)
    before = blobs_of(store, image)
    events = []
    digest = push(store, name, progress=events.append, docker_config=False)
    assert digest == image.manifest_digest
    assert {e.status for e in events} >= {"Pushing", "Pushed"}

    store.remove(name, force=True)
    assert os.listdir(store.blobs_dir) == []          # really gone: the pull has to fetch everything
    pulled = pull(store, name, docker_config=False)
    assert blobs_of(store, pulled) == before
    assert pulled.id == image.id
    assert pulled.repo_digests == [f"{registry.host}/team/roundtrip@{digest}"]
    assert pulled.repo_tags == [name]


def test_uncompressed_layers_round_trip_too(registry, store, tmp_path):
    name = f"{registry.host}/team/plain:1"
    image = small_image(store, name, gzip_layers=False)
    push(store, name, docker_config=False)
    other = ImageStore(tmp_path / "other")
    assert blobs_of(other, pull(other, name, docker_config=False)) == blobs_of(store, image)


def test_second_push_and_pull_skip_what_is_there(registry, store):
    name = f"{registry.host}/team/skip:1"
    small_image(store, name)
    push(store, name, docker_config=False)
    trace, events = [], []
    push(store, name, trace=trace, progress=events.append, docker_config=False)
    assert [t["method"] for t in trace] == ["GET", "HEAD", "HEAD", "HEAD", "PUT"]      # ping, 3 blobs, manifest
    assert [t["status"] for t in trace if t["method"] == "HEAD"] == [200, 200, 200]
    assert [e.status for e in events].count("Layer already exists") == 3

    trace, events = [], []
    pull(store, name, trace=trace, progress=events.append, docker_config=False)
    assert not [t for t in trace if "/blobs/" in t["url"]]
    assert [e.status for e in events].count("Already exists") == 3


def test_chunked_upload(registry, store, tmp_path):
    name = f"{registry.host}/team/chunked:1"
    image = small_image(store, name, sizes=(300_000, 10))
    trace = []
    push(store, name, chunk_size=64 * 1024, trace=trace, docker_config=False)
    patches = [t for t in trace if t["method"] == "PATCH"]
    assert len(patches) == -(-image.layers[0].size // (64 * 1024))
    assert all(t["status"] == 202 for t in patches)
    other = ImageStore(tmp_path / "other")
    assert blobs_of(other, pull(other, name, docker_config=False)) == blobs_of(store, image)


def test_missing_image_and_unreachable_registry(registry, store):
    with pytest.raises(ManifestUnknown, match=f"No such image on registry: {registry.host}/team/nothing:1"):
        pull(store, f"{registry.host}/team/nothing:1", docker_config=False)
    port = free_port()
    with pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}.*connection refused"):
        pull(store, f"127.0.0.1:{port}/team/nothing:1", docker_config=False)
    assert os.listdir(store.blobs_dir) == []


@pytest.mark.skipif(HTPASSWD_BINARY is None, reason="needs htpasswd (apt-get install apache2-utils)")
def test_htpasswd_basic_auth(workdir, store, tmp_path, monkeypatch):
    with local_registry(workdir, htpasswd=("alice", "wonderland")) as locked:
        name = f"{locked.host}/team/secret:1"
        image = small_image(store, name)
        with pytest.raises(RegistryAuthError, match="requires authentication .* no credentials were given"):
            push(store, name, docker_config=False)
        with pytest.raises(RegistryAuthError, match="refused the credentials given"):
            push(store, name, credentials=("alice", "wrong"), docker_config=False)
        trace = []
        push(store, name, credentials=("alice", "wonderland"), trace=trace, docker_config=False)
        assert trace[0]["status"] == 401 and trace[0]["response"]["WWW-Authenticate"].startswith("Basic ")
        assert all(t["auth"] == "basic" for t in trace[1:])

        other = ImageStore(tmp_path / "other")
        with pytest.raises(RegistryAuthError):
            pull(other, name, docker_config=False)
        # as after `docker login`: credentials from $DOCKER_CONFIG/config.json
        (tmp_path / "config.json").write_text(json.dumps(
            {"auths": {locked.host: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
        assert blobs_of(other, pull(other, name)) == blobs_of(store, image)


@pytest.mark.skipif(OPENSSL_BINARY is None, reason="needs openssl to sign the test's tokens")
def test_bearer_token_auth(workdir, store, tmp_path):
    with TokenServer(workdir, "alice", "wonderland") as tokens, \
            local_registry(workdir, token_server=tokens) as locked:
        name = f"{locked.host}/team/token:1"
        image = small_image(store, name)
        with pytest.raises(RegistryAuthError, match="token server .* refused anonymous access"):
            push(store, name, docker_config=False)
        trace = []
        push(store, name, credentials=("alice", "wonderland"), trace=trace, docker_config=False)
        challenge = trace[0]["response"]["WWW-Authenticate"]
        assert trace[0]["status"] == 401 and challenge.startswith(f'Bearer realm="{tokens.realm}"')
        assert (trace[1]["note"], trace[1]["status"], trace[1]["auth"]) == ("token", 200, "basic")
        assert all(t["auth"] == "bearer" and t["status"] != 401 for t in trace[2:])     # HEADs may be 404
        assert tokens.requests[-1] == {"scope": "repository:team/token:pull,push", "authorized": True}

        other = ImageStore(tmp_path / "other")
        pulled = pull(other, name, credentials=("alice", "wonderland"), docker_config=False)
        assert blobs_of(other, pulled) == blobs_of(store, image)
        assert tokens.requests[-1]["scope"] == "repository:team/token:pull"


# ---------------------------------------------------------------- skopeo as the other client

@pytest.fixture(scope="module")
def skopeo(workdir):
    """``skopeo(*args)`` -> stdout. Its own empty auth file: as a non-root user skopeo would
    otherwise look in /run/containers/<uid>/, which it may not read."""
    auth_file = workdir / "skopeo-auth.json"
    auth_file.write_text('{"auths": {}}')
    environment = {**os.environ, "REGISTRY_AUTH_FILE": str(auth_file)}

    def run_skopeo(*args, timeout=120):
        done = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=timeout, env=environment)
        assert done.returncode == 0, f"skopeo {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    return run_skopeo


@needs_skopeo
def test_skopeo_reads_what_teachdock_pushed(registry, store, tmp_path, skopeo):
    name = f"{registry.host}/team/forskopeo:1"
    image = small_image(store, name)
    digest = push(store, name, docker_config=False)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}"))
    assert info["Digest"] == digest
    assert info["Layers"] == [layer.digest for layer in image.layers]
    skopeo("copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path / 'oci'}:1")
    for digest_, data in blobs_of(store, image).items():
        assert (tmp_path / "oci" / "blobs" / "sha256" / digest_.split(":")[1]).read_bytes() == data


@needs_skopeo
def test_teachdock_pulls_what_skopeo_pushed(registry, store, tmp_path, skopeo):
    image = small_image(store, "local/app:1")
    save(store, ["local/app:1"], tmp_path / "app.tar")
    name = f"{registry.host}/team/fromskopeo:1"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{tmp_path / 'app.tar'}", f"docker://{name}")
    other = ImageStore(tmp_path / "other")
    pulled = pull(other, name, docker_config=False)
    assert pulled.id == image.id                      # same config bytes, so the same image
    assert pulled.diff_ids == image.diff_ids
    skopeo_digest = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{name}"))["Digest"]
    assert f"{registry.host}/team/fromskopeo@{skopeo_digest}" in pulled.names


@needs_skopeo
def test_pull_speed_against_skopeo(registry, store, tmp_path, skopeo):
    """Figures for the benchmark notes (no assertion on time): same image, same registry."""
    name = f"{registry.host}/team/speed:1"
    layers = [layer_tar({f"data/{i}": os.urandom(8 << 20)}) for i in range(3)]   # 3 x 8 MiB
    make_image(store, [name], layers, gzip_layers=True)
    push(store, name, docker_config=False)

    ours, theirs = [], []
    for run in range(3):
        target = ImageStore(tmp_path / f"ours-{run}")
        started = time.perf_counter()
        pull(target, name, docker_config=False)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        skopeo("copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path / f'skopeo-{run}'}:1")
        theirs.append(time.perf_counter() - started)
        assert len(os.listdir(target.blobs_dir)) == 5
    print(f"\npull of 3 x 8 MiB (gzip of random data) from {registry.host}: teachdock median "
          f"{statistics.median(ours) * 1000:.0f} ms {[round(t * 1000) for t in ours]}, skopeo copy median "
          f"{statistics.median(theirs) * 1000:.0f} ms {[round(t * 1000) for t in theirs]}, "
          f"ratio {statistics.median(ours) / statistics.median(theirs):.2f}x")
