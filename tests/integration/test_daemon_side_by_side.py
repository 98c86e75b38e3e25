"""Two teachdockd side by side: own sockets, data roots and cgroup parents; one client, two daemons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.daemons import running_daemon

pytestmark = [pytest.mark.root]

V = "/v1.45"


def start_sleeper(daemon, name: str) -> str:
    container = daemon.create(["sleep", "60"], name=name)
    assert daemon.request("POST", f"{V}/containers/{container}/start")[0] == 204
    return container


def test_two_daemons_keep_their_objects_apart():
    with running_daemon() as first, running_daemon() as second:
        assert first.socket_path != second.socket_path and first.data_root != second.data_root
        one = start_sleeper(first, "same-name")
        two = start_sleeper(second, "same-name")  # the same name is fine: each daemon has its own names

        assert [c["Id"] for c in first.json("GET", f"{V}/containers/json")] == [one]
        assert [c["Id"] for c in second.json("GET", f"{V}/containers/json")] == [two]
        assert first.request("GET", f"{V}/containers/{two}/json")[0] == 404

        # each container sits under its own daemon's cgroup parent, and its record under its data root
        for daemon, container in ((first, one), (second, two)):
            pid = daemon.json("GET", f"{V}/containers/{container}/json")["State"]["Pid"]
            assert f"/{daemon.cgroup_parent}/{container}" in Path(f"/proc/{pid}/cgroup").read_text()
            assert (daemon.data_root / "daemon" / "containers" / container / "container.json").exists()

        # their info says which data root is whose
        assert first.json("GET", f"{V}/info")["DockerRootDir"] == str(first.data_root)
        assert second.json("GET", f"{V}/info")["DockerRootDir"] == str(second.data_root)

        # stopping one daemon leaves the other (and its container) alone
        first.stop()
        assert second.json("GET", f"{V}/containers/{two}/json")["State"]["Running"] is True
        first.start()
        assert [c["Id"] for c in first.json("GET", f"{V}/containers/json")] == [one]


def test_a_second_daemon_on_a_taken_socket_is_refused():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    with running_daemon() as first:
        result = subprocess.run([sys.executable, "-m", "teachdock.daemon", "-H", f"unix://{first.socket_path}",
                                 "--data-root", str(first.dir / "other-data"), "--exec-root",
                                 str(first.dir / "other-exec")], capture_output=True, text=True, timeout=30)
        assert result.returncode == 1
        assert f"another daemon is listening on {first.socket_path}" in result.stderr
        assert first.request("GET", "/_ping")[0] == 200  # and the first one still answers
        assert os.path.exists(first.socket_path)
