"""Oracle test: one bundle with a seccomp filter, run by the real runc and by teachdock, refuses the
same system calls with the same errors.

The bundle is teachdock's ``make_spec`` (Docker's default profile resolved for the container's
capabilities, or a profile given) plus a bind mount of a small static C probe
(tests/support/seccomp_probe.py) that makes a handful of system calls and prints the kernel's
answer to each. Both runtimes must give the same answers, and the default profile's answers are
also checked against what Docker's profile says, so two runtimes that both fail cannot agree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from teachdock.errors import TeachdockError
from teachdock.image import busybox
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, make_spec, write_bundle
from tests.support.seccomp_probe import DEFAULT_PROFILE_ANSWERS, build_probe, parse, why_no_probe

RUNC = shutil.which("runc")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt-get install runc): it is the oracle"),
    pytest.mark.skipif(why_no_probe() is not None, reason=why_no_probe() or ""),
]


@pytest.fixture(scope="module")
def workspace():
    """World-searchable (runc binds the rootfs and the probe from here)."""
    directory = Path(tempfile.mkdtemp(prefix="teachdock-seccomp-oracle-"))
    directory.chmod(0o755)
    try:
        static = busybox.find_busybox()
    except TeachdockError as error:
        shutil.rmtree(directory)
        pytest.skip(f"needs the host's static busybox to build the rootfs: {error}")
    busybox.build_busybox_rootfs(directory / "rootfs", static)
    build_probe(directory / "probe")
    yield directory
    shutil.rmtree(directory)


def teachdock_cli() -> list[str]:
    script = Path(sys.executable).parent / "teachdock"
    return [str(script)] if script.exists() else [sys.executable, "-m", "teachdock.cli"]


def run_both(workspace: Path, name: str, args: list[str], **spec_options) -> dict[str, subprocess.CompletedProcess]:
    """One bundle, both runtimes, each with a state root of its own under the workspace."""
    mount = {"destination": "/mnt", "type": "bind", "source": str(workspace / "probe"), "options": ["rbind", "ro"]}
    bundle = workspace / f"bundle-{name}"
    write_bundle(bundle, make_spec(args, workspace / "rootfs", mounts=[mount], rootless=False, **spec_options))
    commands = {"runc": [RUNC, "--root", str(workspace / "runc-state")],
                "teachdock": [*teachdock_cli(), "runtime", "--root", str(workspace / "teachdock-state")]}
    results = {}
    for runtime, command in commands.items():
        container_id = f"seccomp-{name}-{runtime}"
        try:
            results[runtime] = subprocess.run([*command, "run", "--bundle", str(bundle), container_id],
                                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        finally:
            subprocess.run([*command, "delete", "--force", container_id], capture_output=True, timeout=30)
    return results


def answers(results) -> dict[str, dict[str, str]]:
    for runtime, result in results.items():
        assert result.returncode == 0, f"{runtime}: {result.stderr}"
    return {runtime: parse(result.stdout) for runtime, result in results.items()}


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_the_default_profile_refuses_the_same_calls_under_both(workspace, no_new_privileges):
    got = answers(run_both(workspace, f"default-{no_new_privileges}", ["/mnt/probe"],
                           no_new_privileges=no_new_privileges))
    assert got["runc"] == DEFAULT_PROFILE_ANSWERS
    assert got["teachdock"] == got["runc"]


def test_with_cap_sys_admin_both_let_unshare_through(workspace):
    got = answers(run_both(workspace, "sysadmin", ["/mnt/probe"],
                           capabilities=DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"]))
    assert got["runc"]["unshare_user"] == "ok" and got["runc"]["keyctl"] == "EPERM"
    assert got["teachdock"] == got["runc"]


def test_unconfined_under_both(workspace):
    got = answers(run_both(workspace, "unconfined", ["/mnt/probe"], seccomp=None))
    assert "EPERM" not in got["runc"].values() and got["runc"]["mseal"] != "ENOSYS"
    assert got["teachdock"] == got["runc"]


def test_a_hand_written_profile_under_both(workspace):
    """errnoRet, an argument condition (socket's family) and a kill action, the same under both."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"},
    ]}
    got = answers(run_both(workspace, "custom", ["/mnt/probe"], seccomp=profile))
    assert (got["runc"]["keyctl"], got["runc"]["socket_unix"]) == ("EACCES", "EAFNOSUPPORT")
    assert got["teachdock"] == got["runc"]
    killed = run_both(workspace, "kill", ["mkdir", "/tmp/x"], seccomp=profile)
    assert killed["runc"].returncode == 128 + 31  # SIGSYS
    assert killed["teachdock"].returncode == killed["runc"].returncode

