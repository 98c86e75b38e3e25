"""Print the cgroup v2 VM's figures (guest test counts, how long each step took) in the
terminal summary, where CI logs show them; test_in_vm.py fills them in through the
``vm_summary`` fixture."""

import pytest

SUMMARY = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def vm_summary(request) -> list[str]:
    """A list of lines for the terminal summary."""
    return request.config.stash.setdefault(SUMMARY, [])


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.write_sep("-", "cgroup v2 VM")
        for line in lines:
            terminalreporter.write_line(line)
