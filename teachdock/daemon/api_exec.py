"""Routes for exec: run a second program inside a running container (docker exec)."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
