"""Shared fixtures for the compatibility tests (the real docker CLI and SDK against teachdockd)."""

import pytest

from tests.support.daemons import running_daemon


@pytest.fixture(scope="module")
def daemon():
    """A private teachdockd with busybox:latest, one per test module (tests/support/daemons.py);
    stopped at the module's end, failing if its containers left anything behind. A module that
    needs a daemon per test, or more checks, defines its own ``daemon`` fixture."""
    with running_daemon() as process:
        yield process
