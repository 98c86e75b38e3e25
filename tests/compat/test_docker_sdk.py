"""The docker Python SDK (``pip install docker``), unchanged, against teachdockd.

The SDK takes other paths than the CLI: ``containers.run`` never attaches (it creates,
starts, waits, then reads ``logs``), ``exec_run`` hijacks ``/exec/<id>/start``, and it
sends booleans as ``True``/``False`` in query strings.
"""

from __future__ import annotations

import time

import pytest

from tests.support.registry import REGISTRY_BINARY, local_registry

docker = pytest.importorskip("docker", reason="the docker SDK is in the test extra: pip install -e .[test]")

from teachdock.image.images import Images  # noqa: E402
from teachdock.image.registry import push  # noqa: E402

pytestmark = [
    pytest.mark.root,
]


@pytest.fixture
def client(daemon):
    sdk = docker.DockerClient(base_url=f"unix://{daemon.socket_path}", timeout=60)
    yield sdk
    sdk.close()
    daemon.remove_all()


def test_version_and_ping(client):
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"] == "1.45"
    assert any(component["Name"] == "Engine" for component in version["Components"])


def test_run_in_the_foreground_returns_the_output(client):
    assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    assert client.containers.list(all=True) == []  # remove=True removed it


def test_a_failing_run_raises_container_error_with_the_exit_status(client):
    with pytest.raises(docker.errors.ContainerError) as raised:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"])
    assert raised.value.exit_status == 3
    assert b"oops" in raised.value.stderr


def test_detached_run_list_logs_wait_and_remove(client):
    container = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 30"], detach=True, name="sdk-one",
                                      environment={"GREETING": "hello"}, mem_limit="64m")
    assert [c.name for c in client.containers.list()] == ["sdk-one"]
    deadline = time.monotonic() + 10
    while container.logs() != b"started\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert container.logs() == b"started\n"
    container.reload()
    assert container.status == "running"
    assert container.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert "GREETING=hello" in container.attrs["Config"]["Env"]
    container.kill()
    assert container.wait(timeout=10)["StatusCode"] == 137
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("sdk-one")


def test_exec_run_output_exit_code_and_demux(client):
    container = client.containers.run("busybox", ["sleep", "60"], detach=True)
    result = container.exec_run(["sh", "-c", "echo a; echo b >&2; exit 3"])
    assert (result.exit_code, result.output) == (3, b"a\nb\n")
    assert container.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True).output == (b"a\n", b"b\n")
    assert container.exec_run(["cat", "/etc/hostname"]).output == f"{container.id[:12]}\n".encode()
    streamed = container.exec_run(["sh", "-c", "echo one; echo two"], stream=True)
    assert b"".join(streamed.output) == b"one\ntwo\n"
    assert container.exec_run(["id", "-un"], user="nobody").output == b"nobody\n"
    container.remove(force=True)


def test_images_list_and_a_missing_image(client):
    tags = [tag for image in client.images.list() for tag in image.tags]
    assert "busybox:latest" in tags
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("no-such-image:v9")


def test_a_name_conflict_is_an_api_error_409(client):
    client.containers.create("busybox", ["true"], name="twice")
    with pytest.raises(docker.errors.APIError) as raised:
        client.containers.create("busybox", ["true"], name="twice")
    assert raised.value.status_code == 409
    assert "already in use" in str(raised.value)


@pytest.mark.skipif(REGISTRY_BINARY is None,
                    reason="needs Debian's docker-registry (apt-get install docker-registry) as a local registry")
def test_images_pull_from_a_local_registry(client, tmp_path):
    with local_registry(tmp_path) as registry:
        source = Images(tmp_path / "source")
        source.bootstrap_busybox()
        name = f"{registry.host}/course/sdkbox"
        source.tag("busybox:latest", f"{name}:v2")
        push(source.store, f"{name}:v2")
        image = client.images.pull(name, tag="v2")
        assert f"{name}:v2" in image.tags
        assert client.containers.run(f"{name}:v2", ["echo", "pulled"], remove=True) == b"pulled\n"
        client.images.remove(f"{name}:v2")
