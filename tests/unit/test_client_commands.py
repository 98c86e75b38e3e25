"""The CLI's formatting helpers: docker's stats arithmetic, event lines, times, sizes, tables,
and the pull progress display."""

import io

import pytest

from teachdock.client import commands_images
from teachdock.client.commands import ago, human_duration, human_size, table
from teachdock.client.commands_system import format_event, parse_time, stats_row
from teachdock.client.flags import UsageError


def test_stats_row_computes_like_the_docker_cli():
    sample = {
        "id": "a" * 64,
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}, "system_cpu_usage": 20_000_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 10_000_000_000},
        "memory_stats": {"usage": 10 << 20, "limit": 64 << 20, "stats": {"total_inactive_file": 2 << 20}},
        "pids_stats": {"current": 3},
    }
    assert stats_row("web", sample) == ["a" * 12, "web", "20.00%", "8MiB / 64MiB", "12.50%", "3"]


def test_stats_row_of_a_first_sample_without_precpu():
    row = stats_row("x", {"id": "b" * 64, "cpu_stats": {"cpu_usage": {"total_usage": 5}, "system_cpu_usage": 9},
                          "memory_stats": {}, "pids_stats": {}})
    assert row[2] == "0.00%" and row[4] == "0.00%"


def test_parse_time():
    assert parse_time("1700000000") == 1_700_000_000
    assert parse_time("10m", now=1000.0) == 400.0
    assert parse_time("2h", now=10_000.0) == 2800.0
    assert parse_time("2026-01-01T00:00:00Z") == 1_767_225_600
    assert parse_time(None) is None
    with pytest.raises(UsageError):
        parse_time("yesterday")


def test_format_event():
    line = format_event({"Type": "container", "Action": "die", "timeNano": 1_700_000_000_123_456_789,
                         "Actor": {"ID": "abc", "Attributes": {"name": "web", "exitCode": "0"}}})
    assert line == "2023-11-14T22:13:20.123456789Z container die abc (exitCode=0, name=web)"


def test_durations_sizes_and_tables():
    assert human_duration(0.5) == "Less than a second"
    assert human_duration(5) == "5 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(600) == "10 minutes"
    assert human_duration(4000) == "About an hour"
    assert human_duration(3 * 86400) == "3 days"
    assert human_duration(20 * 86400) == "2 weeks"
    assert human_duration(100 * 86400) == "3 months" and human_duration(800 * 86400) == "2 years"
    assert ago(0) == ""
    assert human_size(999) == "999B" and human_size(4_260_000) == "4.26MB"
    assert table(["A", "LONGER"], [["xyz", "1"]]) == "A     LONGER\nxyz   1\n"


@pytest.mark.parametrize("terminal", [False, True])
def test_pull_progress_plain_and_rich(monkeypatch, terminal):
    out = io.StringIO()
    out.isatty = lambda: terminal
    monkeypatch.setattr("sys.stdout", out)
    progress = commands_images.PullProgress()
    assert progress.rich is terminal
    for message in [{"status": "Pulling from library/busybox", "id": "latest"},
                    {"status": "Pulling fs layer", "id": "abc"},
                    {"status": "Downloading", "id": "abc", "progressDetail": {"current": 50, "total": 100}},
                    {"status": "Pull complete", "id": "abc"},
                    {"status": "Status: Downloaded newer image for busybox:latest"}]:
        progress(message)
    progress.close()
    if not terminal:
        assert out.getvalue().splitlines() == ["latest: Pulling from library/busybox", "abc: Pulling fs layer",
                                               "abc: Pull complete",
                                               "Status: Downloaded newer image for busybox:latest"]
    else:
        task = progress.progress.tasks[0]
        assert (task.completed, task.total) == (100, 100)


def test_port_prints_what_docker_port_prints():
    from teachdock.client.commands import port_lines
    from teachdock.errors import TeachdockError

    ports = {"443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
             "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
             "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}], "9000/tcp": None}
    assert port_lines(ports, None, "web") == ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080",
                                              "80/tcp -> [::]:8080", "443/tcp -> 0.0.0.0:8443"]
    assert port_lines(ports, "80", "web") == ["0.0.0.0:8080", "[::]:8080"]
    assert port_lines(ports, "53/udp", "web") == ["127.0.0.1:5353"]
    for private, message in (("53", "Error: No public port '53' published for web"),
                             ("9000", "Error: No public port '9000' published for web"),
                             ("http", "Error: invalid port (http)")):
        with pytest.raises(TeachdockError) as caught:
            port_lines(ports, private, "web")
        assert str(caught.value) == message
    assert port_lines({}, None, "web") == []


def test_ps_ports_column_as_docker_ps():
    from teachdock.client.commands import ports_column

    assert ports_column([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                         {"PrivatePort": 53, "Type": "udp"},
                         {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}]) == \
        "53/udp, 0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp"
    assert ports_column([]) == ""


@pytest.mark.parametrize("specs, bindings", [
    (["8080:80"], {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    (["80"], {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    (["127.0.0.1::80/udp"], {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
    (["127.0.0.1:9090:80", "9091:80"], {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"},
                                                   {"HostIp": "", "HostPort": "9091"}]}),
    (["[::1]:8080:80"], {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
])
def test_publish_specs_become_port_bindings_as_the_docker_cli_splits_them(specs, bindings):
    from teachdock.client.specs import port_bindings

    assert port_bindings(specs) == bindings


def test_a_publish_spec_without_a_container_port_is_refused():
    from teachdock.client.specs import port_bindings

    with pytest.raises(ValueError, match="invalid port specification"):
        port_bindings(["8080:"])


@pytest.mark.parametrize("flags, check", [
    ({"cmd": "wget -q localhost"}, {"Test": ["CMD-SHELL", "wget -q localhost"]}),
    ({"cmd": "true", "interval": "1s", "timeout": "500ms", "start_period": "1m", "start_interval": "2s",
      "retries": "2"}, {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "Timeout": 500_000_000,
                        "StartPeriod": 60_000_000_000, "StartInterval": 2_000_000_000, "Retries": 2}),
    ({"retries": "7"}, {"Test": [], "Retries": 7}),   # the image's probe, seven retries (the daemon merges)
    ({"disabled": True}, {"Test": ["NONE"]}),
    ({}, None),                                       # nothing given: the image's check as it is
])
def test_health_flags_become_config_healthcheck_as_the_docker_cli_makes_it(flags, check):
    from teachdock.client.specs import healthcheck

    assert healthcheck(**flags) == check


@pytest.mark.parametrize("flags, message", [
    ({"interval": "-1s"}, "--health-interval cannot be negative"),
    ({"retries": "-1"}, "--health-retries cannot be negative"),
    ({"disabled": True, "cmd": "true"}, "--no-healthcheck conflicts with --health-* options"),
    ({"timeout": "1"}, 'invalid argument "1" for "--health-timeout" flag: time: missing unit in duration "1"'),
])
def test_bad_health_flags_give_the_docker_cli_s_words(flags, message):
    from teachdock.client.specs import healthcheck

    with pytest.raises(ValueError) as caught:
        healthcheck(**flags)
    assert str(caught.value) == message


def test_run_takes_the_health_flags():
    from teachdock.client.commands import RUN_FLAGS
    from teachdock.client.flags import Verb

    options, args = Verb("run", "", "", "", RUN_FLAGS, interspersed=False).parse(
        ["--health-cmd", "exit 0", "--health-interval=2s", "--no-healthcheck", "busybox"])
    assert (options.health_cmd, options.health_interval, options.no_healthcheck, args) == \
        ("exit 0", "2s", True, ["busybox"])
