"""Shared test set-up for tests/ and the notebooks (hence at the repository root): skip what needs root when we are not root, and say why.

Tests marked ``@pytest.mark.root`` (real namespaces, mounts, cgroups) are skipped with the
reason for an unprivileged contributor, instead of failing; a root-marked test needs no
``skipif(os.geteuid() != 0)`` of its own. Notebook cells tagged ``needs-root`` are *not*
skipped: they guard themselves (``teachdock.lab.has_root``), and
tests/integration/test_notebooks_without_root.py runs every chapter as ``nobody`` to prove it.
"""

import os
import secrets
import shutil
import signal
import subprocess
import time

import pytest

IS_ROOT = os.geteuid() == 0
DEFAULT_PIDFILE = "/run/teachdock/teachdock.pid"  # paths.DEFAULT_EXEC_ROOT's pidfile
_AT_START = pytest.StashKey[dict]()
SESSION_TAG = "TEACHDOCK_TEST_SESSION"  # in the environment of what this test session starts


def pytest_collection_modifyitems(config, items):
    # Browser tests run last: Playwright's sync API leaves an asyncio loop marked as running in
    # the main thread, and any later asyncio.run() (the lab widgets' tests) would then fail.
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)
    if IS_ROOT:
        return
    for item in items:
        if item.get_closest_marker("root") is not None:
            item.add_marker(pytest.mark.skip(reason="needs root: creates real namespaces, mounts or cgroups"))
    # Notebook cells tagged needs-root are not skipped: each guards itself (teachdock.lab.has_root)
    # and, without root, prints one sentence of what it would show. Running them is the test of that.


# --- the default daemon a notebook or a CLI test autostarted ----------------------------------------
# Chapters start the default teachdockd on first use (client/autostart.py), as they should for a
# learner. A test run must not leave it behind: it holds the default bridge (teachdock0, the first
# user subnets), an nftables table and IP forwarding, and the next run would meet them. So the
# session notes what was there when it began and, at its end, stops only a daemon it started (by
# the PID in its pidfile, and only when that daemon's environment carries this session's tag: two
# test sessions on one machine must not stop each other's daemon) and removes only what it made.

def _default_daemon_pid() -> int | None:
    try:
        pid = int(open(DEFAULT_PIDFILE).read().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def _host_facts() -> dict:
    return {"pid": _default_daemon_pid(), "bridge": os.path.exists("/sys/class/net/teachdock0"),
            "table": subprocess.run(["nft", "list", "table", "inet", "teachdock"], capture_output=True).returncode == 0,
            "forward": open("/proc/sys/net/ipv4/ip_forward").read().strip()}


def pytest_sessionstart(session):
    # Only where a default daemon can be autostarted with its network: not in the VM's guest,
    # which has neither nft nor the daemon's networking.
    if IS_ROOT and shutil.which("nft") and os.path.exists("/proc/sys/net/ipv4/ip_forward"):
        session.config.stash[_AT_START] = _host_facts()
        # Every process this session starts inherits the tag, so does a daemon they autostart: at
        # the end we stop a daemon only if it carries our tag, never one another session started.
        os.environ[SESSION_TAG] = secrets.token_hex(8)


def _started_by_this_session(pid: int) -> bool:
    try:
        environment = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return False
    return f"{SESSION_TAG}={os.environ.get(SESSION_TAG)}".encode() in environment


def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_AT_START, None)
    if before is None:
        return
    pid = _default_daemon_pid()
    if pid is None or pid == before["pid"] or not _started_by_this_session(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _default_daemon_pid() == pid:
        time.sleep(0.1)
    if not before["bridge"] and os.path.exists("/sys/class/net/teachdock0"):
        subprocess.run(["ip", "link", "delete", "teachdock0"], capture_output=True)
    if not before["table"]:
        subprocess.run(["nft", "delete", "table", "inet", "teachdock"], capture_output=True)
    with open("/proc/sys/net/ipv4/ip_forward", "w") as forward:
        forward.write(before["forward"])
