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

from teachdock.lab.common.checks import CheckResult, as_int, not_answered, not_answered_yet, observe
from teachdock.lab.common.language import say
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


def _presence(facts: ContainerFacts, which: str = "") -> CheckResult | None:
    """The answer when the container is missing or has ended; None when it can be judged.
    ``which``: "first" or "second" when the exercise asks for two containers."""
    if not facts.found:
        if which == "first":
            missing = say("No container called {id} yet. Create and start the first container with that id, "
                          "then run this cell again.", id=repr(facts.id))
        elif which == "second":
            missing = say("No container called {id} yet. Create and start the second container with that id, "
                          "then run this cell again.", id=repr(facts.id))
        else:
            missing = say("No container called {id} yet. Create and start it with that id, then run this cell "
                          "again.", id=repr(facts.id))
        return CheckResult(False, missing, answered=False)
    if facts.status not in ("created", "running"):
        return CheckResult(False, say("Container {id} has ended ({status}): its program ended, and its "
                                      "namespaces ended with it (a namespace lives only while a process, or a bind "
                                      "mount, holds it). Run something that lasts, such as [\"sleep\", \"600\"], "
                                      "and start it again (delete the old one first: Container.load({id}).delete()).",
                                      id=repr(facts.id), status=facts.status or "gone"))
    return None


def _not_found_or_failed(error: Exception) -> CheckResult:
    return CheckResult(False, say("Could not inspect the container ({error}). Containers need root: see the "
                                  "doctor() table.", error=f"{type(error).__name__}: {error}"))


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
        return CheckResult(False, say('Answer with namespace names, like {{"pid", "ipc"}} or "pid ipc" (you gave '
                                      '{answer}).', answer=repr(answer)))
    names, unknown = parsed
    truth, asked = set(truth), set(asked)
    if unknown:
        if len(unknown) == 1:
            return CheckResult(False, say("{names} is not a namespace kind. The eight kinds are {kinds}.",
                                          names=unknown[0], kinds=", ".join(KINDS)))
        return CheckResult(False, say("{names} are not namespace kinds. The eight kinds are {kinds}.",
                                      names=", ".join(unknown), kinds=", ".join(KINDS)))
    if names == truth:
        return CheckResult(True, say("Right: {kinds}. Only the kinds listed in namespaces= get a new namespace; every "
                                     "other kind stays the host's. In the explorer they are the amber cells.",
                                     kinds=", ".join(k for k in KINDS if k in truth)))
    if "mount" in names:
        return CheckResult(False, say("mount is never shared here: the runtime always creates a mount namespace, "
                                      "because it mounts /proc and /dev for the container and calls pivot_root, "
                                      "which needs one (the explorer's greyed-out box)."))
    if rootless and "user" in names - truth:
        return CheckResult(False, say("Without root, user is not shared: run() adds a user namespace to every "
                                      "container you start, because only inside one may an ordinary user create "
                                      "the others. As root, user would be the host's."))
    wrongly_shared = sorted((names & asked) - truth)
    if wrongly_shared:
        if len(wrongly_shared) == 1:
            return CheckResult(False, say("{kinds} was asked for in namespaces=, so the container got a new one: "
                                          "not shared.", kinds=wrongly_shared[0]))
        return CheckResult(False, say("{kinds} were asked for in namespaces=, so the container got new ones: "
                                      "not shared.", kinds=", ".join(wrongly_shared)))
    missing = truth - names
    if missing and missing <= NEVER_BY_DEFAULT:
        return CheckResult(False, say("Also shared: {kinds}. A kind you do not ask for is the host's, and these are "
                                      "never created unless asked for (docker run leaves them off too).",
                                      kinds=", ".join(k for k in KINDS if k in missing)))
    if missing:
        return CheckResult(False, say("{kinds}: not in namespaces=, so the container stays in the host's. Every "
                                      "kind missing from the list is shared.",
                                      kinds=", ".join(k for k in KINDS if k in missing)))
    extra = sorted(names - truth)
    return CheckResult(False, say("{kinds}: the container has its own. Look at which kinds you listed.",
                                  kinds=", ".join(extra)))


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
        return CheckResult(False, say("Answer with a whole number, computed from /proc (you gave {answer}).",
                                      answer=repr(answer)))
    if n == truth:
        return CheckResult(True, say("Right: {pid}. Its /proc/{pid}/status says NSpid: {pid} 1. One process, two "
                                     "numbers: the host's PID namespace calls it {pid}, the container's own calls "
                                     "it 1.", pid=truth))
    if n == 1:
        return CheckResult(False, say("1 is the number it has inside its own PID namespace. The host's PID namespace "
                                      "gives the same process another number: the first one on the NSpid line of its "
                                      "/proc/<pid>/status."))
    if n == kernel_pid:
        return CheckResult(False, say("{pid} is this notebook's own kernel (os.getpid()). The container's PID 1 is a "
                                      "descendant of it, further down the process tree.", pid=n))
    if monitor_pid is not None and n == monitor_pid:
        return CheckResult(False, say("{pid} is {name}, the container's monitor: the parent of its PID 1 on the host "
                                      "(the containerd-shim role). You are one level too high: look for the process "
                                      "whose parent is {pid}.", pid=n, name=repr(describe(n) or "td-shim")))
    name = describe(n)
    if name is None:
        return CheckResult(False, say("No process has PID {pid} right now. PIDs change with every run: compute the "
                                      "answer from /proc, do not type a number.", pid=n))
    return CheckResult(False, say("PID {pid} is {name} on the host, not the container's PID 1. The right process "
                                  "runs sleep, and the last number on its NSpid line is 1.", pid=n, name=repr(name)))


def check_host_pid(answer, container) -> CheckResult:
    """Exercise: which PID does the host give the container's PID 1? ``container``: a running Container."""
    if not_answered(answer):
        return not_answered_yet()
    try:
        truth = container.pid
    except Exception as error:  # noqa: BLE001 - a check explains, it does not crash
        return _not_found_or_failed(error)
    if not truth:
        return CheckResult(False, say("The container is not running: start it (container.start()) before you "
                                      "look."))
    return judge_host_pid(answer, truth, monitor_pid=parent_pid(truth), kernel_pid=os.getpid())


# ---- exercise 3: the host's network, but a hostname of its own -----------------------------


def judge_host_network_own_hostname(facts: ContainerFacts) -> CheckResult:
    absent = _presence(facts)
    if absent is not None:
        return absent
    net_shared, uts_shared = facts.shares("network"), facts.shares("uts")
    if net_shared and not uts_shared:
        net, uts = facts.inodes["network"], facts.inodes["uts"]
        if facts.hostname:
            right = say("Right: its network namespace is the host's (inode {net}), its UTS namespace is its own "
                        "(inode {uts}), and so is its hostname {name}. That is docker run --network host "
                        "--hostname ...", name=repr(facts.hostname), net=net, uts=uts)
        else:
            right = say("Right: its network namespace is the host's (inode {net}), its UTS namespace is its own "
                        "(inode {uts}), and so is its hostname. That is docker run --network host --hostname ...",
                        net=net, uts=uts)
        if facts.hostname and facts.hostname == facts.host_hostname:
            right += " " + say("(Its name {name} happens to be the host's: give it another one to tell them apart.)",
                               name=repr(facts.hostname))
        return CheckResult(True, right)
    if not net_shared and uts_shared:
        return CheckResult(False, say("The other way round: it has its own network namespace and the host's "
                                      "hostname. Leave \"network\" out of namespaces= and put \"uts\" in."))
    if not net_shared:
        return CheckResult(False, say("Its network namespace is its own (inode {own}, the host's is {host}): "
                                      "\"network\" is still in namespaces=. Leave it out and the container stays in "
                                      "the host's.", own=facts.inodes.get("network"),
                                      host=facts.host_inodes.get("network")))
    return CheckResult(False, say("Its UTS namespace is the host's, so it has the host's hostname. Add \"uts\" to "
                                  "namespaces= and give it a name with hostname=..."))


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
        return CheckResult(False, say("It shares the host's user namespace, so its root is the host's root (uid "
                                      "{uid} on the host). Add \"user\" to namespaces=: then root inside maps to "
                                      "another uid outside.", uid=facts.host_uid))
    # A uid_map line "inside outside count" maps inside..inside+count-1 to outside..; find root's line.
    line = next(((inside, outside, count) for inside, outside, count in facts.uid_map if inside <= 0 < inside + count), None)
    if line is None:
        return CheckResult(False, say("Its user namespace maps no host uid to root (uid 0), so nobody is root inside. "
                                      "Map uid 0 to {wanted}: uid_map=(0, {wanted}, 65536).", wanted=wanted))
    outside = line[1] - line[0]
    if outside == 0:
        return CheckResult(False, say("It has a user namespace, but root inside maps to uid 0 outside: root is still "
                                      "the host's root. Map it to {wanted}: uid_map=(0, {wanted}, 65536).",
                                      wanted=wanted))
    if outside != wanted:
        return CheckResult(False, say("Root inside is uid {outside} on the host, not {wanted}. The middle number of "
                                      "uid_map is the host uid: uid_map=(0, {wanted}, 65536).",
                                      outside=outside, wanted=wanted))
    right = say("Right: /proc/{pid}/uid_map says {line}: uid 0 inside is uid {wanted} on the host. Inside, root has "
                "root's powers over what its namespaces own; towards the host's files it is just uid {wanted}, an "
                "account with no rights of its own.", pid=facts.pid, line=" ".join(map(str, line)), wanted=wanted)
    if facts.host_uid is not None and facts.host_uid != wanted:
        right += " " + say("Its program itself runs as uid {host_uid} on the host, so as uid {inside} inside: not "
                           "as root.", host_uid=facts.host_uid, inside=facts.host_uid - wanted)
    return CheckResult(True, right)


def check_root_is_host_uid(container, wanted: int = 100000, state_root=None) -> CheckResult:
    """Exercise: a running container whose root (uid 0) is uid ``wanted`` on the host."""
    if not is_root():
        return CheckResult(False, say("This exercise needs root: an ordinary user may map only their own uid into a "
                                      "user namespace, so root inside can be no uid but yours outside, never {wanted} "
                                      "(other maps take root, or the setuid helper newuidmap(1) with /etc/subuid). "
                                      "Start the lab as root (sudo scripts/lab) to do it.", wanted=wanted),
                           answered=False)
    try:
        facts = container_facts(container, state_root)
    except Exception as error:  # noqa: BLE001
        return _not_found_or_failed(error)
    return judge_root_is_host_uid(facts, wanted)


# ---- exercise 5 (challenge): two containers, one network namespace (a "pod") -------------


def judge_shared_network(first: ContainerFacts, second: ContainerFacts) -> CheckResult:
    for facts, which in ((first, "first"), (second, "second")):
        absent = _presence(facts, which)
        if absent is not None:
            return absent
    if first.shares("network"):
        return CheckResult(False, say("{id} uses the host's network namespace. Create it with \"network\" in "
                                      "namespaces=, so there is a namespace of its own to share.", id=repr(first.id)))
    if second.shares("network"):
        return CheckResult(False, say("{second} is in the host's network namespace, not in {first}'s. Leaving "
                                      "\"network\" out means \"stay in the host's\". To join another container's, "
                                      "the config.json entry needs a path: {{\"type\": \"network\", \"path\": "
                                      "\"/proc/<its pid>/ns/net\"}}.", first=repr(first.id), second=repr(second.id)))
    if first.inodes.get("network") != second.inodes.get("network"):
        return CheckResult(False, say("Each has a network namespace of its own ({first} and {second}). A "
                                      "{{\"type\": \"network\"}} entry without a path creates a new one; with "
                                      "\"path\": \"/proc/<pid>/ns/net\" it joins that process's.",
                                      first=first.inodes.get("network"), second=second.inodes.get("network")))
    apart = [kind for kind in ("pid", "uts", "ipc", "mount") if first.inodes.get(kind) != second.inodes.get(kind)]
    if apart:
        return CheckResult(True, say("Right: both use network namespace {net}, which is not the host's. They still "
                                     "have separate {kinds}. Docker calls this --network container:<name>; a "
                                     "Kubernetes pod is the same idea: a 'pause' container holds the namespaces and "
                                     "the app containers join them (setns(2)).",
                                     net=first.inodes["network"], kinds=", ".join(apart)))
    return CheckResult(True, say("Right: both use network namespace {net}, which is not the host's; they share "
                                 "everything else too. Docker calls this --network container:<name>; a Kubernetes "
                                 "pod is the same idea: a 'pause' container holds the namespaces and the app "
                                 "containers join them (setns(2)).", net=first.inodes["network"]))


def check_shared_network(first, second, state_root=None) -> CheckResult:
    """Exercise: two running containers in one network namespace that is not the host's."""
    if not is_root():
        return CheckResult(False, say("This exercise needs root: teachdock's rootless containers cannot share a "
                                      "network namespace: each has a user namespace of its own, and setns(2) into a "
                                      "namespace that another user namespace owns fails with EPERM. Start the lab "
                                      "as root (sudo scripts/lab) to do it."), answered=False)
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
