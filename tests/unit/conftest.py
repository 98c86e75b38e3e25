"""Fixtures every unit test may ask for by name."""

import pytest


@pytest.fixture
def korean(monkeypatch):
    """The lab speaks Korean for one test, as in a kernel ``scripts/lab --lang ko`` started: the
    language set, and the plot fonts as importing teachdock.lab sets them there."""
    from teachdock.lab.common.language import plot_fonts  # noqa: PLC0415

    monkeypatch.setenv("TEACHDOCK_LANG", "ko")
    plot_fonts()
