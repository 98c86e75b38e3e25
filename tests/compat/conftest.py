"""Fixtures shared by the compat tests that drive teachdockd with the real docker CLI.

A test module that needs another scope or a clean daemon per test defines its own
``daemon``/``docker`` fixtures, which take precedence over these.
"""

from __future__ import annotations

import daemon_util  # noqa: E402 - beside tests/integration/conftest.py, on sys.path (root conftest)
import pytest


@pytest.fixture(scope="module")
def daemon():
    """A teachdockd of this module's own, with busybox in its store."""
    with daemon_util.running_daemon() as process:
        yield process


@pytest.fixture(scope="module")
def docker(daemon, tmp_path_factory):
    """``docker(*args)``: the real docker CLI talking to that daemon only."""
    return daemon_util.docker_cli(daemon.socket_path, tmp_path_factory.mktemp("docker-config"))
