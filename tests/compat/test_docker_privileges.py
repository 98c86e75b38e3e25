"""The docker CLI's ``--cap-add``, ``--cap-drop``, ``--privileged`` and ``--device`` against teachdockd,
side by side with dockerd (Debian's 20.10) where it can run them.

dockerd 20.10 cannot start a ``--privileged`` (or ``--cap-add ALL``) container on this machine:
the machine's bounding set lacks CAP_SYS_RESOURCE and runc says "unable to apply caps: operation
not permitted". teachdockd grants every capability the bounding set still holds (as the daemon's
``CapBnd``), so those cases are checked against the machine's own bounding set instead.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.support.daemons import DOCKER, docker_cli
from tests.support.dockerd import dockerd_missing, running_dockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
]

CAPS = "grep -E '^Cap(Eff|Bnd):' /proc/1/status | tr -s '\\t' ' '"


def host_bounding_set() -> str:
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("CapBnd:"))


@pytest.fixture(scope="module")
def docker(daemon, tmp_path_factory):
    yield docker_cli(daemon.socket_path, tmp_path_factory.mktemp("docker-config"))
    daemon.remove_all()


@pytest.fixture(scope="module")
def oracle():
    reason = dockerd_missing()
    if reason:
        pytest.skip(reason)
    with running_dockerd() as process:
        yield process


def run(docker, *args) -> str:
    result = docker("run", "--rm", "--network", "none", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("flags", [
    (), ("--cap-drop", "ALL"), ("--cap-add", "SYS_ADMIN"), ("--cap-add", "sys_admin", "--cap-drop", "CAP_chown"),
    ("--cap-drop", "all", "--cap-add", "chown"), ("--cap-add", "NET_ADMIN", "--cap-drop", "NET_ADMIN"),
], ids=lambda flags: " ".join(flags) or "default")
def test_capabilities_as_dockerd_gives_them(docker, oracle, flags):
    assert run(docker, *flags, "busybox", "sh", "-c", CAPS) == run(oracle.docker, *flags, "busybox", "sh", "-c", CAPS)


def test_add_all_but_one(docker, oracle):
    """dockerd 20.10's "ALL" stops at CAP_AUDIT_READ (37); teachdockd's goes to what the kernel knows
    (CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE too): compared on the first 38."""
    flags = ("--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "busybox", "grep", "CapEff:", "/proc/1/status")
    ours, theirs = (int(run(client, *flags).split()[1], 16) for client in (docker, oracle.docker))
    assert ours & (1 << 38) - 1 == theirs == int(host_bounding_set(), 16) & (1 << 38) - 1 & ~(1 << 24)
    assert ours == int(host_bounding_set(), 16) & ~(1 << 24)


@pytest.mark.parametrize("field", ["add", "drop"])
def test_an_unknown_capability_is_refused_in_dockerds_words(docker, oracle, field):
    words = f'invalid Cap{field.capitalize()}: unknown capability: "CAP_FOO"'
    for client in (docker, oracle.docker):
        refused = client("create", f"--cap-{field}", "foo", "busybox", "true")
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr


def test_inspect_shows_the_names_and_devices_as_dockerd_stores_them(docker, oracle):
    flags = ("--cap-add", "sys_admin", "--cap-drop", "CAP_chown", "--device", "/dev/null:/dev/mynull")
    shown = []
    for client in (docker, oracle.docker):
        created = client("create", "--network", "none", *flags, "busybox", "true")
        assert created.returncode == 0, created.stderr
        name = created.stdout.strip()
        shown.append(client("inspect", "-f", "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} "
                            "{{json .HostConfig.Devices}} {{json .HostConfig.Privileged}}", name).stdout)
        client("rm", name)
    assert shown[0] == shown[1] == ('["CAP_SYS_ADMIN"] ["CAP_CHOWN"] [{"PathOnHost":"/dev/null",'
                                    '"PathInContainer":"/dev/mynull","CgroupPermissions":"rwm"}] false\n')


def test_a_device_node_under_another_name(docker, oracle):
    script = "ls -l /dev/mynull | cut -c1-10; echo hi > /dev/mynull && echo written"
    for client in (docker, oracle.docker):
        assert run(client, "--device", "/dev/null:/dev/mynull", "busybox", "sh", "-c", script) == \
            "crw-rw-rw-\nwritten\n"


@pytest.mark.parametrize("path, reason", [("/etc/passwd", "not a device node"),
                                          ("/nonexistent", "no such file or directory")])
def test_a_path_that_is_no_device_is_refused_in_dockerds_words(docker, oracle, path, reason):
    words = f'error gathering device information while adding custom device "{path}": {reason}'
    for client in (docker, oracle.docker):
        refused = client("run", "--rm", "--network", "none", "--device", path, "busybox", "true")
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    assert docker("ps", "-aq").stdout == ""  # teachdockd refused it at create: nothing left


def test_privileged_gets_every_capability_the_machine_grants(docker):
    bounding = host_bounding_set()
    assert run(docker, "--privileged", "busybox", "sh", "-c", CAPS) == f"CapEff: {bounding}\nCapBnd: {bounding}\n"
    assert run(docker, "--cap-add", "ALL", "busybox", "sh", "-c", CAPS) == f"CapEff: {bounding}\nCapBnd: {bounding}\n"


def test_privileged_lifts_the_filters_and_shows_the_host_devices(docker):
    script = ("grep Seccomp: /proc/self/status | tr -s '\\t' ' '; "
              "grep -cE ' /proc/(kcore|keys|sys|sysrq-trigger) ' /proc/self/mountinfo; "
              "grep ' /sys ' /proc/self/mountinfo | grep -o ' rw,' | head -1; "
              "test -c /dev/tty0 -o ! -e /dev/tty0 && echo devices")
    assert run(docker, "--privileged", "busybox", "sh", "-c", script) == "Seccomp: 0\n0\n rw,\ndevices\n"
    seccomp, masked, *rest = run(docker, "busybox", "sh", "-c", script).splitlines()
    assert (seccomp, rest) == ("Seccomp: 2", ["devices"]) and int(masked) >= 2  # /proc/sys, /proc/kcore at least
    listed = run(docker, "--privileged", "busybox", "sh", "-c", "ls /dev | wc -l")
    assert int(listed) > 20  # the host's nodes (a default container has about a dozen entries)


def test_exec_privileged(docker):
    started = docker("run", "-d", "--network", "none", "busybox", "sleep", "60")
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    try:
        plain = docker("exec", name, "grep", "CapEff:", "/proc/self/status").stdout.split()
        privileged = docker("exec", "--privileged", name, "grep", "CapEff:", "/proc/self/status").stdout.split()
        assert plain == ["CapEff:", "00000000a80425fb"]
        assert privileged == ["CapEff:", host_bounding_set()]
    finally:
        docker("rm", "-f", name)


def test_a_capability_the_machine_withholds_is_refused_with_the_reason(docker):
    numbers = int(host_bounding_set(), 16)
    if numbers >> 24 & 1:
        pytest.skip("this machine grants CAP_SYS_RESOURCE")
    refused = docker("create", "--cap-add", "SYS_RESOURCE", "busybox", "true")
    assert refused.returncode != 0
    assert "capability CAP_SYS_RESOURCE cannot be granted: it is not in this machine's bounding set" in refused.stderr
    assert json.loads(docker("ps", "-aq", "--format", "{{json .ID}}").stdout or "null") is None


def test_the_device_rules_let_in_only_what_was_given(docker, oracle):
    """Opening a host block device: refused by default (the node made with mknod, its opening denied by the
    devices cgroup), allowed with --device; with --privileged every host device is there and opens."""
    if not os.path.exists("/dev/loop0"):
        pytest.skip("this machine has no /dev/loop0")
    script = "mknod /dev/l0 b 7 0 2>/dev/null; (: < /dev/l0) 2>/dev/null && echo opened || echo refused"
    for client in (docker, oracle.docker):
        assert run(client, "busybox", "sh", "-c", script) == "refused\n"
        assert run(client, "--device", "/dev/loop0:/dev/l0", "busybox", "sh", "-c", script) == "opened\n"
    assert run(docker, "--privileged", "busybox", "sh", "-c", script.replace("/dev/l0", "/dev/loop0")) == "opened\n"


def test_privileged_writable_cgroups_and_dockerds_label_option(docker, oracle):
    script = "grep ' /sys/fs/cgroup' /proc/self/mountinfo | grep -c ' ro,'"
    assert run(docker, "--privileged", "busybox", "sh", "-c", script + " || true") == "0\n"
    assert int(run(docker, "busybox", "sh", "-c", script)) >= 1
    for client in (docker, oracle.docker):
        created = client("create", "--network", "none", "--privileged", "busybox", "true")
        assert created.returncode == 0, created.stderr
        name = created.stdout.strip()
        shown = client("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", name).stdout
        client("rm", name)
        assert shown == '["label=disable"]\n'


def test_a_directory_of_devices(docker, oracle):
    if not os.path.isdir("/dev/net"):
        pytest.skip("this machine has no /dev/net")
    script = "ls -lR /dev/net | grep '^c' | tr -s ' ' | cut -d' ' -f1,5,6,10"
    assert run(docker, "--device", "/dev/net", "busybox", "sh", "-c", script) == \
        run(oracle.docker, "--device", "/dev/net", "busybox", "sh", "-c", script) != ""


def test_a_device_cgroup_rule_lets_a_node_made_inside_open(docker, oracle):
    if not os.path.exists("/dev/loop0"):
        pytest.skip("this machine has no /dev/loop0")
    script = "mknod /dev/l0 b 7 0; (: < /dev/l0) 2>/dev/null && echo opened || echo refused"
    for client in (docker, oracle.docker):
        assert run(client, "--device-cgroup-rule", "b 7:* rw", "busybox", "sh", "-c", script) == "opened\n"
        assert run(client, "--device-cgroup-rule", "b 7:1 rw", "busybox", "sh", "-c", script) == "refused\n"
    created = docker("create", "--device-cgroup-rule", "c 1:3 rwm", "busybox", "true")
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    assert docker("inspect", "-f", "{{json .HostConfig.DeviceCgroupRules}}", name).stdout == '["c 1:3 rwm"]\n'
    docker("rm", name)
