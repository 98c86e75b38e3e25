"""Chapter 10's exercises: each ``check_*`` runs real containers, each ``judge_*`` is pure and
knows the usual mistake (see teachdock/lab/common/checks.py for the house rules).

1. ``check_mkdir_filter(profile)``: your own seccomp profile refuses ``mkdir`` with EPERM and
   leaves everything else alone.
2. ``check_prediction(daemon_host, attempt, flags, answer)``: which layer stops an attempt in a
   container started with ``flags``; the container is run, and the layer decided as in the grid.
3. ``check_least_privilege(daemon_host, flags)``: the smallest change that lets *set the clock*
   through and nothing else.
4. ``check_readonly_socket(daemon_host, socket_path, marker, answer)``: does ``:ro`` on the
   mounted socket stop the socket attempt?
5. ``check_through_without_filter(answer)``: which attempts get through a rootless container
   (a user namespace, Docker's default capabilities and paths) with no seccomp filter? Section 6
   showed a user namespace with every layer off; this one is not on the page. (Runs without root too.)

Checks 2–4 need the chapter's daemon: without root they return a CheckResult that says so.
"""

from __future__ import annotations

from teachdock.lab.common.checks import not_answered_yet, CheckResult, not_answered
from teachdock.lab.common.root import is_root
from teachdock.lab.security.attempts import SOCKET_INSIDE, attempts
from teachdock.lab.security.grid import Column, Configuration, cli_binds, try_configuration, try_rootless_without_filter
from teachdock.lab.security.layers import LAYERS, THROUGH
from teachdock.lab.security.own_filter import FilterTrial, try_filter


#: what checks 2–4 answer without root: their containers need the chapter's daemon, which runs as root
ROOT_NEEDED = CheckResult(False, "This check needs root: it runs a container on the chapter's daemon, and the "
                                 "daemon needs root for its bridge, nftables table and cgroups. Start the lab as "
                                 "root (sudo scripts/lab) to check your answer.")


# ------------------------------------------------------------------ 1. a filter of your own


def judge_mkdir_filter(profile, trial: FilterTrial, unknown_names=()) -> CheckResult:
    if not_answered(profile):
        return not_answered_yet()
    if not isinstance(profile, (dict, str)):
        return CheckResult(False, "A profile is a dict (or its JSON text) with 'defaultAction' and 'syscalls', "
                                  "as profile_blocking(['mkdir']) returns it.")
    if trial.problem:
        return CheckResult(False, f"The runtime refused the profile: {trial.problem}")
    if not trial.started:
        return CheckResult(False, "The container never ran its first command: your default action refuses every "
                                  "call, execve included. Make the default SCMP_ACT_ALLOW and refuse only mkdir.")
    if trial.mkdir == "OK":
        if unknown_names:
            return CheckResult(False, f"{', '.join(unknown_names)} is not a system call on this machine, and "
                                      "runc and teachdock skip names they do not know. Check the spelling.")
        return CheckResult(False, "mkdir still works. busybox's mkdir calls mkdir(2) on x86_64, not mkdirat(2): "
                                  "is 'mkdir' in your rule's names, with an action that refuses?")
    if trial.touch != "OK":
        return CheckResult(False, f"mkdir is refused, but so is touch ({trial.touch}): your rule catches more than "
                                  "mkdir. Refuse mkdir (and mkdirat) only.")
    if trial.mkdir.startswith("exit"):
        return CheckResult(False, f"mkdir was killed ({trial.mkdir}: 'Bad system call' is SIGSYS) instead of "
                                  "refused. Use SCMP_ACT_ERRNO with errnoRet 1 (EPERM): the program gets an error "
                                  "it can report, as under Docker's profile.")
    if trial.mkdir != "EPERM":
        return CheckResult(False, f"mkdir is refused with {trial.mkdir}; the exercise asks for EPERM (errnoRet 1), "
                                  "the errno Docker's profile answers with.")
    return CheckResult(True, "mkdir met EPERM from your filter and touch still works: that is Docker's profile "
                             "in miniature. The kernel ran your BPF program before each system call.")


def check_mkdir_filter(profile, rootfs=None) -> CheckResult:
    if not_answered(profile) or not isinstance(profile, (dict, str)):
        return judge_mkdir_filter(profile, FilterTrial(None, None, None, ""))
    from teachdock.runtime.seccomp import syscall_number

    if isinstance(profile, dict) and profile.get("defaultAction") not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        # refusing every call, the container could not even report that its execve failed: not run
        return judge_mkdir_filter(profile, FilterTrial(None, None, None, ""))
    rules = profile.get("syscalls") or [] if isinstance(profile, dict) else []
    unknown = [name for rule in rules if isinstance(rule, dict) for name in rule.get("names") or []
               if syscall_number(name) is None]
    return judge_mkdir_filter(profile, try_filter(profile, rootfs), unknown)


# ------------------------------------------------------------------ 2. predict the layer


def judge_prediction(answer, attempt: str, column: Column) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if column.problem:
        return CheckResult(False, f"The container did not run: {column.problem}")
    verdict = column.verdicts.get(attempt)
    if verdict is None:
        return CheckResult(False, f"No answer from the attempt {attempt!r}.")
    if answer not in (*LAYERS, THROUGH):
        return CheckResult(False, f"Answer with one key of LAYERS ({', '.join(LAYERS)}) or {THROUGH!r}.")
    truth = verdict.layer
    if answer == truth:
        return CheckResult(True, f"Right: {verdict.label} ({verdict.errno}).")
    if truth == THROUGH:
        return CheckResult(False, f"Nothing stopped it: it got through ({verdict.errno}).")
    if answer == "seccomp" and truth == "capabilities":
        return CheckResult(False, "seccomp let this call through: Docker's profile refuses a call only where its "
                                  "rule needs a capability the container lacks. The kernel's own capability check "
                                  f"said no ({verdict.errno}).")
    if answer == "capabilities" and truth == "seccomp":
        return CheckResult(False, "The filter runs first, at the system call's entry: it said EPERM before the "
                                  "kernel could check any capability.")
    return CheckResult(False, f"Not {answer}: {LAYERS[truth][1]} ({verdict.errno}), so the answer is {truth!r}.")


def check_prediction(host: str, attempt: str, flags, answer) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return ROOT_NEEDED
    chosen = tuple(a for a in attempts() if a.key == attempt)
    column = try_configuration(host, Configuration(" ".join(flags), tuple(flags), "the exercise"), chosen)
    return judge_prediction(answer, attempt, column)


# ------------------------------------------------------------------ 3. least privilege


def judge_least_privilege(flags, column: Column) -> CheckResult:
    if not_answered(flags):
        return not_answered_yet()
    if isinstance(flags, str):
        return CheckResult(False, "Give the flags as a list, e.g. ['--cap-add', 'NAME'], as run_docker takes them.")
    if column.problem:
        return CheckResult(False, f"The daemon did not run the container: {column.problem}")
    through = [key for key, verdict in column.verdicts.items() if verdict.layer == THROUGH]
    clock = column.verdicts.get("clock")
    if "--privileged" in flags:
        others = [key for key in through if key != "clock"]
        return CheckResult(False, f"--privileged lets the clock through, and with it {', '.join(others)}: far more "
                                  "than asked. Which single capability does adjtimex need?")
    if clock is None or clock.layer != THROUGH:
        layer = clock.label if clock else "no answer"
        hint = (" The kernel checks CAP_SYS_TIME: is it in the container's capabilities now?"
                if clock and clock.layer == "capabilities" else "")
        return CheckResult(False, f"The clock is still stopped ({layer}).{hint}")
    extra = [key for key in through if key != "clock"]
    if extra:
        return CheckResult(False, f"The clock gets through, but so does {', '.join(extra)}: give less.")
    return CheckResult(True, "Only the clock gets through: one capability, CAP_SYS_TIME, and the filter already "
                             "allows adjtimex. That is least privilege: add the one capability a program needs.")


def check_least_privilege(host: str, flags) -> CheckResult:
    if not_answered(flags) or isinstance(flags, str):
        return judge_least_privilege(flags, Column("", None, {}, {}))
    if not is_root():
        return ROOT_NEEDED
    column = try_configuration(host, Configuration(" ".join(flags), tuple(flags), "the exercise"), attempts())
    return judge_least_privilege(flags, column)


# ------------------------------------------------------------------ 4. a read-only socket


def judge_readonly_socket(answer, column: Column) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not isinstance(answer, bool):
        return CheckResult(False, "Answer True (it stops the attempt) or False (it does not).")
    if column.problem:
        return CheckResult(False, f"The container did not run: {column.problem}")
    verdict = column.verdicts.get("socket")
    stopped = verdict is None or verdict.layer != THROUGH
    if answer == stopped:
        return CheckResult(True, ("Right: " if stopped else "Right: it still got through. ")
                           + "connect(2) on a Unix socket asks for write permission on the socket file, and a "
                             "read-only mount refuses writes only to files, directories and links. Whoever can "
                             "connect, can ask the daemon for anything.")
    if answer:
        return CheckResult(False, "It got through all the same: ':ro' makes the mount read-only, yet connecting "
                                  "to a socket writes nothing to the filesystem. The HTTP requests go over the "
                                  "connection, not into the file.")
    return CheckResult(False, f"This time it was stopped ({verdict.label if verdict else 'no answer'}).")


def check_readonly_socket(host: str, socket_path: str, marker, answer, docker_binary: str | None = None) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return ROOT_NEEDED
    from teachdock.lab.client_and_daemon import docker_cli

    flags = ("-v", f"{socket_path}:{SOCKET_INSIDE}:ro", *cli_binds(docker_binary or docker_cli() or "/usr/bin/docker"))
    chosen = tuple(a for a in attempts() if a.key == "socket")
    column = try_configuration(host, Configuration("socket mounted :ro", flags, "the exercise"), chosen,
                               marker=marker)
    return judge_readonly_socket(answer, column)


# ------------------------------------------------------------------ 5. a rootless container without its filter

#: why an attempt a learner expected through was stopped here, by the layer that stopped it
STOPPED_BECAUSE = {
    "capabilities": "the default capabilities have no CAP_SYS_ADMIN, and mount asks for it even over the "
                    "container's own namespaces",
    "user namespace": "it belongs to the host: capabilities over a user namespace do not reach it",
    "namespaces": "the daemon's socket was never mounted in",
    "kernel": "this kernel has no such file or feature",
    "masked": "the path is masked",
    "read-only": "the path is read-only",
}


def judge_through_without_filter(answer, column: Column) -> CheckResult:
    """``answer``: the attempt keys the learner expects to get through; ``column``: what was measured."""
    if not_answered(answer):
        return not_answered_yet()
    keys = {a.key for a in attempts()} | set(column.verdicts)
    if isinstance(answer, str) or not all(isinstance(item, str) for item in answer):
        return CheckResult(False, "Answer with a set of attempt keys, e.g. {'mount'} (or set() for none).")
    unknown = set(answer) - keys
    if unknown:
        return CheckResult(False, f"{', '.join(sorted(unknown))}: not attempt keys ({', '.join(sorted(keys))}).")
    if column.problem:
        return CheckResult(False, f"The container did not run: {column.problem}")
    truth = {key for key, verdict in column.verdicts.items() if verdict.layer == THROUGH}
    if set(answer) == truth:
        return CheckResult(True, f"Right: {', '.join(sorted(truth)) or 'nothing'} got through. Without the filter, "
                                 "unshare -U needs no capability at all, and inside the new namespace the process "
                                 "may mount: that is why Docker's profile refuses unshare, rootless or not. "
                                 "Everything of the host's stayed out of reach.")
    parts = []
    for key in sorted(truth - set(answer)):
        parts.append(f"{key} got through" + (": making a user namespace needs no capability, and only the filter "
                                             "refused it before" if key == "userns" else ""))
    for key in sorted(set(answer) - truth):
        verdict = column.verdicts.get(key)
        why = STOPPED_BECAUSE.get(verdict.layer, "") if verdict else "it did not run here"
        parts.append(f"{key} was stopped ({verdict.label if verdict else '?'})" + (f": {why}" if why else ""))
    return CheckResult(False, "Not quite: " + "; ".join(parts) + ".")


def check_through_without_filter(answer, rootfs=None) -> CheckResult:
    """Runs a fresh rootless container without a seccomp filter (as root or not), then judges."""
    if not_answered(answer):
        return not_answered_yet()
    return judge_through_without_filter(answer, try_rootless_without_filter(attempts(), rootfs))
