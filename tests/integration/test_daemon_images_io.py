"""Images through teachdockd at the HTTP level: build (tar context in, JSON lines out),
commit, save/load, history, prune.

The context of ``POST /build`` is untrusted input: a body that is not a tar, or a tar with
``..`` in a member name, is refused with 400 and leaves nothing behind (no unpacked
context, no file outside it, no image).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.parse

import pytest

pytestmark = [
    pytest.mark.root,
]


def context_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def post_bytes(daemon, path: str, body: bytes, *, chunked: bool = False, timeout: float = 120):
    """POST a tar body (plain Content-Length, or chunked as the docker CLI sends it)."""
    connection = daemon.connection(timeout)
    try:
        headers = {"Content-Type": "application/x-tar"}
        if chunked:
            pieces = [body[i:i + 4096] for i in range(0, len(body), 4096)]
            connection.request("POST", path, body=iter(pieces), headers=headers, encode_chunked=True)
        else:
            connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def messages(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def stream_text(data: bytes) -> str:
    return "".join(message.get("stream", "") for message in messages(data))


def build(daemon, files: dict[str, bytes], *tags: str, chunked: bool = True, **query):
    params = [("t", tag) for tag in tags] + list(query.items())
    return post_bytes(daemon, "/v1.45/build?" + urllib.parse.urlencode(params), context_tar(files), chunked=chunked)


def scratch_left(daemon) -> list[str]:
    directory = daemon.data_root / "tmp"
    return sorted(os.listdir(directory)) if directory.exists() else []


def image_tags(daemon) -> list[str]:
    return sorted(tag for image in daemon.json("GET", "/v1.45/images/json") for tag in image["RepoTags"])


def test_a_body_that_is_not_a_tar_is_refused_and_leaves_nothing(daemon):
    tags_before = image_tags(daemon)
    status, data = post_bytes(daemon, "/v1.45/build?t=broken", b"this is not a tar archive at all" * 40)
    assert status == 400, data
    assert "invalid build context" in json.loads(data)["message"]
    assert scratch_left(daemon) == []
    assert image_tags(daemon) == tags_before


def test_traversal_in_a_context_tar_is_refused(daemon, tmp_path):
    outside = daemon.data_root / "tmp" / "escaped"
    files = {"Dockerfile": b"FROM busybox\n", "../escaped": b"gotcha", "../../../escaped": b"gotcha"}
    status, data = build(daemon, files, "evil")
    assert status == 400, data
    assert "'..'" in json.loads(data)["message"]
    assert not outside.exists() and not (daemon.data_root / "escaped").exists()
    assert scratch_left(daemon) == []
    assert "evil:latest" not in image_tags(daemon)


def test_a_missing_dockerfile_is_a_400(daemon):
    status, data = build(daemon, {"README": b"no Dockerfile here\n"}, "nodockerfile")
    assert status == 400, data
    assert "Dockerfile" in json.loads(data)["message"]
    assert scratch_left(daemon) == []


def test_a_dockerfile_syntax_error_is_a_400_before_any_output(daemon):
    status, data = build(daemon, {"Dockerfile": b"FROM busybox\nBOGUS instruction\n"}, "io-syntax")
    assert status == 400, data
    assert "unknown instruction: BOGUS" in json.loads(data)["message"]
    assert scratch_left(daemon) == []


def test_second_build_is_served_from_the_cache(daemon):
    files = {"Dockerfile": b"FROM busybox\nCOPY greeting /greeting\nRUN cat /greeting > /copy\nCMD [\"cat\", \"/copy\"]\n",
             "greeting": b"hello from the context\n"}
    status, first = build(daemon, files, "io-cache:v1", "io-cache:also")
    assert status == 200, first
    text = stream_text(first)
    assert "Step 1/4 : FROM busybox" in text and "Using cache" not in text
    assert "hello from the context" not in text  # cat writes into a file, not the output
    [aux] = [m["aux"] for m in messages(first) if "aux" in m]
    assert "Successfully tagged io-cache:v1" in text and "Successfully tagged io-cache:also" in text
    assert f"Successfully built {aux['ID'][7:19]}" in text

    status, second = build(daemon, files, "io-cache:v1", chunked=False)
    assert status == 200, second
    again = stream_text(second)
    assert again.count(" ---> Using cache") == 3          # COPY, RUN and CMD, as in Docker
    assert [m["aux"] for m in messages(second) if "aux" in m] == [aux]
    assert {"io-cache:v1", "io-cache:also"} <= set(image_tags(daemon))
    assert scratch_left(daemon) == []

    cid = daemon.create(["cat", "/copy"], image="io-cache:v1")
    daemon.json("POST", f"/v1.45/containers/{cid}/start", expect=204)
    assert daemon.json("POST", f"/v1.45/containers/{cid}/wait")["StatusCode"] == 0
    status, _, logs = daemon.request("GET", f"/v1.45/containers/{cid}/logs?stdout=1")
    assert b"hello from the context" in logs
    daemon.request("DELETE", f"/v1.45/containers/{cid}?force=1")


def test_quiet_build_with_labels_and_build_args(daemon):
    files = {"Dockerfile": b"FROM busybox\nARG WHO=nobody\nRUN echo $WHO > /who\n"}
    status, data = build(daemon, files, "io-args", q="1", buildargs=json.dumps({"WHO": "learner"}),
                         labels=json.dumps({"course": "teachdock"}))
    assert status == 200, data
    text = stream_text(data)
    assert "Step" not in text                   # quiet: only the id
    image_id = text.strip()
    assert image_id.startswith("sha256:")
    inspect = daemon.json("GET", "/v1.45/images/io-args/json")
    assert inspect["Id"] == image_id
    assert inspect["Config"]["Labels"] == {"course": "teachdock"}


def test_a_failing_run_step_is_an_error_in_the_stream(daemon):
    status, data = build(daemon, {"Dockerfile": b"FROM busybox\nRUN echo about to fail; exit 3\n"}, "io-fails")
    assert status == 200                        # the stream had begun: the error is in it
    [error] = [m for m in messages(data) if "error" in m]
    assert "returned a non-zero code: 3" in error["error"]
    assert error["errorDetail"]["code"] == 3
    assert "about to fail" in stream_text(data)
    assert "io-fails:latest" not in image_tags(daemon)
    assert scratch_left(daemon) == []


def unterminated(tar_bytes: bytes) -> bytes:
    """The tar as ``docker build -f ../x.Dockerfile`` sends it: no padding after the last
    member's data and no end-of-archive blocks."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        last = tar.getmembers()[-1]
    return tar_bytes[:last.offset_data + last.size]


def test_a_context_without_its_end_of_archive_builds_but_a_cut_one_does_not(daemon):
    whole = context_tar({"Dockerfile": b"FROM busybox\nCOPY note /note\n", "note": b"the last member\n"})
    body = unterminated(whole)
    assert len(body) % 512 != 0
    status, data = post_bytes(daemon, "/v1.45/build?t=io-unterminated", body, chunked=True)
    assert status == 200, data
    assert "Successfully tagged io-unterminated:latest" in stream_text(data)

    status, data = post_bytes(daemon, "/v1.45/build?t=io-cut", body[:-5], chunked=True)
    assert status == 400, data
    assert "truncated" in json.loads(data)["message"]
    assert scratch_left(daemon) == []


def test_images_filters_dangling_and_reference(daemon):
    daemon.json("POST", "/v1.45/images/busybox/tag?repo=io-filter/one&tag=v1", expect=201)
    daemon.json("POST", "/v1.45/images/busybox/tag?repo=io-filter/two&tag=v2", expect=201)

    def listed(filters: dict) -> list[list[str]]:
        query = urllib.parse.urlencode({"filters": json.dumps(filters)})
        return [sorted(image["RepoTags"]) for image in daemon.json("GET", f"/v1.45/images/json?{query}")]

    assert listed({"reference": {"io-filter/*": True}}) == [["io-filter/one:v1", "io-filter/two:v2"]]
    assert listed({"reference": ["io-filter/two:v2"]}) == [["io-filter/two:v2"]]
    assert listed({"reference": {"busybox": True}}) == [["busybox:latest"]]
    assert listed({"dangling": {"true": True}}) == []
    assert ["busybox:latest", "io-filter/one:v1", "io-filter/two:v2"] in listed({"dangling": ["false"]})
    assert daemon.request("GET", "/v1.45/images/json?filters=" + urllib.parse.quote('{"dangling":["maybe"]}'))[0] == 400
    daemon.json("DELETE", "/v1.45/images/io-filter/one:v1")
    daemon.json("DELETE", "/v1.45/images/io-filter/two:v2")

def test_commit_save_load_history_and_prune(daemon, tmp_path):
    """Last in this file: its prune -a empties the store, busybox included."""
    cid = daemon.create(["sh", "-c", "echo committed > /marker"])
    daemon.json("POST", f"/v1.45/containers/{cid}/start", expect=204)
    assert daemon.json("POST", f"/v1.45/containers/{cid}/wait")["StatusCode"] == 0
    query = urllib.parse.urlencode([("container", cid), ("repo", "io-commit"), ("tag", "v1"),
                                    ("comment", "made by a test"), ("changes", 'CMD ["cat", "/marker"]'),
                                    ("changes", "ENV COMMITTED=yes")])
    committed = daemon.json("POST", f"/v1.45/commit?{query}", expect=201)["Id"]
    inspect = daemon.json("GET", "/v1.45/images/io-commit:v1/json")
    assert inspect["Id"] == committed
    assert inspect["Config"]["Cmd"] == ["cat", "/marker"] and "COMMITTED=yes" in inspect["Config"]["Env"]
    history = daemon.json("GET", "/v1.45/images/io-commit:v1/history")
    assert history[0]["Id"] == committed and history[0]["Comment"] == "made by a test"
    assert history[0]["Size"] > 0 and history[0]["Tags"] == ["io-commit:v1"]
    daemon.request("DELETE", f"/v1.45/containers/{cid}?force=1")

    status, headers, archive = daemon.request("GET", "/v1.45/images/io-commit:v1/get")
    assert status == 200 and headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["io-commit:v1"]
    assert daemon.request("GET", "/v1.45/images/get?names=no-such-image")[0] == 404

    daemon.json("DELETE", "/v1.45/images/io-commit:v1")
    assert daemon.request("GET", "/v1.45/images/io-commit:v1/json")[0] == 404
    status, data = post_bytes(daemon, "/v1.45/images/load?quiet=0", archive, chunked=True)
    assert status == 200, data
    assert stream_text(data) == "Loaded image: io-commit:v1\n"
    assert daemon.json("GET", "/v1.45/images/io-commit:v1/json")["Id"] == committed
    status, data = post_bytes(daemon, "/v1.45/images/load", b"not an archive" * 100)
    assert status == 400, data

    # An untagged image goes with a plain prune; a tagged one only with -a (dangling=false).
    daemon.json("POST", "/v1.45/images/io-commit:v1/tag?repo=io-keep&tag=v1", expect=201)
    daemon.json("DELETE", "/v1.45/images/io-commit:v1")
    untagged_cid = daemon.create(["true"], image="io-keep:v1")
    daemon.json("POST", "/v1.45/commit?" + urllib.parse.urlencode({"container": untagged_cid}), expect=201)
    daemon.request("DELETE", f"/v1.45/containers/{untagged_cid}?force=1")
    dangling = [i["Id"] for i in daemon.json("GET", "/v1.45/images/json") if not i["RepoTags"]]
    assert len(dangling) == 1
    pruned = daemon.json("POST", "/v1.45/images/prune")
    assert {"Deleted": dangling[0]} in pruned["ImagesDeleted"]
    assert "io-keep:v1" in image_tags(daemon)
    pruned = daemon.json("POST", "/v1.45/images/prune?" + urllib.parse.urlencode(
        {"filters": json.dumps({"dangling": {"false": True}})}))
    assert {"Untagged": "io-keep:v1"} in pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] > 0
    assert image_tags(daemon) == []
    assert daemon.request("POST", "/v1.45/images/prune?filters=" + urllib.parse.quote('{"label":["a"]}'))[0] == 400
