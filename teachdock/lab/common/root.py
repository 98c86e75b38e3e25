"""The guard every ``needs-root`` cell starts with.

A learner without root runs the same notebook top to bottom. A cell that needs root (it
creates cgroups, mounts, network interfaces or a daemon) asks ``has_root(...)`` first and,
without root, prints one sentence of what it would have shown and why root is needed — never
a traceback. The cell's code stays plain Python under an ``if``:

    if has_root("starts a container with a 64 MiB limit and plots its memory; "
                "cgroups belong to root"):
        result = run([...], memory="64m")
        ...
"""

from __future__ import annotations

import os

from teachdock.lab.common.language import say, translated


def is_root() -> bool:
    return os.geteuid() == 0


def has_root(what: str) -> bool:
    """True when this process is root; otherwise print why the cell is skipped and return False.

    ``what`` completes the sentence "Without root this cell is skipped: it ...", e.g.
    "starts a daemon, which needs root to create its bridge and cgroups".
    """
    if is_root():
        return True
    print(without_root_sentence(what))
    return False


def without_root_sentence(what: str) -> str:
    """``what`` is the notebook's English; in Korean its catalogue entry is a noun phrase that ends
    the Korean sentence ("…하는 셀")."""
    what = translated(what.strip()).strip().rstrip(".")
    return say("Without root this cell is skipped: it {what}. Start the lab as root (sudo scripts/lab) to see it.",
               what=what)
