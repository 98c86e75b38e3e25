"""Exercise checks for the cgroups chapter: the answer is read from the kernel, never assumed.

Two kinds of check, as in teachdock.lab.common.checks:

- "build it" exercises (a container with a 48 MiB limit; one with Docker's memory and swap for
  ``--memory 64m``; a CPU quota cut by hand) find
  the learner's container by its id and read the limit from its cgroup files;
- "predict it" exercises (CPU seconds under a quota; the pids limit ten sleeps need) run a
  real container to learn the true figure, then compare.

A ``judge_*`` function holds the verdict and the hints. It is pure, so the tests can feed it
every likely mistake without root. A check never raises for a wrong answer: it returns a
CheckResult, shown as a green, red or grey box.

The small readers at the top (``memory_limit_file``, ``read_cpu_quota`` ...) are also what
the chapter uses to show the raw files: one place that knows the v1 and v2 file names.
"""

from __future__ import annotations

import os
import secrets
import time

from teachdock.errors import NotFound, TeachdockError
from teachdock.lab.common.checks import CheckResult, as_number, not_answered, not_answered_yet
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")  # the kernel rounds memory limits down to whole pages

# --------------------------------------------------------------------------------------------
# Reading a cgroup's files (v1: one directory per controller; v2: one directory)
# --------------------------------------------------------------------------------------------

#: The limit files the runtime writes, per version: (controller, file name).
LIMIT_FILES = {
    "v1": [("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"),
           ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"), ("pids", "pids.max")],
    "v2": [("memory", "memory.max"), ("memory", "memory.swap.max"), ("cpu", "cpu.max"), ("pids", "pids.max")],
}


def limit_file_meaning(name: str) -> str:
    """What one of LIMIT_FILES holds, in the learner's language."""
    meanings = {
        "memory.limit_in_bytes": say("memory limit, bytes"),
        "memory.memsw.limit_in_bytes": say("memory + swap limit, bytes (= the limit: no swap)"),
        "cpu.cfs_quota_us": say("CPU time allowed per period, µs (-1: no quota)"),
        "cpu.cfs_period_us": say("length of a period, µs"),
        "pids.max": say("most processes at once"),
        "memory.max": say("memory limit, bytes"),
        "memory.swap.max": say("swap allowed, bytes (0: no swap)"),
        "cpu.max": say("\"QUOTA PERIOD\" in µs (max: no quota)"),
    }
    return meanings.get(name, "")


def cgroup_file(cgroup, controller: str, name: str) -> str:
    """The path of one of a cgroup's files: v1 looks in the controller's own hierarchy."""
    if cgroup.version == "v1":
        return os.path.join(cgroup.dirs[controller], name)
    return os.path.join(cgroup.dir, name)


def limit_files(cgroup) -> list[tuple[str, str, str]]:
    """(path, content, meaning) of each limit file of this cgroup, read right now."""
    rows = []
    for controller, name in LIMIT_FILES[cgroup.version]:
        path = cgroup_file(cgroup, controller, name)
        try:
            with open(path) as f:
                rows.append((path, f.read().strip(), limit_file_meaning(name)))
        except (FileNotFoundError, KeyError):
            continue  # e.g. no swap accounting: memory.memsw.* does not exist
    return rows


def memory_limit_file(cgroup) -> str:
    return cgroup_file(cgroup, "memory", "memory.limit_in_bytes" if cgroup.version == "v1" else "memory.max")


def read_memory_limit(cgroup) -> int | None:
    """The memory limit in bytes, None when unlimited (v1 shows that as a huge number, v2 as "max")."""
    with open(memory_limit_file(cgroup)) as f:
        text = f.read().strip()
    if text == "max" or int(text) >= 1 << 62:
        return None
    return int(text)


def cpu_quota_files(cgroup) -> list[str]:
    """Where the CPU quota lives: two files on v1, one on v2."""
    if cgroup.version == "v1":
        return [cgroup_file(cgroup, "cpu", "cpu.cfs_quota_us"), cgroup_file(cgroup, "cpu", "cpu.cfs_period_us")]
    return [cgroup_file(cgroup, "cpu", "cpu.max")]


def read_cpu_quota(cgroup) -> tuple[int | None, int]:
    """(quota µs, period µs); quota None means no quota."""
    if cgroup.version == "v1":
        quota_file, period_file = cpu_quota_files(cgroup)
        with open(quota_file) as f:
            quota = int(f.read())
        with open(period_file) as f:
            period = int(f.read())
        return (None if quota < 0 else quota), period
    with open(cpu_quota_files(cgroup)[0]) as f:
        quota_text, period_text = f.read().split()
    return (None if quota_text == "max" else int(quota_text)), int(period_text)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _near(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance


def _cannot_check(error: Exception) -> CheckResult:
    return CheckResult(False, say("Could not check your answer ({error}). Starting containers and reading their "
                                  "cgroups needs root: see the note at the top.",
                                  error=f"{type(error).__name__}: {error}"))


def _needs_root(sentence: str) -> CheckResult:
    """The grey answer of a check run without root: every exercise here needs a cgroup, and cgroups
    belong to root (a rootless container has none, and refuses limits). ``sentence``: a whole say()."""
    return CheckResult(False, sentence, answered=False)


def _find_container(container_id: str, state_root=None):
    """The learner's container, or a grey "not yet" CheckResult."""
    from teachdock.runtime import Container  # noqa: PLC0415 - lab sits on top of the runtime

    try:
        return Container.load(container_id, state_root), None
    except NotFound:
        return None, CheckResult(False, say("There is no container {id} yet: create and start it (see the "
                                            "exercise), then run this cell again.", id=repr(container_id)),
                                 answered=False)
    except OSError as error:  # the state root is root's: an ordinary user cannot even look
        return None, _cannot_check(error)


def _busy_container(container_id: str, rootfs, cpus: float, state_root=None):
    from teachdock.runtime import DEVNULL, Container  # noqa: PLC0415

    container = Container.create(container_id, rootfs=str(rootfs), args=["sh", "-c", "while :; do :; done"],
                                 cpus=cpus, state_root=state_root, stdout=DEVNULL, stderr=DEVNULL)
    try:
        container.start()
    except BaseException:
        container.delete(force=True)
        raise
    return container


def measure_cpu_rate(cgroup, seconds: float) -> float:
    """Cores in use on average over ``seconds``, from the cgroup's CPU time counter."""
    before, started = cgroup.metrics().cpu_usage_ns, time.monotonic()
    time.sleep(seconds)
    after, ended = cgroup.metrics().cpu_usage_ns, time.monotonic()
    return (after - before) / 1e9 / (ended - started)


def _rootfs(rootfs):
    if rootfs is None:
        from teachdock.lab.common.views import busybox_rootfs  # noqa: PLC0415

        return busybox_rootfs()
    return rootfs


# --------------------------------------------------------------------------------------------
# Exercise 1: start a container limited to 48 MiB
# --------------------------------------------------------------------------------------------


def judge_memory_limit(limit: int | None, *, wanted: int = 48 * MIB, status: str = "running",
                       file: str = "memory.limit_in_bytes") -> CheckResult:
    """``limit``: what the container's cgroup file says (None: unlimited)."""
    name = os.path.basename(file)
    mib = wanted // MIB
    if limit is None:
        return CheckResult(False, say("Your container has no memory limit ({name} says unlimited). Pass memory=... "
                                      "to Container.create.", name=name))
    if _near(limit, wanted, PAGE - 1):
        if status == "created":
            return CheckResult(False, say("The limit is right ({limit} bytes in {name}), but the container is only "
                                          "created: call its start() method, then check again.",
                                          limit=limit, name=name))
        return CheckResult(True, say("Right: {name} holds {limit} bytes = {mib} × 1024 × 1024. The runtime wrote it "
                                     "before the container's first process started, and the kernel charges every "
                                     "page the container touches against it.", name=name, limit=limit, mib=mib))
    decimal = mib * 1000 * 1000
    if _near(limit, decimal, PAGE):
        return CheckResult(False, say("{name} holds {limit} bytes: that is {mib} MB (decimal megabytes, {decimal:,} "
                                      "bytes, rounded down to whole pages). A MiB is 1024 × 1024 = 1,048,576 bytes, "
                                      "so {mib} MiB is {wanted:,}. Docker's and teachdock's 'm' means MiB: "
                                      "memory=\"{mib}m\" or memory={mib} * 1024 * 1024.",
                                      name=name, limit=limit, mib=mib, decimal=decimal, wanted=wanted))
    if _near(limit, mib * 1000 * 1024, PAGE) or _near(limit, mib * 1024 * 1000, PAGE):
        return CheckResult(False, say("{name} holds {limit:,} bytes: you mixed 1000 and 1024. {mib} MiB is {mib} × "
                                      "1024 × 1024 = {wanted:,} bytes.", name=name, limit=limit, mib=mib,
                                      wanted=wanted))
    if _near(limit, wanted * 1024, PAGE):
        return CheckResult(False, say("{name} holds {limit:,} bytes, which is {mib} GiB, not {mib} MiB. Check the "
                                      "unit letter: 'm' for MiB, 'g' for GiB.", name=name, limit=limit, mib=mib))
    return CheckResult(False, say("{name} holds {limit:,} bytes = {limit_mib:.1f} MiB. {mib} MiB is {mib} × 1024 × "
                                  "1024 = {wanted:,} bytes.", name=name, limit=limit, limit_mib=limit / MIB,
                                  mib=mib, wanted=wanted))


def check_memory_limit(container_id: str, *, wanted: int = 48 * MIB, state_root=None) -> CheckResult:
    """Exercise: the container ``container_id`` runs with a memory limit of 48 MiB."""
    if not is_root():
        return _needs_root(say("This check needs root: it reads the memory limit from your container's cgroup, "
                               "and cgroups belong to root. Start the lab as root (sudo scripts/lab) to do this "
                               "exercise."))
    container, missing = _find_container(container_id, state_root)
    if missing is not None:
        return missing
    try:
        cgroup = container.cgroup
        return judge_memory_limit(read_memory_limit(cgroup), wanted=wanted, status=container.status,
                                  file=memory_limit_file(cgroup))
    except (OSError, TeachdockError) as error:
        return _cannot_check(error)


# --------------------------------------------------------------------------------------------
# Exercise 2: how many CPU seconds does a 0.5-CPU busy loop get in 2 s?
# --------------------------------------------------------------------------------------------


def judge_cpu_seconds(answer, truth: float, *, cpus: float = 0.5, seconds: float = 2.0,
                      cores: int | None = None) -> CheckResult:
    """``truth``: the CPU seconds a busy loop under ``cpus`` really got in ``seconds``, measured here."""
    if not_answered(answer):
        return not_answered_yet()
    n = as_number(answer)
    if n is None:
        return CheckResult(False, say("Answer with a number of seconds, like 1.5 (you gave {answer}).",
                                      answer=repr(answer)))
    quota_us = round(cpus * 100_000)
    quota_ms = quota_us // 1000
    if _near(n, truth, max(0.15, 0.15 * truth)):
        return CheckResult(True, say("Right: measured here, the loop got {truth:.2f} CPU seconds in {seconds:g} s. "
                                     "cpus={cpus:g} means a quota of {quota_us:,} µs of CPU time in every 100,000 µs "
                                     "period: the loop runs for {quota_ms} ms, then the kernel throttles it until "
                                     "the next period begins. {periods:.0f} periods × {quota_ms} ms = {total:g} s.",
                                     truth=truth, seconds=seconds, cpus=cpus, quota_us=quota_us, quota_ms=quota_ms,
                                     periods=seconds / 0.1, total=seconds * cpus))
    if _near(n, seconds, 0.15 * seconds):
        return CheckResult(False, say("{n:g} s is a whole core for the whole {seconds:g} s: what the loop gets with "
                                      "no quota. The quota lets it run only part of every 100 ms period.",
                                      n=n, seconds=seconds))
    if _near(n, cpus, 0.05):
        return CheckResult(False, say("{n:g} is the rate, in CPU seconds per second. The question asks for the "
                                      "amount over {seconds:g} seconds.", n=n, seconds=seconds))
    if n in (quota_us, quota_us / 1000, 100_000, 100):
        return CheckResult(False, say("{n:g} sounds like the quota or the period ({quota_us:,} µs of CPU per "
                                      "100,000 µs period). Turn it into CPU seconds over the whole {seconds:g} s: "
                                      "how many periods is that, and how much runs in each?",
                                      n=n, quota_us=quota_us, seconds=seconds))
    if _near(n, truth * 1000, 150 * max(1.0, truth)):
        return CheckResult(False, say("That looks like milliseconds. Answer in seconds."))
    if cores and cores > 1 and _near(n, seconds * cores, 0.15 * seconds * cores):
        return CheckResult(False, say("This machine has {cores} cores, but a single busy loop can only use one, "
                                      "and the quota cuts even that.", cores=cores))
    return CheckResult(False, say("Not quite. In each 100 ms period the loop may run {quota_ms} ms. How many "
                                  "periods are there in {seconds:g} s?", quota_ms=quota_ms, seconds=seconds))


def measure_cpu_seconds(rootfs=None, *, cpus: float = 0.5, seconds: float = 2.0, state_root=None) -> float:
    """Run a busy loop under ``cpus`` for ``seconds`` and return the CPU seconds it got (measured)."""
    container = _busy_container(f"check-cpu-{secrets.token_hex(4)}", _rootfs(rootfs), cpus,
                                state_root)
    try:
        return measure_cpu_rate(container.cgroup, seconds) * seconds
    finally:
        container.delete(force=True)


def check_cpu_seconds(answer, *, cpus: float = 0.5, seconds: float = 2.0, rootfs=None) -> CheckResult:
    """Exercise: how many CPU seconds does a busy loop under ``cpus`` get in ``seconds``? (Takes ``seconds``.)"""
    if not is_root():
        return _needs_root(say("This check needs root: it measures a busy loop under cpus={cpus:g} for real, and "
                               "cgroups belong to root. Start the lab as root (sudo scripts/lab) to do this "
                               "exercise.", cpus=cpus))
    if not_answered(answer):
        return not_answered_yet()
    if as_number(answer) is None:
        return judge_cpu_seconds(answer, 0.0)
    try:
        truth = measure_cpu_seconds(rootfs, cpus=cpus, seconds=seconds)
    except (OSError, TeachdockError) as error:
        return _cannot_check(error)
    return judge_cpu_seconds(answer, truth, cpus=cpus, seconds=seconds, cores=os.cpu_count())


# --------------------------------------------------------------------------------------------
# Exercise 3: the smallest pids limit that lets ten sleeps start
# --------------------------------------------------------------------------------------------

TEN_SLEEPS = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; echo all 10 started"


def all_sleeps_start(pids_limit: int, rootfs=None) -> bool:
    """Run TEN_SLEEPS under ``pids_limit``: did all ten sleeps start? (The shell exits at once.)"""
    from teachdock.runtime import run  # noqa: PLC0415

    result = run(["sh", "-c", TEN_SLEEPS], rootfs=str(_rootfs(rootfs)), pids_limit=pids_limit, timeout=10)
    return "all 10 started" in result.stdout


def judge_pids_limit(answer, *, starts: bool | None, starts_with_one_less: bool | None) -> CheckResult:
    """``starts``: did all ten sleeps start under the answer? ``starts_with_one_less``: under answer - 1?"""
    if not_answered(answer):
        return not_answered_yet()
    n = as_number(answer)
    if n is None or n != int(n):
        return CheckResult(False, say("Answer with a whole number of processes, like 5 (you gave {answer}).",
                                      answer=repr(answer)))
    n = int(n)
    if n < 1:
        return CheckResult(False, say("pids.max must be at least 1: the container's first process needs a pid too."))
    if not starts:
        if n == 10:
            return CheckResult(False, say("With 10, the tenth sleep fails to start ('sh: can't fork'). pids.max "
                                          "counts every process in the cgroup, and the shell that starts the sleeps "
                                          "is one of them: it is the container's PID 1."))
        return CheckResult(False, say("With {n}, fork() fails before all ten sleeps run: the kernel refuses the fork "
                                      "that would go over pids.max. Count every process in the container.", n=n))
    if starts_with_one_less:
        enough = say("{n} is enough, but not the smallest: {less} works too.", n=n, less=n - 1)
        if n == 12:
            enough += " " + say("Did you count an init process? This container has none: the shell itself is PID 1.")
        return CheckResult(False, enough)
    return CheckResult(True, say("Right: {n} = ten sleeps + the shell that starts them. pids.max counts every process "
                                 "(and thread) in the cgroup, whoever started it. A fork that would make process "
                                 "number {next} fails with EAGAIN.", n=n, next=n + 1))


def check_pids_limit(answer, rootfs=None) -> CheckResult:
    """Exercise: the smallest pids_limit under which ``TEN_SLEEPS`` starts all ten sleeps (runs it for real)."""
    if not is_root():
        return _needs_root(say("This check needs root: it runs the ten sleeps under your pids limit and under one "
                               "less, and cgroups belong to root. Start the lab as root (sudo scripts/lab) to do this "
                               "exercise."))
    if not_answered(answer):
        return not_answered_yet()
    n = as_number(answer)
    if n is None or n != int(n) or n < 1:
        return judge_pids_limit(answer, starts=None, starts_with_one_less=None)
    n = int(n)
    try:
        starts = all_sleeps_start(n, rootfs)
        below = all_sleeps_start(n - 1, rootfs) if starts and n > 1 else False
    except (OSError, TeachdockError) as error:
        return _cannot_check(error)
    return judge_pids_limit(n, starts=starts, starts_with_one_less=below)


# --------------------------------------------------------------------------------------------
# Exercise 4: `docker update --cpus 0.2`, by hand
# --------------------------------------------------------------------------------------------


def judge_cpu_update(quota: int | None, period: int, measured: float | None, *, wanted: float = 0.2,
                     original: tuple[int, int] = (50_000, 100_000), version: str = "v1") -> CheckResult:
    """``quota``/``period``: what the cgroup files say now; ``measured``: cores the loop used just now."""
    quota_name = "cpu.cfs_quota_us" if version == "v1" else "cpu.max"
    if (quota, period) == original:
        return CheckResult(False, say("Still {cpus:g} CPU, as created: {file} holds {quota}. Write the new quota into "
                                      "the file, then check again.", cpus=original[0] / original[1],
                                      file=quota_name, quota=original[0]), answered=False)
    if quota is None:
        return CheckResult(False, say("Now there is no quota at all ({unlimited} means unlimited). Write a quota of "
                                      "{wanted:g} × the period, in microseconds.",
                                      unlimited="-1" if version == "v1" else "max", wanted=wanted))
    ratio = quota / period
    if _near(ratio, wanted, 0.02 * wanted):
        if measured is None or _near(measured, wanted, max(0.07, 0.35 * wanted)):
            if measured is None:
                right = say("Right: {quota} µs per {period} µs period = {ratio:g} CPU. The kernel applied the new "
                            "limit at once, to a running process: this is all `docker update --cpus {wanted:g}` "
                            "does.", quota=quota, period=period, ratio=ratio, wanted=wanted)
            else:
                right = say("Right: {quota} µs per {period} µs period = {ratio:g} CPU, and the loop used "
                            "{measured:.2f} cores in the second after. The kernel applied the new limit at once, to "
                            "a running process: this is all `docker update --cpus {wanted:g}` does.",
                            quota=quota, period=period, ratio=ratio, measured=measured, wanted=wanted)
            if period != original[1]:
                right += " " + say("(You changed the period to {period} µs; that works too, but Docker keeps "
                                   "100,000 µs and changes the quota.)", period=period)
            return CheckResult(True, right)
        return CheckResult(False, say("The files say {ratio:g} CPU, but the loop used {measured:.2f} cores in the "
                                      "last second. Is the container still running its busy loop?",
                                      ratio=ratio, measured=measured))
    if quota == original[0] and period != original[1]:
        return CheckResult(False, say("You changed the period (cpu.cfs_period_us, now {period} µs) instead of the "
                                      "quota: {quota} / {period} = {ratio:g} CPU. The quota file is {file}.",
                                      period=period, quota=quota, ratio=ratio, file=quota_name))
    if _near(ratio, wanted / 10, 0.002):
        return CheckResult(False, say("{quota} µs per {period} µs is {ratio:g} CPU, ten times too little. The quota "
                                      "is in microseconds: {wanted:g} of a {period_ms} ms period is {right} µs.",
                                      quota=quota, period=period, ratio=ratio, wanted=wanted,
                                      period_ms=period // 1000, right=round(wanted * period)))
    return CheckResult(False, say("The files say {quota} µs per {period} µs period = {ratio:g} CPU. For {wanted:g} "
                                  "CPU the quota must be {wanted:g} × the period, in microseconds.",
                                  quota=quota, period=period, ratio=ratio, wanted=wanted))


def check_cpu_update(container_id: str, *, wanted: float = 0.2, state_root=None) -> CheckResult:
    """Exercise: the busy-loop container ``container_id`` (created with cpus=0.5) now gets ``wanted`` CPU.

    Reads the quota from its cgroup files, then measures one second of its CPU use.
    """
    if not is_root():
        return _needs_root(say("This check needs root: it reads the CPU quota from your container's cgroup and "
                               "measures its CPU use, and cgroups belong to root. Start the lab as root "
                               "(sudo scripts/lab) to do this exercise."))
    container, missing = _find_container(container_id, state_root)
    if missing is not None:
        return missing
    try:
        cgroup = container.cgroup
        quota, period = read_cpu_quota(cgroup)
        measured = measure_cpu_rate(cgroup, 1.0) if container.status == "running" else None
    except (OSError, TeachdockError) as error:
        return _cannot_check(error)
    return judge_cpu_update(quota, period, measured, wanted=wanted, version=cgroup.version)


# --------------------------------------------------------------------------------------------
# Exercise 5: what `docker run --memory 64m` gives a container, swap included
# --------------------------------------------------------------------------------------------


def swap_allowance_file(cgroup) -> str:
    """v1 counts memory + swap (memory.memsw.limit_in_bytes); v2 counts swap alone (memory.swap.max)."""
    return cgroup_file(cgroup, "memory", "memory.memsw.limit_in_bytes" if cgroup.version == "v1"
                       else "memory.swap.max")


def read_swap_allowance(cgroup) -> int | None:
    """The swap the container may use on top of its memory limit, bytes; None when unlimited.

    Raises FileNotFoundError when the kernel does not account swap (no such file).
    """
    with open(swap_allowance_file(cgroup)) as f:
        text = f.read().strip()
    if text == "max" or int(text) >= 1 << 62:
        return None
    if cgroup.version == "v1":
        return int(text) - (read_memory_limit(cgroup) or 0)
    return int(text)


def judge_docker_memory(limit: int | None, swap: int | None, *, wanted: int = 64 * MIB,
                        status: str = "running") -> CheckResult:
    """``limit``/``swap``: the memory limit and the swap allowance the cgroup holds (None: unlimited)."""
    mib = wanted // MIB
    if limit is None:
        return CheckResult(False, say("The container has no memory limit. docker run --memory {mib}m starts with "
                                      "one: memory=\"{mib}m\".", mib=mib))
    if not _near(limit, wanted, PAGE - 1):
        return CheckResult(False, say("The memory limit is {limit:.1f} MiB; --memory {mib}m is {mib} MiB: "
                                      "memory=\"{mib}m\".", limit=limit / MIB, mib=mib))
    if swap is None:
        return CheckResult(False, say("Swap is unlimited: that is Docker's --memory-swap -1. Given --memory alone, "
                                      "dockerd sets --memory-swap (memory plus swap) to twice the memory."))
    if swap == 0:
        return CheckResult(False, say("No swap at all: that is teachdock's default, and Docker's --memory-swap equal "
                                      "to --memory. Given --memory alone, dockerd sets --memory-swap (memory plus "
                                      "swap, which is what memory_swap= means here too) to twice the memory."))
    if _near(swap, 2 * wanted, PAGE):
        return CheckResult(False, say("{swap} MiB of swap on top of {mib} MiB of memory: twice too much. memory_swap "
                                      "counts memory plus swap, like --memory-swap: twice the memory is the total, "
                                      "not the swap.", swap=swap // MIB, mib=mib))
    if not _near(swap, wanted, PAGE):
        return CheckResult(False, say("{swap:.1f} MiB of swap on top of {mib} MiB of memory. dockerd sets "
                                      "--memory-swap (memory plus swap) to twice the memory: how much swap is that?",
                                      swap=swap / MIB, mib=mib))
    if status == "created":
        return CheckResult(False, say("The limits are right, but the container is only created: call its start() "
                                      "method, then check again."))
    return CheckResult(True, say("Right: {mib} MiB of memory and {mib} MiB of swap on top (memory + swap = {total} "
                                 "MiB), what dockerd gives docker run --memory {mib}m: it fills in --memory-swap as "
                                 "twice --memory before runc writes the files. Where the host has swap, such a "
                                 "container slows down before the OOM killer comes; teachdock's default kills it at "
                                 "the limit.", mib=mib, total=2 * mib))


def check_docker_memory(container_id: str, *, wanted: int = 64 * MIB, state_root=None) -> CheckResult:
    """Exercise: the container ``container_id`` has the memory and swap of `docker run --memory 64m`."""
    if not is_root():
        return _needs_root(say("This check needs root: it reads the memory and swap limits from your container's "
                               "cgroup, and cgroups belong to root. Start the lab as root (sudo scripts/lab) to do "
                               "this exercise."))
    container, missing = _find_container(container_id, state_root)
    if missing is not None:
        return missing
    try:
        cgroup = container.cgroup
        limit = read_memory_limit(cgroup)
        swap = read_swap_allowance(cgroup)
    except FileNotFoundError:
        return CheckResult(False, say("This kernel does not account swap (no memory.memsw or memory.swap files), so "
                                      "no swap limit can be set or checked here; dockerd would warn 'Memory limited "
                                      "without swap'. Read the solution instead."), answered=False)
    except (OSError, TeachdockError) as error:
        return _cannot_check(error)
    return judge_docker_memory(limit, swap, wanted=wanted, status=container.status)


def delete_containers(container_ids, state_root=None) -> list[str]:
    """Delete these containers if they exist (the chapter's clean-up); returns the ids deleted."""
    from teachdock.runtime import Container  # noqa: PLC0415

    deleted = []
    for container_id in container_ids:
        try:
            Container.load(container_id, state_root).delete(force=True)
        except (NotFound, PermissionError):  # none, or not ours to see (not root)
            continue
        deleted.append(container_id)
    return deleted


__all__ = [
    "LIMIT_FILES", "TEN_SLEEPS", "all_sleeps_start", "cgroup_file", "check_cpu_seconds", "check_cpu_update",
    "check_docker_memory", "check_memory_limit", "check_pids_limit", "cpu_quota_files", "delete_containers",
    "judge_cpu_seconds", "judge_cpu_update", "judge_docker_memory", "judge_memory_limit", "judge_pids_limit",
    "limit_file_meaning", "limit_files", "measure_cpu_rate", "measure_cpu_seconds", "memory_limit_file", "read_cpu_quota",
    "read_memory_limit", "read_swap_allowance", "swap_allowance_file",
]
