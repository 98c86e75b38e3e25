"""Dockerfile ``HEALTHCHECK``: the probe an image asks its containers to run, in its config.

::

    HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 CMD wget -qO- localhost
    HEALTHCHECK CMD ["pg_isready"]          <- exec form: {"Test": ["CMD", "pg_isready"]}
    HEALTHCHECK NONE                        <- switch off the base image's check: {"Test": ["NONE"]}

The builder writes the image config's ``Healthcheck`` exactly as dockerd's builder does:
``Test`` (``["CMD", ...]`` for the exec form, ``["CMD-SHELL", "text"]`` for the shell form,
``["NONE"]``), durations in nanoseconds, and only the fields that were given. The daemon
(daemon/health.py) runs the probe; nothing here runs anything.
"""

from __future__ import annotations

import json

from teachdock.units import go_duration, parse_duration

#: ``--flag`` -> the config field it sets (durations in nanoseconds).
DURATION_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                  "start-interval": "StartInterval"}
MINIMUM_DURATION = 1_000_000  # 1 ms: moby's container.MinimumDuration


def from_instruction(args: str, flags: dict, error) -> dict:
    """The ``Healthcheck`` of ``HEALTHCHECK [flags] CMD ...`` or ``HEALTHCHECK NONE``.

    ``error(message)`` makes the builder's exception (it adds the Dockerfile's line)."""
    kind, _, rest = args.strip().partition(" ")
    rest = rest.strip()
    if kind.upper() == "NONE":
        if rest or flags:
            raise error("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind.upper() != "CMD":
        raise error(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    if not rest:
        raise error("Missing command after HEALTHCHECK CMD")
    check: dict = {"Test": _test(rest)}
    for flag in flags:
        if flag not in DURATION_FLAGS and flag != "retries":
            raise error(f"Unknown flag: {flag}")
    for flag, field in DURATION_FLAGS.items():
        if flag not in flags:
            continue
        try:
            value = parse_duration(flags[flag])
        except ValueError as bad:
            raise error(str(bad)) from None
        if value < MINIMUM_DURATION:
            raise error(f'Interval "{flag}" cannot be less than {go_duration(MINIMUM_DURATION)}')
        check[field] = value
    if "retries" in flags:
        try:
            retries = int(flags["retries"])
        except ValueError:
            raise error(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax') from None
        if retries < 1:
            raise error(f"--retries must be at least 1 (not {retries})")
        check["Retries"] = retries
    return check


def merged(check: dict, previous: dict | None) -> dict:
    """What the image config keeps: ``check``, with the fields it leaves out taken from the
    HEALTHCHECK before it (``previous``), even across a NONE. dockerd 20.10's builder does this
    (each step's config is merged with its parent's, field by field, when committed); BuildKit
    replaces the whole check. ``docker history`` still shows the instruction as written."""
    result = {}
    for key in ("Test", *DURATION_FLAGS.values(), "Retries"):  # Go's field order, as inspect shows it
        value = check.get(key) or (previous or {}).get(key)
        if value:
            result[key] = value
    return result


def _test(command: str) -> list[str]:
    """``["a", "b"]`` (JSON, the exec form) -> ["CMD", "a", "b"]; anything else -> ["CMD-SHELL", text]."""
    if command.startswith("["):
        try:
            value = json.loads(command)
        except ValueError:
            value = None
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return ["CMD", *value]
    return ["CMD-SHELL", command]


def history_text(check: dict) -> str:
    """What ``docker history`` shows for it, as dockerd's builder prints the Go struct with %q:
    ``&{["CMD-SHELL" "exit 1"] "1s" "0s" "0s" '\\x03'}`` (StartInterval only when set)."""
    test = "[" + " ".join(json.dumps(item, ensure_ascii=False) for item in check["Test"]) + "]"
    fields = ["Interval", "Timeout", "StartPeriod"] + (["StartInterval"] if check.get("StartInterval") else [])
    durations = " ".join(f'"{go_duration(check.get(field, 0))}"' for field in fields)
    return f"&{{{test} {durations} {_go_rune(check.get('Retries', 0))}}}"


def _go_rune(number: int) -> str:
    """Go's %q of an int: the character it codes, quoted ('\\x00', '\\n', 'A')."""
    escapes = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 39: "\\'", 92: "\\\\"}
    if number in escapes:
        return f"'{escapes[number]}'"
    character = chr(number)
    if character.isprintable():
        return f"'{character}'"
    return f"'\\x{number:02x}'" if number < 0x80 else f"'\\u{number:04x}'"
