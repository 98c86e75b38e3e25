"""What does the seccomp filter cost? Docker's default profile against no filter, teachdock beside runc.

One run prints two tables, medians:

1. **start** — `/bin/true` in a busybox container, the same bundle with Docker's default
   profile (`make_spec`'s default) and without a filter (`seccomp=None`, as
   `--security-opt seccomp=unconfined`):
     api: run()           teachdock.runtime.run() in a warm Python process
     cli: teachdock run   `teachdock runtime run --bundle B ID`
     runc run             `runc run --bundle B ID`
   All six rows take turns, run by run (perf_counter; the commands through subprocess.run),
   so a burst of other work on the machine hits them alike.
   The difference between the two bundles is what compiling and loading the filter adds. A
   warm process compiles a profile once (runtime/seccomp.py keeps the last few programs); a
   fresh `teachdock runtime run` compiles it every time (the "compile" row: ~10 ms).
2. **syscalls** — a small static C program inside the container calls getppid(2) 10^6 times
   in ten batches and prints the nanoseconds per call of its fastest batch, measured itself
   (clock_gettime around each batch, so the container's start is not in it, and the fastest
   batch is the one other work on the machine disturbed least). Each call runs through the filter: Docker's profile is
   a list of ~370 allowed syscalls libseccomp turns into a chain of comparisons.
   Overhead = (ns per call with the filter) − (without), per runtime.

Goal (issue 15): teachdock's per-call overhead ≤ 1.5 × runc's. Both load a program libseccomp
made from the same profile, so they should be close; runc adds a small prologue of its own
(it answers ENOSYS for syscalls newer than the profile).

Needs root, runc, gcc (for the probe) and the host's static busybox. Run with the
venv's python:
    sudo .venv/bin/python benchmarks/seccomp.py --runs 20 [--json results.json]
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from startup import (WARMUP, compile_package, failed, print_goals, print_table, summary,  # noqa: E402,I001
                     teachdock_cli, time_in_process)

OVERHEAD_TO_RUNC_GOAL = 1.5
CALLS = 1_000_000

LOOP_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* calls getppid argv[1] times in 10 batches; prints the fastest batch's ns per call */
int main(int argc, char **argv) {
    long batch = (argc > 1 ? atol(argv[1]) : 1000000) / 10;
    double best = 1e18;
    for (int b = 0; b < 10; b++) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long i = 0; i < batch; i++)
            syscall(SYS_getppid);
        clock_gettime(CLOCK_MONOTONIC, &end);
        double ns = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / batch;
        if (ns < best)
            best = ns;
    }
    printf("%.2f\n", best);
    return 0;
}
"""


def prepare(workdir: Path) -> dict[str, Path]:
    """The rootfs, the loop program, and four bundles: {true, loop} x {default, unconfined}."""
    from teachdock.image.busybox import build_busybox_rootfs  # noqa: PLC0415 - after compile_package
    from teachdock.runtime.spec import make_spec, write_bundle  # noqa: PLC0415

    rootfs = build_busybox_rootfs(workdir / "rootfs")
    tools = workdir / "tools"
    tools.mkdir()
    (tools / "loop.c").write_text(LOOP_SOURCE)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(tools / "loop"), str(tools / "loop.c")], check=True,
                   capture_output=True)
    mount = {"destination": "/mnt", "type": "bind", "source": str(tools), "options": ["rbind", "ro"]}
    bundles = {"rootfs": rootfs}
    for filtered, seccomp in (("default", "default"), ("unconfined", None)):
        for name, args in (("true", ["/bin/true"]), ("loop", ["/mnt/loop", str(CALLS)])):
            bundle = workdir / f"bundle-{name}-{filtered}"
            write_bundle(bundle, make_spec(args, rootfs, hostname="bench", mounts=[mount], seccomp=seccomp))
            bundles[f"{name}-{filtered}"] = bundle
    return bundles


def filter_compile_row(runs: int) -> dict:
    """Building Docker's default filter alone (libseccomp: rules, then BPF export), in process."""
    from teachdock.runtime.seccomp import compile_filter  # noqa: PLC0415
    from teachdock.runtime.seccomp_profile import docker_default  # noqa: PLC0415
    from teachdock.runtime.spec import DEFAULT_CAPABILITIES  # noqa: PLC0415

    profile = docker_default(DEFAULT_CAPABILITIES)
    return time_in_process({"compile Docker's filter": ("seccomp.compile_filter(docker_default(caps), cached=False)",
                                                        lambda _: compile_filter(profile, cached=False))}, runs)[0]


def start_rows(bundles: dict[str, Path], workdir: Path, runs: int, tag: str) -> list[dict]:
    from teachdock.runtime import run  # noqa: PLC0415

    def api(seccomp):
        def start_one(number: int) -> None:
            result = run(["/bin/true"], rootfs=bundles["rootfs"], container_id=f"{tag}-{seccomp}-{number}",
                         state_root=workdir / "api-state", seccomp=seccomp)
            if result.exit_code != 0:
                raise RuntimeError(f"/bin/true exited {result.exit_code}: {result.stderr.strip()}")
        return start_one

    def command(runtime: list[str], filtered: str):
        argv = [*runtime, "run", "--bundle", str(bundles[f"true-{filtered}"])]

        def start_one(number: int) -> None:
            subprocess.run([*argv, f"{tag}-{os.path.basename(runtime[0])}-{filtered}-{number}"], check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        return shlex.join(argv + ["ID"]), start_one

    teachdock = [*teachdock_cli(), "runtime", "--root", str(workdir / "td-state")]
    runc = ["runc", "--root", str(workdir / "runc-state")]
    return time_in_process({
        "api: run() default": ("run([...], seccomp='default')", api("default")),
        "api: run() unconfined": ("run([...], seccomp=None)", api(None)),
        "cli: teachdock run default": command(teachdock, "default"),
        "cli: teachdock run unconfined": command(teachdock, "unconfined"),
        "runc run default": command(runc, "default"),
        "runc run unconfined": command(runc, "unconfined"),
    }, runs)


def loop_rows(bundles: dict[str, Path], workdir: Path, runs: int, tag: str) -> list[dict]:
    """ns per getppid call as the loop measured it; the runtimes take turns, run by run."""
    commands = {
        "teachdock": [*teachdock_cli(), "runtime", "--root", str(workdir / "td-state")],
        "runc": ["runc", "--root", str(workdir / "runc-state")],
    }
    ways = [(runtime, filtered) for runtime in commands for filtered in ("default", "unconfined")]
    values: dict[tuple[str, str], list[float]] = {way: [] for way in ways}
    errors: dict[tuple[str, str], str] = {}
    for number in range(WARMUP + runs):
        for runtime, filtered in ways:
            if (runtime, filtered) in errors:
                continue
            done = subprocess.run([*commands[runtime], "run", "--bundle", str(bundles[f"loop-{filtered}"]),
                                   f"{tag}-loop-{runtime}-{filtered}-{number}"],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                errors[(runtime, filtered)] = done.stderr.strip() or f"exit {done.returncode}"
            elif number >= WARMUP:
                values[(runtime, filtered)].append(float(done.stdout) / 1e9)  # seconds, for the shared table
    return [failed(f"getppid: {runtime} {filtered}", "loop", errors[(runtime, filtered)])
            if (runtime, filtered) in errors else
            summary(f"getppid: {runtime} {filtered}", f"{CALLS} x getppid, ns per call", values[(runtime, filtered)])
            for runtime, filtered in ways]


def print_nanoseconds(rows: list[dict]) -> None:
    print("row                             median ns  min ns  max ns   n")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<32}failed: {row['error']}")
        else:
            print(f"{row['name']:<32}{row['median_s'] * 1e9:>9.1f}{row['min_s'] * 1e9:>8.1f}"
                  f"{row['max_s'] * 1e9:>8.1f}{row['n']:>4}")


def goals(start: list[dict], loop: list[dict]) -> list[dict]:
    medians = {row["name"]: row["median_s"] for row in start + loop if "error" not in row}
    verdicts = []

    def difference(name: str) -> float | None:
        with_filter, without = medians.get(f"{name} default"), medians.get(f"{name} unconfined")
        return None if with_filter is None or without is None else with_filter - without

    for name in ("api: run()", "cli: teachdock run", "runc run"):
        cost = difference(name)
        verdicts.append({"goal": f"start cost of the filter, {name} (default - unconfined; no goal)", "value": cost,
                         "verdict": "info", "shown": "-" if cost is None else f"{cost * 1000:.1f} ms"})
    teachdock, runc = difference("getppid: teachdock"), difference("getppid: runc")
    if teachdock is None or runc is None:
        verdicts.append({"goal": "per-call overhead teachdock / runc", "value": None,
                         "verdict": "unknown (a row failed)"})
    else:
        # a ratio of two overheads near zero means nothing: judge against at least 1 ns of runc's
        ratio = teachdock / max(runc, 1e-9)
        verdicts.append({"goal": f"per-call overhead teachdock / runc <= {OVERHEAD_TO_RUNC_GOAL}", "value": ratio,
                         "verdict": "PASS" if ratio <= OVERHEAD_TO_RUNC_GOAL else "MISS",
                         "shown": f"{teachdock * 1e9:.1f} ns / {runc * 1e9:.1f} ns = {ratio:.2f}"})
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per row (default 20), after 3 warm-ups")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: every row creates namespaces and cgroups")
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    missing = [tool for tool in ("runc", "gcc") if shutil.which(tool) is None]
    if missing:
        parser.error(f"needs {', '.join(missing)} (apt-get install runc gcc libc6-dev)")
    compile_package()
    tag = f"bench-seccomp-{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-seccomp-"))
    try:
        bundles = prepare(workdir)
        print(f"Docker's default seccomp profile vs none, {arguments.runs} runs per row after {WARMUP} warm-ups "
              f"(python {platform.python_version()}, kernel {platform.release()})\n")
        start = [filter_compile_row(arguments.runs), *start_rows(bundles, workdir, arguments.runs, tag)]
        loop = loop_rows(bundles, workdir, arguments.runs, tag)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(start)
    print()
    print_nanoseconds(loop)
    verdicts = goals(start[1:], loop)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "warmup": WARMUP,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "python": sys.executable,
                  "rows": start + loop, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in row for row in start + loop) else 1


if __name__ == "__main__":
    sys.exit(main())
