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

Checks 2–4 need the chapter's daemon: without root they return a CheckResult that says so
(``root_needed()``). Every hint is a whole sentence through ``say`` (the learner's language);
answer keys (``LAYERS``' keys, attempt keys) stay English, as the code a learner types does.
"""

from __future__ import annotations

from teachdock.lab.common.checks import CheckResult, not_answered, not_answered_yet
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root
from teachdock.lab.security.attempts import SOCKET_INSIDE, attempts
from teachdock.lab.security.grid import Column, Configuration, cli_binds, try_configuration, try_rootless_without_filter
from teachdock.lab.security.layers import LAYERS, THROUGH
from teachdock.lab.security.own_filter import FilterTrial, try_filter


def root_needed() -> CheckResult:
    """What checks 2–4 answer without root: their containers need the chapter's daemon, which runs
    as root (made when shown, in the learner's language)."""
    return CheckResult(False, say("This check needs root: it runs a container on the chapter's daemon, and the "
                                  "daemon needs root for its bridge, nftables table and cgroups. Start the lab as "
                                  "root (sudo scripts/lab) to check your answer."))


def did_not_run(problem: str) -> CheckResult:
    return CheckResult(False, say("The container did not run: {problem}", problem=problem))


# ------------------------------------------------------------------ 1. a filter of your own


def judge_mkdir_filter(profile, trial: FilterTrial, unknown_names=()) -> CheckResult:
    if not_answered(profile):
        return not_answered_yet()
    if not isinstance(profile, (dict, str)):
        return CheckResult(False, say("A profile is a dict (or its JSON text) with 'defaultAction' and 'syscalls', "
                                      "as profile_blocking(['mkdir']) returns it."))
    if trial.problem:
        return CheckResult(False, say("The runtime refused the profile: {problem}", problem=trial.problem))
    if not trial.started:
        return CheckResult(False, say("The container never ran its first command: your default action refuses "
                                      "every call, execve included. Make the default SCMP_ACT_ALLOW and refuse "
                                      "only mkdir."))
    if trial.mkdir == "OK":
        if unknown_names:
            return CheckResult(False, say("{names} is not a system call on this machine, and runc and teachdock "
                                          "skip names they do not know. Check the spelling.",
                                          names=", ".join(unknown_names)))
        return CheckResult(False, say("mkdir still works. busybox's mkdir calls mkdir(2) on x86_64, not "
                                      "mkdirat(2): is 'mkdir' in your rule's names, with an action that refuses?"))
    if trial.touch != "OK":
        return CheckResult(False, say("mkdir is refused, but so is touch ({touch}): your rule catches more than "
                                      "mkdir. Refuse mkdir (and mkdirat) only.", touch=trial.touch))
    if trial.mkdir.startswith("exit"):
        return CheckResult(False, say("mkdir was killed ({mkdir}: 'Bad system call' is SIGSYS) instead of "
                                      "refused. Use SCMP_ACT_ERRNO with errnoRet 1 (EPERM): the program gets an "
                                      "error it can report, as under Docker's profile.", mkdir=trial.mkdir))
    if trial.mkdir != "EPERM":
        return CheckResult(False, say("mkdir is refused with {mkdir}; the exercise asks for EPERM (errnoRet 1), "
                                      "the errno Docker's profile answers with.", mkdir=trial.mkdir))
    return CheckResult(True, say("mkdir met EPERM from your filter and touch still works: that is Docker's profile "
                                 "in miniature. The kernel ran your BPF program before each system call."))


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
        return did_not_run(column.problem)
    verdict = column.verdicts.get(attempt)
    if verdict is None:
        return CheckResult(False, say("No answer from the attempt {attempt}.", attempt=repr(attempt)))
    if answer not in (*LAYERS, THROUGH):
        return CheckResult(False, say("Answer with one key of LAYERS ({keys}) or {through}.",
                                      keys=", ".join(map(repr, LAYERS)), through=repr(THROUGH)))
    truth = verdict.layer
    if answer == truth:
        return CheckResult(True, say("Right: {label} ({errno}).", label=verdict.label, errno=verdict.errno))
    if truth == THROUGH:
        return CheckResult(False, say("Nothing stopped it: it got through ({errno}).", errno=verdict.errno))
    if answer == "seccomp" and truth == "capabilities":
        return CheckResult(False, say("seccomp let this call through: Docker's profile refuses a call only where its "
                                      "rule needs a capability the container lacks. The kernel's own capability "
                                      "check said no ({errno}).", errno=verdict.errno))
    if answer == "capabilities" and truth == "seccomp":
        return CheckResult(False, say("The filter runs first, at the system call's entry: it said EPERM before the "
                                      "kernel could check any capability."))
    return CheckResult(False, say("Not {answer}: {meaning} ({errno}), so the answer is {truth}.", answer=answer,
                                  meaning=LAYERS[truth][1], errno=verdict.errno, truth=repr(truth)))


def check_prediction(host: str, attempt: str, flags, answer) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return root_needed()
    chosen = tuple(a for a in attempts() if a.key == attempt)
    column = try_configuration(host, Configuration(" ".join(flags), tuple(flags), "the exercise"), chosen)
    return judge_prediction(answer, attempt, column)


# ------------------------------------------------------------------ 3. least privilege


def judge_least_privilege(flags, column: Column) -> CheckResult:
    if not_answered(flags):
        return not_answered_yet()
    if isinstance(flags, str):
        return CheckResult(False, say("Give the flags as a list, e.g. ['--cap-add', 'NAME'], as run_docker takes "
                                      "them."))
    if column.problem:
        return CheckResult(False, say("The daemon did not run the container: {problem}", problem=column.problem))
    through = [key for key, verdict in column.verdicts.items() if verdict.layer == THROUGH]
    clock = column.verdicts.get("clock")
    if "--privileged" in flags:
        others = [key for key in through if key != "clock"]
        return CheckResult(False, say("--privileged lets the clock through, and with it {others}: far more than "
                                      "asked. Which single capability does adjtimex need?", others=", ".join(others)))
    if clock is None:
        return CheckResult(False, say("The clock is still stopped (no answer)."))
    if clock.layer == "capabilities":
        return CheckResult(False, say("The clock is still stopped ({layer}). The kernel checks CAP_SYS_TIME: is it in "
                                      "the container's capabilities now?", layer=clock.label))
    if clock.layer != THROUGH:
        return CheckResult(False, say("The clock is still stopped ({layer}).", layer=clock.label))
    extra = [key for key in through if key != "clock"]
    if extra:
        return CheckResult(False, say("The clock gets through, but so does {extra}: give less.",
                                      extra=", ".join(extra)))
    return CheckResult(True, say("Only the clock gets through: one capability, CAP_SYS_TIME, and the filter already "
                                 "allows adjtimex. That is least privilege: add the one capability a program needs."))


def check_least_privilege(host: str, flags) -> CheckResult:
    if not_answered(flags) or isinstance(flags, str):
        return judge_least_privilege(flags, Column("", None, {}, {}))
    if not is_root():
        return root_needed()
    column = try_configuration(host, Configuration(" ".join(flags), tuple(flags), "the exercise"), attempts())
    return judge_least_privilege(flags, column)


# ------------------------------------------------------------------ 4. a read-only socket


def judge_readonly_socket(answer, column: Column) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not isinstance(answer, bool):
        return CheckResult(False, say("Answer True (it stops the attempt) or False (it does not)."))
    if column.problem:
        return did_not_run(column.problem)
    verdict = column.verdicts.get("socket")
    stopped = verdict is None or verdict.layer != THROUGH
    if answer == stopped and stopped:
        return CheckResult(True, say("Right: connect(2) on a Unix socket asks for write permission on the socket "
                                     "file, and a read-only mount refuses writes only to files, directories and "
                                     "links. Whoever can connect, can ask the daemon for anything."))
    if answer == stopped:
        return CheckResult(True, say("Right: it still got through. connect(2) on a Unix socket asks for write "
                                     "permission on the socket file, and a read-only mount refuses writes only to "
                                     "files, directories and links. Whoever can connect, can ask the daemon for "
                                     "anything."))
    if answer:
        return CheckResult(False, say("It got through all the same: ':ro' makes the mount read-only, yet connecting "
                                      "to a socket writes nothing to the filesystem. The HTTP requests go over the "
                                      "connection, not into the file."))
    if verdict is None:
        return CheckResult(False, say("This time it was stopped (no answer)."))
    return CheckResult(False, say("This time it was stopped ({layer}).", layer=verdict.label))


def check_readonly_socket(host: str, socket_path: str, marker, answer, docker_binary: str | None = None) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return root_needed()
    from teachdock.lab.client_and_daemon import docker_cli

    flags = ("-v", f"{socket_path}:{SOCKET_INSIDE}:ro", *cli_binds(docker_binary or docker_cli() or "/usr/bin/docker"))
    chosen = tuple(a for a in attempts() if a.key == "socket")
    column = try_configuration(host, Configuration("socket mounted :ro", flags, "the exercise"), chosen,
                               marker=marker)
    return judge_readonly_socket(answer, column)


# ------------------------------------------------------------------ 5. a rootless container without its filter


def stopped_because() -> dict[str, str]:
    """Why an attempt a learner expected through was stopped here, by the layer that stopped it."""
    return {
        "capabilities": say("the default capabilities have no CAP_SYS_ADMIN, and mount asks for it even over the "
                            "container's own namespaces"),
        "user namespace": say("it belongs to the host: capabilities over a user namespace do not reach it"),
        "namespaces": say("the daemon's socket was never mounted in"),
        "kernel": say("this kernel has no such file or feature"),
        "masked": say("the path is masked"),
        "read-only": say("the path is read-only"),
    }


def judge_through_without_filter(answer, column: Column) -> CheckResult:
    """``answer``: the attempt keys the learner expects to get through; ``column``: what was measured."""
    if not_answered(answer):
        return not_answered_yet()
    keys = {a.key for a in attempts()} | set(column.verdicts)
    if isinstance(answer, str) or not all(isinstance(item, str) for item in answer):
        return CheckResult(False, say("Answer with a set of attempt keys, e.g. {{'mount'}} (or set() for none)."))
    unknown = set(answer) - keys
    if unknown:
        return CheckResult(False, say("{unknown}: not attempt keys ({keys}).", unknown=", ".join(sorted(unknown)),
                                      keys=", ".join(map(repr, sorted(keys)))))
    if column.problem:
        return did_not_run(column.problem)
    truth = {key for key, verdict in column.verdicts.items() if verdict.layer == THROUGH}
    if set(answer) == truth:
        if not truth:
            return CheckResult(True, say("Right: nothing got through. Without the filter, unshare -U needs no "
                                         "capability at all, and inside the new namespace the process may mount: "
                                         "that is why Docker's profile refuses unshare, rootless or not. Everything "
                                         "of the host's stayed out of reach."))
        return CheckResult(True, say("Right: {through} got through. Without the filter, unshare -U needs no "
                                     "capability at all, and inside the new namespace the process may mount: that is "
                                     "why Docker's profile refuses unshare, rootless or not. Everything of the "
                                     "host's stayed out of reach.", through=", ".join(sorted(truth))))
    reasons = stopped_because()
    parts = []
    for key in sorted(truth - set(answer)):
        if key == "userns":
            parts.append(say("{key} got through: making a user namespace needs no capability, and only the filter "
                             "refused it before", key=key))
        else:
            parts.append(say("{key} got through", key=key))
    for key in sorted(set(answer) - truth):
        verdict = column.verdicts.get(key)
        if verdict is None:
            parts.append(say("{key} was stopped (?): it did not run here", key=key))
        elif verdict.layer in reasons:
            parts.append(say("{key} was stopped ({layer}): {why}", key=key, layer=verdict.label,
                             why=reasons[verdict.layer]))
        else:
            parts.append(say("{key} was stopped ({layer})", key=key, layer=verdict.label))
    return CheckResult(False, say("Not quite: {findings}.", findings="; ".join(parts)))


def check_through_without_filter(answer, rootfs=None) -> CheckResult:
    """Runs a fresh rootless container without a seccomp filter (as root or not), then judges."""
    if not_answered(answer):
        return not_answered_yet()
    return judge_through_without_filter(answer, try_rootless_without_filter(attempts(), rootfs))
