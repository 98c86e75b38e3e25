"""Routes for build, commit, save and load: images made or moved through the daemon."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
