"""The container init's set-up, run as an ordinary user with a recording kernel.

init.py and identity.py make every privileged call through a ``kernel`` object; here it is
a stand-in that writes each call down, so the tests assert the exact order the kernel
requires: names before capabilities are dropped, groups and gid before uid, the capability
sets after the uid change, no_new_privs last.
"""

import pytest

from teachdock import kernel as real_kernel
from teachdock.runtime import init, plan as plan_module
from teachdock.runtime.identity import set_identity

PURE = ("CLONE_NEWNET", "CLONE_NEWPID", "CLONE_NEWTIME", "CLONE_NEWCGROUP", "CLONE_NEWUSER", "CLONE_NEWUTS",
        "CLONE_NEWNS", "CLONE_NEWIPC", "CAP_NUMBER", "capability_bits")


class RecordingKernel:
    """teachdock.kernel's names: constants and pure helpers are the real ones; every system
    call is recorded as (name, *args) instead of made."""

    def __init__(self, bounding=("CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN")):
        self.calls = []
        self._bounding = {real_kernel.CAP_NUMBER[name] for name in bounding}
        for name in PURE:
            setattr(self, name, getattr(real_kernel, name))

    def last_capability(self):
        return real_kernel.CAP_NUMBER["CAP_SYS_ADMIN"]  # a small kernel keeps the sequences short

    def in_bounding_set(self, number):
        return number in self._bounding

    def __getattr__(self, name):
        if not hasattr(real_kernel, name):  # the stand-in must not invent calls the real kernel lacks
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))

    def names(self):
        return [call[0] for call in self.calls]


def bits(*names):
    return real_kernel.capability_bits(names)


CONFIG = {
    "hostname": "box", "domainname": "example",
    "process": {
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [1001, 50]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}],
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                         "ambient": ["CAP_KILL"]},
        "noNewPrivileges": True,
    },
}


def test_the_init_sets_names_and_limits_then_the_identity_in_the_kernels_order():
    kernel = RecordingKernel()
    init.configure_process(CONFIG, real_kernel.CLONE_NEWNET | real_kernel.CLONE_NEWUTS, kernel=kernel)
    assert kernel.calls == [
        ("set_link_up", "lo"),
        ("sethostname", "box"),  # needs CAP_SYS_ADMIN: before the bounding set loses it
        ("setdomainname", "example"),
        ("setrlimit", "RLIMIT_NOFILE", 1024, 2048),
        ("drop_bounding_capability", real_kernel.CAP_NUMBER["CAP_CHOWN"]),  # needs CAP_SETPCAP: while root
        ("drop_bounding_capability", real_kernel.CAP_NUMBER["CAP_SYS_ADMIN"]),
        ("setgroups", [1001, 50]),  # groups and gid need CAP_SETGID: before the uid changes
        ("set_keepcaps", True),  # or setuid away from root empties the permitted set
        ("setresgid", 1001),
        ("setresuid", 1000),
        ("capset", bits("CAP_KILL"), bits("CAP_KILL"), 0),
        ("clear_ambient_capabilities",),
        ("raise_ambient_capability", real_kernel.CAP_NUMBER["CAP_KILL"]),
        ("set_no_new_privs",),  # last: nothing after it may gain a privilege
    ]


def test_without_its_own_network_or_names_the_init_skips_them(monkeypatch):
    monkeypatch.setattr("os.getgroups", lambda: [])
    kernel = RecordingKernel(bounding=())
    config = {"process": {"user": {"uid": 0, "gid": 0}, "capabilities": {}}}
    init.configure_process(config, 0, kernel=kernel)
    assert kernel.calls == [("setresgid", 0), ("setresuid", 0), ("capset", 0, 0, 0), ("clear_ambient_capabilities",)]


def test_root_keeps_no_keepcaps_and_no_new_privs_only_when_asked(monkeypatch):
    monkeypatch.setattr("os.getgroups", lambda: [0])  # groups held: dropped even when none are wanted
    kernel = RecordingKernel(bounding=())
    set_identity({"user": {"uid": 0, "gid": 0}, "capabilities": {"effective": ["CAP_CHOWN"]}}, kernel=kernel)
    assert kernel.names() == ["setgroups", "setresgid", "setresuid", "capset", "clear_ambient_capabilities"]
    assert kernel.calls[0] == ("setgroups", [])


class FakeCgroup:
    def __init__(self, calls):
        self.calls = calls

    def join_self(self):
        self.calls.append(("join cgroup",))


def make_plan(namespaces, joins=()):
    config = {"linux": {"namespaces": [{"type": kind} for kind in namespaces]}, "process": {}}
    kernel = RecordingKernel()
    plan = plan_module.make_plan("c1", config, "/rootfs", None, FakeCgroup(kernel.calls), False, [0, 1, 2])
    plan.joins = list(joins)
    return plan, kernel


def test_pid_1_joins_its_cgroup_before_it_makes_a_cgroup_namespace():
    plan, kernel = make_plan(("pid", "mount", "uts", "ipc", "network", "cgroup"))
    init.enter_namespaces(plan, kernel=kernel)
    own = real_kernel.CLONE_NEWNS | real_kernel.CLONE_NEWUTS | real_kernel.CLONE_NEWIPC | real_kernel.CLONE_NEWNET
    assert kernel.calls == [("join cgroup",), ("unshare", own), ("unshare", real_kernel.CLONE_NEWCGROUP)]


def test_pid_1_joins_namespaces_but_leaves_pid_and_time_to_its_parent():
    joins = [(7, real_kernel.CLONE_NEWNET), (8, real_kernel.CLONE_NEWPID)]
    plan, kernel = make_plan(("pid", "mount"), joins)
    init.enter_namespaces(plan, kernel=kernel)
    assert kernel.calls == [("join cgroup",), ("setns", 7, real_kernel.CLONE_NEWNET),
                            ("unshare", real_kernel.CLONE_NEWNS)]


def test_in_a_new_user_namespace_pid_1_becomes_its_root():
    plan, kernel = make_plan(("user", "pid", "mount"))
    init.enter_namespaces(plan, kernel=kernel)  # stage 1 made the namespaces and the monitor moved us
    assert kernel.calls == [("setresgid", 0), ("setresuid", 0)]


@pytest.mark.parametrize("name", ["setgroups", "setresgid", "setresuid", "setrlimit", "sethostname", "capset"])
def test_the_stand_in_only_knows_the_real_kernels_calls(name):
    assert callable(getattr(real_kernel, name))
    with pytest.raises(AttributeError):
        RecordingKernel().no_such_call  # noqa: B018


# --- seccomp: where the filter is loaded (runc's order) -----------------------------------------------------------
def test_without_no_new_privs_the_filter_is_loaded_before_the_capabilities_are_dropped(monkeypatch):
    """Loading a filter without no_new_privs needs CAP_SYS_ADMIN: it must come before the drop."""
    from teachdock.runtime.seccomp import compile_filter  # noqa: PLC0415 - only these tests need libseccomp

    monkeypatch.setattr("os.getgroups", lambda: [])
    kernel = RecordingKernel(bounding=("CAP_SYS_ADMIN",))
    seccomp_filter = compile_filter({"defaultAction": "SCMP_ACT_ALLOW",
                                     "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    config = {"process": {"user": {"uid": 0, "gid": 0}, "capabilities": {}, "noNewPrivileges": False}}
    init.configure_process(config, 0, seccomp_filter=seccomp_filter, kernel=kernel)
    assert kernel.names()[:2] == ["set_seccomp_filter", "drop_bounding_capability"]
    assert kernel.calls[0] == ("set_seccomp_filter", seccomp_filter.program, 0)


def test_with_no_new_privs_the_init_leaves_the_filter_for_just_before_execve(monkeypatch):
    from teachdock.runtime.seccomp import compile_filter  # noqa: PLC0415

    monkeypatch.setattr("os.getgroups", lambda: [])
    kernel = RecordingKernel(bounding=())
    seccomp_filter = compile_filter({"defaultAction": "SCMP_ACT_ALLOW",
                                     "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    config = {"process": {"user": {"uid": 0, "gid": 0}, "capabilities": {}, "noNewPrivileges": True}}
    init.configure_process(config, 0, seccomp_filter=seccomp_filter, kernel=kernel)
    assert "set_seccomp_filter" not in kernel.names()
    assert kernel.names()[-1] == "set_no_new_privs"
