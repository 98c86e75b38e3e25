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


# Go's time.ParseDuration units, in nanoseconds: what `--health-interval 30s` and Dockerfile
# `HEALTHCHECK --interval=1m30s` accept (the docker CLI and the builder both use Go's parser).
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds: "30s", "1m30s", "1.5h", "500ms", "0", "-2s".

    ValueError with Go's own words (``time: invalid duration "abc"``) otherwise."""
    original = text
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0.0
    while text:
        number_end = 0
        while number_end < len(text) and (text[number_end].isdigit() or text[number_end] == "."):
            number_end += 1
        number = text[:number_end]
        if not number or number == "." or number.count(".") > 1:
            raise ValueError(f'time: invalid duration "{original}"')
        unit_end = number_end
        while unit_end < len(text) and not (text[unit_end].isdigit() or text[unit_end] == "."):
            unit_end += 1
        unit = text[number_end:unit_end]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{original}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{original}"')
        total += float(number) * _DURATION_UNITS[unit]
        text = text[unit_end:]
    return sign * round(total)


def go_duration(nanoseconds: int) -> str:
    """Go's ``Duration.String()``: 0 -> "0s", 1500000000 -> "1.5s", 90 s -> "1m30s", 2 ms -> "2ms"."""
    if nanoseconds == 0:
        return "0s"
    sign, value = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if value < 1_000_000_000:  # below a second: the largest unit that keeps it >= 1
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if value >= size:
                return sign + _decimal(value, size) + unit
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, size: int) -> str:
    whole, fraction = divmod(value, size)
    if not fraction:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
