"""The runtime's cgroup and isolation tests, run inside a tiny VM on a real cgroup v2 kernel.

This machine and CI bind the memory, cpu and pids controllers to cgroup v1, so on the host
the v2 driver only meets fake trees. Here a QEMU guest (teachdock.vm.guest) boots the
host's Debian kernel with cgroup2 at /sys/fs/cgroup, shares this checkout read-only at
/project, and runs pytest on GUEST_FILES in there. Every guest test becomes one item of
this run, ``test_in_vm[<its node id>]``, which passes, fails (with the guest's failure
text) or skips (with the guest's reason) as the test did in the VM.

pytest needs its items before any test runs, so the node ids are collected on the host
first (``pytest --collect-only`` in a subprocess, well under a second); the VM boots
once, when the first item runs. Results travel back over the serial console, one JSON
line per test (tests/vm/guest_report.py, the plugin the guest's pytest loads).

Run just this part with::

    .venv/bin/python -m pytest tests/vm -p no:cacheprovider -o addopts=""
"""

import glob
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from teachdock.errors import NotFound
from teachdock.vm import VmError, VmTimeout, find_qemu, prepare_kernel
from teachdock.vm import guest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: What the guest runs: the cgroup driver and limits (v2 for real), isolation and lifecycle,
#: and the v2-only behaviour checks. Paths relative to the repository root.
GUEST_FILES = [
    "tests/integration/test_cgroup_driver.py",
    "tests/integration/test_limits.py",
    *sorted(os.path.relpath(p, REPO) for p in glob.glob(str(REPO / "tests/integration/test_ns_*.py"))),
    "tests/integration/test_lifecycle.py",
    "tests/integration/test_rootfs_pivot.py",
    "tests/integration/test_capabilities.py",
    "tests/integration/test_cleanup.py",
    "tests/integration/test_bad_input.py",
    "tests/integration/test_layers_overlay.py",
    "tests/integration/test_busybox_rootfs.py",
    "tests/vm/guest_v2_checks.py",
]
#: The runtime uses syscalls (and pyroute2), never these util-linux/iproute2 tools: the guest's
#: busybox versions are removed before its pytest starts, so a test that needs one fails.
HIDDEN_TOOLS = ("mount", "umount", "ip", "nsenter", "unshare", "pivot_root", "switch_root", "ifconfig", "route")
#: The whole VM part (boot, guest pytest, power-off) must end within this; QEMU is killed then.
VM_TIMEOUT = 170
MARKER = "TEACHDOCK-TEST"

pytestmark = pytest.mark.slow


def collect_guest_tests() -> tuple[list[str], str]:
    """(node ids, error text) of GUEST_FILES, collected by the host's pytest."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", *GUEST_FILES]
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")  # nbval & co. are not needed to list tests
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    ids = [line for line in done.stdout.splitlines() if "::" in line and not line.startswith(" ")]
    if done.returncode != 0 or not ids:
        return [], f"`{' '.join(command)}` failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    return ids, ""


GUEST_TEST_IDS, COLLECT_ERROR = collect_guest_tests()


@dataclass
class GuestSession:
    """What came back from the VM."""

    results: dict[str, dict] = field(default_factory=dict)   # node id -> the guest plugin's record
    session: dict | None = None      # {"exitstatus": N, "collected": N}, None if pytest never finished
    ended: str = ""                  # how the VM run ended, one line
    console_tail: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def result_for(self, nodeid: str) -> dict | None:
        """The test's record, or its module's (a collection error or a module-level skip)."""
        return self.results.get(nodeid) or self.results.get(nodeid.split("::")[0])


def parse_console(text: str) -> tuple[dict[str, dict], dict | None]:
    results, session = {}, None
    for line in text.splitlines():
        if line.startswith(f"{MARKER} {{"):
            record = json.loads(line[len(MARKER) + 1:])
            results[record["nodeid"]] = record
        elif line.startswith(f"{MARKER}-SESSION {{"):
            session = json.loads(line[len(MARKER) + len("-SESSION "):])
    return results, session


@pytest.fixture(scope="module")
def guest_session(vm_summary) -> GuestSession:
    """Boot the VM once and run the guest's pytest; skip when QEMU or a kernel is missing."""
    try:
        find_qemu()
        kernel = prepare_kernel()
    except NotFound as exc:
        pytest.skip(f"the cgroup v2 VM needs QEMU and a Linux kernel: {exc}")
    started = time.monotonic()
    try:
        guest.python_initramfs(kernel)
    except PermissionError as exc:
        pytest.skip(f"cannot write the VM's cache ({exc}): run as root or set TEACHDOCK_DATA_ROOT")
    except VmError as exc:
        pytest.skip(f"cannot build the VM's Python guest: {exc}")
    built = time.monotonic() - started

    command = (f"cd {guest.GUEST_PROJECT} && exec python3 -m pytest -p guest_report -p no:cacheprovider "
               f"-o addopts= -q --color=no -rfEs {' '.join(GUEST_FILES)}")
    env = {"PYTHONPATH": f"{guest.GUEST_PROJECT}:{guest.GUEST_PROJECT}/{HERE.relative_to(REPO)}",
           "TEACHDOCK_VM_HIDDEN_TOOLS": " ".join(HIDDEN_TOOLS)}
    session = GuestSession()
    try:
        run = guest.run_in_guest(command, share=REPO, env=env, timeout=VM_TIMEOUT, kernel=kernel,
                                 hide_tools=HIDDEN_TOOLS)
    except VmTimeout as exc:
        console, session.ended = exc.console, f"QEMU was killed after {VM_TIMEOUT} s ({exc.phase} phase)"
    else:
        console = run.vm.console
        session.ended = f"guest pytest exited with status {run.status}"
        session.seconds = {"to boot marker": run.vm.seconds_to_marker, "guest pytest": run.vm.workload_seconds,
                           "QEMU total": run.vm.total_seconds}
    session.seconds = {"initramfs (cached)": built, **session.seconds,
                       "VM part total": time.monotonic() - started}
    session.results, session.session = parse_console(console)
    session.console_tail = "\n".join(line for line in console.splitlines()[-40:]
                                     if not line.startswith(MARKER))
    counts = {}
    for record in session.results.values():
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    vm_summary.append(f"guest tests: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}; {session.ended}")
    vm_summary.append("times: " + ", ".join(f"{k} {v:.1f} s" for k, v in session.seconds.items()))
    return session


# Explicit ids: pytest would shorten a generated id longer than 100 characters to "nodeid140".
@pytest.mark.parametrize("nodeid", GUEST_TEST_IDS or ["(collection failed)"],
                         ids=GUEST_TEST_IDS or ["(collection failed)"])
def test_in_vm(guest_session, nodeid):
    if COLLECT_ERROR:
        pytest.fail(COLLECT_ERROR, pytrace=False)
    record = guest_session.result_for(nodeid)
    if record is None:
        pytest.fail(f"the VM reported no result for {nodeid}: {guest_session.ended}.\n"
                    f"Last console lines:\n{guest_session.console_tail}", pytrace=False)
    if record.get("stdout"):
        print(record["stdout"], end="")
    if record["outcome"] == "skipped":
        pytest.skip(f"in the VM: {record['longrepr']}")
    if record["outcome"] in ("failed", "error"):
        pytest.fail(f"in the VM ({record['outcome']}):\n{record['longrepr']}", pytrace=False)
    assert record["outcome"] == "passed", record


def test_the_guest_run_finished_and_matches_the_host_collection(guest_session):
    assert guest_session.session is not None, (
        f"the guest's pytest never finished: {guest_session.ended}\n{guest_session.console_tail}")
    assert guest_session.session["exitstatus"] in (0, 1), guest_session.console_tail  # 1: some test failed
    unknown = set(guest_session.results) - set(GUEST_TEST_IDS) - {i.split("::")[0] for i in GUEST_TEST_IDS}
    assert not unknown, f"the guest ran tests the host did not collect: {sorted(unknown)}"


def test_the_v2_driver_tests_ran_in_the_vm_instead_of_skipping(guest_session):
    """The point of the VM: memory.max/OOM, pids.max and cpu.max checked on a real v2 kernel."""
    for name in ("test_memory_limit_oom_kills_a_hog", "test_pids_limit_makes_forks_fail",
                 "test_cpu_quota_halves_a_busy_loop", "test_kill_all_and_bad_pid"):
        record = guest_session.results.get(f"tests/integration/test_cgroup_driver.py::{name}[v2]")
        assert record is not None and record["outcome"] != "skipped", (name, record)
