"""Chapter 11, the capstone: build your own container runtime, one level at a time.

The learner writes ``run_container(name, argv, rootfs, memory, bridge)`` in a notebook cell,
on ``teachdock.kernel``, and grows it through seven levels (``LEVELS``): fork and exec; PID and
UTS namespaces; a mount namespace with its own /proc; pivot_root; a memory cgroup; dropped
capabilities; a veth to a bridge. Three calls do the rest:

    try_runtime(run_container, ["sh", "-c", "echo $$; hostname"])   # run it, see the output
    check_level(3, run_container)      # run it on the probe; judge what the kernel shows
    solution(3)                        # the folded solution, printed when asked

Every run happens in a sandbox (``sandbox.py``): two forked processes with namespaces of
their own, so the notebook never unshares anything and a mistake never reaches the host.
``run_bundle`` runs an OCI bundle (config.json + rootfs, as ``teachdock runtime spec`` writes
it) with the learner's runtime, to compare with ``teachdock runtime run``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from teachdock.lab.capstone.cgroup import MemoryCgroup, memory_cgroup, remove_memory_cgroup
from teachdock.lab.capstone.checks import LEVELS, ROOT_LEVELS, judge_level, probe_values
from teachdock.lab.capstone.outside import look
from teachdock.lab.capstone.sandbox import PROBE_ARGV, run_sandboxed
from teachdock.lab.capstone.solutions import SOLUTIONS, solution, solution_source
from teachdock.lab.common.checks import not_answered_yet, CheckResult
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root
from teachdock.runtime.spec import DEFAULT_CAPABILITIES

__all__ = ["BRIDGE", "DEFAULT_CAPABILITIES", "LEVELS", "MEMORY", "MemoryCgroup", "RunOutput", "SOLUTIONS",
           "check_level", "is_stub", "memory_cgroup", "namespace_table", "run_bundle", "run_bundle_with_teachdock", "solution", "solution_source", "try_runtime"]

#: The memory limit the checks give (64 MiB) and the bridge they make in the sandbox.
MEMORY = 64 << 20
BRIDGE = "capbr0"


def is_stub(function) -> bool:
    """The exercise cell still holds the placeholder: a body of ``...`` (or only a docstring),
    which compiles to "return None" and nothing else."""
    if function is None or function is ...:
        return True
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    import dis

    steps = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]
    return steps in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def _default_rootfs(rootfs) -> str:
    if rootfs is None:
        from teachdock.lab.common.views import busybox_rootfs

        rootfs = busybox_rootfs()
    return str(Path(rootfs).absolute())


class RunOutput:
    """What try_runtime saw: the program's output, and what run_container returned or raised."""

    def __init__(self, run: dict):
        self.stdout, self.stderr = run["stdout"], run["stderr"]
        said = [r for r in run["reports"] if r.get("where") in ("runtime", "child")]
        self.returned = next((r["returned"] for r in said if "returned" in r and r["where"] == "runtime"), None)
        self.error = next((f"{r['where']}: {r['error']['kind']}: {r['error']['message']}" for r in said if "error" in r),
                          None)
        self.timed_out = run["timed_out"]

    def __repr__(self) -> str:
        lines = [self.stdout.rstrip("\n")] if self.stdout else []
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr.strip())
        if self.error:
            lines.append(say("raised {error}", error=self.error))
        if self.timed_out:
            lines.append(say("stopped: it did not finish in time"))
        lines.append(say("run_container returned {returned}", returned=repr(self.returned)))
        return "\n".join(lines)


def try_runtime(run_container, argv, *, name: str = "mycontainer", rootfs=None, memory: int | None = None,
                timeout: float = 20.0) -> RunOutput | None:
    """Run ``run_container(name, argv, rootfs, memory, bridge)`` in the sandbox and show what happened
    (None, with a sentence, while it is still the placeholder).

    ``memory`` defaults to 64 MiB with root (none without: cgroups belong to root).
    """
    if is_stub(run_container):
        print(say("run_container is still the placeholder (...): write this level's code in the cell above, "
                  "run that cell, then this one again."))
        return None
    if memory is None and is_root():
        memory = MEMORY
    try:
        run = run_sandboxed(run_container, argv, name=name, rootfs=_default_rootfs(rootfs), memory=memory,
                            bridge=BRIDGE, timeout=timeout, wait_for_ready=False)
    finally:
        if memory is not None:
            remove_memory_cgroup(memory_cgroup(name, prepare=False))  # what a failed run left
    return RunOutput(run)


def namespace_table(run_container, *, rootfs=None):
    """Your container's /proc/<pid>/ns links beside run_container's own, and its NSpid (a table)."""
    from teachdock.lab.capstone import views

    if is_stub(run_container):
        print(say("run_container is still the placeholder (...): write a level first."))
        return None
    memory = MEMORY if is_root() else None
    name = "mycontainer"
    try:
        shown = views.namespace_table(run_container, rootfs=_default_rootfs(rootfs), bridge=BRIDGE, memory=memory,
                                      name=name)
    finally:
        if memory is not None:
            remove_memory_cgroup(memory_cgroup(name, prepare=False))
    if shown is None:
        print(say("The program never got to the probe's 'ready': run check_level to see why."))
    return shown


def check_level(level: int, run_container, *, rootfs=None, timeout: float = 20.0) -> CheckResult:
    """Run the learner's runtime on the probe and judge level ``level`` (and the levels below it)."""
    if level not in LEVELS:
        return CheckResult(False, say("There are levels 1 to {last}; {level} is not one.", last=max(LEVELS),
                                      level=level))
    if is_stub(run_container):
        return not_answered_yet()
    if level in ROOT_LEVELS and not is_root():
        return CheckResult(False, say("Level {level} needs root: from level 5 on your runtime writes cgroup files, "
                                      "which belong to root. Start the lab as root (sudo scripts/lab) to check it.",
                                      level=level), answered=False)
    rootfs = _default_rootfs(rootfs)
    name = f"cap-{secrets.token_hex(3)}"
    cgroup = memory_cgroup(name) if level in ROOT_LEVELS else None
    facts = {"level": level, "name": name, "memory": MEMORY, "bridge": BRIDGE, "timeout": timeout,
             "cgroup": cgroup, "available_caps": _own_bounding_set()}
    try:
        run = run_sandboxed(run_container, PROBE_ARGV, name=name, rootfs=rootfs,
                            memory=MEMORY if cgroup else None, bridge=BRIDGE if level >= 7 else None,
                            timeout=timeout,
                            on_ready=lambda so_far: look(so_far, argv=PROBE_ARGV, rootfs=rootfs, level=level,
                                                         memory_cgroup=cgroup))
    finally:
        left_behind = cgroup is not None and remove_memory_cgroup(cgroup)
    facts.update(run_facts(run))
    facts["cgroup_left_behind"] = left_behind
    if facts.get("sandbox_error"):
        return CheckResult(False, say("The check could not make its sandbox: {error}. It needs root, or user "
                                      "namespaces for unprivileged users. Start the lab as root (sudo scripts/lab) "
                                      "to check it.", error=facts["sandbox_error"]), answered=False)
    return judge_level(level, facts)


def run_facts(run: dict) -> dict:
    """The parts of a sandboxed run the judges read (see checks.py)."""
    facts = {"timed_out": run["timed_out"], "returned_early": run["returned_early"], "stdout": run["stdout"],
             "stderr": run["stderr"], "inside": probe_values(run["stdout"]), "outside": run["inspected"] or {},
             "leaked": [], "returned": None, "error": None}
    for report in run["reports"]:
        where = report.get("where")
        if where == "sandbox":
            facts["leaked"] = report.get("leaked", facts["leaked"])
            if "error" in report:
                facts["sandbox_error"] = report["error"]["message"]
        elif "error" in report and facts["error"] is None:
            facts["error"], facts["error_where"] = report["error"], where
            facts["mounts_called"] = report.get("mounts", [])
        elif "returned" in report and where == "runtime":
            facts["returned"] = report["returned"]
        elif "returned" in report and where == "child":
            facts["child_returned"] = True
    return facts


def _own_bounding_set() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


def run_bundle(run_container, bundle, *, timeout: float = 20.0) -> RunOutput:
    """Run an OCI bundle (``<bundle>/config.json`` and its rootfs) with the learner's runtime:
    its process.args, root.path, hostname and memory limit - what the seven levels know how to do."""
    config = json.loads((Path(bundle) / "config.json").read_text())
    rootfs = Path(config["root"]["path"])
    if not rootfs.is_absolute():
        rootfs = Path(bundle) / rootfs
    memory = (config.get("linux", {}).get("resources", {}).get("memory") or {}).get("limit")
    return try_runtime(run_container, config["process"]["args"], name=config.get("hostname", "container"),
                       rootfs=os.fspath(rootfs), memory=memory, timeout=timeout)


def run_bundle_with_teachdock(bundle, container_id: str | None = None, *, timeout: float = 60.0) -> str:
    """``teachdock runtime run --bundle BUNDLE ID``, as a learner would type it; its stdout.

    A state root of its own (a temporary directory) keeps the container out of everyone's list.
    """
    import subprocess
    import sys
    import tempfile

    container_id = container_id or f"cap-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="td-capstone-state-") as state_root:
        done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", state_root, "run",
                               "--bundle", os.fspath(bundle), container_id],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0 and not done.stdout:
        raise RuntimeError(say("teachdock runtime run exited with {code}: {error}", code=done.returncode,
                               error=done.stderr.strip()))
    return done.stdout
