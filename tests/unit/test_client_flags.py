"""The CLI's flag parser (teachdock.client.flags): docker's rules, no argparse."""

import pytest

from teachdock.client.commands import VERBS as CONTAINER_VERBS
from teachdock.client.commands_images import VERBS as IMAGE_VERBS
from teachdock.client.commands_system import VERBS as SYSTEM_VERBS
from teachdock.client.flags import UsageError

RUN = CONTAINER_VERBS["run"][0]
PS = CONTAINER_VERBS["ps"][0]


def test_run_flags_stop_at_the_image():
    options, args = RUN.parse(["--rm", "-e", "A=1", "--env=B=2", "-eC=3", "-m", "64m", "busybox", "ls", "-l", "--rm"])
    assert options.rm is True
    assert options.env == ["A=1", "B=2", "C=3"]
    assert options.memory == "64m"
    assert args == ["busybox", "ls", "-l", "--rm"]


def test_combined_short_booleans_and_values():
    options, args = RUN.parse(["-di", "--name", "web", "-v", "/a:/b:ro", "-v", "vol:/data", "busybox"])
    assert (options.detach, options.interactive, options.name) == (True, True, "web")
    assert options.volume == ["/a:/b:ro", "vol:/data"]
    options, args = PS.parse(["-aq"])
    assert (options.all, options.quiet, args) == (True, True, [])


def test_defaults_when_absent():
    options, _ = RUN.parse(["busybox"])
    assert (options.rm, options.detach, options.name, options.env, options.volume) == (False, False, None, [], [])


def test_interspersed_flags_for_other_verbs():
    rm = CONTAINER_VERBS["rm"][0]
    options, args = rm.parse(["a", "-f", "b"])
    assert options.force is True and args == ["a", "b"]


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "busybox"], "unknown flag: --bogus"),
    (["-x", "busybox"], "unknown shorthand flag"),
    (["--name"], "flag needs an argument"),
    ([], "requires at least 1 argument"),
])
def test_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        RUN.parse(argv)


def test_too_many_arguments():
    with pytest.raises(UsageError, match="at most 0"):
        PS.parse(["extra"])


def test_double_dash_ends_flags():
    logs = CONTAINER_VERBS["logs"][0]
    _, args = logs.parse(["--", "-odd-name"])
    assert args == ["-odd-name"]


def test_every_verbs_help_names_its_api_call():
    for verbs in (CONTAINER_VERBS, IMAGE_VERBS, SYSTEM_VERBS):
        for name, (verb, _function) in verbs.items():
            text = verb.help_text()
            assert text.startswith(f"usage: teachdock {name}"), name
            assert "API: " in text, name
            options, _ = verb.parse(["--help"])
            assert options.help is True
    assert "POST /containers/create" in RUN.help_text() and "/start" in RUN.help_text()
