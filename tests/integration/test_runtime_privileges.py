"""``teachdock.runtime.run`` with make_spec's ``cap_add``, ``cap_drop``, ``devices`` and ``privileged``: what a
notebook cell asks for without a daemon, as root on the real kernel."""

from __future__ import annotations

import pytest

from teachdock.errors import InvalidConfig
from teachdock.runtime import run

pytestmark = [pytest.mark.root]

STATUS = "grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -s '\\t' ' '"


def bounding_set() -> str:
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("CapBnd:"))


def output(rootfs, state_root, new_id, script, **options) -> list[str]:
    result = run(["sh", "-c", script], rootfs=rootfs, state_root=state_root, container_id=new_id(), timeout=30,
                 **options)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_cap_add_and_drop(rootfs, state_root, new_id):
    assert output(rootfs, state_root, new_id, STATUS, cap_drop=["ALL"], cap_add=["kill"],
                  no_new_privileges=False) == ["CapEff: 0000000000000020", "Seccomp: 2"]


def test_privileged(rootfs, state_root, new_id):
    script = STATUS + "; grep -c ' /proc/kcore ' /proc/self/mountinfo; test -e /dev/loop-control && echo host-dev"
    got = output(rootfs, state_root, new_id, script + " || true", privileged=True)
    assert got[:3] == [f"CapEff: {bounding_set()}", "Seccomp: 0", "0"]


def test_a_device_under_another_name(rootfs, state_root, new_id):
    assert output(rootfs, state_root, new_id, "head -c 2 /dev/z | od -An -tx1", devices=["/dev/zero:/dev/z:r"]) == [
        " 00 00"]


def test_a_path_that_is_no_device(rootfs, state_root, new_id):
    with pytest.raises(InvalidConfig, match='adding custom device "/etc/passwd": not a device node'):
        run(["true"], rootfs=rootfs, state_root=state_root, container_id=new_id(), devices=["/etc/passwd"])
