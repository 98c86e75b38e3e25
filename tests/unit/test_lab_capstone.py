"""The capstone's pure parts, without root: each judge passes the facts of a right runtime and
names the mistake in the facts of a typical wrong one; errors become hints; the probe's output
is read back; the placeholder is recognised; the cgroup paths follow v1 or v2; the solutions
are complete functions a learner could paste."""

import ast
import copy
import errno

import pytest

from teachdock import kernel
from teachdock.lab.capstone import LEVELS, is_stub, solution, solution_source
from teachdock.lab.capstone.cgroup import PARENT, memory_cgroup
from teachdock.lab.capstone.checks import hint_for_error, judge_level, probe_values
from teachdock.lab.capstone.sandbox import PROBE_EXIT
from teachdock.runtime.spec import DEFAULT_CAPABILITIES
from tests.support.korean import reads_korean


class FakeCgroup:
    directory = "/sys/fs/cgroup/memory/teachdock-capstone/cap-1"
    limit_file = directory + "/memory.limit_in_bytes"


ALL_CAPS = (1 << 41) - 1
DOCKER_CAPS = kernel.capability_bits(DEFAULT_CAPABILITIES)
HOST_ROOT = {"mount_point": "/", "fs_type": "ext4", "device": "254:0", "root": "/"}
HOST_PROC = {"mount_point": "/proc", "fs_type": "proc", "device": "0:22", "root": "/"}


def right_facts() -> dict:
    """What a level-7 solution's run looks like to the judges."""
    return {
        "level": 7, "name": "cap-1", "memory": 64 << 20, "bridge": "capbr0", "timeout": 20, "cgroup": FakeCgroup(),
        "available_caps": ALL_CAPS, "timed_out": False, "returned_early": False, "returned": PROBE_EXIT,
        "error": None, "leaked": [], "stderr": "", "cgroup_left_behind": False,
        "inside": {"pid": "1", "hostname": "cap-1", "procself": "1", "links": "lo eth0", "root": "bin etc"},
        "outside": {
            "program_pid": 300, "runner_pid": 200, "sandbox_pid": 100,
            "status": {"nspid": [300, 1], "cap_effective": DOCKER_CAPS, "cap_bounding": DOCKER_CAPS},
            "ns": {"pid": "pid:[2]", "pid_for_children": "pid:[2]", "uts": "uts:[2]", "mnt": "mnt:[2]", "net": "net:[2]"},
            "sandbox_ns": {"pid": "pid:[0]", "pid_for_children": "pid:[1]", "uts": "uts:[1]", "mnt": "mnt:[1]",
                           "net": "net:[1]"},
            "mounts": [{"mount_point": "/", "fs_type": "ext4", "device": "254:0", "root": "/var/lib/rootfs"},
                       {"mount_point": "/proc", "fs_type": "proc", "device": "0:99", "root": "/"}],
            "sandbox_mounts": [HOST_ROOT, HOST_PROC],
            "root_is_rootfs": True, "runner_root_is_rootfs": False, "namespace_root_is_rootfs": True,
            "cgroup": {"path": "/teachdock-capstone/cap-1", "in_cgroup": True, "limit": 64 << 20, "exists": True},
            "links": {"sandbox": [{"name": "lo", "kind": None, "up": True, "master": None},
                                  {"name": "capbr0", "kind": "bridge", "up": True, "master": None},
                                  {"name": "veth2", "kind": "veth", "up": True, "master": "capbr0"}],
                      "container": [{"name": "lo", "kind": None, "up": True, "master": None},
                                    {"name": "eth0", "kind": "veth", "up": True, "master": None}]},
        },
    }


def judged(level: int, change=None):
    facts = copy.deepcopy(right_facts())
    facts["level"] = level
    if change:
        change(facts)
    return judge_level(level, facts)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_the_facts_of_a_right_runtime_pass_every_level(level):
    result = judged(level)
    assert result.passed, result.message
    assert f"Level {level} passed" in result.message


def _set(path: str, value):
    def change(facts):
        *keys, last = path.split(".")
        target = facts
        for key in keys:
            target = target[key]
        target[last] = value
    return change


def _many(*changes):
    def change(facts):
        for one in changes:
            one(facts)
    return change


def _veth_left_outside(facts):
    facts["outside"]["links"]["container"] = facts["outside"]["links"]["container"][:1]
    facts["outside"]["links"]["sandbox"].append({"name": "eth0", "kind": "veth", "up": False, "master": None})


MISTAKES = [
    (1, _set("outside.program_pid", 200), "exec replaced run_container's own process"),
    (1, _set("returned", PROBE_EXIT << 8), "os.waitstatus_to_exitcode"),
    (1, _set("returned_early", True), "os.waitpid(pid, 0)"),
    (1, _set("timed_out", True), "did not finish within 20 s"),
    (1, _many(_set("outside", {}), _set("inside", {})), "The program never ran"),
    (1, _set("stderr", "sh: can't fork: Cannot allocate memory"), "unshare(CLONE_NEWPID) affects children"),
    (1, _set("child_returned", True), "came back out of run_container"),
    (1, _many(_set("outside", {}), _set("returned_early", True)), "returned while the program was still running"),
    (2, _many(_set("outside.ns.pid", "pid:[1]"), _set("inside.pid", "2")), "unshare(CLONE_NEWPID) affects children"),
    (2, _many(_set("outside.ns.pid", "pid:[1]"), _set("outside.ns.pid_for_children", "pid:[1]")), "No new PID namespace"),
    (2, _set("outside.ns.uts", "uts:[1]"), "No new UTS namespace"),
    (2, _set("inside.hostname", "capstone-sandbox"), "kernel.sethostname(name)"),
    (3, _set("outside.ns.mnt", "mnt:[1]"), "No new mount namespace"),
    (3, _set("leaked", ["/proc (proc)"]), "MS_REC | kernel.MS_PRIVATE"),
    (3, _many(_set("inside.procself", "4242"), _set("outside.mounts", [HOST_ROOT, HOST_PROC])),
     "/proc shows the host's processes"),
    (3, _set("inside.procself", "2"), "Mount it in the child, PID 1 of the new namespace"),
    (4, _many(_set("inside.procself", ""), _set("outside.mounts", [HOST_ROOT])), "into the new root before pivot_root"),
    (4, _set("outside.runner_root_is_rootfs", True), "Unshare it in the child"),
    (4, _set("outside.namespace_root_is_rootfs", False), "chroot changes one process's root"),
    (4, _many(_set("outside.namespace_root_is_rootfs", False), _set("outside.root_is_rootfs", False)),
     "still the host's /"),
    (4, lambda f: f["outside"]["mounts"].append(dict(HOST_ROOT)), "unmount the old root"),
    (5, _set("outside.cgroup.limit", None), "memory.limit_in_bytes holds None"),
    (5, _set("outside.cgroup.in_cgroup", False), "write the child's PID into cgroup.procs"),
    (5, _set("outside.cgroup.exists", False), "os.mkdir(cgroup.directory)"),
    (5, _set("cgroup_left_behind", True), "os.rmdir it after waitpid"),
    (6, _set("outside.status", {"nspid": [300, 1], "cap_effective": ALL_CAPS, "cap_bounding": ALL_CAPS}),
     "bounding set"),
    (6, _set("outside.status", {"nspid": [300, 1], "cap_effective": 0, "cap_bounding": 0}), "You dropped too many"),
    (7, _set("outside.ns.net", "net:[1]"), "No new network namespace"),
    (7, _veth_left_outside, "eth0 is still in run_container's network namespace"),
    (7, lambda f: f["outside"]["links"].update(container=f["outside"]["links"]["container"][:1]),
     "The container has no veth"),
    (7, lambda f: f["outside"]["links"]["sandbox"][2].update(master=None), "not on the bridge capbr0"),
    (7, lambda f: f["outside"]["links"]["sandbox"][2].update(up=False), "The host end veth2 is down"),
    (7, lambda f: f["outside"]["links"]["container"][1].update(up=False), "eth0 is down inside the container"),
]


@pytest.mark.parametrize("level, change, hint", MISTAKES, ids=[f"L{m[0]}-{m[2][:30]}" for m in MISTAKES])
def test_a_typical_mistake_fails_with_its_own_hint(level, change, hint):
    result = judged(level, change)
    assert not result.passed and result.answered
    assert hint in result.message, result.message


def test_a_higher_level_reports_the_first_broken_lower_level():
    result = judged(5, _set("outside.ns.uts", "uts:[1]"))
    assert not result.passed and "its level 2 part" in result.message and "UTS" in result.message


def test_the_capabilities_this_machine_lacks_are_not_asked_for():
    no_mknod = DOCKER_CAPS & ~(1 << kernel.CAP_NUMBER["CAP_MKNOD"])
    result = judged(6, _many(_set("available_caps", ALL_CAPS & ~(1 << kernel.CAP_NUMBER["CAP_MKNOD"])),
                             _set("outside.status", {"nspid": [3, 1], "cap_effective": no_mknod,
                                                     "cap_bounding": no_mknod})))
    assert result.passed, result.message


# --- errors ---------------------------------------------------------------------------------------
def _error(call, number, message="failed"):
    return {"kind": "KernelError", "call": call, "errno": number, "message": message}


def test_pivot_root_einval_without_a_bind_mount_says_bind_mount_it():
    hint = hint_for_error(_error("pivot_root", errno.EINVAL), "child", [], 4)
    assert "bind-mount it onto itself first" in hint


def test_pivot_root_einval_after_the_bind_mount_says_make_root_private():
    bind = {"source": "/r", "target": "/r", "fstype": None, "flags": ["MS_BIND", "MS_REC"]}
    hint = hint_for_error(_error("pivot_root", errno.EINVAL), "child", [bind], 4)
    assert "pivot_root refuses shared mounts" in hint


def test_eperm_at_level_6_says_capabilities_were_dropped_too_early():
    assert "drop the capabilities last" in hint_for_error(_error("sethostname", errno.EPERM), "child", [], 6)
    assert "CLONE_NEWUTS" in hint_for_error(_error("sethostname", errno.EPERM), "child", [], 2)


def test_a_refused_proc_mount_says_where_to_mount_it():
    hint = hint_for_error(_error("mount", errno.EPERM, "mount(proc proc -> /proc): EPERM"), "child", [], 4)
    assert "before pivot_root" in hint


def test_a_program_exec_cannot_find_says_execvp_searches_path():
    error = {"kind": "FileNotFoundError", "message": "[Errno 2] No such file or directory", "errno": errno.ENOENT,
             "call": None}
    assert "os.execvp searches PATH" in hint_for_error(error, "child", [], 1)


def test_an_unknown_error_is_shown_as_it_was_raised():
    hint = hint_for_error({"kind": "ValueError", "message": "bad", "errno": None, "call": None}, "runtime", [], 1)
    assert hint == "Your code raised ValueError in run_container: bad."


def test_a_judged_run_with_an_error_shows_its_hint():
    result = judged(4, _many(_set("error", _error("pivot_root", errno.EINVAL)), _set("error_where", "child")))
    assert not result.passed and "bind-mount it onto itself first" in result.message


# --- the small parts --------------------------------------------------------------------------------
def test_probe_values_reads_key_value_lines_and_ignores_the_rest():
    assert probe_values("pid=1\nhello\nroot=bin etc \nready\n") == {"pid": "1", "root": "bin etc "}


def test_the_placeholder_is_a_stub_and_a_real_body_is_not():
    def placeholder(name, argv, rootfs, memory, bridge):
        ...

    def documented(name, argv, rootfs, memory, bridge):
        """Level 1: fork and exec."""

    def written(name, argv, rootfs, memory, bridge):
        return 0

    assert is_stub(placeholder) and is_stub(documented) and is_stub(...) and is_stub(None)
    assert not is_stub(written)


def test_memory_cgroup_paths_on_v1_and_v2(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("memory pids\n")
    cgroup = memory_cgroup("cap-1", root=str(v2), prepare=False)
    assert (cgroup.version, cgroup.limit_file) == ("v2", f"{v2}/{PARENT}/cap-1/memory.max")
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "cgroup.procs").write_text("")
    cgroup = memory_cgroup("cap-1", root=str(v1), prepare=False)
    assert (cgroup.version, cgroup.limit_file) == ("v1", f"{v1}/memory/{PARENT}/cap-1/memory.limit_in_bytes")
    assert cgroup.procs_file == f"{v1}/memory/{PARENT}/cap-1/cgroup.procs"


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_each_solution_is_one_function_named_run_container(level):
    tree = ast.parse(solution_source(level))
    assert [node.name for node in tree.body] == ["run_container"]
    assert [arg.arg for arg in tree.body[0].args.args] == ["name", "argv", "rootfs", "memory", "bridge"]


def test_the_finished_runtime_is_about_sixty_lines():
    lines = [line for line in solution_source(7).splitlines() if line.strip()]
    assert 40 <= len(lines) <= 70


def test_solution_prints_the_level_and_refuses_an_unknown_one(capsys):
    solution(2)
    assert "def run_container(" in capsys.readouterr().out
    with pytest.raises(ValueError):
        solution(8)


def test_the_namespace_table_marks_the_container_s_own_namespaces():
    from teachdock.lab.capstone.views import table

    caller = {"pid": "pid:[1]", "pid_for_children": "pid:[2]", "uts": "uts:[1]", "mnt": "mnt:[1]", "net": "net:[1]",
              "user": "user:[1]"}
    program = dict(caller, pid="pid:[3]", uts="uts:[3]")
    shown = table({"caller": caller, "program": program, "nspid": [300, 2, 1], "pid": 300})
    lines = repr(shown).splitlines()
    assert "its own" in lines[1] and "its own" in lines[2] and "its own" not in lines[3]
    assert "NSpid: 300 2 1" in lines[-1] and shown._repr_html_().count("background:#fff1cc") == 2


# --- in Korean ------------------------------------------------------------------------------------
def test_a_korean_learner_reads_the_levels_the_verdicts_and_the_hints_in_korean(korean):
    passed = judged(7)
    assert passed.passed and reads_korean(passed.message), passed.message
    for level, change, _ in MISTAKES:
        result = judged(level, change)
        assert not result.passed and reads_korean(result.message), result.message
    lower = judged(5, _set("outside.ns.uts", "uts:[1]"))
    assert "5단계(2단계 부분" in lower.message and reads_korean(lower.message), lower.message
    assert all(reads_korean(name) for name in LEVELS.values())
    assert reads_korean(hint_for_error(_error("pivot_root", errno.EINVAL), "child", [], 4))


def test_a_korean_learner_reads_the_namespace_table_and_the_wrong_level_in_korean(korean):
    from teachdock.lab.capstone import check_level
    from teachdock.lab.capstone.views import table

    caller = {"pid": "pid:[1]", "pid_for_children": "pid:[2]", "uts": "uts:[1]", "mnt": "mnt:[1]", "net": "net:[1]",
              "user": "user:[1]"}
    shown = table({"caller": caller, "program": dict(caller, uts="uts:[3]"), "nspid": [300, 1], "pid": 300})
    assert reads_korean(repr(shown)) and reads_korean(shown._repr_html_())
    wrong = check_level(9, lambda *args: 0)
    assert not wrong.passed and reads_korean(wrong.message), wrong.message
