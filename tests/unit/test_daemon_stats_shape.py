"""The stats objects' shape, against what dockerd 20.10 sent on this machine (cgroup v1)."""

from __future__ import annotations

import json
import os

from teachdock.daemon import api_stats

# dockerd 20.10.24's answer to GET /containers/s1/stats?stream=0 for a stopped container
DOCKERD_STOPPED = json.loads("""{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},
"blkio_stats":{"io_service_bytes_recursive":null,"io_serviced_recursive":null,"io_queue_recursive":null,
"io_service_time_recursive":null,"io_wait_time_recursive":null,"io_merged_recursive":null,"io_time_recursive":null,
"sectors_recursive":null},"num_procs":0,"storage_stats":{},"cpu_stats":{"cpu_usage":{"total_usage":0,
"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,
"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},
"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},"memory_stats":{},"name":"/s1",
"id":"35a3f24a84732e4d6a7b6d0f65758fb7f273d85dd73caa814f9f8c878a09e0de"}""")


class FakeRecord:
    name = "/s1"
    id = "35a3f24a84732e4d6a7b6d0f65758fb7f273d85dd73caa814f9f8c878a09e0de"


def test_a_stopped_container_answers_exactly_as_dockerd():
    assert api_stats.empty_stats(FakeRecord()) == DOCKERD_STOPPED


def test_combine_carries_the_previous_sample():
    first = {"read": "t1", "pids_stats": {"current": 1}, "blkio_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 5}},
             "memory_stats": {"usage": 1}}
    second = {**first, "read": "t2", "cpu_stats": {"cpu_usage": {"total_usage": 9}}}
    once = api_stats.combine(FakeRecord(), first, None)
    assert once["preread"] == api_stats.ZERO_TIME and once["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    twice = api_stats.combine(FakeRecord(), second, first)
    assert twice["preread"] == "t1" and twice["precpu_stats"] == first["cpu_stats"]
    assert "networks" not in twice  # --network none: dockerd leaves the key out
    assert set(twice) == set(DOCKERD_STOPPED)


def test_system_cpu_is_proc_stat_in_nanoseconds():
    with open("/proc/stat") as f:
        ticks = sum(int(v) for v in f.readline().split()[1:8])
    nanoseconds = api_stats.system_cpu_ns()
    per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    # a moment later the counters have moved on by at most a few ticks per CPU
    assert ticks * per_tick <= nanoseconds <= (ticks + 100 * os.cpu_count()) * per_tick


def test_no_network_counters_for_a_missing_process():
    assert api_stats._networks(None) is None
    assert api_stats._networks(2**22 + 12345) is None  # above pid_max's usual ceiling: no such process
