"""Exercise checks for the namespaces chapter: they look at the kernel's real state.

As in teachdock.lab.common.checks, each ``check_*`` gathers facts (a container's
``/proc/<pid>/ns`` links, its uid map, its parent) and a pure ``judge_*`` turns the facts
and the learner's answer into a CheckResult. The judge knows the usual mistakes, so a wrong
answer gets a hint about *that* mistake. A check never raises for a wrong answer.

Exercises that ask the learner to build a container take its id (or the Container): the
check finds it under the state root and inspects it from the host, as an admin would.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, not_answered, observe
from teachdock.lab.common.root import is_root
from teachdock.lab.namespaces.explorer import ALIASES, KINDS, explore, namespace_inodes, normalise

#: The ids the chapter's exercises ask for; the chapter's last cell removes them.
EXERCISE_IDS = ("ns-ex3", "ns-ex4", "ns-ex5a", "ns-ex5b")
NEVER_BY_DEFAULT = {"user", "cgroup", "time"}  # run() and `docker run` do not create these


# ---- facts about a container, from the host ------------------------------------------------


@dataclass
class ContainerFacts:
    """What the host can learn about one container without entering it."""

    id: str
    found: bool = False
    status: str = ""  # created, running, stopped ("" when not found)
    pid: int | None = None  # host PID of its PID 1
    inodes: dict[str, int] = field(default_factory=dict)  # its namespaces
    host_inodes: dict[str, int] = field(default_factory=dict)  # this notebook's
    uid_map: list[tuple[int, int, int]] = field(default_factory=list)  # as the host reads /proc/<pid>/uid_map
    host_uid: int | None = None  # the uid the host sees its PID 1 run as
    hostname: str | None = None  # from its config.json
    host_hostname: str = ""

    def shares(self, kind: str) -> bool:
        return self.inodes.get(kind) is not None and self.inodes.get(kind) == self.host_inodes.get(kind)


def _parse_uid_map(text: str) -> list[tuple[int, int, int]]:
    return [tuple(int(n) for n in line.split()) for line in text.splitlines() if len(line.split()) == 3]


def container_facts(container, state_root=None) -> ContainerFacts:
    """Look a container up (a Container, or its id) and read its namespaces from the host."""
    import socket  # noqa: PLC0415

    from teachdock.errors import TeachdockError  # noqa: PLC0415
    from teachdock.runtime import Container  # noqa: PLC0415 - lab sits on top of the runtime

    container_id = getattr(container, "id", container)
    facts = ContainerFacts(str(container_id), host_inodes=namespace_inodes("self"), host_hostname=socket.gethostname())
    try:
        if not isinstance(container, Container):
            container = Container.load(str(container_id), state_root)
        state = container.state()
    except TeachdockError:
        return facts
    facts.found, facts.status = True, state.get("status", "")
    facts.hostname = _config(container).get("hostname")
    if facts.status not in ("created", "running"):
        return facts
    pid = state["pid"]
    facts.pid = pid
    facts.inodes = namespace_inodes(pid)
    try:
        with open(f"/proc/{pid}/uid_map") as f:
            facts.uid_map = _parse_uid_map(f.read())
        with open(f"/proc/{pid}/status") as f:
            uid_line = next((line for line in f if line.startswith("Uid:")), "Uid: -1")
        facts.host_uid = int(uid_line.split()[1])
    except OSError:
        facts.status = "stopped"  # it ended while we looked
    return facts


def _config(container) -> dict:
    import json  # noqa: PLC0415

    try:
        with open(container.state_dir / "config.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _presence(facts: ContainerFacts, what: str = "it") -> CheckResult | None:
    """The answer when the container is missing or has ended; None when it can be judged."""
    if not facts.found:
        return CheckResult(False, f"No container called {facts.id!r} yet. Create and start {what} with that id, "
                                  "then run this cell again.", answered=False)
    if facts.status not in ("created", "running"):
        return CheckResult(False, f"Container {facts.id!r} has {facts.status or 'gone'}: its program ended, and its "
                                  "namespaces ended with it (a namespace lives only while a process, or a bind mount, "
                                  "holds it). Run something that lasts, such as [\"sleep\", \"600\"], and start it "
                                  f"again (delete the old one first: Container.load({facts.id!r}).delete()).")
    return None


def _needs_root(why: str) -> CheckResult:
    """The grey answer of a check whose exercise a learner without root cannot do (not a wrong answer)."""
    return CheckResult(False, f"This exercise needs root: {why}. Start the lab as root (sudo scripts/lab) "
                              "to do it.", answered=False)


def _not_found_or_failed(error: Exception) -> CheckResult:
    return CheckResult(False, f"Could not inspect the container ({type(error).__name__}: {error}). "
                              "Containers need root: see the doctor() table.")


# ---- exercise 1: which namespaces does a container share with the host? --------------------


def _as_kinds(answer) -> tuple[set[str], list[str]] | None:
    """({known kinds}, [unknown names]) from "pid, ipc", ["pid", "net"], {...}; None if not names."""
    if isinstance(answer, str):
        names = [name for name in re.split(r"[\s,]+", answer) if name]
    else:
        try:
            names = list(answer)
        except TypeError:
            return None
        if not all(isinstance(name, str) for name in names):
            return None
    kinds = {ALIASES.get(name.strip().lower(), name.strip().lower()) for name in names}
    return kinds & set(KINDS), sorted(kinds - set(KINDS))


def judge_shared_kinds(answer, truth: set[str], asked, *, rootless: bool = False) -> CheckResult:
    """``truth``: the kinds the container really shares with the host; ``asked``: the namespaces= it got
    (as normalise() completes them); ``rootless``: the container was started without root, so it got a
    user namespace it was not asked for."""
    if not_answered(answer):
        return not_answered_yet()
    parsed = _as_kinds(answer)
    if parsed is None:
        return CheckResult(False, f'Answer with namespace names, like {{"pid", "ipc"}} or "pid ipc" (you gave {answer!r}).')
    names, unknown = parsed
    truth, asked = set(truth), set(asked)
    if unknown:
        return CheckResult(False, f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a namespace kind. "
                                  f"The eight kinds are {', '.join(KINDS)}.")
    if names == truth:
        return CheckResult(True, f"Right: {', '.join(k for k in KINDS if k in truth)}. Only the kinds listed in "
                                 "namespaces= get a new namespace; every other kind stays the host's. In the explorer "
                                 "they are the amber cells.")
    if "mount" in names:
        return CheckResult(False, "mount is never shared here: the runtime always creates a mount namespace, because it "
                                  "mounts /proc and /dev for the container and calls pivot_root, which needs one "
                                  "(the explorer's greyed-out box).")
    if rootless and "user" in names - truth:
        return CheckResult(False, "Without root, user is not shared: run() adds a user namespace to every "
                                  "container you start, because only inside one may an ordinary user create the "
                                  "others. As root, user would be the host's.")
    wrongly_shared = sorted((names & asked) - truth)
    if wrongly_shared:
        return CheckResult(False, f"{', '.join(wrongly_shared)} {'was' if len(wrongly_shared) == 1 else 'were'} asked "
                                  "for in namespaces=, so the container got a new one: not shared.")
    missing = truth - names
    if missing and missing <= NEVER_BY_DEFAULT:
        return CheckResult(False, f"Also shared: {', '.join(k for k in KINDS if k in missing)}. A kind you do not ask "
                                  "for is the host's, and these are never created unless asked for "
                                  "(docker run leaves them off too).")
    if missing:
        return CheckResult(False, f"{', '.join(k for k in KINDS if k in missing)}: not in namespaces=, so the "
                                  "container stays in the host's. Every kind missing from the list is shared.")
    extra = sorted(names - truth)
    return CheckResult(False, f"{', '.join(extra)}: the container has its own. Look at which kinds you listed.")


def check_shared_kinds(answer, namespaces=("mount", "uts"), rootfs=None) -> CheckResult:
    """Exercise: a container started with ``namespaces``: which namespaces does it share with the host?"""
    if not_answered(answer):
        return not_answered_yet()
    result, failure = observe(lambda root: explore(namespaces, root), rootfs)
    if failure is not None:
        return failure
    return judge_shared_kinds(answer, result.shared, normalise(namespaces), rootless=not is_root())


# ---- exercise 2: which host PID does the container's PID 1 have? --------------------------


def describe_pid(pid: int) -> str | None:
    """The command name of a host process, or None when no process has that PID."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(")") + 2:].split()[1])


def judge_host_pid(answer, truth: int, *, monitor_pid: int | None, kernel_pid: int, describe=describe_pid) -> CheckResult:
    """``truth``: the host PID of the container's PID 1; ``monitor_pid``: its parent (td-shim)."""
    if not_answered(answer):
        return not_answered_yet()
    n = as_int(answer)
    if n is None:
        return CheckResult(False, f"Answer with a whole number, computed from /proc (you gave {answer!r}).")
    if n == truth:
        return CheckResult(True, f"Right: {truth}. Its /proc/{truth}/status says NSpid: {truth} 1. One process, two "
                                 "numbers: the host's PID namespace calls it "
                                 f"{truth}, the container's own calls it 1.")
    if n == 1:
        return CheckResult(False, "1 is the number it has inside its own PID namespace. The host's PID namespace gives "
                                  "the same process another number: the first one on the NSpid line of its "
                                  "/proc/<pid>/status.")
    if n == kernel_pid:
        return CheckResult(False, f"{n} is this notebook's own kernel (os.getpid()). The container's PID 1 is a "
                                  "descendant of it, further down the process tree.")
    if monitor_pid is not None and n == monitor_pid:
        return CheckResult(False, f"{n} is {describe(n) or 'td-shim'!r}, the container's monitor: the parent of its "
                                  "PID 1 on the host (the containerd-shim role). You are one level too high: look "
                                  f"for the process whose parent is {n}.")
    name = describe(n)
    if name is None:
        return CheckResult(False, f"No process has PID {n} right now. PIDs change with every run: compute the "
                                  "answer from /proc, do not type a number.")
    return CheckResult(False, f"PID {n} is {name!r} on the host, not the container's PID 1. The right process "
                              "runs sleep, and the last number on its NSpid line is 1.")


def check_host_pid(answer, container) -> CheckResult:
    """Exercise: which PID does the host give the container's PID 1? ``container``: a running Container."""
    if not_answered(answer):
        return not_answered_yet()
    try:
        truth = container.pid
    except Exception as error:  # noqa: BLE001 - a check explains, it does not crash
        return _not_found_or_failed(error)
    if not truth:
        return CheckResult(False, "The container is not running: start it (container.start()) before you look.")
    return judge_host_pid(answer, truth, monitor_pid=parent_pid(truth), kernel_pid=os.getpid())


# ---- exercise 3: the host's network, but a hostname of its own -----------------------------


def judge_host_network_own_hostname(facts: ContainerFacts) -> CheckResult:
    absent = _presence(facts)
    if absent is not None:
        return absent
    net_shared, uts_shared = facts.shares("network"), facts.shares("uts")
    if net_shared and not uts_shared:
        name = f" {facts.hostname!r}" if facts.hostname else ""
        note = ""
        if facts.hostname and facts.hostname == facts.host_hostname:
            note = f" (Its name{name} happens to be the host's: give it another one to tell them apart.)"
        return CheckResult(True, f"Right: its network namespace is the host's (inode {facts.inodes['network']}), its "
                                 f"UTS namespace is its own (inode {facts.inodes['uts']}), and so is its "
                                 f"hostname{name}. That is docker run --network host --hostname ...{note}")
    if not net_shared and uts_shared:
        return CheckResult(False, "The other way round: it has its own network namespace and the host's hostname. "
                                  "Leave \"network\" out of namespaces= and put \"uts\" in.")
    if not net_shared:
        return CheckResult(False, f"Its network namespace is its own (inode {facts.inodes.get('network')}, the "
                                  f"host's is {facts.host_inodes.get('network')}): \"network\" is still in "
                                  "namespaces=. Leave it out and the container stays in the host's.")
    return CheckResult(False, "Its UTS namespace is the host's, so it has the host's hostname. Add \"uts\" to "
                              "namespaces= and give it a name with hostname=...")


def check_host_network_own_hostname(container, state_root=None) -> CheckResult:
    """Exercise: a running container that shares the host's network but has its own hostname."""
    try:
        facts = container_facts(container, state_root)
    except Exception as error:  # noqa: BLE001
        return _not_found_or_failed(error)
    return judge_host_network_own_hostname(facts)


# ---- exercise 4: root in the container is uid 100000 on the host --------------------------


def judge_root_is_host_uid(facts: ContainerFacts, wanted: int = 100000) -> CheckResult:
    absent = _presence(facts)
    if absent is not None:
        return absent
    if facts.shares("user"):
        return CheckResult(False, f"It shares the host's user namespace, so its root is the host's root (uid "
                                  f"{facts.host_uid} on the host). Add \"user\" to namespaces=: then root inside "
                                  "maps to another uid outside.")
    # A uid_map line "inside outside count" maps inside..inside+count-1 to outside..; find root's line.
    line = next(((inside, outside, count) for inside, outside, count in facts.uid_map if inside <= 0 < inside + count), None)
    if line is None:
        return CheckResult(False, "Its user namespace maps no host uid to root (uid 0), so nobody is root inside. "
                                  f"Map uid 0 to {wanted}: uid_map=(0, {wanted}, 65536).")
    outside = line[1] - line[0]
    if outside == 0:
        return CheckResult(False, "It has a user namespace, but root inside maps to uid 0 outside: root is still the "
                                  f"host's root. Map it to {wanted}: uid_map=(0, {wanted}, 65536).")
    if outside != wanted:
        return CheckResult(False, f"Root inside is uid {outside} on the host, not {wanted}. The middle number of "
                                  f"uid_map is the host uid: uid_map=(0, {wanted}, 65536).")
    note = ""
    if facts.host_uid is not None and facts.host_uid != wanted:
        note = (f" Its program itself runs as uid {facts.host_uid} on the host, so as uid {facts.host_uid - wanted} "
                "inside: not as root.")
    return CheckResult(True, f"Right: /proc/{facts.pid}/uid_map says {' '.join(map(str, line))}: uid 0 inside is uid "
                             f"{wanted} on the host. Inside, root has root's powers over what its namespaces own; "
                             f"towards the host's files it is just uid {wanted}, an account with no rights of its "
                             f"own.{note}")


def check_root_is_host_uid(container, wanted: int = 100000, state_root=None) -> CheckResult:
    """Exercise: a running container whose root (uid 0) is uid ``wanted`` on the host."""
    if not is_root():
        return _needs_root(f"an ordinary user may map only their own uid into a user namespace, so root "
                           f"inside can be no uid but yours outside, never {wanted} (other maps take root, or "
                           "the setuid helper newuidmap(1) with /etc/subuid)")
    try:
        facts = container_facts(container, state_root)
    except Exception as error:  # noqa: BLE001
        return _not_found_or_failed(error)
    return judge_root_is_host_uid(facts, wanted)


# ---- exercise 5 (challenge): two containers, one network namespace (a "pod") -------------


def judge_shared_network(first: ContainerFacts, second: ContainerFacts) -> CheckResult:
    for facts, what in ((first, "the first container"), (second, "the second container")):
        absent = _presence(facts, what)
        if absent is not None:
            return absent
    if first.shares("network"):
        return CheckResult(False, f"{first.id!r} uses the host's network namespace. Create it with \"network\" in "
                                  "namespaces=, so there is a namespace of its own to share.")
    if second.shares("network"):
        return CheckResult(False, f"{second.id!r} is in the host's network namespace, not in {first.id!r}'s. Leaving "
                                  "\"network\" out means \"stay in the host's\". To join another container's, the "
                                  "config.json entry needs a path: {\"type\": \"network\", \"path\": "
                                  "\"/proc/<its pid>/ns/net\"}.")
    if first.inodes.get("network") != second.inodes.get("network"):
        return CheckResult(False, f"Each has a network namespace of its own ({first.inodes.get('network')} and "
                                  f"{second.inodes.get('network')}). A {{\"type\": \"network\"}} entry without a path "
                                  "creates a new one; with \"path\": \"/proc/<pid>/ns/net\" it joins that process's.")
    apart = [kind for kind in ("pid", "uts", "ipc", "mount") if first.inodes.get(kind) != second.inodes.get(kind)]
    return CheckResult(True, f"Right: both use network namespace {first.inodes['network']}, which is not the host's. "
                             f"They still have separate {', '.join(apart) or 'nothing else'}. Docker calls this "
                             "--network container:<name>; a Kubernetes pod is the same idea: a 'pause' container holds "
                             "the namespaces and the app containers join them (setns(2)).")


def check_shared_network(first, second, state_root=None) -> CheckResult:
    """Exercise: two running containers in one network namespace that is not the host's."""
    if not is_root():
        return _needs_root("teachdock's rootless containers cannot share a network namespace: each has a user "
                           "namespace of its own, and setns(2) into a namespace that another user namespace "
                           "owns fails with EPERM")
    try:
        return judge_shared_network(container_facts(first, state_root), container_facts(second, state_root))
    except Exception as error:  # noqa: BLE001
        return _not_found_or_failed(error)


# ---- clean-up ---------------------------------------------------------------------------------


def remove_exercise_containers(ids=EXERCISE_IDS, state_root=None) -> list[str]:
    """Delete the exercise containers that exist (running ones too); return the ids removed."""
    from teachdock.errors import NotFound  # noqa: PLC0415
    from teachdock.runtime import Container  # noqa: PLC0415

    removed = []
    for container_id in ids:
        try:
            container = Container.load(container_id, state_root)
            monitor = container.state().get("monitorPid")
            container.delete(force=True)
        except NotFound:
            continue
        removed.append(container_id)
        # A container created in this process has its monitor as our child: reap it, or it stays a zombie.
        if monitor and parent_pid(monitor) == os.getpid():
            try:
                os.waitpid(monitor, 0)
            except ChildProcessError:
                pass
    return removed
