"""Chapter 00's exercises: the first container's PID, its process list, its network devices.

The result box, ``observe`` and ``run_in_container`` are shared by every chapter
(teachdock.lab.common.checks).
"""

from __future__ import annotations

import os
import re

from teachdock.lab.common.checks import NOT_ANSWERED, CheckResult, as_int, not_answered, observe, run_in_container
from teachdock.lab.common.views import host_view, interfaces_from_net_dev, parse_ps


# ---- exercise 1: what PID does the container's first process see for itself? -------------


def judge_own_pid(answer, truth: int) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    n = as_int(answer)
    if n is None:
        return CheckResult(False, f"Answer with a whole number, like 7 (you gave {answer!r}).")
    if n == truth:
        return CheckResult(True, f"Right: {truth}. A new PID namespace numbers its processes from scratch, "
                                 "and the first one gets PID 1, the role init plays on a whole machine.")
    if n == 0:
        return CheckResult(False, "PID 0 is not a process you can see: it is the kernel's idle task. "
                                  "The first real process in a new PID namespace gets the next number.")
    if n < 0:
        return CheckResult(False, "PIDs are never negative. Try again.")
    if n == os.getpid():
        return CheckResult(False, f"{n} is the PID of this notebook's kernel, on the host. The container's "
                                  "process lives in another PID namespace, which starts its own numbering.")
    if n > truth:
        return CheckResult(False, f"{n} looks like a host PID. The host does give the container's process a "
                                  "number like that (Container.pid shows it), but inside its own PID namespace "
                                  "the first process is numbered from scratch.")
    return CheckResult(False, "Not quite. Think of what a brand-new machine calls its very first process.")


def _own_pid(rootfs) -> int:
    return int(run_in_container(["sh", "-c", "echo $$"], rootfs).strip())


def check_own_pid(answer, rootfs=None) -> CheckResult:
    """Exercise: which PID does `sh -c 'echo $$'` print when it is a container's first process?"""
    if not_answered(answer):
        return NOT_ANSWERED
    truth, failure = observe(_own_pid, rootfs)
    if failure is not None:
        return failure
    return judge_own_pid(answer, truth)


# ---- exercise 2: how many processes does `ps` list when it runs alone in a container? -----


def judge_ps_count(answer, truth: int, host_count: int) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    n = as_int(answer)
    if n is None:
        return CheckResult(False, f"Answer with a whole number, like 3 (you gave {answer!r}).")
    if n == truth:
        return CheckResult(True, f"Right: {truth}. ps reads /proc, and the container's /proc shows only the "
                                 "processes of the container's own PID namespace: here, ps itself.")
    if n == truth + 1:
        return CheckResult(False, "Close. Did you count the header line (PID USER COMMAND), or a shell? "
                                  "Here ps is started directly, as the container's only process.")
    if n <= 0:
        return CheckResult(False, "ps is itself a running process inside the container, so it sees at least itself.")
    if n >= max(truth + 2, host_count // 2):
        return CheckResult(False, f"That is about what the host sees ({host_count} processes right now). "
                                  "The container's PID namespace hides every process outside it.")
    return CheckResult(False, "Not quite. Count the processes that exist inside the container: "
                              "which program did the container start, and did it start any other?")


def _ps_count(rootfs) -> int:
    return len(parse_ps(run_in_container(["ps"], rootfs)))


def check_ps_count(answer, rootfs=None) -> CheckResult:
    """Exercise: `run(["ps"], ...)`: how many processes does ps list (not counting its header)?"""
    if not_answered(answer):
        return NOT_ANSWERED
    truth, failure = observe(_ps_count, rootfs)
    if failure is not None:
        return failure
    return judge_ps_count(answer, truth, host_count=len(host_view().processes))


# ---- exercise 3: which network interfaces does a container see? ----------------------------
# With its own network namespace: only lo. Without one (no "network" in namespaces): the host's.


def _as_names(answer) -> set[str] | None:
    if isinstance(answer, str):
        return {name for name in re.split(r"[\s,]+", answer) if name}
    try:
        names = set(answer)
    except TypeError:
        return None
    return names if all(isinstance(name, str) for name in names) else None


def judge_interfaces(answer, truth: list[str], host_interfaces: list[str], own_netns: bool = True) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    names = _as_names(answer)
    if names is None:
        return CheckResult(False, f'Answer with interface names, like ["eth0"] or "eth0" (you gave {answer!r}).')
    if own_netns:
        return _judge_new_netns(names, set(truth), set(host_interfaces))
    return _judge_shared_netns(names, set(truth))


def _judge_new_netns(names: set[str], truth: set[str], host: set[str]) -> CheckResult:
    if names == truth:
        return CheckResult(True, f"Right: {', '.join(sorted(truth))}. The kernel puts a loopback device in every "
                                 "new network namespace, and nothing else. Docker's eth0 is added afterwards, "
                                 "by moving one end of a veth pair in: the networking chapter does it by hand.")
    if not names:
        return CheckResult(False, "Not empty: the kernel creates one device in every new network namespace. "
                                  "Which device does every machine have, even without a network cable?")
    from_host = sorted((names & host) - truth)
    if from_host:
        verb = "belongs" if len(from_host) == 1 else "belong"
        return CheckResult(False, f"{', '.join(from_host)} {verb} to the host's network namespace. A network "
                                  "device lives in exactly one namespace at a time, and a new one starts with "
                                  "none of the host's.")
    if "eth0" in names:
        return CheckResult(False, "A Docker container has an eth0, but Docker adds it after creating the "
                                  "namespace. Here nothing is added: only what the kernel creates by itself.")
    extra = sorted(names - truth)
    if extra:
        return CheckResult(False, f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not exist in a new "
                                  "network namespace: only what the kernel creates by itself is there.")
    return CheckResult(False, f"Something is missing: {', '.join(sorted(truth - names))}. "
                              "Look at /proc/net/dev inside a container.")


def _judge_shared_netns(names: set[str], truth: set[str]) -> CheckResult:
    if names == truth:
        return CheckResult(True, f"Right: {', '.join(sorted(truth))}, the host's own devices. Without \"network\" "
                                 "in namespaces the container stays in the host's network namespace, and sees "
                                 "and uses everything the host has. `docker run --network host` does exactly this.")
    if names == {"lo"}:
        return CheckResult(False, "Only lo is what a *new* network namespace holds. This container gets none: "
                                  "without \"network\" in namespaces it stays in the host's. What does the host have?")
    if not names:
        return CheckResult(False, "Not empty: this container shares the host's network namespace, "
                                  "so it sees the host's devices.")
    extra = sorted(names - truth)
    if extra:
        return CheckResult(False, f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not on this host. "
                                  "Sharing the host's network namespace shows the host's devices, no more: "
                                  "compare with the host column of the table.")
    return CheckResult(False, f"Missing: {', '.join(sorted(truth - names))}. Sharing the host's network "
                              "namespace means seeing all of its devices, not just some of them.")


def check_interfaces(answer, namespaces=None, rootfs=None) -> CheckResult:
    """Exercise: which network interfaces does a container see, with these namespaces?

    ``namespaces`` as for teachdock.runtime.run; None means run's default (which has "network").
    """
    if not_answered(answer):
        return NOT_ANSWERED
    options = {} if namespaces is None else {"namespaces": tuple(namespaces)}
    own_netns = namespaces is None or "network" in namespaces

    def interfaces(root) -> list[str]:
        return interfaces_from_net_dev(run_in_container(["cat", "/proc/net/dev"], root, **options))

    truth, failure = observe(interfaces, rootfs)
    if failure is not None:
        return failure
    return judge_interfaces(answer, truth, host_interfaces=host_view().interfaces, own_netns=own_netns)
