"""Routes for stats: a container's resource usage, once or streamed (docker stats)."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
