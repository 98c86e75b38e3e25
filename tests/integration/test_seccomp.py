"""seccomp in the runtime: Docker's default profile refuses what it should, ordinary programs run,
``seccomp=None`` lets the same calls through, and a hand-written profile (block mkdir) works."""

import pytest

from teachdock.errors import InvalidConfig
from teachdock.runtime import PIPE, Container, exec_in
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, make_spec
from tests.support.host import finish, read_rest
from tests.support.seccomp_probe import DEFAULT_PROFILE_ANSWERS, build_probe, parse, why_no_probe

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    reason = why_no_probe()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("probe")
    directory.chmod(0o755)
    build_probe(directory)
    return directory


def probe_mount(directory) -> dict:
    return {"destination": "/mnt", "type": "bind", "source": str(directory), "options": ["rbind", "ro"]}


def run_probe(box, probe_dir, **options) -> dict[str, str]:
    result = box("/mnt/probe", mounts=[probe_mount(probe_dir)], **options)
    assert result.exit_code == 0, result.stderr
    return parse(result.stdout)


def test_the_default_profile_refuses_what_docker_refuses(box, probe_dir):
    assert run_probe(box, probe_dir) == DEFAULT_PROFILE_ANSWERS


def test_the_filter_is_in_place_and_ordinary_programs_run(box):
    result = box("grep Seccomp: /proc/self/status; ls / >/dev/null && echo ran")
    assert result.stdout.split() == ["Seccomp:", "2", "ran"]  # 2: SECCOMP_MODE_FILTER


def test_unconfined_lets_the_same_calls_reach_the_kernel(box, probe_dir):
    answers = run_probe(box, probe_dir, seccomp=None)
    refused = {name for name, answer in answers.items() if answer in ("EPERM", "ENOSYS")}
    assert refused == {"unknown_1000"}, answers  # the kernel's own ENOSYS: there is no syscall 1000
    assert box("grep Seccomp: /proc/self/status", seccomp=None).stdout.split() == ["Seccomp:", "0"]


def test_unshare_is_refused_by_default_and_works_unconfined(box):
    script = "unshare -U true && echo worked"
    refused = box(script)
    assert refused.exit_code != 0 and "Operation not permitted" in refused.stderr
    assert box(script, seccomp=None).stdout == "worked\n"


def test_cap_sys_admin_brings_back_the_calls_it_guards(box, probe_dir):
    """The capability-conditional rules are resolved when the spec is made (moby's setupSeccomp)."""
    answers = run_probe(box, probe_dir, capabilities=DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"])
    assert answers["unshare_user"] == "ok" and answers["clone3"] == "EINVAL"  # the kernel's own answer
    assert answers["keyctl"] == "EPERM"  # not guarded by a capability: refused still


def test_a_profile_that_blocks_mkdir(box):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    result = box("mkdir /tmp/x; echo exit=$?; touch /tmp/y && echo touched", seccomp=profile)
    assert "Operation not permitted" in result.stderr
    assert result.stdout == "exit=1\ntouched\n"


def test_a_profile_whose_default_lets_calls_through_gets_no_enosys_prologue(box, probe_dir):
    answers = run_probe(box, probe_dir, seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                                 "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]})
    assert answers["keyctl"] == "EPERM" and answers["mseal"] not in ("ENOSYS", "EPERM")


def test_errno_and_argument_conditions_of_a_profile(box):
    """errnoRet picks the errno; a rule with an argument condition matches only those calls."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                             "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}]}
    result = box("touch /tmp/f; chmod 777 /tmp/f; echo a=$?; chmod 700 /tmp/f; echo b=$?", seccomp=profile)
    assert result.stdout == "a=1\nb=0\n"
    assert "Permission denied" in result.stderr  # 13 = EACCES


def test_without_no_new_privs_the_filter_is_loaded_before_the_capabilities_go(box):
    result = box("grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status", no_new_privileges=False)
    assert result.stdout.split() == ["NoNewPrivs:", "0", "Seccomp:", "2"]


def test_a_non_root_user_gets_the_filter_too(box, probe_dir):
    answers = run_probe(box, probe_dir, user="1000:1000")
    assert answers["keyctl"] == "EPERM" and answers["getppid"] == "ok"


# --- exec: the container's filter applies to every process started in it (runc exec) -------------------------------
def exec_probe(container, args, **options) -> tuple[int, str]:
    execution = exec_in(container, args, stdout=PIPE, stderr=PIPE, **options)
    try:
        out = read_rest(execution.stdout)
        read_rest(execution.stderr)
        return execution.wait(timeout=10), out
    finally:
        execution.close()


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_exec_processes_get_the_containers_filter(running, probe_dir, no_new_privileges):
    with running("echo ready; read x", mounts=[probe_mount(probe_dir)],
                 no_new_privileges=no_new_privileges) as container:
        code, out = exec_probe(container, ["/mnt/probe"])
        assert code == 0 and parse(out) == DEFAULT_PROFILE_ANSWERS
        code, out = exec_probe(container, ["/mnt/probe"], user=(1000, 1000))
        assert parse(out)["keyctl"] == "EPERM"
        finish(container)


def test_exec_in_an_unconfined_container_is_unconfined(running):
    with running("echo ready; read x", seccomp=None) as container:
        code, out = exec_probe(container, ["grep", "Seccomp:", "/proc/self/status"])
        assert out.split() == ["Seccomp:", "0"]
        finish(container)


def test_a_filter_libseccomp_refuses_leaves_nothing_behind(rootfs, state_root, new_id):
    config = make_spec(["true"], rootfs)
    config["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_VAX"]
    with pytest.raises(InvalidConfig, match="unknown architecture 'SCMP_ARCH_VAX'"):
        Container.create(new_id(), config=config, state_root=state_root)
    assert list(state_root.iterdir()) == []


def test_with_init_both_the_init_and_the_program_are_filtered(box, probe_dir):
    """--init: the filter is loaded before the init forks the program, so both run under it."""
    result = box("grep Seccomp: /proc/1/status; /mnt/probe", mounts=[probe_mount(probe_dir)], init=True)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["Seccomp:", "2"]
    assert parse(result.stdout) == DEFAULT_PROFILE_ANSWERS


def test_filter_flags_reach_seccomp2(box, probe_dir):
    """LOG and SPEC_ALLOW are seccomp(2) flags (runc 1.1.5 refuses every flag, so runc is no oracle here)."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
               "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}
    answers = run_probe(box, probe_dir, seccomp=profile)
    assert answers["keyctl"] == "EPERM" and answers["add_key"] == "EFAULT"
