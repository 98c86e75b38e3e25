"""Dockerfile HEALTHCHECK into the image config, checked against what dockerd 20.10's builder
writes (recorded from the oracle: ``docker image inspect``, ``docker history --no-trunc``)."""

import pytest

from teachdock.image.dockerfile import BuildError, apply_metadata, parse_dockerfile
from teachdock.units import go_duration, parse_duration


def build(text: str) -> tuple[dict, str]:
    config = {"config": {}}
    history = apply_metadata(config, parse_dockerfile(text)[0], {})
    return config["config"].get("Healthcheck"), history


def test_exec_form_with_every_flag():
    check, history = build('HEALTHCHECK --interval=1s --timeout=2s --start-period=3s --retries=2 CMD ["true"]')
    assert check == {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Timeout": 2_000_000_000,
                     "StartPeriod": 3_000_000_000, "Retries": 2}
    assert history == """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true"] "1s" "2s" "3s" '\\x02'}"""


def test_shell_form_keeps_the_text_and_omits_what_was_not_given():
    check, history = build("HEALTHCHECK CMD exit 1")
    assert check == {"Test": ["CMD-SHELL", "exit 1"]}
    assert history == """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "exit 1"] "0s" "0s" "0s" '\\x00'}"""


def test_none_switches_the_base_image_check_off():
    config = {"config": {"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"]}}}
    apply_metadata(config, parse_dockerfile("HEALTHCHECK NONE")[0], {})
    assert config["config"]["Healthcheck"] == {"Test": ["NONE"]}


def test_start_interval_is_accepted_as_newer_builders_do():
    check, history = build("HEALTHCHECK --start-interval=2s CMD true")
    assert check["StartInterval"] == 2_000_000_000
    assert '"0s" "0s" "0s" "2s"' in history


@pytest.mark.parametrize("line, message", [
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK --interval=0.5ms CMD true", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --interval=0 CMD true", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --retries=-1 CMD true", "--retries must be at least 1 (not -1)"),
    ("HEALTHCHECK --retries=x CMD true", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("HEALTHCHECK RUN true", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --foo=1 CMD true", "Unknown flag: foo"),
    ("HEALTHCHECK --interval=abc CMD true", 'time: invalid duration "abc"'),
    ("HEALTHCHECK --timeout=5 CMD true", 'time: missing unit in duration "5"'),
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
])
def test_bad_healthchecks_give_dockerd_s_words_and_the_line(line, message):
    with pytest.raises(BuildError) as caught:
        build("\n" + line)
    assert str(caught.value) == f"Dockerfile:2: {message}"


@pytest.mark.parametrize("text, nanoseconds, shown", [
    ("30s", 30_000_000_000, "30s"), ("1m30s", 90_000_000_000, "1m30s"), ("1.5h", 5_400_000_000_000, "1h30m0s"),
    ("500ms", 500_000_000, "500ms"), ("0", 0, "0s"), ("250us", 250_000, "250µs"), ("-2s", -2_000_000_000, "-2s"),
])
def test_durations_as_go_parses_and_prints_them(text, nanoseconds, shown):
    assert parse_duration(text) == nanoseconds
    assert go_duration(nanoseconds) == shown


@pytest.mark.parametrize("text", ["", "abc", "1", "1x", ".s", "s"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="time: "):
        parse_duration(text)


def test_a_later_healthcheck_keeps_the_fields_it_leaves_out_as_dockerd_20_10_s_builder():
    """Recorded from the oracle: HEALTHCHECK --interval=1s --timeout=2s --start-period=3s --retries=2 CMD
    ["true"], then NONE, then --interval=5m CMD ...: the config keeps 2s, 3s and 2 (the history does not)."""
    config = {"config": {}}
    lines = ['HEALTHCHECK --interval=1s --timeout=2s --start-period=3s --retries=2 CMD ["true"]',
             "HEALTHCHECK NONE", "HEALTHCHECK --interval=5m CMD wget -qO- localhost || exit 1"]
    history = [apply_metadata(config, parse_dockerfile(line)[0], {}) for line in lines]
    assert config["config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -qO- localhost || exit 1"],
                                               "Interval": 300_000_000_000, "Timeout": 2_000_000_000,
                                               "StartPeriod": 3_000_000_000, "Retries": 2}
    assert history[1].endswith("""HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\\x00'}""")
