"""Chapter 01's exercise checks: a system call made in a container, what a virtualenv isolates, a memory
limit, the break-even, a CPU limit.

As in every chapter, a pure ``judge_*`` function knows the usual mistakes, and a ``check_*``
function feeds it the truth observed on this machine (teachdock.lab.common.checks).
"""

from __future__ import annotations

import statistics
import sys

from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_number, not_answered
from teachdock.lab.common.language import say
from teachdock.lab.virtualization.figures import break_even_seconds
from teachdock.lab.virtualization.isolation import (
    FACT_NAMES,
    ISOLATION_ROWS,
    describe_memory_limit,
    fact_key,
    isolated_facts,
    marker_file,
    probe_python,
    temporary_virtualenv,
)
from teachdock.lab.virtualization.measurements import (
    BUSYBOX,
    Measurements,
    format_seconds,
    loop_script,
    parse_loop_output,
    time_host_process,
)
from teachdock.lab.virtualization.syscalls import StraceUnavailable, trace_in_container

# ---- exercise checks ----------------------------------------------------------------------


# -- exercise 1: make the kernel create a directory, from inside a container -------------------------

DIRECTORY_CALLS = {"mkdir", "mkdirat"}


def judge_makes_directory(answer, calls: set[str]) -> CheckResult:
    """``answer`` is a shell command; ``calls`` the system calls strace saw it make in a container."""
    if not isinstance(answer, str) or not answer.strip():
        return CheckResult(False, say('Put a shell command in answer, as a string: answer = "..."'))
    made = sorted(DIRECTORY_CALLS & calls)
    if made:
        return CheckResult(True, say("Right: strace saw {calls}(2), made by busybox inside the container "
                                     "and served by this machine's kernel, with nothing in between. The runtime "
                                     "had finished its work before the command started.", calls=", ".join(made)))
    seen = ", ".join(sorted(calls)[:12])
    if "mkdir" in answer:
        return CheckResult(False, say("The word mkdir is in your command, but no process called mkdir(2). "
                                      "`echo mkdir` only writes the word (a write call). The command made: {seen}. "
                                      "Run the mkdir applet itself.", seen=seen))
    return CheckResult(False, say("None of the calls your command made creates a directory. It made: {seen}. Which "
                                  "busybox applet creates a directory?", seen=seen))


def check_makes_directory(answer, rootfs=None) -> CheckResult:
    """Exercise: run ``answer`` in a container under strace and look for the call that creates a directory."""
    if not_answered(answer):
        return not_answered_yet()
    if not isinstance(answer, str) or not answer.strip():  # nothing to trace: say so before starting strace
        return judge_makes_directory(answer, set())
    try:
        if rootfs is None:
            from teachdock.lab.common.views import busybox_rootfs

            rootfs = busybox_rootfs()
        trace = trace_in_container(rootfs, answer)
    except StraceUnavailable as error:
        return CheckResult(False, say("{error}. The check needs strace to see the system calls.", error=error))
    except Exception as error:  # the check must explain, not crash the exercise cell
        return CheckResult(False, say("Could not trace your command in a container ({problem}).",
                                      problem=f"{type(error).__name__}: {error}"))
    return judge_makes_directory(answer, trace.names())



# -- exercise 1: what does a virtualenv isolate? -------------------------------------------------


def _as_facts(answer) -> tuple[set[str], list[str]] | None:
    """The learner's words mapped to row names, and the words we did not understand."""
    if isinstance(answer, str):
        words = [word.strip() for word in answer.split(",")]
    else:
        try:
            words = [str(word).strip() for word in answer]
        except TypeError:
            return None
    facts, unknown = set(), []
    for word in words:
        if not word:
            continue
        fact = FACT_NAMES.get(word.lower())
        if fact is None:
            unknown.append(word)
        else:
            facts.add(fact_key(fact))
    return facts, unknown


def judge_virtualenv_isolates(answer, host: dict[str, str], venv: dict[str, str],
                              container: dict[str, str] | None = None) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    parsed = _as_facts(answer)
    if parsed is None:
        return CheckResult(False, say('Answer with a list of names, like ["hostname", "files"] (you gave {answer!r}).',
                                      answer=answer))
    facts, unknown = parsed
    if unknown:
        names = ", ".join(sorted(set(FACT_NAMES.values())))
        return CheckResult(False, say("I don't know {unknown}. Use the table's row names: {names}.",
                                      unknown=", ".join(map(repr, unknown)), names=names))
    truth = isolated_facts(host, venv)
    if facts == truth:
        return CheckResult(True, say("Right: only {facts}. A virtualenv is a directory with its "
                                     "own site-packages and a pyvenv.cfg that tells Python to use it. It is an "
                                     "ordinary process of the host in every other way: same files, processes, "
                                     "network, hostname, limits and user.", facts=", ".join(sorted(truth))))
    if not facts:
        return CheckResult(False, say("One row does differ for the virtualenv: look at what its Python can import."))
    wrong = sorted(facts - truth)
    if wrong:
        examples = []
        for fact, show, _key in ISOLATION_ROWS:
            if fact_key(fact) in wrong:
                examples.append(say("{fact}: the virtualenv answered {value!r}, like this notebook",
                                    fact=fact_key(fact), value=show(venv)))
        from_container = container is not None and facts <= isolated_facts(host, container)
        if from_container and len(facts) > 1:
            return CheckResult(False, say("That is the container's list. The virtualenv does not isolate "
                                          "{examples}. No namespace and no cgroup is involved: it is a plain host "
                                          "process.", examples="; ".join(examples)))
        return CheckResult(False, say("The virtualenv does not isolate {examples}. No namespace and no cgroup is "
                                      "involved: it is a plain host process.", examples="; ".join(examples)))
    return CheckResult(False, say("Missing: {facts}. Look for the highlighted cells in the virtualenv's column.",
                                  facts=", ".join(sorted(truth - facts))))


def check_virtualenv_isolates(answer, host: dict[str, str] | None = None, venv: dict[str, str] | None = None,
                              container: dict[str, str] | None = None) -> CheckResult:
    """Exercise: which facts does a virtualenv isolate? Probes now when no probe results are given."""
    if not_answered(answer):
        return not_answered_yet()
    if host is None or venv is None:
        try:
            with marker_file() as marker, temporary_virtualenv() as python:
                host = probe_python(sys.executable, marker)
                venv = probe_python(python, marker)
        except Exception as error:
            return CheckResult(False, say("Could not make a virtualenv to check your answer ({problem}).",
                                          problem=f"{type(error).__name__}: {error}"))
    return judge_virtualenv_isolates(answer, host, venv, container)


# -- exercise 2: a container with a 48 MiB memory limit ---------------------------------------------

EXERCISE_LIMIT = 48 * 2**20


def judge_memory_limit(answer, expected: int = EXERCISE_LIMIT) -> CheckResult:
    """``answer`` is the RunResult of a container that printed its own memory limit."""
    if not_answered(answer):
        return not_answered_yet()
    if not all(hasattr(answer, name) for name in ("exit_code", "stdout", "metrics", "oom_killed")):
        return CheckResult(False, say("Put the RunResult in answer: answer = run([...], rootfs=rootfs, memory=...). "
                                      "You gave a {kind}.", kind=type(answer).__name__))
    metrics = answer.metrics
    limit = metrics.memory_limit_bytes if metrics is not None else None
    if answer.oom_killed or answer.exit_code == 137:
        if limit:
            return CheckResult(False, say("The kernel killed the container for using too much memory: its limit "
                                          "({limit} bytes) was tiny. A bare number means bytes; write \"48m\" "
                                          "(or 48 * 2**20).", limit=limit))
        return CheckResult(False, say("The kernel killed the container for using too much memory: its limit was "
                                      "tiny. A bare number means bytes; write \"48m\" (or 48 * 2**20)."))
    if answer.exit_code != 0:
        return CheckResult(False, say("The container exited with {code}: {stderr}", code=answer.exit_code,
                                      stderr=answer.stderr.strip()[:200]))
    if limit is None:
        if metrics is None:
            return CheckResult(False, say("This container had no cgroup to limit it (a rootless run?). Run it as "
                                          "root."))
        return CheckResult(False, say("This container had no memory limit at all: pass memory=... to run()."))
    printed = answer.stdout.strip().splitlines()[-1:] or [""]
    if printed[0] != str(limit) and describe_memory_limit(printed[0]) != describe_memory_limit(str(limit)):
        return CheckResult(False, say("The limit is set, but the container did not print it. Run "
                                      "[\"sh\", \"-c\", MEMORY_LIMIT_COMMAND] so the container reads its own "
                                      "cgroup."))
    if limit == expected:
        return CheckResult(True, say("Right: {limit:,} bytes = 48 MiB, read by the container from its own cgroup "
                                     "(memory.limit_in_bytes on cgroup v1, memory.max on v2). The kernel enforces it "
                                     "on every process inside; a virtualenv has no such knob.", limit=limit))
    if abs(limit - 48 * 10**6) < 8192:
        return CheckResult(False, say("{limit:,} bytes is 48 MB in powers of ten, not 48 MiB. teachdock's \"m\", "
                                      "like Docker's, means 2**20 bytes: write \"48m\" or 48 * 2**20.", limit=limit))
    if abs(limit - 48 * 2**30) < 8192 or abs(limit - 48 * 2**10) < 8192:
        unit = "GiB" if limit > expected else "KiB"
        return CheckResult(False, say("That is 48 {unit}: check the unit letter (k, m or g).", unit=unit))
    return CheckResult(False, say("The container's limit is {limit:,} bytes ({mib:g} MiB), not 48 MiB "
                                  "({expected:,} bytes).", limit=limit, mib=limit / 2**20, expected=expected))


def check_memory_limit(answer) -> CheckResult:
    """Exercise: run a container limited to 48 MiB that prints the limit it sees from inside."""
    return judge_memory_limit(answer)


# -- exercise 3: how long must a job be to reach "98 % of bare metal"? ------------------------------


def judge_break_even(answer, container_startup: float, process_startup: float = 0.0) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    seconds = as_number(answer)
    if seconds is None:
        return CheckResult(False, say("Answer with a number of seconds, like 2.5 (you gave {answer!r}).",
                                      answer=answer))
    truth = break_even_seconds(container_startup, process_startup)
    simple = 49 * container_startup  # the same, ignoring the plain process's own start-up
    if seconds <= 0:
        return CheckResult(False, say("A job of no length is all start-up: 0 % of host speed, not 98 %."))
    if abs(seconds - truth) <= 0.25 * truth or abs(seconds - simple) <= 0.25 * simple:
        return CheckResult(True, say("Right: about {truth}, i.e. 49 times the container's start-up "
                                     "of {startup}. Start-up must be 2 % of the total, so the "
                                     "job must be 98 %: 49 times as long. Any shorter job shows less than 98 %.",
                                     truth=format_seconds(truth), startup=format_seconds(container_startup)))
    if abs(seconds - truth * 1000) <= 0.25 * truth * 1000:
        return CheckResult(False, say("That looks like milliseconds: the answer is in seconds."))
    if abs(seconds - container_startup) <= 0.3 * container_startup:
        return CheckResult(False, say("A job as long as the start-up spends half its time starting: that is 50 %, "
                                      "not 98 %."))
    if seconds < container_startup:
        return CheckResult(False, say("Shorter than the start-up itself: such a job spends most of its time "
                                      "starting. Did you divide where you should multiply? Start-up is 2 % of the "
                                      "total."))
    if abs(seconds - 99 * container_startup) <= 0.2 * 99 * container_startup:
        return CheckResult(False, say("Close to 100 times the start-up: that gives 99 %. For 98 % the start-up "
                                      "is 2 parts in 100, so the job is 98 parts: 49 times the start-up."))
    return CheckResult(False, say("Not quite. Use the container's median start-up, {startup}: "
                                  "for 98 % of host speed the start-up may take only 2 % of the whole run.",
                                  startup=format_seconds(container_startup)))


def check_break_even(answer, m: Measurements | None = None) -> CheckResult:
    """Exercise: the job length at which the container reaches 98 % of host speed, start-up included."""
    if not_answered(answer):
        return not_answered_yet()
    startup = m.median("startup", "container") if m is not None else None
    if startup is None:
        return CheckResult(False, say("The container's start-up was not measured (section 2 needs root), so there "
                                      "is nothing to check against. Use a start-up of 20 ms and work it out on "
                                      "paper."))
    return judge_break_even(answer, startup, m.median("startup", "process") or 0.0)


# -- exercise 4: predict the loop's speed under cpus=0.5 ---------------------------------------------

EXERCISE_CPUS = 0.5
EXERCISE_ITERATIONS = 400_000  # long enough (about 0.35 s here) to span several 100 ms quota periods


def judge_cpu_limit(answer, truth_percent: float, cpus: float = EXERCISE_CPUS) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    percent = as_number(answer)
    if percent is None:
        return CheckResult(False, say("Answer with a percentage, like 75 (you gave {answer!r}).", answer=answer))
    if abs(percent - truth_percent) <= 12:
        return CheckResult(True, say("Right: measured just now, {truth:.0f} %. cpus={cpus} writes a CFS quota "
                                     "({quota} µs per 100,000 µs period: cpu.cfs_quota_us on cgroup v1, cpu.max on "
                                     "v2): the loop runs at full speed until the quota is used up, then waits for the "
                                     "next period. A limit, not an overhead.", truth=truth_percent, cpus=cpus,
                                     quota=int(cpus * 100_000)))
    if percent > 100:
        return CheckResult(False, say("Percent of the host's speed: a limit can only make the loop slower, so the "
                                      "answer is below 100."))
    if percent >= 90:
        return CheckResult(False, say("Without a limit the loop runs at host speed, but cpus={cpus} caps it: for "
                                      "each 100 ms period the kernel lets it run {ms} ms, then pauses it "
                                      "(measured: {truth:.0f} %).", cpus=cpus, ms=int(cpus * 100), truth=truth_percent))
    if abs(percent - cpus) < 0.01 or percent < 5:
        return CheckResult(False, say("Answer in percent (e.g. 75 for three quarters), not as a fraction."))
    return CheckResult(False, say("Not quite: {percent:.0f} %. The loop uses one CPU fully; how much of one CPU "
                                  "does cpus={cpus} allow?", percent=percent, cpus=cpus))


def measure_cpu_limit(rootfs, cpus: float = EXERCISE_CPUS, iterations: int = EXERCISE_ITERATIONS,
                      rounds: int = 2) -> float:
    """Loop speed in a container with ``cpus``, in percent of the same loop on the host (medians)."""
    from teachdock.runtime import run

    script = loop_script(iterations)
    host, limited = [], []
    for _ in range(rounds):
        host.append(parse_loop_output(time_host_process([BUSYBOX, "sh", "-c", script])[1]).seconds)
        result = run(["sh", "-c", script], rootfs=str(rootfs), cpus=cpus, timeout=60)
        if result.exit_code != 0:
            raise RuntimeError(f"the loop exited with {result.exit_code}: {result.stderr.strip()}")
        limited.append(parse_loop_output(result.stdout).seconds)
    return 100 * statistics.median(host) / statistics.median(limited)


def check_cpu_limit(answer, rootfs=None) -> CheckResult:
    """Exercise: at what % of host speed does the loop run in a container with cpus=0.5? Measured live."""
    if not_answered(answer):
        return not_answered_yet()
    if as_number(answer) is None:
        return judge_cpu_limit(answer, 0.0)
    try:
        if rootfs is None:
            from teachdock.lab.common.views import busybox_rootfs

            rootfs = busybox_rootfs()
        truth = measure_cpu_limit(rootfs)
    except Exception as error:  # the check must explain, not crash the exercise cell
        return CheckResult(False, say("Could not start a container to check your answer ({problem}). Starting "
                                      "containers needs root.", problem=f"{type(error).__name__}: {error}"))
    return judge_cpu_limit(answer, truth)

