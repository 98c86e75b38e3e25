"""`teachdock system reset` for real: a private daemon's containers (running and stopped), images,
networks, volumes, a runtime container and its cgroup are made, reset removes them all but the
busybox base and stops that daemon — while a second daemon and everything it has are untouched."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from teachdock.image.overlay import mount_points
from teachdock.runtime import Container
from tests.support.daemons import running_daemon
from tests.support.host import wait_until

pytestmark = [pytest.mark.root]

BASE = "busybox:latest"


def reset(daemon, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "teachdock.cli", "system", "reset", *flags, "-H", f"unix://{daemon.socket_path}",
         "--data-root", str(daemon.data_root), "--exec-root", str(daemon.exec_root),
         "--cgroup-parent", daemon.cgroup_parent],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def make_things(daemon, tag: str) -> dict:
    """A running and a stopped container, an image of its own and a tag of the base, a network, a volume."""
    daemon.json("POST", "/v1.45/volumes/create", {"Name": f"{tag}-notes"}, expect=201)
    network = daemon.json("POST", "/v1.45/networks/create", {"Name": f"{tag}-net"}, expect=201)["Id"]
    running = daemon.create(["sleep", "600"], name=f"{tag}-web", HostConfig={
        "Binds": [f"{tag}-notes:/data"], "NetworkMode": f"{tag}-net"})
    daemon.json("POST", f"/v1.45/containers/{running}/start", expect=204)
    stopped = daemon.create(["sh", "-c", "echo made > /made"], name=f"{tag}-done")
    daemon.json("POST", f"/v1.45/containers/{stopped}/start", expect=204)
    daemon.json("POST", f"/v1.45/containers/{stopped}/wait")
    daemon.json("POST", f"/v1.45/commit?container={stopped}&repo={tag}-made&tag=1", expect=201)
    daemon.json("POST", f"/v1.45/images/busybox/tag?repo={tag}-box&tag=1", expect=201)
    return {"running": running, "stopped": stopped, "network": network}


def names(daemon, path: str, key: str) -> set[str]:
    return {item[key] if isinstance(item[key], str) else item[key][0].lstrip("/")
            for item in daemon.json("GET", path)}


def tags(daemon) -> set[str]:
    return {tag for image in daemon.json("GET", "/v1.45/images/json") for tag in image.get("RepoTags") or []}


def runtime_container(daemon) -> Container:
    """What a notebook's run() leaves: a detached runtime container under the daemon's state root."""
    container = Container.create("reset-probe", state_root=daemon.exec_root / "runtime", detach=True,
                                 rootfs=str(daemon.data_root / "rootfs" / "busybox"), args=["sleep", "600"],
                                 cgroups_path=f"/{daemon.cgroup_parent}/reset-probe",
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    container.start()
    return container


def test_reset_removes_what_one_daemon_made_and_leaves_another_alone():
    with running_daemon() as other, running_daemon() as mine:
        theirs = make_things(other, "theirs")
        make_things(mine, "mine")
        probe_pid = runtime_container(mine).state()["pid"]
        daemon_pid = mine.pid
        before = {"containers": names(other, "/v1.45/containers/json?all=1", "Names"), "tags": tags(other),
                  "networks": names(other, "/v1.45/networks", "Name")}

        dry = reset(mine, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        for words in ("mine-web", "mine-done", "mine-made", "mine-net", "volume mine-notes",
                      "runtime container reset-probe (running)", f"stop teachdockd (pid {daemon_pid})"):
            assert words in dry.stdout, dry.stdout
        assert "theirs" not in dry.stdout
        assert names(mine, "/v1.45/containers/json?all=1", "Names") == {"mine-web", "mine-done"}  # nothing removed

        done = reset(mine, "-f")
        assert done.returncode == 0, done.stdout + done.stderr
        summary = done.stdout.splitlines()[-2]
        assert summary.startswith("removed: 2 containers, 1 image, 1 network, 1 volume, 1 runtime container"), \
            done.stdout
        assert f"stopped teachdockd (pid {daemon_pid})" in done.stdout
        assert "removed image tag mine-box:1" in done.stdout
        mine.process.wait(timeout=20)  # the daemon is gone ...
        data = Path(mine.data_root)
        assert not list((data / "daemon" / "containers").iterdir())  # ... and so is what it made
        assert not list((data / "daemon" / "volumes").glob("*/volume.json"))
        assert not os.listdir(mine.exec_root / "runtime")
        assert not [p for p in mount_points() if p.startswith(f"{mine.dir}/")]
        assert wait_until(lambda: not Path(f"/proc/{probe_pid}").exists()), "the runtime container still runs"
        from teachdock.image.images import Images
        assert [image.names for image in Images(data).list()] == [("docker.io/library/busybox:latest",)]
        assert (data / "rootfs" / "busybox" / "bin" / "busybox").exists()  # the base rootfs stays
        cgroups = [d for d, _s, _f in os.walk("/sys/fs/cgroup") if os.path.basename(d) == mine.cgroup_parent]
        assert all(not os.listdir(d) or not [e for e in os.scandir(d) if e.is_dir()] for d in cgroups)
        from teachdock.daemon import links
        assert mine.bridge not in links.link_names()

        # the other daemon did not notice
        assert names(other, "/v1.45/containers/json?all=1", "Names") == before["containers"]
        assert other.json("GET", f"/v1.45/containers/{theirs['running']}/json")["State"]["Running"]
        assert tags(other) == before["tags"] and names(other, "/v1.45/networks", "Name") == before["networks"]
        assert "theirs-notes" in {v["Name"] for v in other.json("GET", "/v1.45/volumes")["Volumes"]}
        assert other.bridge in links.link_names()
        other.remove_all()
        for path in ("/v1.45/networks/theirs-net", "/v1.45/volumes/theirs-notes"):
            other.request("DELETE", path)


def test_reset_starts_the_daemon_it_needs_when_none_answers():
    with running_daemon() as mine:
        made = make_things(mine, "idle")
        mine.stop()  # the container keeps running without its daemon (live-restore)
        done = reset(mine, "-f")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "started teachdockd" in done.stdout and "stopped teachdockd" in done.stdout
        assert "removed: 2 containers, 1 image, 1 network, 1 volume" in done.stdout
        assert not list((Path(mine.data_root) / "daemon" / "containers").iterdir())
        assert not [p for p in mount_points() if p.startswith(f"{mine.dir}/")]
        assert made["running"] not in " ".join(Path("/proc").joinpath(p, "comm").read_text()
                                                for p in os.listdir("/proc") if p.isdigit()
                                                and Path("/proc", p, "comm").exists())


def test_reset_refuses_a_daemon_that_serves_another_data_root(tmp_path):
    with running_daemon() as mine:
        made = make_things(mine, "wrong")
        result = subprocess.run(
            [sys.executable, "-m", "teachdock.cli", "system", "reset", "-f", "-H", f"unix://{mine.socket_path}",
             "--data-root", str(tmp_path), "--exec-root", str(mine.exec_root), "--cgroup-parent", mine.cgroup_parent],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 1 and f"serves the data root {mine.data_root}" in result.stderr, result.stderr
        assert mine.json("GET", f"/v1.45/containers/{made['running']}/json")["State"]["Running"]  # untouched
        mine.remove_all()
        for path in ("/v1.45/networks/wrong-net", "/v1.45/volumes/wrong-notes"):
            mine.request("DELETE", path)
