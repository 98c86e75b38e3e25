"""Chapter 10 for real: the escape attempts in containers of a private teachdockd, through the
docker CLI, each harmless to this machine even where it gets through; the layer each one met is
decided from the container's own facts and must always be one the grid can explain."""

import os

import pytest

from teachdock.lab.client_and_daemon import docker_cli
from teachdock.lab.security import (attempts, check_mkdir_filter, configurations, profile_blocking, run_grid,
                                    try_filter, try_in_user_namespace, try_rootless_without_filter,
                                    write_marker)
from teachdock.lab.security.layers import THROUGH, UNEXPLAINED
from tests.support.daemons import running_daemon

pytestmark = [pytest.mark.root, pytest.mark.slow]
CHOSEN = attempts()


@pytest.fixture(scope="module")
def daemon():
    if docker_cli() is None:
        pytest.skip("needs the docker CLI (apt-get install docker.io)")
    with running_daemon() as process:
        yield process


@pytest.fixture(scope="module")
def grid(daemon, tmp_path_factory):
    marker, token = write_marker(tmp_path_factory.mktemp("marker"))
    return run_grid(f"unix://{daemon.socket_path}", daemon.socket_path, marker, chosen=CHOSEN), token


def test_every_configuration_ran_and_every_cell_is_explained(grid):
    grid, _ = grid
    assert [col.configuration for col in grid.columns] == [c.name for c in configurations("/s", "/usr/bin/docker")]
    for col in grid.columns:
        assert not col.problem, (col.configuration, col.problem)
        unexplained = {key: (v.errno, v.expected, col.outcomes[key].output) for key, v in col.verdicts.items()
                       if v.layer == UNEXPLAINED}
        assert unexplained == {}, col.configuration


def test_nothing_gets_through_a_default_container(grid):
    grid, _ = grid
    assert grid.through("default") == []
    default = {key: verdict.layer for key, verdict in grid.columns[0].verdicts.items()}
    assert default["disk"] == "devices" and default["mount"] == "seccomp" and default["userns"] == "seccomp"
    assert default["clock"] == "capabilities" and default["core_pattern"] == "read-only"
    assert default["socket"] == "namespaces"


def test_without_the_filter_the_user_namespace_gets_through_and_mount_meets_the_capability_check(grid):
    grid, _ = grid
    assert "userns" in grid.through("seccomp=unconfined")
    assert grid.cell("mount", "seccomp=unconfined").layer == "capabilities"


def test_cap_sys_admin_lets_mount_through(grid):
    grid, _ = grid
    assert {"mount", "userns"} <= set(grid.through("--cap-add SYS_ADMIN"))


def test_privileged_lets_the_host_attempts_through(grid):
    grid, _ = grid
    through = set(grid.through("--privileged"))
    assert {"mount", "core_pattern", "clock"} <= through
    assert grid.cell("disk", "--privileged").layer in (THROUGH, "host")   # a sandboxed host may refuse its own disk
    assert grid.cell("socket", "--privileged").layer == "namespaces"


def test_the_socket_is_root(grid):
    grid, token = grid
    assert grid.through("socket mounted") == ["socket"]
    assert token in grid.columns[-1].outcomes["socket"].output


def test_a_user_namespace_stops_the_host_attempts_with_every_capability(rootfs):
    column = try_in_user_namespace(CHOSEN, rootfs)
    assert not column.problem, column.problem
    layers = {key: verdict.layer for key, verdict in column.verdicts.items()}
    assert UNEXPLAINED not in layers.values(), column.outcomes
    assert layers["disk"] == layers["clock"] == layers["core_pattern"] == "user namespace"
    assert layers["mount"] == THROUGH    # inside its own namespaces only


def test_without_its_filter_a_rootless_container_lets_only_a_user_namespace_through(rootfs):
    """Exercise 5's container: the default capabilities and paths in a user namespace, no filter."""
    column = try_rootless_without_filter(CHOSEN, rootfs)
    assert not column.problem, column.problem
    layers = {key: verdict.layer for key, verdict in column.verdicts.items()}
    assert UNEXPLAINED not in layers.values(), column.outcomes
    assert layers["userns"] == THROUGH and layers["mount"] == "capabilities"
    assert layers["disk"] == layers["clock"] == layers["core_pattern"] == "user namespace"


def test_a_filter_of_ones_own_refuses_mkdir_only(rootfs):
    trial = try_filter(profile_blocking(["mkdir"]), rootfs)
    assert (trial.mkdir, trial.touch) == ("EPERM", "OK")
    assert check_mkdir_filter(profile_blocking(["mkdir", "mkdirat"]), rootfs).passed
    assert not check_mkdir_filter({"defaultAction": "SCMP_ACT_ERRNO"}, rootfs).passed


def test_the_attempts_leave_the_host_as_it_was(grid):
    """The clock's tick and core_pattern are what they were: the attempts only asked."""
    with open("/proc/sys/kernel/core_pattern") as file:
        core_pattern = file.read()
    assert core_pattern.strip()
    assert os.path.exists("/proc/self")   # and the host still runs: nothing was triggered
