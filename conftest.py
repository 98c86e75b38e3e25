"""Shared test set-up for tests/ and the notebooks (hence at the repository root): skip what needs root when we are not root, and say why.

Two kinds of items need root: tests marked ``@pytest.mark.root`` (real namespaces, mounts,
cgroups) and notebook cells tagged ``needs-root`` (run by nbval). For an unprivileged
contributor both are skipped with the reason, instead of failing.
A root-marked test needs no ``skipif(os.geteuid() != 0)`` of its own.
"""

import os

import pytest

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    # Browser tests run last: Playwright's sync API leaves an asyncio loop marked as running in
    # the main thread, and any later asyncio.run() (the lab widgets' tests) would then fail.
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)
    if IS_ROOT:
        return
    for item in items:
        if item.get_closest_marker("root") is not None:
            item.add_marker(pytest.mark.skip(reason="needs root: creates real namespaces, mounts or cgroups"))
            continue
        cell = getattr(item, "cell", None)  # nbval's notebook cell items carry their nbformat cell
        if cell is not None and "needs-root" in cell.metadata.get("tags", []):
            item.add_marker(pytest.mark.skip(reason="notebook cell tagged needs-root; run the notebook as root"))
