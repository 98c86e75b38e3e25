"""seccomp without root: a profile's checks, the rules libseccomp gets (runc's way), the compiled
program, Docker's default profile resolved against capabilities, architectures and kernels
(moby's setupSeccomp), and make_spec's ``seccomp`` option."""

import errno
import json

import pytest

from teachdock.errors import InvalidConfig
from teachdock.runtime import seccomp, seccomp_profile
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, make_spec, validate

ALLOW, EPERM_ACTION = seccomp.ACTIONS["SCMP_ACT_ALLOW"], seccomp.ACT_ERRNO | errno.EPERM


def profile(*syscalls, default="SCMP_ACT_ALLOW", **more):
    return {"defaultAction": default, "syscalls": list(syscalls), **more}


# --- checks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, words", [
    (profile(default="SCMP_ACT_MAYBE"), "defaultAction 'SCMP_ACT_MAYBE' is not one of"),
    (profile(default="SCMP_ACT_NOTIFY"), "SCMP_ACT_NOTIFY needs a seccomp agent"),
    (profile(listenerPath="/run/agent.sock"), "listenerPath"),
    (profile(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]), "flag 'SECCOMP_FILTER_FLAG_NEW_LISTENER' is not supported"),
    (profile({"names": [], "action": "SCMP_ACT_ERRNO"}), "syscalls[0].names must be a non-empty list"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}), "errno must be 0-65535"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}),
     "syscalls[0].args[0].index must be 0-5"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_LIKE"}]}),
     "op 'SCMP_CMP_LIKE' is not one of"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]}), "unsigned 64-bit integer"),
    (profile(architectures=["x86_64"]), "is not a SCMP_ARCH_* name"),
])
def test_a_bad_profile_is_refused_with_the_field_named(bad, words):
    with pytest.raises(InvalidConfig) as caught:
        seccomp.check(bad)
    assert words in str(caught.value)


def test_validate_checks_linux_seccomp(tmp_path):
    config = make_spec(["true"], tmp_path, rootless=False)
    config["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_PERHAPS"
    with pytest.raises(InvalidConfig, match="linux.seccomp: defaultAction"):
        validate(config)


def test_an_unknown_architecture_is_refused_when_compiled():
    with pytest.raises(InvalidConfig, match="unknown architecture 'SCMP_ARCH_VAX'"):
        seccomp.compile_filter(profile(architectures=["SCMP_ARCH_VAX"]))


# --- the rules, as runc adds them ----------------------------------------------------------------------------------
def test_errno_without_a_number_is_eperm_and_with_one_is_that_number():
    assert seccomp.action_value("SCMP_ACT_ERRNO", None) == seccomp.ACT_ERRNO | errno.EPERM
    assert seccomp.action_value("SCMP_ACT_ERRNO", 38) == seccomp.ACT_ERRNO | 38
    assert seccomp.action_value("SCMP_ACT_TRACE", None) == seccomp.ACT_TRACE | errno.EPERM
    assert seccomp.action_value("SCMP_ACT_ALLOW", 5) == ALLOW  # errnoRet means nothing to allow


def test_rules_with_the_default_action_are_left_out():
    rules = seccomp.rules(profile({"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, default="SCMP_ACT_ERRNO"))
    assert rules == [(ALLOW, "read", []), (ALLOW, "write", [])]


def test_conditions_on_different_arguments_stay_one_rule_and_on_the_same_argument_split():
    one_rule = {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}
    assert seccomp.rules(profile(one_rule)) == [(EPERM_ACTION, "socket", [(0, 4, 40, 0), (1, 4, 1, 0)])]
    same_argument = {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
    assert seccomp.rules(profile(same_argument)) == [(EPERM_ACTION, "personality", [(0, 4, 8, 0)]),
                                                     (EPERM_ACTION, "personality", [(0, 4, 0, 0)])]


def test_masked_eq_carries_its_mask_and_value():
    rule = {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
    assert seccomp.rules(profile(rule, default="SCMP_ACT_ERRNO")) == [(ALLOW, "clone", [(0, 7, 2114060288, 0)])]


# --- compiling with libseccomp -------------------------------------------------------------------------------------
def test_a_syscall_the_machine_does_not_know_is_skipped_as_runc_does():
    known = profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})
    with_unknown = profile({"names": ["mkdir", "no_such_syscall_2099"], "action": "SCMP_ACT_ERRNO"})
    assert seccomp.syscall_number("no_such_syscall_2099") is None
    assert seccomp.compile_filter(with_unknown).bpf == seccomp.compile_filter(known).bpf


def test_the_program_is_bpf_and_grows_with_its_rules():
    empty = seccomp.compile_filter(profile())
    one = seccomp.compile_filter(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))
    assert len(empty.bpf) % 8 == 0 and len(one) > len(empty)
    assert one.program.len == len(one)


def test_flags_become_seccomp2_bits():
    compiled = seccomp.compile_filter(profile(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    assert compiled.flags == 2 | 4


def test_dockers_default_profile_fits_in_a_bpf_program():
    compiled = seccomp.compile_filter(seccomp_profile.docker_default(DEFAULT_CAPABILITIES))
    assert 0 < len(compiled) <= 4096  # BPF_MAXINSNS


# --- Docker's default profile, resolved ----------------------------------------------------------------------------
def names_allowed(resolved) -> set[str]:
    return {name for rule in resolved["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            for name in rule["names"]}


def test_the_stored_profile_is_dockers():
    stored = json.loads(seccomp_profile.DEFAULT_PROFILE_FILE.read_text())
    assert (stored["defaultAction"], stored["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert stored["archMap"][0] == {"architecture": "SCMP_ARCH_X86_64",
                                    "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
    assert "Apache" not in json.dumps(stored)  # data only: the origin is stated in seccomp_profile.py


def resolve_default(caps=DEFAULT_CAPABILITIES, machine="x86_64", release="6.1.0"):
    return seccomp_profile.resolve(seccomp_profile.default_profile(), caps, machine=machine, kernel_release=release)


def test_the_default_capabilities_leave_mount_and_unshare_out():
    resolved = resolve_default()
    assert resolved["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert {"read", "execve", "chroot", "arch_prctl"} <= names_allowed(resolved)
    assert not {"mount", "unshare", "setns", "keyctl", "add_key", "bpf", "reboot", "kcmp"} & names_allowed(resolved)
    rules = {name: rule for rule in resolved["syscalls"] for name in rule["names"]}
    assert rules["clone3"] == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    assert rules["clone"]["args"] == [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]
    assert all("includes" not in rule and "excludes" not in rule and "comment" not in rule
               for rule in resolved["syscalls"])


def test_cap_sys_admin_brings_mount_and_unshare_and_drops_the_clone_mask():
    resolved = resolve_default(DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"])
    assert {"mount", "unshare", "setns", "clone", "clone3", "bpf"} <= names_allowed(resolved)
    assert not any(rule.get("args") and "clone" in rule["names"] for rule in resolved["syscalls"])
    assert not any(rule.get("errnoRet") == 38 for rule in resolved["syscalls"])


@pytest.mark.parametrize("cap, calls", [("CAP_SYS_BOOT", {"reboot"}), ("CAP_SYS_TIME", {"settimeofday"}),
                                        ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd"}), ("CAP_SYS_MODULE", {"init_module"})])
def test_each_capability_brings_its_calls(cap, calls):
    assert not calls & names_allowed(resolve_default())
    assert calls <= names_allowed(resolve_default(DEFAULT_CAPABILITIES + [cap]))


def test_architecture_rules_follow_the_machine():
    assert "arch_prctl" in names_allowed(resolve_default(machine="x86_64"))
    arm = resolve_default(machine="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in names_allowed(arm) and "set_tls" in names_allowed(arm)


def test_min_kernel_rules_follow_the_kernel():
    assert "ptrace" in names_allowed(resolve_default(release="4.8.0"))
    assert "ptrace" not in names_allowed(resolve_default(release="4.4.0-21-generic"))


def test_personality_and_socket_keep_their_argument_conditions():
    resolved = resolve_default()
    personality = sorted(rule["args"][0]["value"] for rule in resolved["syscalls"] if rule["names"] == ["personality"])
    assert personality == [0, 8, 131072, 131080, 4294967295]
    socket_ops = sorted(rule["args"][0]["op"] for rule in resolved["syscalls"] if rule["names"] == ["socket"])
    assert socket_ops == ["SCMP_CMP_EQ", "SCMP_CMP_GT", "SCMP_CMP_LT"]


@pytest.mark.parametrize("bad, words", [
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{}]},
     "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]},
     "both 'name' and 'names'"),
])
def test_dockers_own_profile_errors(bad, words):
    with pytest.raises(InvalidConfig, match=words):
        seccomp_profile.resolve(bad, DEFAULT_CAPABILITIES)


def test_a_profile_without_action_or_rules_means_no_filter_and_name_becomes_names():
    assert seccomp_profile.resolve({}, DEFAULT_CAPABILITIES) is None
    resolved = seccomp_profile.resolve({"defaultAction": "SCMP_ACT_ALLOW",
                                        "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"}]}, [])
    assert resolved["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]


def test_parse_profile_says_what_is_wrong_in_dockerds_words():
    with pytest.raises(InvalidConfig, match="Decoding seccomp profile failed"):
        seccomp_profile.parse_profile("{not json")
    with pytest.raises(InvalidConfig, match="Decoding seccomp profile failed"):
        seccomp_profile.parse_profile("[1, 2]")


# --- make_spec ----------------------------------------------------------------------------------------------------
def test_make_spec_gives_dockers_default_profile_for_its_capabilities(tmp_path):
    spec = make_spec(["true"], tmp_path, rootless=False)
    assert spec["linux"]["seccomp"] == seccomp_profile.docker_default(DEFAULT_CAPABILITIES)
    admin = make_spec(["true"], tmp_path, rootless=False, capabilities=DEFAULT_CAPABILITIES + ["CAP_SYS_ADMIN"])
    assert "mount" in names_allowed(admin["linux"]["seccomp"])


@pytest.mark.parametrize("unconfined", [None, "unconfined"])
def test_make_spec_unconfined_has_no_filter(tmp_path, unconfined):
    assert "seccomp" not in make_spec(["true"], tmp_path, rootless=False, seccomp=unconfined)["linux"]


def test_make_spec_takes_a_profile_and_refuses_a_word_it_does_not_know(tmp_path):
    spec = make_spec(["true"], tmp_path, rootless=False,
                     seccomp=profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW",
                                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    with pytest.raises(InvalidConfig, match="seccomp='strict'"):
        make_spec(["true"], tmp_path, rootless=False, seccomp="strict")


def test_a_process_compiles_each_profile_once(monkeypatch):
    """The daemon starts many containers with one profile: libseccomp builds its program once."""
    built = []
    real_build = seccomp._build
    monkeypatch.setattr(seccomp, "_compiled", {})
    monkeypatch.setattr(seccomp, "_build", lambda profile_: built.append(1) or real_build(profile_))
    first = seccomp.compile_filter(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}))
    again = seccomp.compile_filter(profile({"action": "SCMP_ACT_ERRNO", "names": ["mkdir"]}))
    other = seccomp.compile_filter(profile({"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}))
    assert len(built) == 2 and first.bpf == again.bpf != other.bpf
    assert first.program is not again.program  # each container gets its own sock_fprog
    for number in range(seccomp.CACHE_SIZE + 5):
        seccomp.compile_filter(profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": number}))
    assert len(seccomp._compiled) == seccomp.CACHE_SIZE


def test_cached_false_builds_anew_and_gives_the_same_program():
    rules_ = profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})
    assert seccomp.compile_filter(rules_, cached=False).bpf == seccomp.compile_filter(rules_).bpf


def test_load_hands_the_program_and_its_flags_to_seccomp2():
    calls = []

    class Recorder:
        def set_seccomp_filter(self, program, flags):
            calls.append((program, flags))

    compiled = seccomp.compile_filter(profile(flags=["SECCOMP_FILTER_FLAG_LOG"]))
    compiled.load(kernel=Recorder())
    assert calls == [(compiled.program, 2)]
