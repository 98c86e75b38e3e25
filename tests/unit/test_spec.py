"""The OCI bundle spec without root: make_spec builds what Docker would, validate names the bad
field, parse_memory reads sizes, and bundles round-trip through config.json."""

import json
import os

import pytest

from teachdock.errors import InvalidConfig, NotFound
from teachdock.runtime import spec as spec_module
from teachdock.runtime.spec import (
    DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES, DEFAULT_MASKED_PATHS, DEFAULT_NAMESPACES, DEFAULT_PATH, DEFAULT_READONLY_PATHS,
    check_container_id, load_bundle, parse_memory, rootfs_path, validate, write_bundle,
)

MIB = 1 << 20


# --- parse_memory ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("64m", 64 * MIB), ("64M", 64 * MIB), ("64mb", 64 * MIB), ("64MiB", 64 * MIB), ("512k", 512 << 10),
    ("1g", 1 << 30), ("1.5g", 3 << 29), ("4096", 4096), ("100b", 100), (" 8m ", 8 * MIB), (12345, 12345),
])
def test_parse_memory_reads_sizes(text, expected):
    assert parse_memory(text) == expected


def test_parse_memory_keeps_none():
    assert parse_memory(None) is None


@pytest.mark.parametrize("value, message", [
    ("lots", "is not a size: write e.g. 64m"), ("64x", "is not a size"), ("", "is not a size"),
    ("-1m", "must be positive"), (0, "must be positive"), (-5, "must be positive"), (True, "is not a size"),
])
def test_parse_memory_rejects_nonsense(value, message):
    with pytest.raises(InvalidConfig, match=message):
        parse_memory(value)


# --- make_spec: Docker's defaults ---------------------------------------------------------------------------


def make_spec(args, rootfs, **options):
    """The spec root gets (Docker's defaults), whoever runs these tests: make_spec decides by the
    caller's uid otherwise, and the rootless spec has its own tests below."""
    return spec_module.make_spec(args, rootfs, rootless=False, **options)


def test_a_rootless_spec_maps_root_to_the_callers_own_ids():
    linux = spec_module.make_spec(["true"], "/r", rootless=True)["linux"]
    assert {"type": "user"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert linux["resources"] == {}  # no cgroup: no device rules either


def test_a_rootless_spec_mounts_devpts_without_the_tty_group():
    devpts = next(m for m in spec_module.make_spec(["true"], "/r", rootless=True)["mounts"]
                  if m["destination"] == "/dev/pts")
    assert "gid=5" not in devpts["options"]
    rooted = next(m for m in make_spec(["true"], "/r")["mounts"] if m["destination"] == "/dev/pts")
    assert "gid=5" in rooted["options"]


def test_without_a_choice_the_callers_uid_decides(monkeypatch):
    monkeypatch.setattr(spec_module.os, "geteuid", lambda: 1000)
    assert {"type": "user"} in spec_module.make_spec(["true"], "/r")["linux"]["namespaces"]
    monkeypatch.setattr(spec_module.os, "geteuid", lambda: 0)
    assert {"type": "user"} not in spec_module.make_spec(["true"], "/r")["linux"]["namespaces"]
@pytest.fixture
def spec():
    return make_spec(["sh", "-c", "echo hi"], "/some/rootfs")


def test_defaults_match_docker_run(spec):
    process = spec["process"]
    assert process["args"] == ["sh", "-c", "echo hi"]
    assert process["cwd"] == "/"
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["env"] == [DEFAULT_PATH, "HOSTNAME=teachdock"]
    assert process["noNewPrivileges"] is True
    assert process["terminal"] is False
    for kind in ("bounding", "effective", "permitted"):
        assert sorted(process["capabilities"][kind]) == sorted(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14 and "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES
    assert spec["root"] == {"path": "/some/rootfs", "readonly": True}
    assert spec["hostname"] == "teachdock"
    assert [n["type"] for n in spec["linux"]["namespaces"]] == list(DEFAULT_NAMESPACES)
    assert set(DEFAULT_NAMESPACES) == {"pid", "mount", "uts", "ipc", "network"}
    assert spec["linux"]["maskedPaths"] == DEFAULT_MASKED_PATHS
    assert spec["linux"]["readonlyPaths"] == DEFAULT_READONLY_PATHS
    assert spec["linux"]["resources"] == {"devices": DEFAULT_DEVICE_RULES}
    assert DEFAULT_DEVICE_RULES[0] == {"allow": False, "access": "rwm"}  # deny everything first
    assert "annotations" not in spec


def test_default_mounts_in_order_and_tmp_when_readonly(spec):
    destinations = [m["destination"] for m in spec["mounts"]]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/tmp"]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]


def test_a_writable_root_gets_no_tmpfs_on_tmp():
    spec = make_spec(["true"], "/r", readonly=False)
    assert spec["root"]["readonly"] is False
    assert "/tmp" not in [m["destination"] for m in spec["mounts"]]


def test_extra_mounts_come_after_the_defaults():
    extra = {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ro"]}
    spec = make_spec(["true"], "/r", mounts=[extra])
    assert spec["mounts"][-1] == extra


# --- make_spec: options ----------------------------------------------------------------------------------------
def test_cpus_become_quota_per_100ms_period():
    assert make_spec(["true"], "/r", cpus=0.5)["linux"]["resources"]["cpu"] == {"period": 100000, "quota": 50000}
    assert make_spec(["true"], "/r", cpus=1.5)["linux"]["resources"]["cpu"]["quota"] == 150000


def test_cpu_shares_alone():
    assert make_spec(["true"], "/r", cpu_shares=512)["linux"]["resources"]["cpu"] == {"shares": 512}


def test_memory_swap_and_pids():
    resources = make_spec(["true"], "/r", memory="64m", memory_swap="128m", pids_limit=20)["linux"]["resources"]
    assert resources == {"memory": {"limit": 64 * MIB, "swap": 128 * MIB}, "pids": {"limit": 20},
                         "devices": DEFAULT_DEVICE_RULES}


@pytest.mark.parametrize("cpus", [0, -0.5, "1"])
def test_cpus_must_be_a_positive_number(cpus):
    with pytest.raises(InvalidConfig, match="give a positive number of CPUs"):
        make_spec(["true"], "/r", cpus=cpus)


@pytest.mark.parametrize("user, ids", [(None, (0, 0)), (1000, (1000, 0)), ("1000", (1000, 0)),
                                       ("1000:1001", (1000, 1001)), ("0:5", (0, 5))])
def test_user_forms(user, ids):
    """Without an /etc/passwd entry a bare uid gets group 0, as `docker run --user 1000` does."""
    assert make_spec(["true"], "/r", user=user)["process"]["user"] == {"uid": ids[0], "gid": ids[1]}


@pytest.mark.parametrize("user, message", [("alice", "unable to find user alice"),
                                           ("1000:staff", "unable to find group staff"),
                                           ("-1", "cannot be negative"), ("1:-1", "cannot be negative")])
def test_bad_users(user, message):
    with pytest.raises(InvalidConfig, match=message):
        make_spec(["true"], "/r", user=user)


def test_env_adds_and_overrides():
    env = make_spec(["true"], "/r", env={"A": "b", "PATH": "/bin"})["process"]["env"]
    assert env == ["HOSTNAME=teachdock", "A=b", "PATH=/bin"]


def test_no_hostname_means_no_hostname_field():
    spec = make_spec(["true"], "/r", hostname=None)
    assert "hostname" not in spec
    assert spec["process"]["env"] == [DEFAULT_PATH]


def test_user_namespace_maps_root_to_100000():
    linux = make_spec(["true"], "/r", namespaces=DEFAULT_NAMESPACES + ("user",))["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert linux["gidMappings"] == linux["uidMappings"]


def test_user_namespace_with_another_range():
    linux = make_spec(["true"], "/r", namespaces=("user", "pid", "mount"), hostname=None,
                      uid_map=(0, 200000, 1000))["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 200000, "size": 1000}]


def test_no_user_namespace_no_mappings(spec):
    assert "uidMappings" not in spec["linux"] and "gidMappings" not in spec["linux"]


def test_capabilities_and_no_new_privileges():
    spec = make_spec(["true"], "/r", capabilities=["CAP_SYS_ADMIN"], no_new_privileges=False)
    assert spec["process"]["capabilities"]["bounding"] == ["CAP_SYS_ADMIN"]
    assert spec["process"]["noNewPrivileges"] is False


def test_init_and_cgroups_path_and_rlimits():
    spec = make_spec(["true"], "/r", init=True, cgroups_path="/mine/c1", rlimits={"RLIMIT_NOFILE": (64, 128)})
    assert spec["annotations"] == {"org.teachdock.init": "true"}
    assert spec["linux"]["cgroupsPath"] == "/mine/c1"
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 128, "soft": 64}]


def test_args_must_be_a_list():
    with pytest.raises(InvalidConfig, match=r"args must be a list such as \['sh', '-c', 'echo hi'\], not a string"):
        make_spec("echo hi", "/r")


def test_make_spec_output_is_json_and_valid(spec):
    validate(json.loads(json.dumps(spec)))


# --- validate: the first bad field is named -------------------------------------------------------------------
def broken(change):
    """A valid spec with one change applied by ``change(spec)``."""
    spec = make_spec(["true"], "/r", namespaces=DEFAULT_NAMESPACES + ("user",))
    change(spec)
    return spec


def _set(path, value):
    def change(spec):
        target = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(spec):
        target = spec
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


BAD_SPECS = [
    (_delete(["ociVersion"]), "ociVersion is required"),
    (_set(["root"], {}), "root.path is required"),
    (_set(["root", "readonly"], "yes"), "root.readonly must be true or false"),
    (_delete(["process"]), "process is required"),
    (_set(["process", "args"], "true"), "process.args must be a non-empty list of strings"),
    (_set(["process", "args"], ["sh", 1]), "process.args must be a non-empty list of strings"),
    (_set(["process", "cwd"], "tmp"), "process.cwd is required and must be an absolute path"),
    (_set(["process", "env"], ["NOEQUALS"]), "process.env entries must be strings of the form KEY=VALUE"),
    (_set(["process", "user"], {"uid": -1, "gid": 0}), "process.user needs non-negative integer uid and gid"),
    (_set(["process", "user"], {"uid": 0, "gid": 0, "additionalGids": [-3]}), "additionalGids must be ids"),
    (_set(["process", "terminal"], "yes"), "process.terminal must be true or false"),
    (_set(["process", "capabilities"], {"magic": []}), "process.capabilities.magic is not a capability set"),
    (_set(["process", "capabilities"], {"bounding": ["CAP_FLY"]}), r"unknown capability \['CAP_FLY'\]"),
    (_set(["process", "rlimits"], [{"type": "NOFILE", "soft": 1, "hard": 1}]), r"process.rlimits\[0\] needs type RLIMIT_"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]), "soft limit above hard limit"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_FLY", "soft": 1, "hard": 1}]), "unknown type RLIMIT_FLY"),
    (_set(["hostname"], "h" * 65), "hostname must be a string of 1-64 characters"),
    (_set(["mounts"], [{"destination": "relative"}]), r"mounts\[0\].destination is required and must be absolute"),
    (_set(["mounts"], [{"destination": "/x", "options": [1]}]), r"mounts\[0\].options must be strings"),
    (_set(["linux"], []), "linux must be an object"),
    (_set(["linux", "namespaces"], [{"type": "pidd"}]), r"linux.namespaces\[0\].type 'pidd' is not a namespace"),
    (_set(["linux", "namespaces"], [{"type": "uts"}, {"type": "uts"}]), "lists 'uts' twice"),
    (_set(["linux", "namespaces"], [{"type": "uts", "path": "proc/1/ns/uts"}]), "path must be an absolute path"),
    (_set(["linux", "namespaces"], [{"type": "mount"}, {"type": "pid"}]), "hostname is set but there is no uts namespace"),
    (_set(["linux", "namespaces"], [{"type": "pid"}, {"type": "uts"}]), "linux.namespaces needs a new mount namespace"),
    (_set(["linux", "namespaces"], [{"type": "mount", "path": "/proc/1/ns/mnt"}, {"type": "uts"}]),
     "linux.namespaces needs a new mount namespace"),
    (_delete(["linux", "uidMappings"]), "linux.uidMappings is required with a new user namespace"),
    (_set(["linux", "gidMappings"], [{"containerID": 0, "hostID": 1, "size": 0}]), "need containerID, hostID and a positive size"),
    (_set(["linux", "cgroupsPath"], "/teachdock/../escape"), "cgroupsPath must be a path without '..'"),
    (_set(["linux", "resources"], {"memory": {"limit": 0}}), r"memory limit 0 bytes is below the 4 MiB minimum \(linux.resources.memory.limit\)"),
    (_set(["linux", "resources"], {"memory": {"limit": "64m"}}), r"linux.resources.memory.limit must be an integer, got '64m'"),
    (_set(["linux", "resources"], {"cpu": {"quota": 0}}), r"cpu quota 0µs is below the kernel's minimum of 1000µs"),
    (_set(["linux", "resources"], {"cpu": {"period": -1}}), r"cpu period -1µs is outside the kernel's range"),
    (_set(["linux", "resources"], {"cpu": {"shares": 1}}), r"cpu shares 1 is outside 2..262144"),
    (_set(["linux", "resources"], {"pids": {"limit": -2}}), r"pids limit -2 is negative \(linux.resources.pids.limit\)"),
    (_set(["linux", "maskedPaths"], ["proc/kcore"]), "linux.maskedPaths must be absolute paths"),
]


@pytest.mark.parametrize("change, message", BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_validate_names_the_bad_field(change, message):
    with pytest.raises(InvalidConfig, match=message):
        validate(broken(change))


def test_validate_rejects_a_non_object():
    with pytest.raises(InvalidConfig, match="the top level must be a JSON object"):
        validate(["not", "a", "config"])


def test_unlimited_values_are_accepted():
    validate(broken(_set(["linux", "resources"], {"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}})))


def test_joining_a_user_namespace_needs_no_mappings():
    spec = broken(_set(["linux", "namespaces"], [{"type": "user", "path": "/proc/1/ns/user"}, {"type": "mount"},
                                                 {"type": "uts"}]))
    del spec["linux"]["uidMappings"], spec["linux"]["gidMappings"]
    validate(spec)


# --- container ids ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["a", "web-1", "A.b_c-9", "x" * 128])
def test_good_container_ids(good):
    assert check_container_id(good) == good


@pytest.mark.parametrize("bad", ["", ".hidden", "-x", "a/b", "../x", "x" * 129, "spa ce", None, 5])
def test_bad_container_ids(bad):
    with pytest.raises(InvalidConfig, match="invalid container id"):
        check_container_id(bad)


# --- bundles ---------------------------------------------------------------------------------------------------------
def test_bundle_round_trip_with_a_relative_rootfs(tmp_path):
    (tmp_path / "rootfs").mkdir()
    written = write_bundle(tmp_path, make_spec(["echo", "hi"], "rootfs"))
    assert written == tmp_path / "config.json"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place
    config, root = load_bundle(tmp_path)
    assert config["process"]["args"] == ["echo", "hi"]
    assert root == tmp_path / "rootfs"


def test_write_bundle_refuses_an_invalid_config_and_writes_nothing(tmp_path):
    spec = make_spec(["true"], "rootfs")
    spec["process"]["cwd"] = "relative"
    with pytest.raises(InvalidConfig, match="process.cwd"):
        write_bundle(tmp_path / "b", spec)
    assert not (tmp_path / "b").exists()


def test_load_bundle_errors(tmp_path):
    with pytest.raises(NotFound, match="does not exist or is not a directory"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "b").mkdir()
    with pytest.raises(NotFound, match="has no config.json"):
        load_bundle(tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text("{\n  \"ociVersion\": 1,,\n}")
    with pytest.raises(InvalidConfig, match=r"not valid JSON: Expecting .* at line 2 column \d+"):
        load_bundle(tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text(json.dumps(make_spec(["true"], "rootfs")))
    with pytest.raises(NotFound, match=r"rootfs .*/b/rootfs does not exist .*teachdock store bootstrap busybox"):
        load_bundle(tmp_path / "b")


def test_a_relative_rootfs_needs_a_bundle():
    with pytest.raises(InvalidConfig, match="is relative but there is no bundle directory"):
        rootfs_path(make_spec(["true"], "rootfs"))


def test_time_offsets_need_a_time_namespace():
    with pytest.raises(InvalidConfig, match="linux.timeOffsets needs a time namespace"):
        make_spec(["true"], "/r", time_offsets={"boottime": 60})
    spec = make_spec(["true"], "/r", namespaces=(*DEFAULT_NAMESPACES, "time"), time_offsets={"boottime": 60})
    assert spec["linux"]["timeOffsets"] == {"boottime": {"secs": 60, "nanosecs": 0}}


def test_a_user_namespace_without_a_pid_namespace_is_refused_with_the_reason():
    with pytest.raises(InvalidConfig, match="a new user namespace needs a new pid namespace too"):
        make_spec(["true"], "/r", namespaces=("mount", "uts", "user"))


def test_write_etc_files_with_the_address_and_resolvers(tmp_path):
    """The daemon's /etc/hosts names the container's address; resolv.conf lists the resolvers given."""
    from teachdock.runtime.spec import write_etc_files

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    for name in ("hostname", "hosts", "resolv.conf"):
        (rootfs / "etc" / name).write_text("")
    plain = write_etc_files(tmp_path / "a", rootfs, "box")
    assert "127.0.1.1\tbox\n" in open(plain["/etc/hosts"]).read()
    assert "nameserver " not in open(plain["/etc/resolv.conf"]).read()  # the callers' behaviour, as before
    given = write_etc_files(tmp_path / "b", rootfs, "box", address="172.29.0.2", nameservers=["127.0.0.11"],
                            search=["lab"], options=["ndots:0"], note="embedded")
    hosts = open(given["/etc/hosts"]).read()
    assert hosts.endswith("172.29.0.2\tbox\n") and "127.0.1.1" not in hosts
    assert open(given["/etc/resolv.conf"]).read() == "# embedded\nnameserver 127.0.0.11\nsearch lab\noptions ndots:0\n"


def test_unlimited_swap_is_minus_one_in_the_spec():
    resources = make_spec(["true"], "/r", memory="64m", memory_swap=-1)["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 * 1024 * 1024, "swap": -1}
