"""--cap-add/--cap-drop, --privileged and --device: runtime/capabilities.py, runtime/devices.py, what
make_spec writes for them, what daemon/oci.py hands it and what container_config.py refuses at create.

No root needed: /dev/null is read with stat(2), never opened; device nodes are made by a recording kernel.
"""

from __future__ import annotations

import os
import stat

import pytest

from teachdock.daemon import container_config, oci
from teachdock.errors import InvalidConfig
from teachdock.kernel import CAPABILITIES
from teachdock.runtime import capabilities, devices, make_spec, rootfs as rootfs_setup
from teachdock.runtime.spec import DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES, validate
from tests.unit.test_rootfs_recording import RecordingKernel

EVERY = CAPABILITIES[:38]  # what "every capability" means in these tests (handed in, not read from the machine)


# --- names -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    (["sys_admin"], ["CAP_SYS_ADMIN"]), (["CAP_chown", "Net_Raw"], ["CAP_CHOWN", "CAP_NET_RAW"]),
    (["all"], ["ALL"]), (None, []), ([], []),
])
def test_names_are_case_insensitive_and_cap_is_optional(given, expected):
    assert capabilities.normalize(given) == expected


@pytest.mark.parametrize("field", ["CapAdd", "CapDrop"])
def test_an_unknown_name_is_refused_in_dockerds_words(field):
    with pytest.raises(InvalidConfig, match=f'^invalid {field}: unknown capability: "CAP_FOO"$'):
        capabilities.normalize(["chown", "foo"], field)


def test_names_must_be_a_list_of_strings():
    with pytest.raises(InvalidConfig, match="CapAdd must be a list"):
        capabilities.normalize("SYS_ADMIN")


# --- moby's order --------------------------------------------------------------------------------------
def tweak(add=None, drop=None, privileged=False):
    return capabilities.tweak(DEFAULT_CAPABILITIES, add, drop, privileged=privileged, all_capabilities=EVERY)


def test_no_flags_keep_the_defaults():
    assert tweak() == DEFAULT_CAPABILITIES


def test_drop_then_add():
    got = tweak(["sys_admin"], ["chown"])
    assert got == [cap for cap in DEFAULT_CAPABILITIES if cap != "CAP_CHOWN"] + ["CAP_SYS_ADMIN"]


def test_adding_and_dropping_the_same_one_keeps_it():
    assert sorted(tweak(["chown"], ["chown"])) == sorted(DEFAULT_CAPABILITIES)  # dropped from the defaults, added back
    assert "CAP_NET_ADMIN" in tweak(["NET_ADMIN"], ["NET_ADMIN"])


def test_drop_all_leaves_only_the_added():
    assert tweak(drop=["ALL"]) == []
    assert tweak(["chown"], ["all"]) == ["CAP_CHOWN"]


def test_add_all_gives_everything_but_the_dropped():
    assert tweak(["ALL"], ["SYS_ADMIN"]) == [cap for cap in EVERY if cap != "CAP_SYS_ADMIN"]


def test_privileged_ignores_the_lists():
    assert tweak(["chown"], ["ALL"], privileged=True) == EVERY


def test_a_capability_outside_the_bounding_set_is_refused_with_the_reason():
    with pytest.raises(InvalidConfig, match="CAP_BPF cannot be granted: it is not in this machine's bounding set"):
        tweak(["BPF"])  # EVERY stops at CAP_AUDIT_READ


def test_available_is_the_bounding_set_up_to_the_kernels_last(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    mask = capabilities.bounding_set(str(status))
    assert mask == 0x1fffeffffff
    got = capabilities.available(mask)
    assert "CAP_SYS_RESOURCE" not in got and "CAP_SYS_ADMIN" in got and got == sorted(got, key=CAPABILITIES.index)


# --- devices -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    ("/dev/null", ("/dev/null", "/dev/null", "rwm")), ("/dev/null:/dev/mynull", ("/dev/null", "/dev/mynull", "rwm")),
    ("/dev/null:r", ("/dev/null", "/dev/null", "r")), ("/dev/null:/dev/x:rw", ("/dev/null", "/dev/x", "rw")),
])
def test_device_flag_forms(given, expected):
    assert devices.parse(given) == expected


@pytest.mark.parametrize("given, words", [
    ("/dev/null:/dev/x:rwx", "bad mode specified: rwx"), ("/dev/null:mynull", "mynull is not an absolute path"),
    ("null", "null is not an absolute path"), ("a:b:c:d", "invalid device specification: a:b:c:d"),
])
def test_bad_device_flags_are_refused_in_the_clis_words(given, words):
    with pytest.raises(InvalidConfig, match=f"^{words}$"):
        devices.parse(given)


def test_a_device_becomes_a_node_and_a_rule():
    nodes, rules = devices.from_host("/dev/null", "/dev/mynull", "rw")
    info = os.stat("/dev/null")
    assert nodes == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                      "fileMode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]


@pytest.mark.parametrize("path, reason", [("/etc/passwd", "not a device node"),
                                          ("/nonexistent", "no such file or directory")])
def test_what_is_no_device_is_refused_in_dockerds_words(path, reason):
    with pytest.raises(InvalidConfig, match=f'^error gathering device information while adding custom device '
                                            f'"{path}": {reason}$'):
        devices.from_host(path, path)


def test_the_hosts_devices_leave_out_pts_and_the_console():
    found = {node["path"]: node for node in devices.host_devices()}
    assert found["/dev/null"]["major"] == 1 and found["/dev/null"]["minor"] == 3
    assert not any(path.startswith(("/dev/pts/", "/dev/shm/")) or path == "/dev/console" for path in found)


# --- make_spec ----------------------------------------------------------------------------------------
@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return str(root)


def mount(spec, destination):
    return next(m for m in spec["mounts"] if m["destination"] == destination)


def test_privileged_spec(rootfs):
    spec = make_spec(["sh"], rootfs, readonly=False, privileged=True, rootless=False)
    linux, caps = spec["linux"], spec["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == capabilities.available()
    assert "seccomp" not in linux and linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert "ro" not in mount(spec, "/sys")["options"] and "ro" not in mount(spec, "/sys/fs/cgroup")["options"]
    assert linux["resources"]["devices"] == [{"allow": False, "access": "rwm"}, {"allow": True, "access": "rwm"}]
    assert any(node["path"] == "/dev/null" for node in linux["devices"])


def test_privileged_still_makes_a_device_asked_for_under_another_name(rootfs):
    spec = make_spec(["sh"], rootfs, privileged=True, devices=["/dev/null:/dev/mynull"], rootless=False)
    paths = [node["path"] for node in spec["linux"]["devices"]]
    assert paths.count("/dev/null") == 1 and paths[-1] == "/dev/mynull"


def test_privileged_with_a_read_only_root_keeps_sys_read_only(rootfs):
    spec = make_spec(["sh"], rootfs, readonly=True, privileged=True, rootless=False)
    assert "ro" in mount(spec, "/sys")["options"] and "ro" not in mount(spec, "/sys/fs/cgroup")["options"]


def test_the_default_spec_is_unchanged(rootfs):
    spec = make_spec(["sh"], rootfs, rootless=False)
    assert spec["process"]["capabilities"]["bounding"] == DEFAULT_CAPABILITIES
    assert "devices" not in spec["linux"] and spec["linux"]["resources"]["devices"] == DEFAULT_DEVICE_RULES
    assert "ro" in mount(spec, "/sys")["options"] and spec["linux"]["seccomp"]


def allowed_syscalls(spec) -> set[str]:
    return {name for rule in spec["linux"]["seccomp"]["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
            for name in rule["names"]}


def test_cap_add_reaches_the_capabilities_and_the_seccomp_profile(rootfs):
    spec = make_spec(["sh"], rootfs, cap_add=["sys_admin"], cap_drop=["CAP_CHOWN"], rootless=False)
    caps = spec["process"]["capabilities"]["effective"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_CHOWN" not in caps
    plain = make_spec(["sh"], rootfs, rootless=False)
    assert "mount" in allowed_syscalls(spec) and "mount" not in allowed_syscalls(plain)  # Docker's profile follows caps


def test_a_device_is_a_node_and_an_allow_rule_after_the_defaults(rootfs):
    spec = make_spec(["sh"], rootfs, devices=["/dev/null:/dev/mynull:rw"], rootless=False)
    assert [node["path"] for node in spec["linux"]["devices"]] == ["/dev/mynull"]
    assert spec["linux"]["resources"]["devices"] == [*DEFAULT_DEVICE_RULES, {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]


def test_validate_refuses_a_bad_device(rootfs):
    spec = make_spec(["sh"], rootfs, rootless=False)
    spec["linux"]["devices"] = [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]
    with pytest.raises(InvalidConfig, match=r"linux.devices\[0\] needs an absolute path"):
        validate(spec)


def test_the_runtime_makes_the_listed_nodes(rootfs):
    spec = make_spec(["sh"], rootfs, devices=["/dev/null:/dev/sub/mynull"], rootless=False)
    node = spec["linux"]["devices"][0]
    kernel = RecordingKernel()
    rootfs_setup.create_listed_devices(rootfs, spec["linux"]["devices"], bind_from_host=False, kernel=kernel)
    path = f"{rootfs}/dev/sub/mynull"
    assert kernel.calls == [("mknod", path, node["fileMode"] | stat.S_IFCHR, os.makedev(1, 3)),
                            ("chmod", path, node["fileMode"]), ("chown", path, node["uid"], node["gid"])]
    kernel = RecordingKernel()
    rootfs_setup.create_listed_devices(rootfs, spec["linux"]["devices"], bind_from_host=True, kernel=kernel)
    assert kernel.calls[0][:3] == ("mount", "/dev/sub/mynull", path)  # runc binds the same path from the host


# --- the daemon's side --------------------------------------------------------------------------------
def test_oci_hands_the_flags_to_make_spec():
    record = {"Id": "c" * 64, "Config": {"Hostname": "c", "Env": [], "WorkingDir": "", "Tty": False},
              "HostConfig": {"NetworkMode": "none", "Privileged": True, "CapAdd": ["CAP_SYS_ADMIN"],
                             "CapDrop": ["CAP_CHOWN"], "Devices": [
                                 {"PathOnHost": "/dev/null", "PathInContainer": "", "CgroupPermissions": ""}]}}
    got = oci.spec_options(record, user=None, additional_gids=[], mounts=[], cgroup_parent="t")
    assert (got["privileged"], got["cap_add"], got["cap_drop"], got["devices"]) == (
        True, ["CAP_SYS_ADMIN"], ["CAP_CHOWN"], [("/dev/null", "/dev/null", "rwm")])


def test_create_stores_the_names_as_dockerd_does():
    host = container_config.host_config({"CapAdd": ["sys_admin"], "CapDrop": ["CAP_chown"], "Devices": [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}]})
    assert (host["CapAdd"], host["CapDrop"]) == (["CAP_SYS_ADMIN"], ["CAP_CHOWN"])
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}]


@pytest.mark.parametrize("host, words", [
    ({"CapAdd": ["foo"]}, 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    ({"CapDrop": "chown"}, "CapDrop must be a list"),
    ({"Devices": [{"PathOnHost": "/etc/passwd", "PathInContainer": "/x", "CgroupPermissions": "rwm"}]},
     "not a device node"),
    ({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/x", "CgroupPermissions": "rwx"}]},
     "bad mode specified: rwx"),
    ({"Devices": "/dev/null"}, "HostConfig.Devices must be a list of objects"),
    ({"DeviceCgroupRules": ["x 1:3 r"]}, "invalid device cgroup rule format: 'x 1:3 r'"),
    ({"DeviceCgroupRules": "c 1:3 r"}, "HostConfig.DeviceCgroupRules must be a list of strings"),
])
def test_create_refuses_bad_privileges(host, words):
    with pytest.raises(InvalidConfig, match=words):
        container_config.host_config(host)


@pytest.mark.parametrize("text, rule", [
    ("c 1:3 rwm", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
    ("b 7:* rw", {"allow": True, "type": "b", "major": 7, "minor": None, "access": "rw"}),
    ("a *:* m", {"allow": True, "type": "a", "major": None, "minor": None, "access": "m"}),
])
def test_device_cgroup_rules(text, rule, rootfs):
    assert devices.cgroup_rule(text) == rule
    spec = make_spec(["sh"], rootfs, device_cgroup_rules=[text], rootless=False)
    assert spec["linux"]["resources"]["devices"] == [*DEFAULT_DEVICE_RULES, rule] and "devices" not in spec["linux"]


@pytest.mark.parametrize("text", ["c 1:3", "x 1:3 r", "c 1:3 rwx", "a", "c 1:3  r"])
def test_bad_device_cgroup_rules_in_dockerds_words(text):
    with pytest.raises(InvalidConfig, match=f"^invalid device cgroup rule format: '{text}'$"):
        devices.cgroup_rule(text)
