"""How long does it take to start `/bin/true` in a busybox container? teachdock against its peers.

One run prints one table, medians first:

  api: run()            teachdock.runtime.run(["/bin/true"], rootfs=R) in a warm Python process
  api: Container        Container.create / start / wait / delete, the same steps by hand
  cli: teachdock run    `teachdock runtime run --bundle B ID` (a fresh Python process each time)
  runc run              `runc run --bundle B ID`
  crun run              `crun run --bundle B ID`
  python -c pass        this interpreter starting and doing nothing: the floor under the CLI row
  unshare + chroot      `unshare --fork --pid --mount --uts --ipc --net chroot R /bin/true`:
                        the namespaces alone, without pivot_root, mounts or cgroups

Every container row runs the same bundle, written by teachdock's make_spec. The API rows
are timed in this process with time.perf_counter; the command rows by hyperfine
(`-N --warmup 3`), which must be installed (apt-get install hyperfine).

crun 1.8 refuses a "hybrid" cgroup layout (v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified). On such a machine the crun row runs hyperfine inside
`unshare -m --propagation private` with /sys/fs/cgroup/unified unmounted in that private
mount namespace only, so the workaround costs nothing per run and the host is untouched.

Run as root with the venv's python or /usr/bin/python3, never through a pyenv shim:
    /work/main/.venv/bin/python benchmarks/startup.py --runs 30 [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API_GOAL_SECONDS = 0.010  # warm Python API median, from the issue
CLI_TO_RUNC_GOAL = 1.0  # `teachdock runtime run` median / `runc run` median, from the issue (issue 12)
WARMUP = 3
HYBRID_MOUNT = "/sys/fs/cgroup/unified"


def summary(name: str, command: str, times: list[float]) -> dict:
    return {"name": name, "command": command, "n": len(times), "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times)}


def failed(name: str, command: str, reason: str) -> dict:
    return {"name": name, "command": command, "n": 0, "error": reason}


# --- preparation ------------------------------------------------------------------------------
def compile_package() -> None:
    """Byte-compile teachdock, so the CLI rows do not time Python compiling the package.

    With PYTHONDONTWRITEBYTECODE set, no process ever writes the .pyc files by itself and
    every CLI start would compile each module again.
    """
    package = Path(importlib.util.find_spec("teachdock").origin).parent
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"warning: could not byte-compile {package}; the CLI row includes compiling:\n{done.stdout}{done.stderr}",
              file=sys.stderr)


def teachdock_cli() -> list[str]:
    """The console script beside this interpreter (its shebang names this venv's python)."""
    script = Path(sys.executable).parent / "teachdock"
    if not script.exists():
        return [sys.executable, "-m", "teachdock.cli"]
    shebang = script.read_text(errors="replace").splitlines()[0]
    if "shims" in shebang:
        print(f"warning: {script} starts through a pyenv shim ({shebang}); that adds ~150 ms per run",
              file=sys.stderr)
    return [str(script)]


def prepare(workdir: Path) -> tuple[Path, Path]:
    """A busybox rootfs and one bundle running /bin/true in it, both under ``workdir``."""
    from teachdock.image.busybox import build_busybox_rootfs  # noqa: PLC0415 - after compile_package
    from teachdock.runtime.spec import make_spec, write_bundle  # noqa: PLC0415

    rootfs = build_busybox_rootfs(workdir / "rootfs")
    bundle = workdir / "bundle"
    config = make_spec(["/bin/true"], rootfs, hostname="bench")  # ociVersion 1.0.2: crun 1.8 accepts it
    write_bundle(bundle, config)
    return rootfs, bundle


# --- the in-process rows ----------------------------------------------------------------------
def time_in_process(ways: dict[str, tuple[str, object]], runs: int) -> list[dict]:
    """Time each ``start_one(i)`` of ``ways`` ({row name: (command text, start_one)}) with
    perf_counter, WARMUP untimed rounds first. The ways take turns, round by round, so a
    burst of load from other work on the machine hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    errors: dict[str, str] = {}
    for number in range(WARMUP + runs):
        for name, (_, start_one) in ways.items():
            if name in errors:
                continue
            began = time.perf_counter()
            try:
                start_one(number)
            except Exception as error:  # noqa: BLE001 - a broken row is reported, the others still run
                errors[name] = f"{type(error).__name__}: {error}"
                continue
            if number >= WARMUP:
                times[name].append(time.perf_counter() - began)
    return [failed(name, command, errors[name]) if name in errors else summary(name, command, times[name])
            for name, (command, _) in ways.items()]


def api_rows(rootfs: Path, state_root: Path, runs: int, tag: str) -> list[dict]:
    from teachdock.runtime import Container, run  # noqa: PLC0415

    def with_run(number: int) -> None:
        result = run(["/bin/true"], rootfs=rootfs, container_id=f"{tag}-run-{number}", state_root=state_root)
        if result.exit_code != 0:
            raise RuntimeError(f"/bin/true exited {result.exit_code}: {result.stderr.strip()}")

    def by_hand(number: int) -> None:
        container = Container.create(f"{tag}-steps-{number}", rootfs=rootfs, args=["/bin/true"], state_root=state_root)
        try:
            container.start()
            code = container.wait()
        finally:
            container.delete(force=True)
        if code != 0:
            raise RuntimeError(f"/bin/true exited {code}")

    return time_in_process({
        "api: run()": ('teachdock.runtime.run(["/bin/true"], rootfs=R)', with_run),
        "api: Container": ("Container.create(...); start(); wait(); delete()", by_hand),
    }, runs)


# --- the command rows, timed by hyperfine ---------------------------------------------------------
def hyperfine(name: str, command: list[str], runs: int, workdir: Path, *, without_cgroup2: bool = False) -> dict:
    """Time ``command`` with hyperfine; optionally from inside a mount namespace without
    the cgroup2 mount (the crun workaround), set up once for all runs."""
    text = shlex.join(command)
    if shutil.which("hyperfine") is None:
        return failed(name, text, "hyperfine is not installed (apt-get install hyperfine)")
    if shutil.which(command[0]) is None and not os.path.exists(command[0]):
        return failed(name, text, f"{command[0]} is not installed")
    export = workdir / ("hyperfine-" + "".join(c if c.isalnum() else "-" for c in name) + ".json")
    measure = ["hyperfine", "-N", "--style", "none", "--warmup", str(WARMUP), "--runs", str(runs),
               "--export-json", str(export), text]

    def in_place(argv: list[str]) -> list[str]:
        if without_cgroup2 and os.path.ismount(HYBRID_MOUNT):
            return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f"umount {HYBRID_MOUNT} && exec {shlex.join(argv)}"]
        return argv

    done = subprocess.run(in_place(measure), cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        # hyperfine only says "non-zero exit code": run the command once more to show its own error.
        once = subprocess.run(in_place(command), cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        reason = (once.stderr.strip() or done.stderr.strip()).splitlines()
        return failed(name, text, " / ".join(reason[-3:]) or f"hyperfine exited {done.returncode}")
    result = json.loads(export.read_text())["results"][0]
    return summary(name, text, result["times"])


def command_rows(rootfs: Path, bundle: Path, workdir: Path, runs: int, tag: str) -> list[dict]:
    states = {name: workdir / f"{name}-state" for name in ("teachdock", "runc", "crun")}
    return [
        hyperfine("cli: teachdock run",
                  [*teachdock_cli(), "runtime", "--root", str(states["teachdock"]), "run", "--bundle", str(bundle),
                   f"{tag}-cli"], runs, workdir),
        hyperfine("runc run", ["runc", "--root", str(states["runc"]), "run", "--bundle", str(bundle), f"{tag}-runc"],
                  runs, workdir),
        hyperfine("crun run", ["crun", "--root", str(states["crun"]), "run", "--bundle", str(bundle), f"{tag}-crun"],
                  runs, workdir, without_cgroup2=True),
        hyperfine("python -c pass", [sys.executable, "-c", "pass"], runs, workdir),
        hyperfine("unshare + chroot",
                  ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "chroot", str(rootfs),
                   "/bin/true"], runs, workdir),
    ]


# --- report -------------------------------------------------------------------------------------
def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_table(rows: list[dict]) -> None:
    header = ("row", "median ms", "min ms", "max ms", "n")
    table = [header]
    for row in rows:
        if "error" in row:
            table.append((row["name"], "failed", "", "", "0"))
        else:
            table.append((row["name"], milliseconds(row["median_s"]), milliseconds(row["min_s"]),
                          milliseconds(row["max_s"]), str(row["n"])))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)))
    for row in rows:
        if "error" in row:
            print(f"  {row['name']} failed: {row['error']}")


def goals(rows: list[dict]) -> list[dict]:
    """The issue's goals, judged on these medians; a goal without figures is 'unknown', never PASS."""
    medians = {row["name"]: row["median_s"] for row in rows if "error" not in row}
    api, cli = medians.get("api: run()"), medians.get("cli: teachdock run")
    runc, crun = medians.get("runc run"), medians.get("crun run")
    verdicts = []

    def verdict(text: str, value: float | None, limit: float | None, shown: str) -> None:
        if value is None or limit is None:
            verdicts.append({"goal": text, "value": None, "verdict": "unknown (a row failed)"})
        else:
            verdicts.append({"goal": text, "value": value, "verdict": "PASS" if value <= limit else "MISS",
                             "shown": shown})

    verdict(f"warm Python API median <= {API_GOAL_SECONDS * 1000:.0f} ms", api, API_GOAL_SECONDS,
            f"{milliseconds(api)} ms" if api else "")
    ratio = cli / runc if cli and runc else None
    verdict(f"CLI median / runc median <= {CLI_TO_RUNC_GOAL}", ratio, CLI_TO_RUNC_GOAL,
            f"{ratio:.2f}" if ratio else "")
    if api and crun:
        verdicts.append({"goal": "warm Python API median / crun median (for comparison, no goal)",
                         "value": api / crun, "verdict": "info", "shown": f"{api / crun:.2f}"})
    return verdicts


def print_goals(verdicts: list[dict]) -> None:
    print()
    for item in verdicts:
        print(f"{item['verdict']:<8} {item['goal']}: {item.get('shown') or '-'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per row (default 30), after 3 warm-ups")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: every row creates namespaces (and most create cgroups)")
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    compile_package()
    tag = f"bench-{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-"))
    try:
        rootfs, bundle = prepare(workdir)
        print(f"/bin/true in a busybox container, {arguments.runs} runs per row after {WARMUP} warm-ups "
              f"(python {platform.python_version()} at {sys.executable})\n")
        rows = api_rows(rootfs, workdir / "api-state", arguments.runs, tag)
        rows += command_rows(rootfs, bundle, workdir, arguments.runs, tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    verdicts = goals(rows)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "warmup": WARMUP,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "python": sys.executable,
                  "rows": rows, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
