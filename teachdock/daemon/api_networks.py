"""Routes for networks: none and host (docker network ls/create/rm/inspect)."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
