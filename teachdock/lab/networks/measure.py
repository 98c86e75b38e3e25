"""Round-trip time and throughput of a network path, measured with busybox ``nc`` at both ends
(chapter 08, section 4).

- **Round trips**: the server is ``nc -l -p PORT -e cat`` (an echo); the client is
  ``nc ADDRESS PORT -e sh -c LOOP``, where LOOP writes one line and reads the echo, N times,
  on the socket itself. Time per round trip = the client's wall time / N.
- **Throughput**: the server is ``nc -l -p PORT -e sh -c "wc -c >&2"`` (counts what arrives); the client
  pipes a fixed number of zero bytes from ``dd`` into ``nc``. MB/s = bytes / the client's time;
  the server's count proves every byte arrived.

Both ends run the host's busybox (the binary the chapter's busybox image is built from) inside
the path's namespaces, through ``nsexec``; the client is timed there, after ``setns``, so
neither Python's start-up nor ``docker exec`` is counted. The client's time includes starting
``nc`` and the TCP handshake once: with thousands of round trips and megabytes that is small.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from teachdock.lab.common.language import say
from teachdock.lab.networks.byhand import busybox, listening, start_in, stop
from teachdock.lab.networks.nsexec import nsexec_argv

ROUND_TRIP_LOOP = 'i=0; while [ $i -lt {n} ]; do echo x; read r; i=$((i+1)); done'


@dataclass
class PathResult:
    label: str
    round_trips: int
    round_trip_us: float         # microseconds per round trip
    megabytes: int
    throughput_mb_s: float       # MB (10**6 bytes) per second

    def __repr__(self) -> str:
        return say("{label:38} {round_trip_us:8.1f} µs per round trip   {throughput:8.0f} MB/s", label=self.label,
                   round_trip_us=self.round_trip_us, throughput=self.throughput_mb_s)


def free_port() -> int:
    """A TCP port nobody on the host's loopback uses right now (the kernel picks it)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def elapsed_of(stderr: str) -> float:
    """The ``elapsed=SECONDS`` line nsexec --timed prints last."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("elapsed="):
            return float(line.split("=", 1)[1])
    raise ValueError(f"no elapsed= line in: {stderr!r}")


def timed_client(netns: str | None, script: str, timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    argv = [*nsexec_argv(netns or "/proc/self/ns/net", ["sh", "-c", script], timed=True)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(say("the client failed ({code}): {error}", code=done.returncode, error=done.stderr.strip()))
    return elapsed_of(done.stderr), done


def server(netns: str | None, port: int, *program: str) -> subprocess.Popen:
    process = start_in(netns or "/proc/self/ns/net", [busybox(), "nc", "-l", "-p", str(port), "-e", *program])
    if not listening(process, port):
        stop(process)
        if netns is None:
            raise RuntimeError(say("nc did not start listening on port {port} on the host", port=port))
        raise RuntimeError(say("nc did not start listening on port {port} in {netns}", port=port, netns=netns))
    return process


def round_trip_time(server_ns, client_ns, address: str, port: int, *, server_port: int | None = None,
                    count: int = 2000) -> float:
    """Microseconds per round trip from ``client_ns`` to ``address:port`` (the server listens on
    ``server_port`` in ``server_ns``: different from ``port`` behind a published port)."""
    echo = server(server_ns, server_port or port, "cat")
    try:
        loop = ROUND_TRIP_LOOP.format(n=count)
        seconds, _ = timed_client(client_ns, f"{busybox()} nc {address} {port} -e sh -c '{loop}'", 120)
    finally:
        stop(echo)
    return seconds / count * 1e6


def throughput(server_ns, client_ns, address: str, port: int, *, server_port: int | None = None,
               megabytes: int = 128) -> float:
    """MB/s from ``client_ns`` to ``address:port``, sending ``megabytes`` MiB of zeros."""
    sink = server(server_ns, server_port or port, "sh", "-c", "wc -c >&2")  # the socket is its stdout
    try:
        script = f"dd if=/dev/zero bs=65536 count={megabytes * 16} 2>/dev/null | {busybox()} nc {address} {port}"
        seconds, _ = timed_client(client_ns, script, 300)
        try:
            out, err = sink.communicate(timeout=60)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(say("the server did not see the end of the data")) from error
    finally:
        stop(sink)
    received = int((out.strip() or err.strip() or "0").split()[0])
    if received != megabytes * 1048576:
        raise RuntimeError(say("the server counted {received} bytes, not {sent}", received=received,
                               sent=megabytes * 1048576))
    return megabytes * 1048576 / seconds / 1e6


def measure_path(label: str, server_ns, client_ns, address: str, port: int, *, server_port: int | None = None,
                 count: int = 2000, megabytes: int = 128) -> PathResult:
    """Both measurements of one path. ``server_ns``/``client_ns``: a lab namespace name, a
    namespace path (``/proc/<pid>/ns/net`` for a container) or None for the host."""
    rtt = round_trip_time(server_ns, client_ns, address, port, server_port=server_port, count=count)
    rate = throughput(server_ns, client_ns, address, port, server_port=server_port, megabytes=megabytes)
    return PathResult(label, count, rtt, megabytes, rate)


def plot_paths(results: list[PathResult], *, title: str | None = None):
    """Two bar charts side by side: µs per round trip (lower is better) and MB/s (higher is
    better); each bar labelled with its value and, for round trips, its ratio to loopback."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 0.6 * len(results) + 1.8), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    labels = [result.label for result in results]
    colours = ["#999999" if "loopback" in label else "#0072B2" if "bridge" in label else "#D55E00"
               for label in labels]
    loopback = next((result.round_trip_us for result in results if "loopback" in result.label), None)
    left.barh(labels, [result.round_trip_us for result in results], color=colours)
    for i, result in enumerate(results):
        if loopback:
            text = say(" {microseconds:.1f} µs  ({ratio:.1f}× loopback)", microseconds=result.round_trip_us,
                       ratio=result.round_trip_us / loopback)
        else:
            # the same in every language; the Greek μ, which Korean fonts (NanumGothic) have and µ they lack
            text = f" {result.round_trip_us:.1f} \u03bcs"
        left.text(result.round_trip_us, i, text, va="center", fontsize=8)
    left.set_xlabel(say("µs per round trip (lower is better)"))
    left.invert_yaxis()
    left.set_xlim(0, max(result.round_trip_us for result in results) * 1.8)
    right.barh(labels, [result.throughput_mb_s for result in results], color=colours)
    for i, result in enumerate(results):
        right.text(result.throughput_mb_s, i, f" {result.throughput_mb_s:.0f}", va="center", fontsize=8)
    right.set_xlabel(say("MB/s, {megabytes} MiB through busybox nc (higher is better)",
                         megabytes=results[0].megabytes))
    right.set_xlim(0, max(result.throughput_mb_s for result in results) * 1.3)
    fig.suptitle(title or say("Measured on this machine"), fontsize=11)
    return fig
