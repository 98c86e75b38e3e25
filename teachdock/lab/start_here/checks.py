"""Chapter 00's exercises: ps alone in a container, PID 1 without a PID namespace, and the
options of a container that keeps its own PID 1 but uses the host's network.

The result box, ``observe`` and ``run_in_container`` are shared by every chapter
(teachdock.lab.common.checks).
"""

from __future__ import annotations

from teachdock.errors import TeachdockError
from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, not_answered, observe, run_in_container
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root
from teachdock.lab.common.views import PROBE_SCRIPT, View, container_view, host_view, parse_ps


# ---- exercise 1: how many processes does `ps` list when it runs alone in a container? -----


def judge_ps_count(answer, truth: int, host_count: int) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    n = as_int(answer)
    if n is None:
        return CheckResult(False, say("Answer with a whole number, like 3 (you gave {answer!r}).", answer=answer))
    if n == truth:
        return CheckResult(True, say("Right: {truth}. ps reads /proc, and the container's /proc shows only the "
                                     "processes of the container's own PID namespace: here, ps itself.", truth=truth))
    if n == truth + 1:
        return CheckResult(False, say("Close. Did you count the header line (PID USER COMMAND), or a shell? "
                                      "Here ps is started directly, as the container's only process."))
    if n <= 0:
        return CheckResult(False, say("ps is itself a running process inside the container, so it sees at least "
                                      "itself."))
    if n >= max(truth + 2, host_count // 2):
        return CheckResult(False, say("That is about what the host sees ({host_count} processes right now). "
                                      "The container's PID namespace hides every process outside it.",
                                      host_count=host_count))
    return CheckResult(False, say("Not quite. Count the processes that exist inside the container: "
                                  "which program did the container start, and did it start any other?"))


def _ps_count(rootfs) -> int:
    return len(parse_ps(run_in_container(["ps"], rootfs)))


def check_ps_count(answer, rootfs=None) -> CheckResult:
    """Exercise: `run(["ps"], ...)`: how many processes does ps list (not counting its header)?"""
    if not_answered(answer):
        return not_answered_yet()
    truth, failure = observe(_ps_count, rootfs)
    if failure is not None:
        return failure
    return judge_ps_count(answer, truth, host_count=len(host_view().processes))



# ---- exercise 2: who is PID 1 for a container without a PID namespace of its own? ----------
# The runtime still mounts a fresh /proc, but for the PID namespace the container is in: the host's.

NO_PID_NAMESPACE = ("mount", "uts", "ipc", "network")


def rootless_cannot_share_pids() -> CheckResult:
    return CheckResult(
        False,
        say("This check needs root. Without root, run() adds a user namespace, and the kernel lets a user namespace "
            "mount /proc only for a PID namespace it owns: a rootless container always gets its own PID namespace. "
            "Start the lab as root (sudo scripts/lab) to check your answer."),
        answered=False,
    )


def judge_pid1_without_pid_namespace(answer, truth: str, shell_pid: int) -> CheckResult:
    """``truth``: PID 1's name as the container saw it; ``shell_pid``: what its ``echo $$`` printed."""
    if not_answered(answer):
        return not_answered_yet()
    if not isinstance(answer, str) or not answer.strip() or as_int(answer) is not None:
        return CheckResult(False, say('Answer with a program\'s name in quotes, like "bash" (you gave {answer!r}): '
                                      "the question is which program PID 1 is, not its number.", answer=answer))
    name = answer.strip().lower()
    if name == truth.lower():
        return CheckResult(True, say("Right: {truth}. Without a PID namespace of its own the container stays in the "
                                     "host's: its shell printed $$ = {shell_pid}, a host PID, and the /proc mounted "
                                     "for it lists the host's processes, PID 1 included. `docker run --pid host` "
                                     "does the same.", truth=truth, shell_pid=shell_pid))
    if name == "sh":
        return CheckResult(False, say("sh is PID 1 only in a PID namespace of its own. Here the shell printed "
                                      "$$ = {shell_pid}: it was numbered in the host's PID namespace. Whose PID 1 "
                                      "does that namespace's /proc show?", shell_pid=shell_pid))
    if name in ("cat", "echo"):
        return CheckResult(False, say("{name} reads or prints, but it is not PID 1: it runs after the shell, with a "
                                      "higher number. Which process is number 1 in the namespace this /proc "
                                      "belongs to?", name=name))
    if name in ("init", "systemd"):
        return CheckResult(False, say("{name} is PID 1 on many Linux machines, but not on this one. The table in "
                                      "section 3 shows what this host calls its PID 1.", name=name))
    return CheckResult(False, say("Not quite. The container shares the host's PID namespace, and its fresh /proc "
                                  "shows that namespace: look at the host's column in section 3."))


def _pid1_without_pid_namespace(rootfs) -> tuple[str, int]:
    output = run_in_container(["sh", "-c", "echo $$; cat /proc/1/comm"], rootfs, namespaces=NO_PID_NAMESPACE)
    shell_pid, pid1 = output.strip().split("\n", 1)
    return pid1.strip(), int(shell_pid)


def check_pid1_without_pid_namespace(answer, rootfs=None) -> CheckResult:
    """Exercise: with namespaces=NO_PID_NAMESPACE, what does `cat /proc/1/comm` print?"""
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return rootless_cannot_share_pids()
    seen, failure = observe(_pid1_without_pid_namespace, rootfs)
    if failure is not None:
        return failure
    pid1, shell_pid = seen
    return judge_pid1_without_pid_namespace(answer, pid1, shell_pid)


# ---- exercise 3: run()'s options for hostname "lab", the host's network, and its own PID 1 --

WANTED_HOSTNAME = "lab"

#: Words of run()'s refusals (InvalidConfig, TypeError): machine-read, so English.
REFUSAL_WORDS = ("no uts namespace", "needs a new mount namespace", "needs a new pid namespace", "is not a namespace",
                 "unexpected keyword argument")


def refusal_hint(refusal: str) -> str:
    """The hint for a refusal of run(), in the learner's language."""
    hints = {
        "no uts namespace": say('Keep "uts" in namespaces: a hostname without a UTS namespace of its own would '
                                "rename the host, so the runtime refuses it."),
        "needs a new mount namespace": say('Keep "mount" in namespaces: the runtime mounts /proc and pivots the root '
                                           "in the container's own mount table."),
        "needs a new pid namespace": say('Keep "pid" in namespaces: without root, run() adds a user namespace, '
                                         "which needs a PID namespace of its own."),
        "is not a namespace": say('Use the names run() knows: "pid", "mount", "uts", "ipc", "network", "user", '
                                  '"cgroup", "time".'),
        "unexpected keyword argument": say("run() has no such keyword. The namespaces go in one tuple, "
                                           'namespaces=("pid", ...), and the name in hostname="lab".'),
    }
    return next((hints[words] for words in REFUSAL_WORDS if words in refusal),
                say("Change the options and try again."))


def judge_host_network(options, seen: View | None, host: View, refusal: str | None = None) -> CheckResult:
    """``seen``: what PROBE_SCRIPT saw in a container started with ``options`` (None if run() refused them)."""
    if not_answered(options):
        return not_answered_yet()
    if not isinstance(options, dict):
        return CheckResult(False, say("Give run()'s keywords as a dict, like dict(hostname=..., namespaces=(...)) "
                                      "(you gave {kind}).", kind=type(options).__name__))
    if isinstance(options.get("namespaces"), str):
        return CheckResult(False, say('namespaces takes a tuple of names, like ("pid", "mount"), not one string.'))
    if refusal is not None:
        return CheckResult(False, say("run() refused these options: {refusal}. {hint}", refusal=refusal,
                                      hint=refusal_hint(refusal)))
    namespaces = options.get("namespaces", ())
    if seen.hostname != WANTED_HOSTNAME:
        if seen.hostname == host.hostname and "uts" not in namespaces:
            return CheckResult(False, say("The container answers to the host's name, {hostname!r}: without "
                                          '"uts" it shares the host\'s UTS namespace. Keep "uts" and pass '
                                          'hostname="lab".', hostname=host.hostname))
        return CheckResult(False, say('The container calls itself {hostname!r}. Pass hostname="{wanted}".',
                                      hostname=seen.hostname, wanted=WANTED_HOSTNAME))
    if set(seen.interfaces) != set(host.interfaces):
        if set(seen.interfaces) == {"lo"}:
            return CheckResult(False, say("The container sees only lo: it still got a network namespace of its own. "
                                          'Leave "network" out of namespaces.'))
        return CheckResult(False, say("The container sees {seen}, the host has {host}. Share the host's network "
                                      "namespace.", seen=" ".join(seen.interfaces), host=" ".join(host.interfaces)))
    if seen.own_pid != 1:
        return CheckResult(False, say("The shell in your container is PID {pid}, a host number: "
                                      'keep "pid" in namespaces so that the container numbers its processes from 1.',
                                      pid=seen.own_pid))
    return CheckResult(True, say("Right: hostname {hostname}, the host's {count} interfaces, "
                                 "and PID 1. Each namespace is a separate choice: this container shares the host's "
                                 "network namespace, as `docker run --network host` does, and keeps its own PID, "
                                 "UTS, IPC and mount namespaces.", hostname=WANTED_HOSTNAME,
                                 count=len(host.interfaces)))


def check_host_network(options, rootfs=None) -> CheckResult:
    """Exercise: the keywords of run() for a container called "lab" that sees the host's network devices
    and still has its own PID 1. The check starts a container with them and looks inside."""
    if not_answered(options) or not isinstance(options, dict):
        return judge_host_network(options, None, host_view())

    def look(root) -> tuple[View | None, str | None]:
        try:
            return container_view(run_in_container(["sh", "-s"], root, input=PROBE_SCRIPT, **options)), None
        except (TypeError, TeachdockError) as refused:  # the learner's options, refused by run()
            return None, str(refused)

    seen, failure = observe(look, rootfs)
    if failure is not None:
        return failure
    view, refusal = seen
    return judge_host_network(options, view, host_view(), refusal)
