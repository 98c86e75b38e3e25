"""Rootless containers: what a learner without root gets.

The runtime then creates a user namespace that maps root inside to the learner's own uid
(the only map the kernel allows an ordinary user), skips cgroups (they belong to root) and
says so plainly when limits are asked for. Run here as `nobody` through setpriv.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import teachdock

pytestmark = pytest.mark.root  # we need root to become nobody

NOBODY = 65534


def run_as_nobody(code: str, state_root) -> subprocess.CompletedProcess:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run a test as another user")
    env = {"PATH": "/usr/bin:/bin", "TEACHDOCK_STATE_ROOT": str(state_root), "PYTHONPATH": os.path.dirname(os.path.dirname(teachdock.__file__))}
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c",
         textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def world_readable_rootfs(rootfs):
    return rootfs  # the session rootfs lives in a world-searchable scratch directory


@pytest.fixture
def nobody_state_root(state_root):
    os.chown(state_root, NOBODY, NOBODY)
    return state_root


def test_a_rootless_container_is_root_inside_and_nobody_outside(world_readable_rootfs, nobody_state_root):
    result = run_as_nobody(f"""
        from teachdock.runtime import run
        r = run(["sh", "-c", "id -u; echo $$; hostname; cat /proc/self/uid_map; ls /sys/class/net"],
                rootfs="{world_readable_rootfs}", hostname="rootless")
        print(r.exit_code); print(r.stdout, end=""); print("metrics", r.metrics)
    """, nobody_state_root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "0"  # exit code
    assert lines[1:4] == ["0", "1", "rootless"]  # root, PID 1, own hostname
    assert lines[4].split() == ["0", str(NOBODY), "1"]  # root inside is nobody outside, and nobody else is mapped
    assert lines[5] == "lo"
    assert "metrics None" in result.stdout  # no cgroup, so nothing to measure
    assert list(nobody_state_root.iterdir()) == []


def test_limits_without_root_are_refused_with_the_reason(world_readable_rootfs, nobody_state_root):
    result = run_as_nobody(f"""
        from teachdock.runtime import run
        from teachdock.errors import CgroupError
        try:
            run(["true"], rootfs="{world_readable_rootfs}", memory="64m")
        except CgroupError as error:
            print("refused:", error)
    """, nobody_state_root)
    assert result.returncode == 0, result.stderr
    assert "refused: memory_limit: limits need a cgroup, and cgroups belong to root" in result.stdout
    assert list(nobody_state_root.iterdir()) == []
