"""Routes for volumes: named volumes on disk (docker volume ls/create/rm/inspect)."""

from __future__ import annotations


def register(router) -> None:
    """Nothing yet: the routes arrive with their implementation."""
