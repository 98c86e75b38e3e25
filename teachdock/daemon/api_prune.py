"""Routes for prune: remove stopped containers and what a crash left behind (docker system prune)."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
