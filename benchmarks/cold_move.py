"""How long does a cold move take? export, import, commit, save and load: teachdockd beside dockerd.

One container per daemon: busybox plus a payload the container writes itself (``--payload-mb``
MB of random bytes in 1 MB files under /payload), then each step with the real docker CLI,
``--runs`` times, medians printed side by side:

  export -o        GET  /containers/ID/export       the root filesystem as one tar
  import           POST /images/create?fromSrc=-     that tar as a one-layer image
  commit           POST /commit                      the container's changes as a layer
  save -o          GET  /images/get                  the committed image as an archive
  load -i          POST /images/load                 that archive into the same daemon, after rmi

Both daemons run the same busybox (teachdock's, ``docker load``-ed into dockerd) and are private
ones (tests/support/daemons.py, tests/support/dockerd.py): own data root, exec root, socket and
cgroup parent, stopped by pid and removed at the end. dockerd has no bridge, so the container
runs with ``--network none`` on both.

Run as root with the venv's python (never a pyenv shim):
    /work/main/.venv/bin/python benchmarks/cold_move.py --runs 5 --payload-mb 64 [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent))  # the repository root, for tests.support

STEPS = ("export -o", "import", "commit", "save -o", "load -i")


def timed(docker, *args) -> float:
    began = time.perf_counter()
    result = docker(*args)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return elapsed


def measure(docker, workdir: Path, runs: int, payload_mb: int) -> tuple[dict[str, list[float]], int]:
    """Each step's times on one daemon, and the export's size; everything it makes is removed again."""
    script = f"mkdir /payload; for i in $(seq {payload_mb}); do head -c 1048576 /dev/urandom > /payload/$i; done"
    made = docker("run", "--network", "none", "--name", "bench-move", "busybox", "sh", "-c", script)
    if made.returncode != 0:
        raise RuntimeError(f"the payload container failed: {made.stderr.strip()}")
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    exported, saved = workdir / "export.tar", workdir / "save.tar"
    try:
        for run in range(runs):
            times["export -o"].append(timed(docker, "export", "-o", str(exported), "bench-move"))
            size = exported.stat().st_size
            times["import"].append(timed(docker, "import", str(exported), f"bench/imported:{run}"))
            times["commit"].append(timed(docker, "commit", "bench-move", f"bench/committed:{run}"))
            times["save -o"].append(timed(docker, "save", "-o", str(saved), f"bench/committed:{run}"))
            docker("rmi", f"bench/committed:{run}")
            times["load -i"].append(timed(docker, "load", "-i", str(saved)))
            docker("rmi", f"bench/committed:{run}", f"bench/imported:{run}")
    finally:
        docker("rm", "-f", "bench-move")
        for path in (exported, saved):
            path.unlink(missing_ok=True)
    return times, size


def print_rows(results: dict[str, dict[str, list[float]]], sizes: dict[str, int]) -> None:
    names = list(results)
    header = ["step", *[f"{name} median s" for name in names], "ratio"]
    table = [header]
    for step in STEPS:
        medians = [statistics.median(results[name][step]) if results[name].get(step) else None for name in names]
        ratio = (f"{medians[0] / medians[1]:.2f}x" if len(medians) == 2 and all(medians) else "")
        table.append([step, *[f"{m:.3f}" if m is not None else "failed" for m in medians], ratio])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    for name, size in sizes.items():
        print(f"  export tar from {name}: {size / 1e6:.1f} MB")
    print("  ratio: the first daemon's median over the second's (below 1: the first is faster)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--payload-mb", type=int, default=64)
    parser.add_argument("--json", help="write the times here")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (both daemons do)", file=sys.stderr)
        return 2
    from tests.support.daemons import docker_cli, running_daemon  # noqa: PLC0415
    from tests.support.dockerd import dockerd_missing, running_dockerd  # noqa: PLC0415

    import pytest  # noqa: PLC0415, F401 - running_daemon skips through pytest when busybox is missing

    results, sizes = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-move-") as scratch:
        workdir = Path(scratch)
        with running_daemon() as teachdockd:
            docker = docker_cli(teachdockd.socket_path, workdir / "cli-teachdockd")
            results["teachdockd"], sizes["teachdockd"] = measure(docker, workdir, options.runs, options.payload_mb)
            if dockerd_missing():
                print(f"dockerd row skipped: {dockerd_missing()}")
            else:
                with running_dockerd(teachdockd.data_root) as dockerd:
                    theirs = docker_cli(dockerd.socket_path, workdir / "cli-dockerd")
                    results["dockerd"], sizes["dockerd"] = measure(theirs, workdir, options.runs, options.payload_mb)
    print(f"cold move of busybox + {options.payload_mb} MB, {options.runs} runs per step")
    print_rows(results, sizes)
    if options.json:
        Path(options.json).write_text(json.dumps({"payload_mb": options.payload_mb, "runs": options.runs,
                                                  "times_s": results, "export_bytes": sizes}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
