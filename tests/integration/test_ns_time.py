"""Time namespace: the container can have its own boot and monotonic clocks.

The offsets can only be set between unshare(CLONE_NEWTIME) and the first fork, so the
runtime writes /proc/self/timens_offsets at exactly that moment (linux.timeOffsets).
"""

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WITH_TIME = ("pid", "mount", "uts", "ipc", "network", "time")


def host_uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def test_a_boottime_offset_moves_the_containers_uptime_only(box):
    before = host_uptime()
    result = box("cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets", namespaces=WITH_TIME,
                 time_offsets={"boottime": 86400})
    after = host_uptime()
    assert result.exit_code == 0, result.stderr
    uptime, *offsets = result.stdout.splitlines()
    assert before + 86400 <= float(uptime) <= after + 86400 + 1
    assert [line.split() for line in offsets] == [["monotonic", "0", "0"], ["boottime", "86400", "0"]]
    assert host_uptime() < before + 3600  # the host's clock did not move


def test_without_a_time_namespace_the_clocks_are_the_hosts(box):
    before = host_uptime()
    result = box("cut -d' ' -f1 /proc/uptime")
    assert before <= float(result.stdout) <= host_uptime() + 1
