"""daemon/health.py's rules without threads or containers: moby's handleProbeResult, the
probe's program, the interval, the ps column and filter; and the create body's Healthcheck
checked and merged with the image's (container_config), as dockerd does."""

from __future__ import annotations

import pytest

from teachdock.daemon import container_config, health
from teachdock.errors import InvalidConfig

S = 1_000_000_000


def result(code: int, output: str = "") -> dict:
    return {"Start": "s", "End": "e", "ExitCode": code, "Output": output}


def run(codes, *, retries=0, start_period_probes=0, status="starting") -> dict:
    state = {"Status": status, "FailingStreak": 0, "Log": []}
    for index, code in enumerate(codes):
        state = health.record_result(state, result(code), retries=retries, in_start_period=index < start_period_probes)
    return state


def test_one_success_is_healthy_and_resets_the_streak():
    assert run([1, 1, 0]) == {"Status": "healthy", "FailingStreak": 0, "Log": [result(1), result(1), result(0)]}


@pytest.mark.parametrize("retries, failures_to_unhealthy", [(0, 3), (1, 1), (2, 2), (5, 5)])
def test_retries_failures_in_a_row_make_it_unhealthy(retries, failures_to_unhealthy):
    assert run([1] * (failures_to_unhealthy - 1), retries=retries)["Status"] == "starting"
    state = run([1] * failures_to_unhealthy, retries=retries)
    assert state["Status"] == "unhealthy" and state["FailingStreak"] == failures_to_unhealthy


def test_any_non_zero_code_is_a_failure_and_timeouts_too():
    assert run([2, 3, -1])["Status"] == "unhealthy"


def test_failures_in_the_start_period_do_not_count_while_starting():
    state = run([1, 1, 1, 1], retries=1, start_period_probes=4)
    assert state["Status"] == "starting" and state["FailingStreak"] == 0
    assert run([1, 1, 1, 1, 1], retries=1, start_period_probes=4)["Status"] == "unhealthy"


def test_after_a_success_failures_count_even_in_the_start_period():
    state = run([0, 1], retries=1, start_period_probes=2)
    assert state["Status"] == "unhealthy" and state["FailingStreak"] == 1


def test_a_healthy_container_stays_healthy_until_the_retries_are_used_up():
    assert run([0, 1, 1])["Status"] == "healthy"
    assert run([0, 1, 1, 1])["Status"] == "unhealthy"


def test_the_log_keeps_the_last_five():
    state = run(list(range(8)))
    assert [entry["ExitCode"] for entry in state["Log"]] == [3, 4, 5, 6, 7]


def test_output_is_cut_at_4096_bytes():
    assert health.output_text(b"x" * 5000) == "x" * 4096 + "..."
    assert health.output_text(b"ok\n") == "ok\n"


@pytest.mark.parametrize("check, command", [
    ({"Test": ["CMD-SHELL", "curl -f localhost || exit 1"]}, ["/bin/sh", "-c", "curl -f localhost || exit 1"]),
    ({"Test": ["CMD", "pg_isready", "-q"]}, ["pg_isready", "-q"]),
    ({"Test": ["NONE"]}, None), ({"Test": []}, None), ({}, None), (None, None),
])
def test_probe_command(check, command):
    assert health.probe_command(check) == command


def test_interval_defaults_and_start_interval_only_while_starting_in_the_start_period():
    assert health.probe_interval({}, "starting", 0) == 30
    check = {"Interval": 10 * S, "StartPeriod": 60 * S, "StartInterval": 1 * S}
    assert health.probe_interval(check, "starting", 5 * S) == 1
    assert health.probe_interval(check, "healthy", 5 * S) == 10
    assert health.probe_interval(check, "starting", 61 * S) == 10
    assert health.probe_interval({"Interval": 2 * S, "StartPeriod": 60 * S}, "starting", 0) == 2


def data(status="running", health_status=None) -> dict:
    state = {"Status": status}
    if health_status:
        state["Health"] = {"Status": health_status, "FailingStreak": 0, "Log": []}
    return {"State": state}


def test_ps_status_suffix_as_dockerd_prints_it():
    assert health.ps_status_suffix(data(health_status="healthy")) == " (healthy)"
    assert health.ps_status_suffix(data(health_status="starting")) == " (health: starting)"
    assert health.ps_status_suffix(data(health_status="unhealthy")) == " (unhealthy)"
    assert health.ps_status_suffix(data()) == ""
    assert health.ps_status_suffix(data("paused", "healthy")) == ""  # "Up 3 seconds (Paused)" only
    assert health.ps_status_suffix(data("exited", "unhealthy")) == ""


def test_health_filter():
    keep = health.health_filter(["healthy", "none"])
    assert keep(data(health_status="healthy")) and keep(data())
    assert not keep(data(health_status="starting"))
    assert health.health_filter(None)(data(health_status="starting"))
    with pytest.raises(InvalidConfig, match="Unrecognised filter value for health: bogus"):
        health.health_filter(["bogus"])


# --- the create body's Healthcheck (container_config) ---------------------------------------------
IMAGE_CHECK = {"Test": ["CMD", "true"], "Interval": 1 * S, "Timeout": 2 * S, "StartPeriod": 3 * S, "Retries": 2}


def test_the_image_check_is_taken_when_the_body_gives_none():
    assert container_config.healthcheck(None, IMAGE_CHECK) == {"Healthcheck": IMAGE_CHECK}
    assert container_config.healthcheck(None, None) == {}


def test_the_body_wins_field_by_field_as_in_dockerd_s_merge():  # recorded: docker create --health-retries 7 hc1
    assert container_config.healthcheck({"Retries": 7}, IMAGE_CHECK) == {"Healthcheck": {**IMAGE_CHECK, "Retries": 7}}
    merged = container_config.healthcheck({"Test": ["CMD-SHELL", "x"], "Interval": 0, "Timeout": 0}, None)
    assert merged == {"Healthcheck": {"Test": ["CMD-SHELL", "x"]}}  # zeros omitted, as dockerd's JSON does


def test_no_healthcheck_is_none_over_the_image():
    merged = container_config.healthcheck({"Test": ["NONE"]}, IMAGE_CHECK)["Healthcheck"]
    assert merged["Test"] == ["NONE"] and health.probe_command(merged) is None


@pytest.mark.parametrize("given, message", [
    ({"Interval": 500_000}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": "true"}, "Healthcheck.Test must be a list of strings"),
    ({"Test": ["HTTP", "/"]}, "Healthcheck.Test must be"),
    ({"Test": ["CMD"]}, "Healthcheck.Test must be"),
    ({"Interval": "30s"}, "Healthcheck.Interval must be an integer"),
    ("CMD true", "Healthcheck must be an object"),
])
def test_bad_healthchecks_are_refused_before_anything_exists(given, message):
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(").replace("[", r"\[")):
        container_config.check_types({"Image": "busybox", "Healthcheck": given})


def test_the_start_period_counts_from_state_started_at():
    import time  # noqa: PLC0415

    from teachdock.daemon.health import nanoseconds_since_start  # noqa: PLC0415
    from teachdock.daemon.logs import timestamp  # noqa: PLC0415

    class Record:
        data = {"State": {"StartedAt": timestamp(time.time() - 2.5)}}

    assert 2.49 < nanoseconds_since_start(Record) / S < 3.5
