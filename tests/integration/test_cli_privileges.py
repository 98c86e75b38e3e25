"""``teachdock run --privileged --cap-add --cap-drop --device --security-opt --read-only`` and
``teachdock exec --privileged`` against a real teachdockd, and the same through ``Client``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from teachdock.client import Client

pytestmark = [pytest.mark.root]

CAPS = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\\t' ' '"


def bounding_set() -> str:
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("CapBnd:"))


@pytest.fixture
def td(daemon, tmp_path):
    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_CONFIG": str(tmp_path / "cfg"),
           "TEACHDOCK_AUTOSTART": "0"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "teachdock.cli", *args], capture_output=True, text=True,
                              timeout=60, env=env)

    yield run
    left = daemon.json("GET", "/v1.45/containers/json?all=1")
    daemon.remove_all()
    assert not left, f"the test left containers: {[c['Names'] for c in left]}"


def lines(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_capability_flags(td):
    assert lines(td("run", "--rm", "--cap-drop", "ALL", "--cap-add", "chown", "busybox", "sh", "-c", CAPS)) == [
        "CapEff: 0000000000000001", "NoNewPrivs: 0", "Seccomp: 2"]
    assert lines(td("run", "--rm", "--cap-add", "sys_admin", "busybox", "sh", "-c", CAPS))[0] == \
        "CapEff: 00000000a82425fb"  # Docker's 14 and CAP_SYS_ADMIN (21)


def test_privileged(td):
    assert lines(td("run", "--rm", "--privileged", "busybox", "sh", "-c", CAPS)) == [
        f"CapEff: {bounding_set()}", "NoNewPrivs: 0", "Seccomp: 0"]


def test_security_opt_read_only_and_a_device(td, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    script = "mkdir /tmp/x 2>/dev/null; echo mkdir=$?"
    assert lines(td("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "sh", "-c", script)) == [
        "mkdir=1"]
    assert lines(td("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "sh", "-c", CAPS))[1] == \
        "NoNewPrivs: 1"
    assert lines(td("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null; echo touch=$?")) == [
        "touch=1"]
    if not os.path.exists("/dev/loop0"):
        return  # the rest needs the loop driver (b 7:0) on this machine
    opening = "mknod /dev/l0 b 7 0; (: < /dev/l0) 2>/dev/null && echo opened || echo refused"
    assert lines(td("run", "--rm", "busybox", "sh", "-c", opening)) == ["refused"]
    assert lines(td("run", "--rm", "--device-cgroup-rule", "b 7:* rw", "busybox", "sh", "-c", opening)) == ["opened"]
    assert lines(td("run", "--rm", "--device", "/dev/zero:/dev/myzero:r", "busybox", "sh", "-c",
                    "head -c 3 /dev/myzero | od -An -tx1")) == [" 00 00 00"]


def test_exec_privileged(td):
    started = td("run", "-d", "busybox", "sleep", "60")
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    try:
        assert lines(td("exec", "--privileged", name, "grep", "CapEff:", "/proc/self/status")) == [
            f"CapEff:\t{bounding_set()}"]
        assert lines(td("exec", name, "grep", "CapEff:", "/proc/self/status")) == ["CapEff:\t00000000a80425fb"]
    finally:
        td("rm", "-f", name)


@pytest.mark.parametrize("flags, words", [
    (("--cap-add", "foo"), 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    (("--device", "/etc/passwd"), 'error gathering device information while adding custom device "/etc/passwd": '
                                  "not a device node"),
    (("--device", "/dev/null:/dev/x:rwx"), "bad mode specified: rwx"),
    (("--security-opt", "seccomp=/nonexistent.json"), "opening seccomp profile (/nonexistent.json) failed"),
    (("--security-opt", "bogus"), 'invalid --security-opt 1: "bogus"'),
    (("--device-cgroup-rule", "x 1:3 r"), "invalid device cgroup rule format: 'x 1:3 r'"),
])
def test_bad_flags_are_refused_and_leave_nothing(td, flags, words):
    refused = td("run", "--rm", *flags, "busybox", "true")
    assert refused.returncode == 125 and words in refused.stderr, refused.stderr


def test_the_client_takes_the_same_keywords(daemon):
    client = Client(f"unix://{daemon.socket_path}", autostart=False)
    try:
        result = client.run("busybox", CAPS, remove=True, cap_drop=["ALL"], security_opt=["no-new-privileges"])
        assert (result.exit_code, result.stdout.splitlines()) == (0, [
            "CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"])
        container = client.create("busybox", ["true"], privileged=True, devices=["/dev/null:/dev/mynull"])
        host = client.inspect(container)["HostConfig"]
        assert (host["Privileged"], host["Devices"]) == (True, [
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}])
        client.remove(container)
    finally:
        daemon.remove_all()
