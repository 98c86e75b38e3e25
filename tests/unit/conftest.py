"""Fixtures every unit test may ask for by name."""

import pytest


@pytest.fixture
def korean(monkeypatch):
    """The lab speaks Korean for one test, as in a kernel ``scripts/lab --lang ko`` started."""
    monkeypatch.setenv("TEACHDOCK_LANG", "ko")
