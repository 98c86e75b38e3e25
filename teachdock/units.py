"""Sizes and durations the way Docker prints them (its go-units package), in one place.

The daemon (``docker ps`` status), the client (``docker images``) and the lab all print
them, and all must agree with what a learner sees from the real docker CLI.
"""

from __future__ import annotations


def human_size(size: float) -> str:
    """Decimal units, 3 significant digits, as ``docker images`` shows sizes: 4.26MB, 512B."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks", "5 months"."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 730:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"
