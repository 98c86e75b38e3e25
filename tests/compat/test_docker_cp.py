"""``docker cp`` with the real docker CLI (and the SDK's archive calls) against teachdockd."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tests.support.daemons import DOCKER, docker_cli

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
]

V = "/v1.45"


@pytest.fixture(scope="module")
def docker(daemon, tmp_path_factory):
    return docker_cli(daemon.socket_path, tmp_path_factory.mktemp("docker-config"))


@pytest.fixture
def box(docker):
    """A running container with a directory, a file in it, and a symlink to its own /etc."""
    started = docker("run", "-d", "-v", "cpvol:/vol", "busybox", "sh", "-c",
                     "mkdir -p /data/sub && echo inner > /data/sub/f && ln -s /etc /data/etclink && "
                     "echo in-volume > /vol/v && touch /ready && exec sleep 300")
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    assert docker("exec", container, "sh", "-c", "for i in $(seq 100); do test -e /ready && exit 0; sleep 0.05; "
                                                 "done; exit 1").returncode == 0
    yield container
    docker("rm", "-f", "-v", container)
    docker("volume", "rm", "cpvol")


def test_copy_a_file_and_a_directory_out(docker, box, tmp_path):
    assert docker("cp", f"{box}:/etc/hostname", str(tmp_path)).returncode == 0
    assert (tmp_path / "hostname").read_text() == f"{box[:12]}\n"  # the container's own, not the image's
    assert docker("cp", f"{box}:/data", str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out" / "sub" / "f").read_text() == "inner\n"
    assert os.readlink(tmp_path / "out" / "etclink") == "/etc"  # a link is copied as a link
    assert docker("cp", f"{box}:/vol/v", str(tmp_path)).returncode == 0  # from the volume, not the rootfs
    assert (tmp_path / "v").read_text() == "in-volume\n"


def test_copy_a_file_and_a_directory_in(docker, box, tmp_path):
    (tmp_path / "notes.txt").write_text("from the host\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a").write_text("a\n")
    assert docker("cp", str(tmp_path / "notes.txt"), f"{box}:/tmp/").returncode == 0
    assert docker("cp", str(tmp_path / "dir"), f"{box}:/tmp/").returncode == 0
    shown = docker("exec", box, "cat", "/tmp/notes.txt", "/tmp/dir/a")
    assert shown.stdout == "from the host\na\n"


def test_a_symlink_the_container_planted_leads_into_the_container_not_the_host(docker, box, tmp_path):
    (tmp_path / "planted.txt").write_text("x\n")
    assert docker("cp", str(tmp_path / "planted.txt"), f"{box}:/data/etclink/").returncode == 0
    assert docker("exec", box, "cat", "/etc/planted.txt").stdout == "x\n"
    assert not os.path.exists("/etc/planted.txt")


def test_missing_paths_are_errors(docker, box, tmp_path):
    out = docker("cp", f"{box}:/no/such/file", str(tmp_path))
    assert out.returncode == 1 and "Could not find the file /no/such/file" in out.stderr
    (tmp_path / "f").write_text("f")
    into = docker("cp", str(tmp_path / "f"), f"{box}:/no/such/dir/")
    assert into.returncode == 1


def test_an_upload_with_dotdot_is_refused_and_writes_nothing(daemon, box):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        member = tarfile.TarInfo("../../escaped")
        member.size = 3
        tar.addfile(member, io.BytesIO(b"bad"))
    status, _, body = _put(daemon, box, "/tmp", data.getvalue())
    assert status == 400, body
    rootfs = daemon.json("GET", f"{V}/containers/{box}/json")["GraphDriver"]["Data"]["MergedDir"]
    assert not os.path.exists(os.path.join(os.path.dirname(rootfs), "escaped"))
    assert not os.path.exists(os.path.join(rootfs, "escaped"))


def _put(daemon, container: str, path: str, tar_bytes: bytes):
    connection = daemon.connection()
    try:
        connection.request("PUT", f"{V}/containers/{container}/archive?path={path}", body=tar_bytes,
                           headers={"Content-Type": "application/x-tar"})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_the_sdk_get_and_put_archive(daemon, box):
    docker_sdk = pytest.importorskip("docker")
    client = docker_sdk.DockerClient(base_url=f"unix://{daemon.socket_path}")
    container = client.containers.get(box)
    stream, stat = container.get_archive("/data/sub/f")
    assert stat["name"] == "f" and stat["size"] == len("inner\n")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("f").read() == b"inner\n"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        member = tarfile.TarInfo("sdk.txt")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"sdk\n"))
    assert container.put_archive("/tmp", data.getvalue()) is True
    assert container.exec_run(["cat", "/tmp/sdk.txt"]).output == b"sdk\n"
    client.close()


def test_copying_into_a_read_only_container_is_refused(docker, tmp_path):
    started = docker("run", "-d", "--read-only", "busybox", "sleep", "300")
    container = started.stdout.strip()
    try:
        (tmp_path / "f").write_text("f")
        refused = docker("cp", str(tmp_path / "f"), f"{container}:/tmp/")
        assert refused.returncode == 1 and "read-only" in refused.stderr
    finally:
        docker("rm", "-f", container)
