"""The capstone's checks against the real kernel (root): each level passes with its folded
solution and fails with a typical mistake, naming that mistake; a hanging runtime is stopped;
the finished runtime runs a bundle as `teachdock runtime run` does; nothing is left behind.

A mistake is the level's solution with a line or two changed (``mistaken``), as a learner
would get it wrong.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teachdock.lab import capstone
from teachdock.lab.capstone import solutions
from teachdock.lab.capstone.cgroup import PARENT, memory_cgroup
from teachdock.runtime import make_spec, write_bundle

pytestmark = [pytest.mark.root]

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """No host mount, no capstone cgroup, no bridge, no child process, the same namespaces.

    Only the mounts a capstone run could touch are compared (the rootfs, /proc, /): other
    people's containers come and go on this machine meanwhile."""
    mounts = our_mounts()
    namespaces = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("mnt", "uts", "net", "pid")}
    hostname = os.uname().nodename
    yield
    assert our_mounts() == mounts
    assert {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in namespaces} == namespaces
    assert os.uname().nodename == hostname
    assert not os.path.exists(f"/sys/class/net/{capstone.BRIDGE}")
    assert not os.path.exists(os.path.dirname(memory_cgroup("x", prepare=False).directory))  # nor its parent
    children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
    assert children == []


def our_mounts() -> list[str]:
    rootfs = str(_rootfs())
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if rootfs in line or line.split()[4] in ("/", "/proc", "/sys/fs/cgroup/memory")]


def mistaken(level: int, *changes: tuple[str, str]):
    """The solution of ``level`` with each (old, new) text replaced: a learner's typical mistake."""
    source = capstone.solution_source(level)
    for old, new in changes:
        assert old in source, f"level {level}'s solution has no {old!r}"
        source = source.replace(old, new)
    namespace = dict(vars(solutions))
    exec(compile(source, f"<mistake of level {level}>", "exec"), namespace)
    return namespace["run_container"]


def exec_without_fork(name, argv, rootfs, memory, bridge):
    os.execvp(argv[0], argv)


def no_wait(name, argv, rootfs, memory, bridge):
    if os.fork() == 0:
        os.execvp(argv[0], argv)
    return 7


NEW_PID = "kernel.unshare(kernel.CLONE_NEWPID)"
BIND = "        kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)"
PRIVATE = 'kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)'
BOUNDING = "kernel.drop_bounding_capability(number)"

MISTAKES = {
    1: [(exec_without_fork, "exec replaced run_container's own process"),
        (mistaken(1, ("return os.waitstatus_to_exitcode(status)", "return status")), "os.waitstatus_to_exitcode"),
        (no_wait, "the parent must os.waitpid(pid, 0)")],
    2: [(mistaken(2, (f"    {NEW_PID}", "    pass"), ("kernel.unshare(kernel.CLONE_NEWUTS)",
                                                    "kernel.unshare(kernel.CLONE_NEWPID | kernel.CLONE_NEWUTS)")),
         "unshare(CLONE_NEWPID) affects children"),
        (mistaken(2, ("kernel.unshare(kernel.CLONE_NEWUTS)", "pass")), "No new UTS namespace")],
    3: [(mistaken(3, (PRIVATE, "pass")), "make it private first"),
        (mistaken(3, ('kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)',
                      "pass")), "/proc shows the host's processes")],
    4: [(mistaken(4, (BIND, "        pass")), "bind-mount it onto itself first"),
        (mistaken(4, ('kernel.pivot_root(".", ".")', 'os.chroot(".")'),
                  ('kernel.umount2(".", kernel.MNT_DETACH)', "pass")), "chroot changes one process's root"),
        (mistaken(4, ('kernel.umount2(".", kernel.MNT_DETACH)', "pass")), "unmount the old root")],
    5: [(mistaken(5, ("f.write(str(memory))", "pass")), "memory limit file"),
        (mistaken(5, ("os.rmdir(cgroup.directory)", "pass")), "still there after run_container returned")],
    6: [(mistaken(6, (BOUNDING, "kernel.capset(keep, keep, 0)")), "bounding set")],
    7: [(mistaken(7, ("master=ip.link_lookup(ifname=bridge)[0], ", "")), "not on the bridge"),
        (mistaken(7, ('kernel.set_link_up("eth0")', "pass")), "eth0 is down inside the container")],
}


@pytest.mark.parametrize("level", sorted(capstone.LEVELS))
def test_the_folded_solution_passes_and_a_typical_mistake_fails_with_its_hint(level):
    passed = capstone.check_level(level, solutions.SOLUTIONS[level])
    assert passed.passed, passed.message
    for mistake, hint in MISTAKES[level]:
        failed = capstone.check_level(level, mistake)
        assert not failed.passed and failed.answered, failed.message
        assert hint in failed.message, failed.message


def test_a_runtime_that_hangs_is_stopped_and_told_so():
    def hangs(name, argv, rootfs, memory, bridge):
        if os.fork() == 0:
            time.sleep(600)   # never execs
        time.sleep(600)       # and the parent waits for nothing

    started = time.monotonic()
    result = capstone.check_level(1, hangs, timeout=2)
    assert time.monotonic() - started < 10
    assert not result.passed and "did not finish within 2" in result.message


def test_a_level_checks_the_levels_below_it_too():
    result = capstone.check_level(4, solutions.SOLUTIONS[1])
    assert not result.passed and "its level 2 part" in result.message


def test_the_placeholder_is_not_judged():
    def run_container(name, argv, rootfs, memory, bridge):
        ...

    assert capstone.check_level(1, run_container).answered is False


def test_the_finished_runtime_runs_a_bundle_as_teachdock_runtime_run_does(tmp_path):
    bundle = tmp_path / "bundle"
    script = 'echo "pid=$$ hostname=$(hostname)"; grep -E "CapEff|CapBnd" /proc/self/status; ls /'
    write_bundle(bundle, make_spec(["sh", "-c", script], str(_rootfs()), hostname="capstone", memory="64m"))
    ours = capstone.run_bundle(solutions.level_7, bundle)
    theirs = capstone.run_bundle_with_teachdock(bundle)
    assert ours.error is None and ours.returned == 0, repr(ours)
    assert ours.stdout == theirs and "pid=1 hostname=capstone" in theirs


def _rootfs() -> Path:
    from teachdock.lab import busybox_rootfs

    return busybox_rootfs()


@pytest.mark.skipif(not Path("/usr/bin/setpriv").exists() and not Path("/bin/setpriv").exists(),
                    reason="setpriv (util-linux) is needed to become nobody")
def test_without_root_levels_1_to_4_run_in_a_user_namespace_and_5_says_root_is_needed():
    script = (
        "from teachdock.lab.capstone import check_level, SOLUTIONS\n"
        "from tests.integration.test_lab_capstone import MISTAKES\n"
        f"rootfs = {str(_rootfs())!r}\n"
        "for level in (1, 2, 3, 4):\n"
        "    ok = check_level(level, SOLUTIONS[level], rootfs=rootfs)\n"
        "    assert ok.passed, ok.message\n"
        "    mistake, hint = MISTAKES[level][0]\n"
        "    bad = check_level(level, mistake, rootfs=rootfs)\n"
        "    assert not bad.passed and hint in bad.message, bad.message\n"
        "five = check_level(5, SOLUTIONS[5], rootfs=rootfs)\n"
        "assert not five.answered and 'needs root' in five.message, five.message\n"
        "print('ok')\n")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                           script],
                          cwd="/", env={"PYTHONPATH": str(REPOSITORY), "HOME": "/tmp", "PATH": os.environ["PATH"],
                                        "PYTHONDONTWRITEBYTECODE": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
