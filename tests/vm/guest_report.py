"""pytest plugin for the run *inside* the VM: one machine-readable line per test on the console.

The host cannot see the guest's pytest objects, only what the serial console carries. So
for each test (once its teardown is done) this prints one line::

    TEACHDOCK-TEST {"nodeid": "...", "outcome": "passed|failed|error|skipped", "longrepr": "...", ...}

and ``TEACHDOCK-TEST-SESSION {"exitstatus": N}`` at the end. Lines are printed as each test
ends, so a VM killed half-way still tells which tests finished. Collection errors and
module-level skips are reported with the module's node id.

Some tests need a host tool the busybox-only guest lacks, or cannot work in a small VM;
GUEST_SKIPS skips them there, with the reason (the host run still covers them).

A test that hangs would hold up every later one until the host kills QEMU; after
$TEACHDOCK_VM_TEST_TIMEOUT seconds (default 60) faulthandler prints every thread's
stack and ends the guest's pytest, so the console shows where it hung.

Loaded with ``-p guest_report`` (tests/vm on PYTHONPATH); the host side is test_in_vm.py.
"""

import faulthandler
import json
import os

import pytest

PREFIX = "TEACHDOCK-TEST"
TIMEOUT = float(os.environ.get("TEACHDOCK_VM_TEST_TIMEOUT", "60"))

#: node id (or a prefix of one: a whole file) -> why it is skipped in the VM
GUEST_SKIPS = {
    "tests/integration/test_rootless.py":
        "needs util-linux `setpriv --reuid` to become nobody; the VM has only busybox (the host runs it)",
    "tests/integration/test_busybox_rootfs.py::test_tmp_is_writable_by_an_unprivileged_user":
        "needs coreutils `chroot --userspec`; the VM has only busybox (the host runs it)",
    "tests/integration/test_rootfs_pivot.py::test_masked_paths_show_nothing":
        "reads the host's /proc/kcore whole, which the VM's kernel has (a file of 128 TiB): MemoryError",
    "tests/integration/test_cleanup.py::test_200_sequential_runs_leave_nothing_behind":
        "200 container runs take half a minute under emulation; the host runs it, and every VM test's "
        "leak check covers the v2 cgroup clean-up",
}

# The console as it was when pytest started, before pytest's own capture takes over fd 1.
_console = os.fdopen(os.dup(1), "w", buffering=1)
_results: dict[str, dict] = {}


def _emit(kind: str, data: dict) -> None:
    _console.write(f"\n{kind} {json.dumps(data)}\n")  # pytest's progress dots may precede it
    _console.flush()


def _skip_reason(report) -> str:
    """A skip's longrepr is (file, line, "Skipped: reason")."""
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def pytest_collection_modifyitems(items):
    for item in items:
        for prefix, reason in GUEST_SKIPS.items():
            if item.nodeid == prefix or item.nodeid.startswith(prefix + "::"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(TIMEOUT, exit=True, file=_console)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_runtest_logreport(report):
    entry = _results.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                "longrepr": "", "duration": 0.0, "stdout": ""})
    entry["duration"] = round(entry["duration"] + report.duration, 3)
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" and entry["outcome"] != "error" else "error"
        entry["longrepr"] += (f"[{report.when}] " if report.when != "call" else "") + str(report.longrepr) + "\n"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["longrepr"] = _skip_reason(report)
    if report.when == "teardown":
        entry["stdout"] = report.capstdout  # the last report carries every phase's output
        _emit(PREFIX, _results.pop(report.nodeid))


def pytest_collectreport(report):
    if report.failed:
        _emit(PREFIX, {"nodeid": report.nodeid, "outcome": "error", "longrepr": str(report.longrepr),
                       "duration": 0.0, "stdout": ""})
    elif report.skipped:
        _emit(PREFIX, {"nodeid": report.nodeid, "outcome": "skipped", "longrepr": _skip_reason(report),
                       "duration": 0.0, "stdout": ""})


def pytest_sessionfinish(session, exitstatus):
    _emit(f"{PREFIX}-SESSION", {"exitstatus": int(exitstatus), "collected": session.testscollected})
