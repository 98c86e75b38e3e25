"""What does a network cost? The default bridge and published ports, teachdockd against dockerd.

One run prints two tables, medians first:

  docker run -> teachdockd (bridge)   `docker run --rm busybox true` on teachdockd's default bridge
  docker run -> dockerd (bridge)      the same against a private dockerd on ITS default bridge
                                      (docker0, iptables, docker-proxy: dockerd's defaults)
  ... (none)                          the same two with `--network none`: what the network costs

timed by hyperfine (`-N --warmup 3`), then round-trip time and throughput with busybox nc at
both ends (the static busybox that teachdock bootstraps, on the host and in the containers):

  loopback                  two nc on the host's 127.0.0.1: the ceiling
  container -> container    a client container to a server container over teachdockd's bridge
  host -> published port    a host nc to 127.0.0.1:P, published with `-p 127.0.0.1::80`

Round trip: one TCP connection to `nc -l -e cat` (an echo server); the client shell writes a
line and reads it back, N times, with shell builtins only (no process per round trip); the
clock is /proc/uptime read before and after. Throughput: 200 MiB of zeros from `dd` through nc
into `nc -l -e dd of=/dev/null`, timed the same way. Each row is measured --repeat times and
the median shown. Traffic goes only to 127.0.0.1 and to the benchmark's own containers.

teachdockd is a private one (tests/support/daemons.py: own data root, bridge, nftables table);
dockerd too (tests/support/dockerd.py with bridge=True: it runs in a network namespace of its
own, so its docker0 and iptables chains vanish with it). Both run the same busybox image.
Everything is stopped by pid and removed at the end.

Run as root with the venv's python:
    /work/main/.venv/bin/python benchmarks/network.py [--runs 20] [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append(str(HERE.parent))  # the repository root, for tests.support
from daemon import docker_env, row, unmount_under  # noqa: E402,I001
from startup import WARMUP, compile_package, failed, print_goals, print_table  # noqa: E402,I001

BRIDGE_RUN_GOAL = 0.4        # docker run on teachdockd's bridge / the same on dockerd's bridge
PUBLISHED_LATENCY_GOAL = 2.0  # published-port round trip / loopback round trip
ROUND_TRIPS = 10000
MEBIBYTES = 200

# The client: one connection, N round trips with shell builtins, then "start end" from /proc/uptime.
RTT_CLIENT = r"""
f=/tmp/nb-fifo-$$; rm -f $f; busybox mkfifo $f
busybox nc $1 $2 < $f | {
  exec 3>$f
  read s _ < /proc/uptime
  i=0; while [ $i -lt $3 ]; do echo ping >&3; read line; [ "$line" = ping ] || { echo "lost at $i"; exit 1; }; i=$((i+1)); done
  read e _ < /proc/uptime
  exec 3>&-
  echo "$s $e"
}
rm -f $f
"""
THROUGHPUT_CLIENT = r"""
read s _ < /proc/uptime
busybox dd if=/dev/zero bs=65536 count=$3 2>/dev/null | busybox nc $1 $2 || exit 1
read e _ < /proc/uptime
echo "$s $e"
"""
# The servers: an echo server and a sink, each accepting one connection after another.
SERVERS = ("while :; do busybox nc -l -p $1 -e cat; done & "
           "while :; do busybox nc -l -p $2 -e busybox dd of=/dev/null bs=65536 2>/dev/null; done")


def busybox_binary() -> str:
    from teachdock.image import busybox  # noqa: PLC0415

    return str(busybox.find_busybox())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(kind: str, client: list[str], target: tuple[str, int], repeat: int, env: dict | None) -> dict:
    """Run the client ``repeat`` times (a refused connection is retried: the server loop may be
    between two accepts); per run the seconds from its own clock."""
    script, amount = (RTT_CLIENT, ROUND_TRIPS) if kind == "rtt" else (THROUGHPUT_CLIENT, MEBIBYTES * 16)
    seconds, problem = [], None
    for _ in range(repeat):
        for _attempt in range(5):
            done = subprocess.run([*client, "sh", "-c", script, "client", target[0], str(target[1]), str(amount)],
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
            words = done.stdout.split()
            if done.returncode == 0 and len(words) == 2:
                seconds.append(float(words[1]) - float(words[0]))
                break
            problem = (done.stdout + done.stderr).strip() or f"exit {done.returncode}"
            time.sleep(0.3)
        else:
            return {"error": problem}
        time.sleep(0.1)  # the server loop listens again
    median = statistics.median(seconds)
    if kind == "rtt":
        return {"rtt_us": median / ROUND_TRIPS * 1e6, "runs": len(seconds)}
    return {"mb_per_s": MEBIBYTES * 1.048576 / median if median else None, "runs": len(seconds)}


def path_row(name: str, client: list[str], target: tuple[str, int], sink: tuple[str, int], repeat: int,
             env: dict | None = None) -> dict:
    rtt, throughput = measure("rtt", client, target, repeat, env), measure("throughput", client, sink, repeat, env)
    return {"name": name, **{k: v for k, v in rtt.items() if k != "error"},
            **{k: v for k, v in throughput.items() if k != "error"},
            **({"error": rtt.get("error") or throughput.get("error")} if "error" in rtt or "error" in throughput
               else {})}


def print_paths(rows: list[dict]) -> None:
    print(f"\n{'path':<26}{'round trip us':>14}{'throughput MB/s':>17}  runs")
    for item in rows:
        rtt = f"{item['rtt_us']:.1f}" if item.get("rtt_us") else "failed"
        rate = f"{item['mb_per_s']:.0f}" if item.get("mb_per_s") else "failed"
        print(f"{item['name']:<26}{rtt:>14}{rate:>17}  {item.get('runs', 0)}")
    for item in rows:
        if "error" in item:
            print(f"  {item['name']} failed: {item['error']}")


def goals(rows: list[dict], paths: list[dict]) -> list[dict]:
    medians = {r["name"]: r["median_s"] for r in rows if "error" not in r}
    rtts = {p["name"]: p.get("rtt_us") for p in paths}
    verdicts = []

    def verdict(text: str, value: float | None, limit: float) -> None:
        if value is None:
            verdicts.append({"goal": text, "value": None, "verdict": "unknown (a row failed)"})
        else:
            verdicts.append({"goal": text, "value": value, "verdict": "PASS" if value <= limit else "MISS",
                             "shown": f"{value:.2f}"})

    ours, theirs = medians.get("docker run -> teachdockd (bridge)"), medians.get("docker run -> dockerd (bridge)")
    verdict(f"docker run on teachdockd's bridge / on dockerd's bridge <= {BRIDGE_RUN_GOAL}",
            ours / theirs if ours and theirs else None, BRIDGE_RUN_GOAL)
    published, loopback = rtts.get("host -> published port"), rtts.get("loopback")
    verdict(f"published-port round trip / loopback round trip <= {PUBLISHED_LATENCY_GOAL}",
            published / loopback if published and loopback else None, PUBLISHED_LATENCY_GOAL)
    for daemon in ("teachdockd", "dockerd"):
        bridge, none = medians.get(f"docker run -> {daemon} (bridge)"), medians.get(f"docker run -> {daemon} (none)")
        if bridge and none:
            verdicts.append({"goal": f"{daemon}: the bridge's cost per run, bridge - none (no goal)",
                             "value": bridge - none, "verdict": "info", "shown": f"{(bridge - none) * 1000:.1f} ms"})
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per docker run row (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per network path (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the daemons create namespaces, bridges, cgroups and nftables rules")
    compile_package()
    from tests.support.daemons import DaemonProcess  # noqa: PLC0415 - after compile_package
    from tests.support.dockerd import DockerdProcess, docker_cli, dockerd_missing  # noqa: PLC0415

    from teachdock.image import archive  # noqa: PLC0415
    from teachdock.image.images import Images  # noqa: PLC0415

    docker = docker_cli()
    if docker is None:
        parser.error("needs the docker CLI")
    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-network-"))
    workdir.chmod(0o755)
    rows, paths, host_servers = [], [], []
    teachdockd = dockerd = None
    busybox = busybox_binary()
    try:
        teachdockd = DaemonProcess(str(workdir))
        teachdockd.bootstrap_busybox()
        teachdockd.start()
        busybox_tar = workdir / "busybox.tar"
        archive.save(Images(teachdockd.data_root).store, ["busybox:latest"], busybox_tar)
        env = docker_env(teachdockd.socket_path, workdir / "cli-ours")
        print(f"the network's cost, {arguments.runs} runs per docker row after {WARMUP} warm-ups, "
              f"{arguments.repeat} measurements per path (python {platform.python_version()})")
        rows.append(row("docker run -> teachdockd (bridge)", [docker, "run", "--rm", "busybox", "true"], env,
                        arguments.runs, workdir))
        rows.append(row("docker run -> teachdockd (none)", [docker, "run", "--rm", "--network", "none", "busybox",
                                                            "true"], env, arguments.runs, workdir))

        # the ceiling: two nc on the host's loopback
        echo_port, sink_port = free_port(), free_port()
        host_servers.append(subprocess.Popen([busybox, "sh", "-c", SERVERS, "servers", str(echo_port),
                                              str(sink_port)], start_new_session=True,
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        time.sleep(0.3)
        paths.append(path_row("loopback", [busybox], ("127.0.0.1", echo_port), ("127.0.0.1", sink_port),
                              arguments.repeat))

        # a server container on the default bridge, its two ports published on 127.0.0.1
        def docker_ours(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([docker, *args], env=env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        server = f"nb-server-{secrets.token_hex(3)}"
        started = docker_ours("run", "-d", "--name", server, "-p", "127.0.0.1::80", "-p", "127.0.0.1::81",
                              "busybox", "sh", "-c", SERVERS, "servers", "80", "81")
        if started.returncode != 0:
            paths.append({"name": "container -> container", "error": started.stderr.strip()})
        else:
            time.sleep(0.3)
            address = docker_ours("inspect", "-f", "{{.NetworkSettings.IPAddress}}", server).stdout.strip()
            # the client in a container of its own on the same bridge (its start is not timed:
            # the script reads its own clock)
            paths.append(path_row("container -> container", [docker, "run", "--rm", "busybox"], (address, 80),
                                  (address, 81), arguments.repeat, env))
            ports = {}
            for port in (80, 81):
                mapped = docker_ours("port", server, f"{port}/tcp").stdout.split()
                ports[port] = int(mapped[0].rsplit(":", 1)[1]) if mapped else None
            paths.append(path_row("host -> published port", [busybox], ("127.0.0.1", ports[80]),
                                  ("127.0.0.1", ports[81]), arguments.repeat))
            docker_ours("rm", "-f", server)

        missing = dockerd_missing()
        if missing:
            rows += [failed(f"docker run -> dockerd ({n})", "docker run --rm busybox true", missing)
                     for n in ("bridge", "none")]
        else:
            dockerd = DockerdProcess(str(workdir), bridge=True)
            dockerd.start()
            loaded = dockerd.docker("load", "-i", str(busybox_tar), timeout=120)
            if loaded.returncode != 0:
                rows += [failed(f"docker run -> dockerd ({n})", "docker run --rm busybox true", loaded.stderr.strip())
                         for n in ("bridge", "none")]
            else:
                rows.append(row("docker run -> dockerd (bridge)", [docker, "run", "--rm", "busybox", "true"],
                                dockerd.env, arguments.runs, workdir))
                rows.append(row("docker run -> dockerd (none)", [docker, "run", "--rm", "--network", "none",
                                                                 "busybox", "true"], dockerd.env, arguments.runs,
                                workdir))
    finally:
        for process in host_servers:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if teachdockd is not None:
            leaks = teachdockd.close()
            if leaks:
                print(f"warning: teachdockd's containers left: {leaks}", file=sys.stderr)
        if dockerd is not None:
            dockerd.close()
        unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(rows)
    print_paths(paths)
    verdicts = goals(rows, paths)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "repeat": arguments.repeat,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "load": os.getloadavg(),
                  "rows": rows, "paths": paths, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in r for r in rows + paths) else 1


if __name__ == "__main__":
    sys.exit(main())
