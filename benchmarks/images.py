"""How fast are teachdock's images? Unpacking a layer, an unchanged rebuild, a pull, beside the usual tools.

One run prints one table, medians first, then a PASS or MISS line per goal of issue 3:

  unpack: teachdock        unpack_layer() of a 50 MiB layer (3000 files, gzip), both digests
                           checked, as the snapshotter unpacks every layer
  unpack: tar -xzf         GNU tar of the same file into an empty directory
  unpack (tmpfs): ...      the same two on /dev/shm, where creating a file costs no disk work:
                           the programs' own speed, for comparison (no goal)
  rebuild: api             Images.build() of an unchanged 6-step Dockerfile, every step cached
  rebuild: cli             `teachdock store build -q -t six:1 CTX`, a fresh Python process each time
  pull: api                teachdock.image.registry.pull() of busybox + that layer from a local
                           registry into an empty store
  pull: cli                `teachdock store pull -q NAME` into an empty data root
  pull: skopeo copy        `skopeo copy docker://NAME oci:DIR:1` into an empty directory

Goals: unpack (on the disk, beside the data root) at least 0.8x tar's speed (teachdock's
median <= tar's median / 0.8); an unchanged rebuild <= 0.3 s (API and CLI); a pull <= 1.0x
skopeo's time (API and CLI).

The layer is generated, not downloaded: 3000 files in 60 directories, 50 MiB of content in
all, sizes and bytes drawn from a seeded random generator (half of each file random bytes,
half text made of 500 made-up words), tarred with fixed times and owners and gzipped with
mtime 0, so every run unpacks the very same file (its digest is printed).

Everything is timed in this process with time.perf_counter, commands through subprocess
(which adds about a millisecond). The ways of one kind take turns, round by round, after
one untimed warm-up round, so a burst of load from other work on the machine hits them
alike; what each round writes is removed before the next, untimed. The registry is
Debian's docker-registry on 127.0.0.1, started here and stopped by its PID; the temporary
directory (data roots, registry storage, unpacked trees) and the one on /dev/shm are
removed at the end.

Run as root (the rebuild's first build runs RUN steps in containers) with the venv's
python, never through a pyenv shim:
    /work/main/.venv/bin/python benchmarks/images.py [--runs 10] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import compile_package, failed, milliseconds, print_goals, print_table, summary, teachdock_cli  # noqa: E402

UNPACK_GOAL = 0.8          # teachdock's unpack speed / tar's, at least
REBUILD_GOAL_SECONDS = 0.3
PULL_GOAL = 1.0            # teachdock's pull time / skopeo's, at most
WARMUP = 1

LAYER_BYTES = 50 << 20
LAYER_FILES = 3000
LAYER_DIRS = 60
SEED = 20261128
FIXED_TIME = 1_700_000_000

SIX_STEPS = """\
FROM busybox
ENV GREETING="hello from ENV"
WORKDIR /app
COPY message.txt ./
RUN echo "$GREETING" >> message.txt && echo built > /built
CMD ["cat", "/app/message.txt"]
"""



# --- the layer ------------------------------------------------------------------------------------
def make_layer(path: Path) -> dict:
    """Write the deterministic gzipped layer to ``path``; return its sizes and digests."""
    import hashlib

    rng = random.Random(SEED)
    weights = [rng.expovariate(1.0) for _ in range(LAYER_FILES)]
    sizes = [max(1, int(weight * LAYER_BYTES / sum(weights))) for weight in weights]
    sizes[-1] += LAYER_BYTES - sum(sizes)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    text = b" ".join(rng.choice(words) for _ in range(300_000))

    def entry(name: str, directory: bool = False, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        info.mode, info.size, info.mtime = (0o755 if directory else 0o644), size, FIXED_TIME
        return info

    plain = hashlib.sha256()

    class Hashing(io.RawIOBase):
        """Counts and hashes the tar on its way into gzip: the diff_id."""

        def __init__(self, sink):
            self.sink, self.count = sink, 0

        def writable(self):
            return True

        def write(self, data):
            plain.update(data)
            self.count += len(data)
            return self.sink.write(data)

    with open(path, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
        counted = Hashing(packed)
        with tarfile.open(fileobj=counted, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(entry("data", directory=True))
            for number in range(LAYER_DIRS):
                tar.addfile(entry(f"data/d{number:02d}", directory=True))
            for number, size in enumerate(sizes):
                half = size // 2
                start = rng.randrange(0, len(text) - (size - half))
                content = rng.randbytes(half) + text[start:start + size - half]
                tar.addfile(entry(f"data/d{number % LAYER_DIRS:02d}/f{number:04d}", size=size), io.BytesIO(content))
    with open(path, "rb") as fh:
        digest = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
    return {"digest": digest, "diff_id": "sha256:" + plain.hexdigest(), "gzip_bytes": path.stat().st_size,
            "tar_bytes": counted.count, "content_bytes": LAYER_BYTES, "files": LAYER_FILES}


# --- timing -----------------------------------------------------------------------------------------
def time_rounds(ways: dict[str, tuple[str, object, object]], runs: int) -> list[dict]:
    """``ways``: {row name: (command text, prepare(i), action(i))}. prepare is untimed; the
    ways take turns round by round, the first WARMUP rounds untimed."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    errors: dict[str, str] = {}
    for number in range(WARMUP + runs):
        for name, (_, prepare, action) in ways.items():
            if name in errors:
                continue
            try:
                prepare(number)
                began = time.perf_counter()
                action(number)
                elapsed = time.perf_counter() - began
            except Exception as error:  # noqa: BLE001 - a broken row is reported, the others still run
                errors[name] = f"{type(error).__name__}: {error}"
                continue
            if number >= WARMUP:
                times[name].append(elapsed)
    return [failed(name, command, errors[name]) if name in errors else summary(name, command, times[name])
            for name, (command, _, _) in ways.items()]


def command(argv: list[str], env: dict | None = None) -> None:
    """Run a command to completion; a failure raises with the end of its stderr."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {' / '.join(done.stderr.strip().splitlines()[-3:])}")


def fresh(path: Path) -> None:
    """Remove what the previous round wrote at ``path``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# --- the rows -----------------------------------------------------------------------------------------
def unpack_rows(layer: Path, facts: dict, workdir: Path, memory_dir: Path | None, runs: int) -> list[dict]:
    """teachdock and tar unpacking the layer on the disk (in ``workdir``, where a data root
    would be) and, for comparison, in ``memory_dir`` on a tmpfs, where creating a file costs
    no disk work and only the programs' own speed shows."""
    from teachdock.image.layers import unpack_layer  # noqa: PLC0415 - after compile_package

    def teachdock(source: Path, target: Path):
        def unpack(_number: int) -> None:
            result = unpack_layer(source, target, for_overlay=True, expected_digest=facts["digest"],
                                  expected_diff_id=facts["diff_id"])
            if result.size != facts["tar_bytes"]:
                raise RuntimeError(f"unpacked {result.size} bytes of tar, expected {facts['tar_bytes']}")
        return unpack

    def empty(target: Path):
        def prepare(_number: int) -> None:
            fresh(target)
            target.mkdir()
        return prepare

    ways = {}
    for where, directory in (("", workdir), (" (tmpfs)", memory_dir)):
        if directory is None:
            continue
        source = directory / layer.name
        if source != layer:
            shutil.copyfile(layer, source)
        ours, theirs = directory / "unpacked-teachdock", directory / "unpacked-tar"
        ways[f"unpack{where}: teachdock"] = (
            "unpack_layer(L, DIR, for_overlay=True, expected_digest=, expected_diff_id=)",
            lambda _n, ours=ours: fresh(ours), teachdock(source, ours))
        ways[f"unpack{where}: tar -xzf"] = (
            "tar -xzf L -C DIR", empty(theirs),
            lambda _n, source=source, theirs=theirs: command(["tar", "-xzf", str(source), "-C", str(theirs)]))
    return time_rounds(ways, runs)


def tmpfs_dir() -> Path | None:
    """A new directory on /dev/shm when that is a tmpfs (None otherwise)."""
    with open("/proc/self/mounts") as mounts:
        if not any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts):
            return None
    return Path(tempfile.mkdtemp(prefix="teachdock-bench-images-", dir="/dev/shm"))


def rebuild_rows(images, context: Path, data_root: Path, env: dict, runs: int) -> list[dict]:
    first = images.build(context, tags=["six:1"])
    if len(first.steps) != 6:
        raise RuntimeError(f"the Dockerfile has {len(first.steps)} steps, not 6")

    def api(_number: int) -> None:
        result = images.build(context, tags=["six:1"])
        if result.cached_steps != 5 or result.id != first.id:
            raise RuntimeError(f"not an unchanged rebuild: {result.cached_steps} of 5 steps cached")

    cli = [*teachdock_cli(), "store", "--data-root", str(data_root), "build", "-q", "-t", "six:1", str(context)]
    return time_rounds({
        "rebuild: api": ('Images(D).build(CTX, tags=["six:1"])', lambda _n: None, api),
        "rebuild: cli": ("teachdock store --data-root D build -q -t six:1 CTX", lambda _n: None,
                         lambda _n: command(cli, env)),
    }, runs)


def pull_rows(name: str, workdir: Path, env: dict, runs: int) -> list[dict]:
    from teachdock.image.registry import pull  # noqa: PLC0415
    from teachdock.image.store import ImageStore  # noqa: PLC0415

    ours, cli_root, theirs = workdir / "pulled-api", workdir / "pulled-cli", workdir / "pulled-skopeo"

    def api(_number: int) -> None:
        pull(ImageStore(ours), name, docker_config=False)

    auth = workdir / "skopeo-auth.json"          # skopeo's own empty auth file, as the tests give it
    auth.write_text('{"auths": {}}')
    skopeo_env = {**env, "REGISTRY_AUTH_FILE": str(auth)}
    cli = [*teachdock_cli(), "store", "--data-root", str(cli_root), "pull", "-q", name]
    skopeo = ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{theirs}:1"]
    ways = {
        "pull: api": ("teachdock.image.registry.pull(ImageStore(DIR), NAME)", lambda _n: fresh(ours), api),
        "pull: cli": ("teachdock store --data-root DIR pull -q NAME", lambda _n: fresh(cli_root),
                      lambda _n: command(cli, env)),
    }
    if shutil.which("skopeo") is None:
        return time_rounds(ways, runs) + [failed("pull: skopeo copy", "skopeo copy docker://NAME oci:DIR:1",
                                                 "skopeo is not installed (apt-get install skopeo)")]
    ways["pull: skopeo copy"] = ("skopeo copy docker://NAME oci:DIR:1", lambda _n: fresh(theirs),
                                 lambda _n: command(skopeo, skopeo_env))
    return time_rounds(ways, runs)


# --- preparation ------------------------------------------------------------------------------------
def big_image(images, layer: Path, facts: dict, name: str):
    """busybox:latest plus the generated layer, as the image ``name``."""
    from teachdock.image.manifest import OCI_LAYER_GZIP  # noqa: PLC0415

    base = images.get("busybox")
    stored = images.store.put_blob(layer, media_type=OCI_LAYER_GZIP, expected_digest=facts["digest"])
    config = json.loads(json.dumps(base.config))
    config["rootfs"]["diff_ids"].append(facts["diff_id"])
    config["history"].append({"created": base.created, "created_by": "benchmark: 50 MiB in 3000 files"})
    return images.store.add_image(config, [*base.layers, stored], [name])


def unmount_under(directory: Path) -> None:
    """Detach whatever is still mounted below ``directory`` (only after a failure)."""
    from teachdock import kernel  # noqa: PLC0415
    from teachdock.image.overlay import mount_points  # noqa: PLC0415

    for point in sorted((p for p in mount_points() if p.startswith(f"{directory}/")), reverse=True):
        with contextlib.suppress(Exception):
            kernel.umount2(point, kernel.MNT_DETACH)


# --- report -------------------------------------------------------------------------------------------
def goals(rows: list[dict]) -> list[dict]:
    """The issue's goals, judged on these medians; a goal without figures is 'unknown', never PASS."""
    medians = {row["name"]: row["median_s"] for row in rows if "error" not in row}
    verdicts = []

    def verdict(text: str, value: float | None, ok, shown) -> None:
        if value is None:
            verdicts.append({"goal": text, "value": None, "verdict": "unknown (a row failed)"})
        else:
            verdicts.append({"goal": text, "value": value, "verdict": "PASS" if ok(value) else "MISS",
                             "shown": shown(value)})

    def ratio(a: str, b: str) -> float | None:
        return medians[a] / medians[b] if a in medians and b in medians else None

    speed = ratio("unpack: tar -xzf", "unpack: teachdock")        # teachdock's speed relative to tar's
    verdict(f"unpack speed >= {UNPACK_GOAL}x tar's (tar median / teachdock median)", speed,
            lambda v: v >= UNPACK_GOAL, lambda v: f"{v:.2f}x")
    in_memory = ratio("unpack (tmpfs): tar -xzf", "unpack (tmpfs): teachdock")
    if in_memory is not None:
        verdicts.append({"goal": "unpack speed on tmpfs, tar median / teachdock median (for comparison, no goal)",
                         "value": in_memory, "verdict": "info", "shown": f"{in_memory:.2f}x"})
    for way in ("api", "cli"):
        verdict(f"unchanged 6-step rebuild ({way}) median <= {REBUILD_GOAL_SECONDS:.1f} s",
                medians.get(f"rebuild: {way}"), lambda v: v <= REBUILD_GOAL_SECONDS, lambda v: f"{milliseconds(v)} ms")
    for way in ("api", "cli"):
        verdict(f"pull ({way}) median / skopeo copy median <= {PULL_GOAL}", ratio(f"pull: {way}", "pull: skopeo copy"),
                lambda v: v <= PULL_GOAL, lambda v: f"{v:.2f}x")
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row (default 10), after 1 warm-up")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the rebuild's first build runs RUN steps in containers on overlay mounts")
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    compile_package()
    from teachdock.image.images import Images  # noqa: PLC0415 - after compile_package

    workdir = Path(tempfile.mkdtemp(prefix="teachdock-bench-images-"))
    workdir.chmod(0o755)
    memory_dir = tmpfs_dir()
    state_root = workdir / "state"
    env = {**os.environ, "TEACHDOCK_STATE_ROOT": str(state_root)}
    rows: list[dict] = []
    try:
        layer = workdir / "layer.tar.gz"
        facts = make_layer(layer)
        print(f"layer: {facts['files']} files, {facts['content_bytes'] >> 20} MiB of content, tar "
              f"{facts['tar_bytes'] / 1e6:.1f} MB, gzip {facts['gzip_bytes'] / 1e6:.1f} MB, {facts['digest']}")
        print(f"{arguments.runs} runs per row after {WARMUP} warm-up (python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.2f} at the start)\n")
        rows += unpack_rows(layer, facts, workdir, memory_dir, arguments.runs)

        data_root = workdir / "data"
        images = Images(data_root, state_root=state_root, container_prefix=f"bench-{os.getpid()}")
        images.bootstrap_busybox()
        context = workdir / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(SIX_STEPS)
        (context / "message.txt").write_text("hello from COPY\n")
        rows += rebuild_rows(images, context, data_root, env, arguments.runs)

        from teachdock.lab.registries.registry_lab import local_registry  # noqa: PLC0415 - after compile_package

        if shutil.which("docker-registry") is None:
            rows += [failed(f"pull: {way}", "", "docker-registry is not installed (apt-get install docker-registry)")
                     for way in ("api", "cli", "skopeo copy")]
        else:
            with local_registry(workdir) as registry:
                from teachdock.image.registry import push  # noqa: PLC0415

                name = f"{registry.host}/bench/big:1"
                big_image(images, layer, facts, name)
                push(images.store, name, docker_config=False)
                rows += pull_rows(name, workdir, env, arguments.runs)
    finally:
        unmount_under(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        if memory_dir is not None:
            shutil.rmtree(memory_dir, ignore_errors=True)
    print_table(rows)
    verdicts = goals(rows)
    print_goals(verdicts)
    if arguments.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": arguments.runs, "warmup": WARMUP,
                  "kernel": platform.release(), "cpus": os.cpu_count(), "python": sys.executable,
                  "load_average": os.getloadavg(), "rows": rows, "goals": verdicts}
        arguments.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
