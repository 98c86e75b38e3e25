"""teachdockd's volumes over the Engine API: named and anonymous volumes, host binds, in-use 409s.

One daemon per module (tests/support/daemons.py). Each test writes through one container and reads
through another, or looks at the volume's directory on the host: a volume that was not
really mounted fails them.
"""

from __future__ import annotations

import json
import urllib.parse
import time
from pathlib import Path

import pytest

from tests.support.daemons import demultiplex


pytestmark = [
    pytest.mark.root,
]

V = "/v1.45"


@pytest.fixture
def clean(daemon):
    """Each test ends with no container and no volume."""
    yield daemon
    daemon.remove_all()
    for volume in daemon.json("GET", f"{V}/volumes")["Volumes"]:
        daemon.request("DELETE", f"{V}/volumes/{volume['Name']}")
    assert daemon.json("GET", f"{V}/volumes")["Volumes"] == []


def run(daemon, cmd, **config) -> tuple[int, str, str]:
    """Create, start, wait: (exit code, stdout, stderr); the container is kept (its id in .last)."""
    container_id = daemon.create(cmd, **config)
    status, _, body = daemon.request("POST", f"{V}/containers/{container_id}/start")
    assert status == 204, body
    code = daemon.json("POST", f"{V}/containers/{container_id}/wait")["StatusCode"]
    _, _, body = daemon.request("GET", f"{V}/containers/{container_id}/logs?stdout=1&stderr=1")
    frames = demultiplex(body)
    out = b"".join(p for s, p in frames if s == 1).decode()
    err = b"".join(p for s, p in frames if s == 2).decode()
    run.last = container_id
    return code, out, err


def test_create_inspect_list_remove_a_volume(clean):
    volume = clean.json("POST", f"{V}/volumes/create", {"Name": "data1", "Labels": {"team": "a"}}, expect=201)
    assert volume["Name"] == "data1" and volume["Driver"] == "local" and volume["Scope"] == "local"
    assert volume["Labels"] == {"team": "a"}
    assert Path(volume["Mountpoint"]).is_dir()
    assert volume["Mountpoint"] == str(clean.data_root / "daemon" / "volumes" / "data1" / "_data")
    assert clean.json("GET", f"{V}/volumes/data1") == volume
    assert [v["Name"] for v in clean.json("GET", f"{V}/volumes")["Volumes"]] == ["data1"]
    # creating it again is not an error: the same volume comes back
    assert clean.json("POST", f"{V}/volumes/create", {"Name": "data1"}, expect=201)["CreatedAt"] == volume["CreatedAt"]
    status, _, _ = clean.request("DELETE", f"{V}/volumes/data1")
    assert status == 204
    assert not Path(volume["Mountpoint"]).exists()
    status, _, body = clean.request("GET", f"{V}/volumes/data1")
    assert status == 404 and json.loads(body)["message"] == "get data1: no such volume"


def test_volume_without_a_name_gets_a_random_one(clean):
    volume = clean.json("POST", f"{V}/volumes/create", {"Driver": "local"}, expect=201)
    assert len(volume["Name"]) == 64 and int(volume["Name"], 16) >= 0


@pytest.mark.parametrize("name", ["a", "bad/name", "-x", "x y", "x@y"])
def test_invalid_volume_names_are_400(clean, name):
    status, _, body = clean.request("POST", f"{V}/volumes/create", {"Name": name})
    assert status == 400, body
    assert "includes invalid characters" in json.loads(body)["message"] or "invalid" in json.loads(body)["message"]
    assert clean.json("GET", f"{V}/volumes")["Volumes"] == []


def test_named_volume_is_created_and_shared_between_containers(clean):
    code, _, err = run(clean, ["sh", "-c", "echo persisted > /data/file"], HostConfig={"Binds": ["shared:/data"]})
    assert code == 0, err
    writer = run.last
    volume = clean.json("GET", f"{V}/volumes/shared")  # made on demand, as docker does
    assert (Path(volume["Mountpoint"]) / "file").read_text() == "persisted\n"
    [mount] = clean.json("GET", f"{V}/containers/{writer}/json")["Mounts"]
    assert mount == {"Type": "volume", "Name": "shared", "Source": volume["Mountpoint"], "Destination": "/data",
                     "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    code, out, err = run(clean, ["cat", "/data/file"], HostConfig={"Binds": ["shared:/data:ro"]})
    assert (code, out) == (0, "persisted\n"), err
    code, _, err = run(clean, ["sh", "-c", "echo no > /data/other"], HostConfig={"Binds": ["shared:/data:ro"]})
    assert code != 0 and "Read-only file system" in err


def test_volume_in_use_cannot_be_removed(clean):
    clean.create(["true"], name="user1", HostConfig={"Binds": ["busy:/data"]})
    clean.json("POST", f"{V}/volumes/create", {"Name": "busy"}, expect=201)
    user = clean.json("GET", f"{V}/containers/user1/json")["Id"]
    for query in ("", "?force=1"):
        status, _, body = clean.request("DELETE", f"{V}/volumes/busy{query}")
        assert status == 409, body
        assert json.loads(body)["message"] == f"remove busy: volume is in use - [{user}]"
    assert clean.request("DELETE", f"{V}/containers/user1")[0] == 204
    assert clean.request("DELETE", f"{V}/volumes/busy")[0] == 204
    assert clean.request("DELETE", f"{V}/volumes/busy")[0] == 404
    assert clean.request("DELETE", f"{V}/volumes/busy?force=1")[0] == 204  # force forgives a missing volume


def test_host_bind_mount_read_write_and_read_only(clean, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "in").write_text("from the host\n")
    code, out, err = run(clean, ["sh", "-c", "cat /mnt/in; echo back > /mnt/out"],
                         HostConfig={"Binds": [f"{host_dir}:/mnt"]})
    assert (code, out) == (0, "from the host\n"), err
    assert (host_dir / "out").read_text() == "back\n"
    [mount] = clean.json("GET", f"{V}/containers/{run.last}/json")["Mounts"]
    assert mount["Type"] == "bind" and mount["Source"] == str(host_dir) and mount["RW"] is True
    code, _, err = run(clean, ["sh", "-c", "echo no > /mnt/out"], HostConfig={"Binds": [f"{host_dir}:/mnt:ro"]})
    assert code != 0 and "Read-only file system" in err
    assert (host_dir / "out").read_text() == "back\n"


def test_missing_host_directory_is_created_for_v_but_refused_for_mount(clean, tmp_path):
    missing = tmp_path / "made" / "by" / "daemon"
    code, _, err = run(clean, ["touch", "/mnt/x"], HostConfig={"Binds": [f"{missing}:/mnt"]})
    assert code == 0, err
    assert (missing / "x").exists()
    status, _, body = clean.request("POST", f"{V}/containers/create", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"Mounts": [{"Type": "bind", "Source": str(tmp_path / "nope"), "Target": "/mnt"}]}})
    assert status == 400 and "bind source path does not exist" in json.loads(body)["message"]


def test_mount_api_volume_and_tmpfs(clean):
    code, out, err = run(clean, ["sh", "-c", "echo m > /v/f; grep ' /t ' /proc/mounts | cut -d' ' -f3"],
                         HostConfig={"Mounts": [{"Type": "volume", "Source": "viamount", "Target": "/v"},
                                                {"Type": "tmpfs", "Target": "/t"}]})
    assert (code, out) == (0, "tmpfs\n"), err
    volume = clean.json("GET", f"{V}/volumes/viamount")
    assert (Path(volume["Mountpoint"]) / "f").read_text() == "m\n"


@pytest.mark.parametrize("binds, words", [
    (["vol:data"], "must be absolute"),
    (["vol:/"], "destination can't be '/'"),
    (["vol:/data:rx"], "invalid mode"),
    (["a:b:c:d"], "invalid volume specification"),
    (["vol:/data", "other:/data"], "Duplicate mount point"),
])
def test_bad_binds_are_400_and_leave_nothing(clean, binds, words):
    status, _, body = clean.request("POST", f"{V}/containers/create",
                                    {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": binds}})
    assert status == 400, body
    assert words in json.loads(body)["message"]
    assert clean.json("GET", f"{V}/containers/json?all=1") == []
    assert clean.json("GET", f"{V}/volumes")["Volumes"] == []


def test_copy_up_fills_a_new_volume_from_the_image(clean):
    code, _, err = run(clean, ["true"], HostConfig={"Binds": ["etcopy:/etc"]})
    assert code == 0, err
    volume = clean.json("GET", f"{V}/volumes/etcopy")
    assert (Path(volume["Mountpoint"]) / "passwd").exists()  # busybox's /etc/passwd came along
    code, _, err = run(clean, ["true"], HostConfig={"Binds": ["empty:/etc:nocopy"]})
    assert code == 0, err
    assert list(Path(clean.json("GET", f"{V}/volumes/empty")["Mountpoint"]).iterdir()) == []


def test_anonymous_volume_from_mounts_is_removed_with_rm_v_and_pruned(clean):
    mounts = [{"Type": "volume", "Target": "/scratch"}]
    code, _, err = run(clean, ["sh", "-c", "echo a > /scratch/a"], HostConfig={"Mounts": mounts})
    assert code == 0, err
    first = run.last
    [mount] = clean.json("GET", f"{V}/containers/{first}/json")["Mounts"]
    anonymous = mount["Name"]
    assert len(anonymous) == 64
    labels = clean.json("GET", f"{V}/volumes/{anonymous}")["Labels"]
    assert "com.docker.volume.anonymous" in labels
    # a restart keeps the same anonymous volume
    assert clean.request("POST", f"{V}/containers/{first}/start")[0] == 204
    clean.json("POST", f"{V}/containers/{first}/wait")
    assert [m["Name"] for m in clean.json("GET", f"{V}/containers/{first}/json")["Mounts"]] == [anonymous]
    assert clean.request("DELETE", f"{V}/containers/{first}?v=1")[0] == 204
    assert clean.request("GET", f"{V}/volumes/{anonymous}")[0] == 404  # docker rm -v took it along

    # prune: unused anonymous volumes only; all=true also the named ones
    run(clean, ["true"], HostConfig={"Mounts": mounts})
    second = run.last
    anonymous2 = clean.json("GET", f"{V}/containers/{second}/json")["Mounts"][0]["Name"]
    clean.json("POST", f"{V}/volumes/create", {"Name": "keepme"}, expect=201)
    pruned = clean.json("POST", f"{V}/volumes/prune")
    assert pruned["VolumesDeleted"] == []  # the anonymous one is still used by the container
    clean.request("DELETE", f"{V}/containers/{second}")
    pruned = clean.json("POST", f"{V}/volumes/prune")
    assert pruned["VolumesDeleted"] == [anonymous2]
    assert [v["Name"] for v in clean.json("GET", f"{V}/volumes")["Volumes"]] == ["keepme"]
    pruned = clean.json("POST", f"{V}/volumes/prune?filters=" + urllib.parse.quote(json.dumps({"all": ["true"]})))
    assert pruned["VolumesDeleted"] == ["keepme"]


def test_auto_remove_takes_its_anonymous_volumes_along(clean):
    container_id = clean.create(["true"], HostConfig={"AutoRemove": True, "Mounts": [{"Type": "volume", "Target": "/a"}]})
    assert clean.request("POST", f"{V}/containers/{container_id}/start")[0] == 204
    deadline = time.monotonic() + 20
    while clean.request("GET", f"{V}/containers/{container_id}/json")[0] != 404:
        assert time.monotonic() < deadline, "the --rm container was not removed"
        time.sleep(0.05)
    assert clean.json("GET", f"{V}/volumes")["Volumes"] == []


def test_volumes_survive_a_daemon_restart(clean):
    run(clean, ["sh", "-c", "echo kept > /d/k"], HostConfig={"Binds": ["durable:/d"]})
    clean.restart()
    code, out, err = run(clean, ["cat", "/d/k"], HostConfig={"Binds": ["durable:/d"]})
    assert (code, out) == (0, "kept\n"), err
