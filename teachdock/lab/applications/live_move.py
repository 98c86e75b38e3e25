"""The live move of chapter 09: a running busybox counter checkpointed on daemon A, its
checkpoint copied, and restored on daemon B, where it keeps counting from where it was.

    from teachdock.lab.applications import live_move
    reason = live_move.why_criu_cannot_run()      # None, or criu check's own words
    move = live_move.move_counter(client_a, client_b, "/tmp/ck")
    move.table()                                    # before/after numbers, PIDs, files, seconds

The steps are the Engine API's, as ``docker`` would send them (the daemons do the CRIU part,
teachdock.runtime.checkpoint): create and start the counter on A with no network (a veth's
other end would lie outside the container), ``POST /containers/counter/checkpoints`` into a
directory of our own, copy that directory to where B looks (between two machines: scp or
rsync), create the same container on B and ``start?checkpoint=move&checkpoint-dir=...``.

Nothing is pretended: where CRIU cannot work, :func:`move_counter` raises
``CriuUnavailable`` with criu check's words before it creates anything.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from teachdock.errors import TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML
from teachdock.runtime import checkpoint as criu

#: The counter: one number a fifth of a second, held only in the shell's memory.
COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"
CHECKPOINT = "move"


def why_criu_cannot_run() -> str | None:
    """None when ``criu check`` passes on this machine; otherwise its own words."""
    return criu.why_criu_cannot_run()


@dataclass
class LiveMove:
    """What moved: the counter's last numbers on A and first on B, its PIDs, the checkpoint's files."""

    before: list[int]                  # the last numbers A's log had when the checkpoint stopped it
    after: list[int]                   # the first numbers B's log had after the restore
    pid_a: int                         # the counter's host PID on A, and on B
    pid_b: int
    files: list[tuple[str, int]] = field(default_factory=list)   # (checkpoint file, bytes)
    seconds: dict[str, float] = field(default_factory=dict)      # checkpoint, copy, restore

    @property
    def kept_counting(self) -> bool:
        """B carried on from A's last number, not from 1."""
        return bool(self.before and self.after) and self.after[0] == self.before[-1] + 1

    def table(self) -> TextAndHTML:
        total = sum(size for _, size in self.files)
        largest = ", ".join(name for name, _ in sorted(self.files, key=lambda f: -f[1])[:3])
        steps = {"checkpoint": say("checkpoint (s)"), "copy": say("copy (s)"), "restore": say("restore (s)")}
        rows = [(say("last numbers on A"), " ".join(map(str, self.before))),
                (say("first numbers on B"), " ".join(map(str, self.after))),
                (say("kept counting"), say("yes") if self.kept_counting else say("no")),
                (say("host PID on A / on B"), f"{self.pid_a} / {self.pid_b}"),
                (say("checkpoint"), say("{count} files, {kib:.0f} KiB (largest: {largest})", count=len(self.files),
                                        kib=total / 1024, largest=largest)),
                *((steps.get(step, f"{step} (s)"), f"{value:.2f}") for step, value in self.seconds.items())]
        text = "\n".join(f"{name:<22} {value}" for name, value in rows)
        html = "<table>" + "".join(f"<tr><th style='text-align:left'>{escape(name)}</th><td>{escape(value)}</td></tr>"
                                   for name, value in rows) + "</table>"
        return TextAndHTML(html, text)


def numbers(log: str) -> list[int]:
    """The counter's numbers in a log (whole lines only)."""
    return [int(line) for line in log.splitlines() if line.strip().isdigit()]


def wait_for_numbers(client, container: str, count: int, timeout: float = 20) -> list[int]:
    """The log's numbers once there are at least ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        seen = numbers(client.logs(container))
        if len(seen) >= count:
            return seen
        if time.monotonic() > deadline:
            raise TeachdockError(say("the counter {container} printed only {seen} in {timeout:.0f} s",
                                     container=container, seen=seen, timeout=timeout))
        time.sleep(0.1)


def move_counter(source, target, directory: str | Path, name: str = "counter") -> LiveMove:
    """Run the counter on ``source`` (a teachdock.client.Client), move it live to ``target``.

    ``directory`` holds the checkpoint: ``a/move`` where A writes it, ``b/move`` the copy B reads
    (absolute paths: the daemons, not this process, open them). The counter is left running on B.
    """
    reason = why_criu_cannot_run()
    if reason is not None:
        raise criu.CriuUnavailable(reason)
    directory = Path(directory).absolute()
    side_a, side_b = directory / "a", directory / "b"
    source.create("busybox", ["sh", "-c", COUNTER], name=name, network="none")
    source.start(name)
    wait_for_numbers(source, name, 5)
    pid_a = source.inspect(name)["State"]["Pid"]
    started = time.monotonic()
    source.checkpoint_create(name, CHECKPOINT, checkpoint_dir=str(side_a))
    checkpointed = time.monotonic()
    before = numbers(source.logs(name))[-3:]
    shutil.copytree(side_a / CHECKPOINT, side_b / CHECKPOINT)
    copied = time.monotonic()
    target.create("busybox", ["sh", "-c", COUNTER], name=name, network="none")
    target.start(name, checkpoint=CHECKPOINT, checkpoint_dir=str(side_b))
    restored = time.monotonic()
    after = wait_for_numbers(target, name, 3)[:3]
    files = sorted((path.name, path.stat().st_size) for path in (side_b / CHECKPOINT).iterdir() if path.is_file())
    return LiveMove(before, after, pid_a, target.inspect(name)["State"]["Pid"], files,
                    {"checkpoint": checkpointed - started, "copy": copied - checkpointed,
                     "restore": restored - copied})


__all__ = ["COUNTER", "LiveMove", "move_counter", "numbers", "wait_for_numbers", "why_criu_cannot_run"]
