"""``docker run``'s short forms turned into the API's fields, as the docker CLI turns them:
``-m 64m`` into bytes, ``-p 127.0.0.1::80`` into HostConfig.PortBindings, ``--health-*`` into
Config.Healthcheck. Whether the values make
sense is the daemon's to say; these only split them."""

from __future__ import annotations

from teachdock.units import parse_duration


def port_bindings(specs) -> dict:
    """``-p`` specs as HostConfig.PortBindings, split as the docker CLI splits them:
    "80" (a free host port), "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", each with an
    optional "/tcp" or "/udp". Whether the numbers make sense is the daemon's to say."""
    bindings: dict[str, list] = {}
    for spec in specs:
        spec, _, protocol = spec.partition("/")
        host_ip, host_port, container_port = "", "", spec
        if spec.count(":") == 1:
            host_port, container_port = spec.split(":")
        elif spec.count(":") >= 2:
            host_ip, host_port, container_port = spec.rsplit(":", 2)
            host_ip = host_ip.strip("[]")
        if not container_port:
            raise ValueError(f"invalid port specification: {spec!r} (e.g. 8080:80, 127.0.0.1::80, 80/udp)")
        key = f"{container_port}/{protocol or 'tcp'}"
        bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": host_port})
    return bindings


def parse_bytes(value) -> int:
    """``64m`` -> 67108864 (docker's RAMInBytes: b, k, m, g; binary units)."""
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().removesuffix("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * scale)
    except ValueError:
        raise ValueError(f"invalid size {value!r}: use a number with an optional unit b, k, m or g (e.g. 64m)") from None


def healthcheck(*, cmd=None, interval=None, timeout=None, start_period=None, start_interval=None, retries=None,
                disabled: bool = False) -> dict | None:
    """``--health-cmd/--health-interval/... /--no-healthcheck`` as Config.Healthcheck, with the
    docker CLI's checks and words; None when none of them is given (the image's check applies).
    Durations are Go's ("30s", "1m30s", "500ms"); the API wants nanoseconds."""
    durations = {}
    for field, flag, text in (("Interval", "interval", interval), ("Timeout", "timeout", timeout),
                              ("StartPeriod", "start-period", start_period),
                              ("StartInterval", "start-interval", start_interval)):
        if text in (None, ""):
            continue
        try:
            durations[field] = parse_duration(text) if isinstance(text, str) else int(text)
        except ValueError as error:
            raise ValueError(f'invalid argument "{text}" for "--health-{flag}" flag: {error}') from None
        if durations[field] < 0:
            raise ValueError(f"--health-{flag} cannot be negative")
    try:
        retries = int(retries) if retries not in (None, "") else 0
    except ValueError:
        raise ValueError(f'invalid argument "{retries}" for "--health-retries" flag: strconv.ParseInt: '
                         f'parsing "{retries}": invalid syntax') from None
    given = bool(cmd) or any(durations.values()) or retries != 0
    if disabled:
        if given:
            raise ValueError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    if retries < 0:
        raise ValueError("--health-retries cannot be negative")
    return {"Test": ["CMD-SHELL", cmd] if cmd else [], **durations, **({"Retries": retries} if retries else {})}
