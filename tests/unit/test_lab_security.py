"""Chapter 10's lab without containers: the probe script's output read back, and the layer
each attempt is put down to, decided from recorded outcomes and facts."""

import pytest

from teachdock.lab.security import LAYERS, attempts, decide, device_allowed, parse_run, probe_script
from teachdock.lab.security.attempts import Facts, Outcome, capabilities_from_mask, errno_of, outcome
from teachdock.lab.security.layers import THROUGH, UNEXPLAINED, refused_by_docker_profile
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES
from tests.support.korean import reads_korean

ATTEMPTS = {attempt.key: attempt for attempt in attempts(("vda", 254, 0))}
DOCKER_MASK = "00000000a80425fb"     # CapEff of a default Docker container
ALL_MASK = "000001ffffffffff"
PROC_MOUNTS = (
    "mount\t300 290 0:60 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "mount\t301 300 0:60 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "mount\t302 300 0:60 /sysrq-trigger /proc/sysrq-trigger ro,nosuid - proc proc rw\n"
    "mount\t303 300 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n")


def recorded(cap_mask=DOCKER_MASK, seccomp=2, uid_map="0 0 4294967295", mounts=PROC_MOUNTS,
             existing=("/proc/kcore", "/proc/sysrq-trigger", "/proc/modules"), attempts_lines=""):
    lines = f"fact\tCapEff\t{cap_mask}\nfact\tSeccomp\t{seccomp}\nfact\tuid_map\t{uid_map}\n"
    lines += "".join(f"fact\texists\t{path}\n" for path in existing) + mounts
    return lines + attempts_lines


def one(key, status, output):
    return f"attempt\t{key}\t{status}\t{output}\n"


def test_capabilities_from_docker_mask_are_dockers_defaults():
    assert capabilities_from_mask(int(DOCKER_MASK, 16)) == frozenset(DEFAULT_CAPABILITIES)


@pytest.mark.parametrize("message, name", [
    ("od: /dev/td-disk: Operation not permitted", "EPERM"),
    ("sh: can't create /proc/sys/kernel/core_pattern: Read-only file system", "EROFS"),
    ("mount: permission denied (are you root?)", "EPERM"),
    ("insmod: can't insert '/tmp/td.ko': kernel does not support requested operation", "ENOSYS"),
    ("sh: can't create /proc/sysrq-trigger: nonexistent directory", "ENOENT"),
    ("adjtimex: (null): Invalid argument", "EINVAL"),
    ("something else entirely", None),
])
def test_error_messages_name_their_errno(message, name):
    assert errno_of(message) == name


def test_a_read_that_gives_nothing_is_a_masked_file_and_a_byte_is_success():
    assert outcome(ATTEMPTS["kcore"], 0, "").errno == "EMPTY"
    assert outcome(ATTEMPTS["kcore"], 0, "7f").errno == "OK"
    assert outcome(ATTEMPTS["mount"], 0, "mounted").errno == "OK"
    assert outcome(ATTEMPTS["mount"], 1, "no words we know").errno == "exit 1"


def test_the_script_runs_every_attempt_and_reads_the_facts_first():
    script = probe_script(tuple(ATTEMPTS.values()))
    assert script.index("CapEff") < script.index("td_try disk")
    for key in ATTEMPTS:
        assert f"td_try {key} td_{key}" in script
    assert "mknod /dev/td-disk b 254 0" in script
    assert ">>/proc/sysrq-trigger" in script and "echo 1" not in script   # opened, never written


def test_parse_reads_facts_mounts_and_outcomes():
    facts, outcomes = parse_run(recorded(attempts_lines=one("clock", 1, "adjtimex: (null): Operation not permitted")),
                                tuple(ATTEMPTS.values()))
    assert facts.seccomp == 2 and "CAP_MKNOD" in facts.capabilities and "CAP_SYS_ADMIN" not in facts.capabilities
    assert not facts.user_namespace
    assert ("/proc/kcore", "/null", "rw,nosuid", "devtmpfs") in facts.mounts
    assert outcomes == {"clock": Outcome("clock", 1, "adjtimex: (null): Operation not permitted", "EPERM")}


def verdict(key, status, output, **facts):
    chosen = tuple(ATTEMPTS.values())
    parsed, outcomes = parse_run(recorded(attempts_lines=one(key, status, output), **facts), chosen)
    parsed.privileged = facts.get("cap_mask") == ALL_MASK
    return decide(ATTEMPTS[key], parsed, outcomes[key])


@pytest.mark.parametrize("key, status, output, layer", [
    ("disk", 1, "od: /dev/td-disk: Operation not permitted", "devices"),
    ("mount", 1, "mount: permission denied (are you root?)", "seccomp"),
    ("sysrq", 1, "sh: can't create /proc/sysrq-trigger: Read-only file system", "read-only"),
    ("core_pattern", 1, "sh: can't create /proc/sys/kernel/core_pattern: Read-only file system", "read-only"),
    ("kcore", 0, "", "masked"),
    ("userns", 1, "unshare: unshare(0x10020000): Operation not permitted", "seccomp"),
    ("module", 1, "insmod: can't insert '/tmp/td.ko': Operation not permitted", "seccomp"),
    ("clock", 1, "adjtimex: (null): Operation not permitted", "capabilities"),
    ("socket", 2, "/var/run/docker.sock: No such file or directory", "namespaces"),
])
def test_a_default_container_names_the_layer_that_stopped_each_attempt(key, status, output, layer):
    assert verdict(key, status, output).layer == layer


def test_without_seccomp_the_capability_check_is_the_next_wall_and_userns_gets_through():
    assert verdict("mount", 1, "mount: permission denied (are you root?)", seccomp=0).layer == "capabilities"
    assert verdict("userns", 0, "mounted in a user namespace", seccomp=0).layer == THROUGH
    assert verdict("module", 1, "insmod: can't insert '/tmp/td.ko': Operation not permitted",
                   seccomp=0).layer == "capabilities"


def test_cap_sys_admin_opens_the_profile_for_mount_and_unshare():
    mask = f"{int(DOCKER_MASK, 16) | 1 << 21:016x}"
    assert verdict("mount", 0, "mounted", cap_mask=mask).layer == THROUGH
    assert verdict("userns", 0, "mounted in a user namespace", cap_mask=mask).layer == THROUGH
    assert verdict("module", 1, "insmod: can't insert '/tmp/td.ko': Operation not permitted",
                   cap_mask=mask).layer == "seccomp"


def test_privileged_lets_every_host_attempt_through():
    privileged = {"cap_mask": ALL_MASK, "seccomp": 0, "mounts": "mount\t300 290 0:60 / /proc rw - proc proc rw\n"}
    assert verdict("disk", 0, "eb", **privileged).layer == THROUGH
    assert verdict("kcore", 0, "7f", **privileged).layer == THROUGH
    assert verdict("sysrq", 0, "opened for writing", **privileged).layer == THROUGH
    assert verdict("module", 1, "insmod: can't insert '/tmp/td.ko': invalid module format", **privileged).layer == THROUGH
    assert verdict("clock", 1, "adjtimex: (null): Invalid argument", **privileged).layer == THROUGH
    assert verdict("socket", 2, "/var/run/docker.sock: No such file or directory", **privileged).layer == "namespaces"


def test_a_kernel_without_the_file_or_modules_is_named_as_such():
    bare = {"existing": (), "seccomp": 0}
    assert verdict("kcore", 1, "od: /proc/kcore: No such file or directory", **bare).layer == "kernel"
    assert verdict("module", 38, "insmod: can't insert '/tmp/td.ko': kernel does not support requested operation",
                   **bare).layer == "kernel"


def test_a_user_namespace_takes_the_host_capabilities_away_but_not_its_own():
    userns = {"cap_mask": ALL_MASK, "seccomp": 0, "uid_map": "0 100000 65536", "mounts": ""}
    assert verdict("disk", 1, "mknod: /dev/td-disk: Operation not permitted", **userns).layer == "user namespace"
    assert verdict("clock", 1, "adjtimex: (null): Operation not permitted", **userns).layer == "user namespace"
    assert verdict("core_pattern", 1, "sh: can't create x: Permission denied", **userns).layer == "user namespace"
    assert verdict("mount", 0, "mounted", **userns).layer == THROUGH   # its own mount namespace only


def test_an_outcome_no_layer_explains_is_reported_not_forced():
    """A --privileged the daemon ignored: the devices should be open, yet the read was refused."""
    facts, outcomes = parse_run(recorded(attempts_lines=one("disk", 1, "od: /dev/td-disk: Operation not permitted")),
                                tuple(ATTEMPTS.values()), privileged=True)
    result = decide(ATTEMPTS["disk"], facts, outcomes["disk"])
    assert result.layer == UNEXPLAINED and result.label == "? EPERM"
    assert verdict("mount", 0, "mounted").layer == UNEXPLAINED       # seccomp should have said no


def test_dockers_profile_refuses_mount_unless_cap_sys_admin():
    assert refused_by_docker_profile(("mount",), DEFAULT_CAPABILITIES)
    assert not refused_by_docker_profile(("mount",), [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert not refused_by_docker_profile(("adjtimex",), DEFAULT_CAPABILITIES)
    assert refused_by_docker_profile(("init_module", "finit_module"), DEFAULT_CAPABILITIES)


def test_device_rules_read_as_the_devices_controller():
    assert device_allowed(DEFAULT_DEVICE_RULES, "c", 1, 3, "rw")       # /dev/null
    assert device_allowed(DEFAULT_DEVICE_RULES, "b", 8, 0, "m")        # any node may be made
    assert not device_allowed(DEFAULT_DEVICE_RULES, "b", 8, 0, "r")    # not opened
    assert device_allowed(DEFAULT_DEVICE_RULES, "c", 136, 4, "rw")     # a pty, any minor
    assert not device_allowed([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}], "c", 1, 3, "w")


def test_every_gate_names_a_known_layer():
    for attempt in ATTEMPTS.values():
        assert attempt.harmless, attempt.key
        for gate in attempt.gates:
            assert gate.layer in LAYERS, (attempt.key, gate.layer)


def test_facts_default_to_no_user_namespace():
    assert not Facts().user_namespace and Facts(uid_map="0 1000 1").user_namespace


# ------------------------------------------------------------------ the exercises' judges
from teachdock.lab.security.exercises import (judge_least_privilege, judge_mkdir_filter,  # noqa: E402
                                              judge_prediction, judge_readonly_socket,
                                              judge_through_without_filter)
from teachdock.lab.security import exercises  # noqa: E402
from teachdock.lab.security.grid import Grid, column, facts_rows  # noqa: E402
from teachdock.lab.security.own_filter import FilterTrial, instructions, profile_blocking, read_trial  # noqa: E402

CHOSEN = tuple(ATTEMPTS.values())


def col(*attempt_lines, **facts):
    return column("test", CHOSEN, recorded(attempts_lines="".join(attempt_lines), **facts))


def test_the_filter_trial_is_read_from_the_script_output():
    trial = read_trial("mkdir: can't create directory '/tmp/td-dir': Operation not permitted\nmkdir status 1\n"
                       "touch status 0\n", 0)
    assert (trial.mkdir, trial.touch, trial.started) == ("EPERM", "OK", True)
    assert read_trial("Bad system call\nmkdir status 159\ntouch status 0\n", 0).mkdir == "exit 159"
    assert not read_trial("", 139).started


@pytest.mark.parametrize("trial, unknown, words", [
    (FilterTrial("EPERM", "OK", 0, ""), (), "touch still works"),
    (FilterTrial(None, None, 139, ""), (), "default action refuses every call"),
    (FilterTrial("OK", "OK", 0, ""), ("mkdri",), "mkdri is not a system call"),
    (FilterTrial("OK", "OK", 0, ""), (), "mkdir(2) on x86_64, not mkdirat"),
    (FilterTrial("EPERM", "EPERM", 0, ""), (), "so is touch"),
    (FilterTrial("exit 159", "OK", 0, ""), (), "SIGSYS"),
    (FilterTrial("EACCES", "OK", 0, ""), (), "errnoRet 1"),
    (FilterTrial(None, None, None, "", "seccomp: unknown action"), (), "refused the profile"),
])
def test_the_filter_judge_names_the_mistake(trial, unknown, words):
    result = judge_mkdir_filter({"defaultAction": "SCMP_ACT_ALLOW"}, trial, unknown)
    assert words in result.message
    assert result.passed == (words == "touch still works")


def test_the_filter_judge_waits_for_an_answer_and_wants_a_profile():
    assert not judge_mkdir_filter(..., FilterTrial(None, None, None, "")).answered
    assert "a dict" in judge_mkdir_filter(["mkdir"], FilterTrial(None, None, None, "")).message


def test_the_prediction_judge_compares_with_the_measured_layer():
    clock = col(one("clock", 1, "adjtimex: (null): Operation not permitted"), cap_mask="0")
    assert judge_prediction("capabilities", "clock", clock).passed
    assert "let this call through" in judge_prediction("seccomp", "clock", clock).message
    assert "one key of LAYERS" in judge_prediction("the filter", "clock", clock).message
    mount = col(one("mount", 1, "mount: permission denied (are you root?)"))
    assert "runs first" in judge_prediction("capabilities", "mount", mount).message


def test_the_least_privilege_judge():
    sys_time = f"{int(DOCKER_MASK, 16) | 1 << 25:016x}"
    only_clock = col(one("clock", 1, "adjtimex: (null): Invalid argument"),
                     one("mount", 1, "mount: permission denied (are you root?)"), cap_mask=sys_time)
    assert judge_least_privilege(["--cap-add", "SYS_TIME"], only_clock).passed
    assert "--privileged lets" in judge_least_privilege(["--privileged"], only_clock).message
    assert "as a list" in judge_least_privilege("--cap-add SYS_TIME", only_clock).message
    still = col(one("clock", 1, "adjtimex: (null): Operation not permitted"))
    assert "CAP_SYS_TIME" in judge_least_privilege(["--security-opt", "seccomp=unconfined"], still).message
    too_much = col(one("clock", 1, "adjtimex: (null): Invalid argument"), one("mount", 0, "mounted"),
                   cap_mask=ALL_MASK, seccomp=0)
    assert "so does mount" in judge_least_privilege(["--cap-add", "ALL"], too_much).message


def test_the_readonly_socket_judge():
    through = col(one("socket", 0, "host-secret-1"), existing=("/var/run/docker.sock",))
    assert judge_readonly_socket(False, through).passed
    assert "connecting to a socket writes nothing" in judge_readonly_socket(True, through).message
    assert "True" in judge_readonly_socket("no", through).message


def test_the_without_filter_judge_wants_what_got_through():
    rootless = {"seccomp": 0, "uid_map": "0 65534 1"}     # Docker's default capabilities, in a user namespace
    measured = col(one("disk", 1, "mknod: x: Operation not permitted"),
                   one("mount", 1, "mount: permission denied (are you root?)"),
                   one("userns", 0, "mounted in a user namespace"), **rootless)
    assert judge_through_without_filter({"userns"}, measured).passed
    assert not judge_through_without_filter(..., measured).answered
    missed = judge_through_without_filter(set(), measured)          # the typical guess: a wall everywhere
    assert not missed.passed and "userns got through: making a user namespace needs no capability" in missed.message
    too_much = judge_through_without_filter({"userns", "mount"}, measured)
    assert not too_much.passed and "mount was stopped (capabilities): the default capabilities have no CAP_SYS_ADMIN" \
        in too_much.message
    host = judge_through_without_filter({"userns", "disk"}, measured)
    assert "disk was stopped (user namespace): it belongs to the host" in host.message
    assert "not attempt keys" in judge_through_without_filter({"disks"}, measured).message
    assert "a set of attempt keys" in judge_through_without_filter("userns", measured).message


def test_a_user_namespace_refuses_proc_sys_before_its_read_only_mount():
    """open(2) asks for permission (EACCES) before the mount's writability (EROFS): with both, the namespace decides."""
    rootless = {"seccomp": 0, "uid_map": "0 65534 1"}
    assert verdict("core_pattern", 1, "sh: can't create x: Permission denied", **rootless).layer == "user namespace"
    assert verdict("sysrq", 1, "sh: can't create x: Permission denied", **rootless).layer == "user namespace"
    assert verdict("core_pattern", 1, "sh: can't create x: Read-only file system").layer == "read-only"


def test_the_daemon_checks_answer_without_root(monkeypatch):
    from teachdock.lab.security import exercises

    monkeypatch.setattr(exercises, "is_root", lambda: False)
    for result in (exercises.check_prediction("unix:///nowhere", "clock", [], "capabilities"),
                   exercises.check_least_privilege("unix:///nowhere", ["--cap-add", "SYS_TIME"]),
                   exercises.check_readonly_socket("unix:///nowhere", "/nowhere", "/nowhere", False)):
        assert not result.passed and result.answered and "needs root" in result.message

def test_a_profile_compiles_to_a_program_that_names_its_call():
    lines = instructions(profile_blocking(["mkdir"]))
    assert any("mkdir" in line for line in lines) and any("ERRNO(EPERM)" in line for line in lines)


def test_a_host_that_refuses_its_own_disk_is_named_and_not_blamed_on_the_container():
    chosen = tuple(ATTEMPTS.values())
    text = recorded(cap_mask=ALL_MASK, seccomp=0, attempts_lines=one("disk", 1, "od: /dev/td-disk: Operation not permitted"))
    facts, outcomes = parse_run(text, chosen, privileged=True, host_refuses=frozenset({"/dev/vda"}))
    assert decide(ATTEMPTS["disk"], facts, outcomes["disk"]).layer == "host"
    facts, outcomes = parse_run(text, chosen, privileged=False, host_refuses=frozenset({"/dev/vda"}))
    assert decide(ATTEMPTS["disk"], facts, outcomes["disk"]).layer == "devices"   # the cgroup says no first


# ------------------------------------------------------------------ in Korean (TEACHDOCK_LANG=ko)


def test_the_judges_speak_korean(korean):
    clock = col(one("clock", 1, "adjtimex: (null): Operation not permitted"), cap_mask="0")
    rootless = {"seccomp": 0, "uid_map": "0 65534 1"}
    measured = col(one("mount", 1, "mount: permission denied (are you root?)"),
                   one("userns", 0, "mounted in a user namespace"), **rootless)
    results = [judge_prediction("capabilities", "clock", clock), judge_prediction("seccomp", "clock", clock),
               judge_prediction("the filter", "clock", clock),
               judge_mkdir_filter({"defaultAction": "SCMP_ACT_ALLOW"}, FilterTrial("EPERM", "OK", 0, "")),
               judge_mkdir_filter({"defaultAction": "SCMP_ACT_ALLOW"}, FilterTrial("OK", "OK", 0, "")),
               judge_mkdir_filter({"defaultAction": "SCMP_ACT_ALLOW"}, FilterTrial("EPERM", "EPERM", 0, "")),
               judge_through_without_filter({"userns"}, measured), judge_through_without_filter(set(), measured),
               judge_through_without_filter({"userns", "mount"}, measured),
               judge_through_without_filter({"disks"}, measured), exercises.root_needed()]
    for result in results:
        assert reads_korean(result.message), result.message
    assert results[0].passed and not results[1].passed
    assert "capabilities" in list(LAYERS) and "케이퍼빌리티" in LAYERS["capabilities"][0]   # keys stay the answers


def test_the_grid_and_its_tables_speak_korean(korean):
    chosen = attempts(("vda", 254, 0))
    assert all(reads_korean(attempt.title) and reads_korean(attempt.harmless) for attempt in chosen)
    measured = column("default", chosen, recorded(attempts_lines=one("clock", 1, "adjtimex: Operation not permitted")))
    text = Grid(chosen, [measured]).table().text
    assert "시도" in text and "케이퍼빌리티" in text
    assert all(reads_korean(question) for question, _ in facts_rows([measured]) if question != "CAP_SYS_ADMIN")
    assert any("시스템 콜 번호" in line for line in instructions(profile_blocking(["mkdir"])))
