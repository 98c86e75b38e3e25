"""The real docker CLI's image verbs against teachdockd: build (legacy builder), commit,
save/load, image prune, history, rmi of a pulled image.

``DOCKER_BUILDKIT=0`` keeps ``docker build`` on the legacy ``POST /build`` path the daemon
implements. Each scenario asserts on what a user sees: output and exit code.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest

from teachdock.image.images import Images
from teachdock.image.registry import push

from tests.support.daemons import DOCKER, docker_cli, running_daemon
from tests.support.registry import REGISTRY_BINARY, local_registry


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed (/usr/local/bin/docker or /usr/bin/docker): "
                                              "it is the client under test"),
]


@pytest.fixture
def daemon():
    """A daemon per test: image tests change the store (prune -a empties it)."""
    with running_daemon() as process:
        yield process


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def image_rows(docker) -> list[str]:
    return ok(docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()


@pytest.fixture
def context(tmp_path):
    directory = tmp_path / "ctx"
    directory.mkdir()
    (directory / "Dockerfile").write_text('FROM busybox\nCOPY hello /hello\nRUN cat /hello > /copy\nCMD ["cat", "/copy"]\n')
    (directory / "hello").write_text("hello from the build context\n")
    return directory


def test_build_twice_uses_the_cache_and_the_image_runs(docker, context):
    first = ok(docker("build", "-t", "course/hello:v1", str(context)))
    assert "Step 1/4 : FROM busybox" in first and "Using cache" not in first
    assert "Successfully tagged course/hello:v1" in first
    second = ok(docker("build", "-t", "course/hello:v1", str(context)))
    assert second.count("Using cache") == 3
    built = [line.split()[-1] for line in (first + second).splitlines() if line.startswith("Successfully built")]
    assert len(built) == 2 and built[0] == built[1]      # an unchanged rebuild is the same image
    assert ok(docker("run", "--rm", "course/hello:v1")) == "hello from the build context\n"

    (context / "hello").write_text("edited\n")
    third = ok(docker("build", "-t", "course/hello:v1", str(context)))
    assert "Using cache" not in third.split("Step 2/4")[1]  # the COPY changed: it and every later step rerun
    assert ok(docker("run", "--rm", "course/hello:v1")) == "edited\n"
    assert "<none>:<none>" in image_rows(docker)            # the old image lost its tag


def test_build_quiet_with_a_dockerfile_outside_the_context(docker, context, tmp_path):
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\nRUN echo from-outside > /where\n")
    image_id = ok(docker("build", "-q", "-f", str(outside), "-t", "outside", str(context))).strip()
    assert image_id.startswith("sha256:")
    assert ok(docker("image", "inspect", "--format", "{{.Id}}", "outside")).strip() == image_id
    assert ok(docker("run", "--rm", "outside", "cat", "/where")) == "from-outside\n"


def test_a_failing_build_step_fails_the_cli(docker, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "Dockerfile").write_text("FROM busybox\nRUN echo going down; exit 3\n")
    result = docker("build", "-t", "bad", str(tmp_path / "bad"))
    assert result.returncode != 0
    assert "going down" in result.stdout
    assert "Removing intermediate container" not in result.stdout  # dockerd says it only on success
    assert "returned a non-zero code: 3" in result.stderr
    assert "bad:latest" not in image_rows(docker)


def test_commit_then_run_the_committed_image(docker):
    ok(docker("run", "--name", "to-commit", "busybox", "sh", "-c", "echo committed-content > /made-here"))
    image_id = ok(docker("commit", "-m", "a test commit", "-c", 'CMD ["cat", "/made-here"]', "to-commit",
                         "course/committed:v1")).strip()
    assert image_id.startswith("sha256:")
    assert ok(docker("run", "--rm", "course/committed:v1")) == "committed-content\n"
    history = ok(docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
                        "course/committed:v1")).splitlines()
    assert history[0] == f"{image_id}|sh -c echo committed-content > /made-here|a test commit"
    assert len(history) == 3 and history[-1].startswith("<missing>|teachdock store bootstrap busybox")
    result = docker("commit", "no-such-container", "x:y")
    assert result.returncode != 0 and "No such container" in result.stderr


def test_save_rmi_load_run(docker, tmp_path):
    ok(docker("run", "--name", "saved", "busybox", "sh", "-c", "echo saved-and-loaded > /f"))
    ok(docker("commit", "-c", 'CMD ["cat", "/f"]', "saved", "course/saved:v1"))
    ok(docker("rm", "saved"))
    archive = tmp_path / "saved.tar"
    ok(docker("save", "-o", str(archive), "course/saved:v1"))
    ok(docker("rmi", "course/saved:v1"))
    assert "course/saved:v1" not in image_rows(docker)
    assert ok(docker("load", "-i", str(archive))) == "Loaded image: course/saved:v1\n"
    assert ok(docker("run", "--rm", "course/saved:v1")) == "saved-and-loaded\n"

    ok(docker("rmi", "course/saved:v1"))
    with open(archive, "rb") as stdin:                  # docker load < saved.tar
        assert ok(docker("load", stdin=stdin)) == "Loaded image: course/saved:v1\n"
    assert ok(docker("run", "--rm", "course/saved:v1")) == "saved-and-loaded\n"

    streamed = docker("save", "busybox", binary=True)  # docker save busybox > busybox.tar
    assert streamed.returncode == 0, streamed.stderr
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["busybox:latest"]

    both = tmp_path / "both.tar"                       # several images in one archive: names=a&names=b
    ok(docker("save", "-o", str(both), "busybox", "course/saved:v1"))
    with tarfile.open(both) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert sorted(tag for entry in manifest for tag in entry["RepoTags"]) == ["busybox:latest", "course/saved:v1"]

    (tmp_path / "bad.tar").write_bytes(b"not an image archive" * 50)
    result = docker("load", "-i", str(tmp_path / "bad.tar"))
    assert result.returncode != 0 and "Error response from daemon" in result.stderr


def test_image_prune_dangling_then_all(docker, context):
    ok(docker("build", "-t", "prunable", str(context)))
    (context / "hello").write_text("second version\n")
    ok(docker("build", "-t", "prunable", str(context)))           # the first image is now <none>
    assert "<none>:<none>" in image_rows(docker)
    dangling = ok(docker("images", "-q", "-f", "dangling=true")).split()
    assert len(dangling) == 1
    assert ok(docker("images", "--format", "{{.Repository}}:{{.Tag}}", "prunable")).split() == ["prunable:latest"]
    ok(docker("run", "--name", "keeps-busybox", "busybox", "true"))

    pruned = ok(docker("image", "prune", "-f"))
    assert f"deleted: sha256:{dangling[0]}" in pruned and "untagged" not in pruned
    assert sorted(image_rows(docker)) == ["busybox:latest", "prunable:latest"]

    pruned = ok(docker("image", "prune", "-a", "-f"))
    assert "untagged: prunable:latest" in pruned and "Total reclaimed space" in pruned
    assert image_rows(docker) == ["busybox:latest"]            # a container still uses it
    ok(docker("rm", "keeps-busybox"))


@pytest.mark.skipif(REGISTRY_BINARY is None,
                    reason="needs Debian's docker-registry (apt-get install docker-registry) as a local registry")
def test_rmi_of_a_pulled_tag_leaves_no_digest_row(docker, tmp_path):
    """A pulled image has a RepoDigest; once the repository's last tag is removed, that
    digest name goes too: no ``repo <none>`` row in docker images, as with dockerd."""
    with local_registry(tmp_path) as registry:
        source = Images(tmp_path / "source")
        source.bootstrap_busybox()
        name = f"{registry.host}/course/pulled:v1"
        source.tag("busybox:latest", name)
        push(source.store, name)
        ok(docker("pull", name))
    digests = ok(docker("images", "--digests", "--format", "{{.Repository}}:{{.Tag}}@{{.Digest}}", name))
    assert "@sha256:" in digests
    ok(docker("tag", name, "course/kept:v1"))
    removed = ok(docker("rmi", name))
    assert f"Untagged: {name}" in removed and f"Untagged: {registry.host}/course/pulled@sha256:" in removed
    rows = ok(docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert "course/kept:v1" in rows
    assert not [row for row in rows if "pulled" in row], rows
