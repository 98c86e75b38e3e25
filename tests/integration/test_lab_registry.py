"""The registries chapter against a real registry: Debian's docker-registry on 127.0.0.1,
started and stopped by teachdock.lab.registries.registry_lab; push and pull with trace=, a tampered
blob, Basic auth, and the exercise checks on real state. Nothing may be left running."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from teachdock.image.digest import DigestMismatch, sha256_digest
from teachdock.image.images import Images
from teachdock.image.registry import pull, push
from teachdock.image.registry_client import RegistryAuthError
from teachdock.image.store import ImageStore
from teachdock.lab.registries.checks import check_pull_by_digest, check_upload_count, registry_blob_count
from teachdock.lab.registries.recording_proxy import RecordingProxy, skopeo_copy
from teachdock.lab.registries.registry_lab import local_registry, process_running, tamper_blob, trace_rows

pytestmark = pytest.mark.skipif(shutil.which("docker-registry") is None,
                                reason="needs Debian's docker-registry (apt-get install docker-registry)")


def registry_processes(directory: Path) -> list[int]:
    """PIDs of processes whose command line mentions ``directory`` (our registries' configs)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in cmdline and process_running(int(entry)):
                found.append(int(entry))
    return found


@pytest.fixture
def images(tmp_path):
    images = Images(tmp_path / "data")
    images.bootstrap_busybox()
    return images


def test_start_and_stop_by_pid_leave_nothing(tmp_path):
    with local_registry(tmp_path) as registry:
        assert registry.host.startswith("127.0.0.1:")
        assert process_running(registry.pid)
        with urllib.request.urlopen(registry.url + "/v2/", timeout=5) as response:
            assert response.status == 200
        assert "addr: 127.0.0.1:" in registry.config_text
        workdir = registry.directory
        assert registry_processes(tmp_path) == [registry.pid]
    assert not process_running(registry.pid)
    assert not workdir.exists()
    assert registry_processes(tmp_path) == []


def test_stopped_even_when_the_block_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with local_registry(tmp_path) as registry:
            1 / 0
    assert not process_running(registry.pid) and not registry.directory.exists()


def test_push_pull_trace_second_push_and_the_exercise_checks(tmp_path, images):
    store = images.store
    busybox = store.resolve("busybox:latest")
    with local_registry(tmp_path) as registry:
        name = f"{registry.host}/team/busybox:1"
        store.tag("busybox:latest", name)
        first = []
        digest = push(store, name, trace=first, docker_config=False)
        assert digest == busybox.manifest_digest
        rows = trace_rows(first)
        assert [(r["method"], r["status"]) for r in rows] == [
            ("GET", 200), ("HEAD", 404), ("POST", 202), ("PUT", 201), ("HEAD", 404), ("POST", 202), ("PUT", 201),
            ("PUT", 201)]
        assert rows[-1]["path"] == "/v2/team/busybox/manifests/1"

        second = []
        push(store, name, trace=second, docker_config=False)
        assert [r["meaning"] for r in trace_rows(second)].count("blob already there: skip it") == 2

        blobs = registry_blob_count(registry)
        assert blobs == 3          # the layer, the config, and the manifest: distribution stores it as a blob too
        right = check_upload_count(2, store, registry)      # a new repository: both HEADs 404, both go up
        assert right.passed, right.message
        assert f"went from {blobs} to {blobs}" in right.message   # stored once, on disk
        wrong = check_upload_count(0, store, registry)
        assert not wrong.passed and "asks about the new repository" in wrong.message
        names = [str(n) for image in store.list_images() for n in image.names]
        assert "docker.io/library/busybox:latest" in names
        assert not [n for n in names if "team/copy" in n]    # the check removed the names its pushes added

        other = ImageStore(tmp_path / "other")
        pulled_trace = []
        pulled = pull(other, name, trace=pulled_trace, docker_config=False)
        assert pulled.manifest_digest == digest
        assert [r["method"] for r in trace_rows(pulled_trace)] == ["GET"] * 4

        repo = f"{registry.host}/team/app"
        exercise = ImageStore(tmp_path / "exercise")
        assert not check_pull_by_digest(exercise, repo, "v2").answered
        store.tag("busybox:latest", f"{repo}:v2")
        pushed = push(store, f"{repo}:v2", docker_config=False)
        pull(exercise, f"{repo}:v2", docker_config=False)
        assert "pulled by tag" in check_pull_by_digest(exercise, repo, "v2").message
        exercise.remove(f"{repo}:v2")           # as the hint says; the last tag takes the image with it
        assert not exercise.list_images()
        pull(exercise, f"{repo}@{pushed}", docker_config=False)
        assert check_pull_by_digest(exercise, repo, "v2").passed
    assert registry_processes(tmp_path) == []


def test_a_tampered_blob_is_refused_and_leaves_the_store_clean(tmp_path, images):
    store = images.store
    layer = store.resolve("busybox:latest").layers[0].digest
    with local_registry(tmp_path) as registry:
        name = f"{registry.host}/team/busybox:1"
        store.tag("busybox:latest", name)
        push(store, name, docker_config=False)
        path = tamper_blob(registry, layer)
        assert sha256_digest(path.read_bytes()) != layer
        victim = ImageStore(tmp_path / "victim")
        with pytest.raises(DigestMismatch, match=layer):
            pull(victim, name, docker_config=False)
        assert not victim.list_images() and os.listdir(victim.blobs_dir) == []
        tamper_blob(registry, layer)
        assert pull(victim, name, docker_config=False).layers[0].digest == layer


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="needs htpasswd (apt-get install apache2-utils)")
def test_basic_auth_401_without_credentials_then_success(tmp_path, images):
    store = images.store
    with local_registry(tmp_path, htpasswd=("alice", "wonderland")) as registry:
        name = f"{registry.host}/team/busybox:1"
        store.tag("busybox:latest", name)
        with pytest.raises(RegistryAuthError, match="no credentials were given"):
            push(store, name, docker_config=False)
        push(store, name, credentials=("alice", "wonderland"), docker_config=False)
        anonymous = []
        with pytest.raises(RegistryAuthError):
            pull(ImageStore(tmp_path / "a"), name, docker_config=False, trace=anonymous)
        assert [e["status"] for e in anonymous] == [401, 401]
        assert 'Basic realm="teachdock-lab"' in trace_rows(anonymous)[0]["headers"]
        with pytest.raises(RegistryAuthError, match="refused"):
            pull(ImageStore(tmp_path / "b"), name, credentials=("alice", "wrong"), docker_config=False)
        trace = []
        pull(ImageStore(tmp_path / "c"), name, credentials=("alice", "wonderland"), docker_config=False, trace=trace)
        assert trace[0]["status"] == 401 and all(e["status"] == 200 and e["auth"] == "basic" for e in trace[1:])
    assert registry_processes(tmp_path) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to sign the tokens")
def test_token_auth_three_parties_and_the_token_server_stops(tmp_path, images):
    import urllib.error

    from teachdock.lab.registries.registry_lab import TokenServer, jwt_claims, sequence_arrows

    store = images.store
    with TokenServer(tmp_path, "alice", "wonderland") as tokens, \
            local_registry(tmp_path, token_server=tokens) as registry:
        name = f"{registry.host}/team/busybox:1"
        store.tag("busybox:latest", name)
        with pytest.raises(RegistryAuthError, match="token server"):
            push(store, name, credentials=("alice", "wrong"), docker_config=False)
        push(store, name, credentials=("alice", "wonderland"), docker_config=False)
        trace = []
        pull(ImageStore(tmp_path / "p"), name, credentials=("alice", "wonderland"), docker_config=False, trace=trace)
        assert trace[0]["status"] == 401 and "Bearer realm" in trace[0]["response"]["WWW-Authenticate"]
        assert trace[1]["note"] == "token" and trace[1]["status"] == 200 and trace[1]["auth"] == "basic"
        assert all(e["auth"] == "bearer" and e["status"] == 200 for e in trace[2:])
        assert {a["target"] for a in sequence_arrows(trace)} == {"registry", "token server", "client"}
        assert tokens.requests[-1] == {"scope": "repository:team/busybox:pull", "authorized": True}
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{tokens.realm}?service={tokens.service}&scope=repository:x:pull", timeout=5)
        assert refused.value.code == 401           # no password, no token
        refused.value.close()
        asked = urllib.request.Request(f"{tokens.realm}?service={tokens.service}&scope=repository:team/busybox:pull,push",
                                       headers={"Authorization": "Basic YWxpY2U6d29uZGVybGFuZA=="})  # alice:wonderland
        with urllib.request.urlopen(asked, timeout=5) as response:
            token = jwt_claims(json.load(response)["token"])
        assert token["sub"] == "alice" and token["access"][0]["actions"] == ["pull", "push"]
    assert registry_processes(tmp_path) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(tokens.realm, timeout=2)
    assert not tokens.directory.exists()


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo (apt-get install skopeo)")
def test_skopeo_through_the_recording_proxy_uploads_with_post_patch_put(tmp_path, images):
    store = images.store
    busybox = store.resolve("busybox:latest")
    with local_registry(tmp_path) as registry, RecordingProxy(registry.host) as proxy:
        done = skopeo_copy(store, "busybox:latest", f"{proxy.host}/team/skopeo:1", home=tmp_path)
        assert done.returncode == 0, done.stderr
        uploads = [e["method"] for e in proxy.entries if "/blobs/uploads/" in e["url"]]
        assert uploads == ["POST", "PATCH", "PUT"] * 2
        patches = [e for e in proxy.entries if e["method"] == "PATCH"]
        assert sorted(e["body_bytes"] for e in patches) == sorted(
            store.blob_size(digest) for digest in [busybox.id, *(layer.digest for layer in busybox.layers)])
        closing = [e for e in proxy.entries if e["method"] == "PUT" and "digest=" in e["url"]]
        assert all(e["body_bytes"] == 0 and e["status"] == 201 for e in closing)
        assert proxy.entries[-1]["url"].endswith("/v2/team/skopeo/manifests/1")
        assert all(e["user_agent"].startswith("skopeo/") for e in proxy.entries)
        # the copy really is on the registry, byte for byte: teachdock pulls it
        pulled = pull(ImageStore(tmp_path / "pulled"), f"{registry.host}/team/skopeo:1", docker_config=False)
        assert pulled.id == busybox.id
    assert registry_processes(tmp_path) == []


def test_the_proxy_forwards_a_chunked_patch_and_records_it_as_sent(tmp_path):
    """Docker streams a layer it compresses on the fly: Transfer-Encoding: chunked. The proxy
    forwards the whole body and keeps the client's headers and the byte count."""
    import http.client

    data = b"a layer, streamed in pieces\n" * 1000
    digest = sha256_digest(data)
    with local_registry(tmp_path) as registry, RecordingProxy(registry.host) as proxy:
        connection = http.client.HTTPConnection(proxy.host, timeout=10)
        connection.request("POST", "/v2/team/chunks/blobs/uploads/", body=b"")
        started = connection.getresponse()
        started.read()
        location = started.getheader("Location")
        assert started.status == 202 and proxy.host in location      # the registry points back at the proxy
        pieces = (data[i:i + 4096] for i in range(0, len(data), 4096))
        connection.request("PATCH", location, body=pieces, encode_chunked=True,
                           headers={"Content-Type": "application/octet-stream"})
        patched = connection.getresponse()
        patched.read()
        connection.request("PUT", f"{patched.getheader('Location')}&digest={digest}", body=b"")
        closed = connection.getresponse()
        closed.read()
        connection.close()
        assert (patched.status, closed.status) == (202, 201)
        patch = next(e for e in proxy.entries if e["method"] == "PATCH")
        assert patch["request"].get("Transfer-Encoding") == "chunked" and patch["body_bytes"] == len(data)
        assert trace_rows([patch])[0]["headers"] == f"sent {len(data):,} bytes"
        with urllib.request.urlopen(f"{registry.url}/v2/team/chunks/blobs/{digest}", timeout=10) as response:
            assert response.read() == data
