"""`teachdock runtime`'s short path for its common verbs reads a command line as argparse does."""

import pytest

from teachdock.cli.runtime import _parse_common, _parser

SAME_AS_ARGPARSE = [
    ["--root", "/r", "run", "--bundle", "B", "c1"],
    ["run", "-b", "B", "-d", "--keep", "c1", "--pid-file", "pid"],
    ["run", "c1"],
    ["create", "--bundle", "B", "--pid-file", "pid", "c1"],
    ["start", "c1"],
    ["--root", "/r", "state", "c1"],
    ["kill", "c1"],
    ["kill", "c1", "KILL"],
    ["delete", "-f", "c1"],
    ["delete", "--force", "c1"],
]


@pytest.mark.parametrize("argv", SAME_AS_ARGPARSE, ids=" ".join)
def test_the_short_path_reads_what_argparse_reads(argv):
    short = vars(_parse_common(argv))
    full = vars(_parser().parse_args(argv))
    assert {name: short[name] for name in full} == full


@pytest.mark.parametrize("argv", [["run", "--bundle=B", "c1"], ["run", "-h"], ["run", "c1", "c2"], ["run"],
                                  ["exec", "c1", "ls"], ["spec"], ["list"], ["kill", "c1", "-9"],
                                  ["run", "--bundle", "-x", "c1"], ["run", "--unknown", "c1"]])
def test_anything_else_is_left_to_argparse(argv):
    assert _parse_common(argv) is None
