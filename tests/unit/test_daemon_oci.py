"""daemon/oci.py: each Docker setting of a container record and the OCI spec option it becomes.

Pure functions on plain dicts: no daemon, no root, nothing on disk.
"""

from __future__ import annotations

import pytest

from teachdock.daemon import oci
from teachdock.errors import InvalidConfig
from teachdock.runtime import make_spec

CONTAINER_ID = "c0ffee" * 10 + "abcd"
VOLUME = {"destination": "/data", "type": "bind", "source": "/var/lib/teachdock/daemon/volumes/v/_data",
          "options": ["rbind", "rw"]}
ETC = {"/etc/hostname": "/d/c/hostname", "/etc/hosts": "/d/c/hosts", "/etc/resolv.conf": "/d/c/resolv.conf"}


def record(config=None, host=None) -> dict:
    """A container.json as ContainerManager.create stores it (only what the mapping reads)."""
    return {"Id": CONTAINER_ID,
            "Config": {"Hostname": "c0ffeec0ffee", "Env": ["PATH=/bin", "A=1"], "WorkingDir": "", "Tty": False,
                       **(config or {})},
            "HostConfig": {"NetworkMode": "none", **(host or {})}}


def options(config=None, host=None, **given) -> dict:
    arguments = {"user": "0:0", "additional_gids": [], "mounts": [], "cgroup_parent": "teachdock", **given}
    return oci.spec_options(record(config, host), **arguments)


def test_defaults_of_a_plain_docker_run():
    got = options()
    assert got == {"hostname": "c0ffeec0ffee", "env": {"PATH": "/bin", "A": "1"}, "cwd": "/", "user": "0:0",
                   "additional_gids": [], "readonly": False, "writable_tmp": False, "init": False, "memory": None, "memory_swap": None,
                   "cpus": None, "cpu_shares": None, "pids_limit": None,
                   "cgroups_path": f"/teachdock/{CONTAINER_ID}", "mounts": [],
                   "seccomp": "default", "no_new_privileges": False,  # Docker's profile; no_new_privs off, as dockerd
                   "privileged": False, "cap_add": None, "cap_drop": None, "devices": [], "device_cgroup_rules": None}


def test_hostname_env_and_working_dir():
    got = options({"Hostname": "web", "Env": ["A=1", "B=x=y", "A=2"], "WorkingDir": "/srv"})
    assert got["hostname"] == "web"
    assert got["env"] == {"A": "2", "B": "x=y"}  # a later KEY wins; '=' in a value is kept
    assert got["cwd"] == "/srv"


def test_user_and_groups_are_handed_in_resolved():
    got = options(user="1000:100", additional_gids=[10, 20])
    assert got["user"] == "1000:100" and got["additional_gids"] == [10, 20]


@pytest.mark.parametrize("host, option, expected", [
    ({"Memory": 64 * 1024 * 1024}, "memory", 64 * 1024 * 1024),
    ({"Memory": 0}, "memory", None),
    ({"Memory": 64 * 1024 * 1024, "MemorySwap": 128 * 1024 * 1024}, "memory_swap", 128 * 1024 * 1024),
    ({"Memory": 64 * 1024 * 1024, "MemorySwap": -1}, "memory_swap", -1),
    ({"Memory": 0, "MemorySwap": 0}, "memory_swap", None),
    ({"NanoCpus": 500_000_000}, "cpus", 0.5),
    ({"NanoCpus": 0}, "cpus", None),
    ({"CpuShares": 512}, "cpu_shares", 512),
    ({"CpuShares": 0}, "cpu_shares", None),
    ({"PidsLimit": 20}, "pids_limit", 20),
    ({"PidsLimit": 0}, "pids_limit", None),    # Docker's 0 and -1 both mean unlimited
    ({"PidsLimit": -1}, "pids_limit", None),
    ({"PidsLimit": None}, "pids_limit", None),
    ({"Init": True}, "init", True),
    ({"ReadonlyRootfs": True}, "readonly", True),
])
def test_host_config_limits_and_switches(host, option, expected):
    assert options(host=host)[option] == expected


def test_read_only_rootfs_gets_no_private_tmp():
    assert options(host={"ReadonlyRootfs": True})["writable_tmp"] is False


def test_cgroup_parent_places_the_container():
    assert options(cgroup_parent="/classroom/")["cgroups_path"] == f"/classroom/{CONTAINER_ID}"


def test_network_host_leaves_out_the_network_namespace():
    assert options(host={"NetworkMode": "host"})["namespaces"] == ("pid", "mount", "uts", "ipc")
    for mode in ("none", "bridge", "mynet"):
        assert "namespaces" not in options(host={"NetworkMode": mode})  # make_spec's default: all of them


def test_network_container_joins_the_other_namespace_by_path(tmp_path):
    got = options(host={"NetworkMode": "container:web"}, network_namespace="/proc/42/ns/net")
    assert got["namespaces"] == ("pid", "mount", "uts", "ipc", {"type": "network", "path": "/proc/42/ns/net"})
    (tmp_path / "etc").mkdir()
    spec = make_spec(["true"], tmp_path, namespaces=got["namespaces"], rootless=False)
    assert spec["linux"]["namespaces"][-1] == {"type": "network", "path": "/proc/42/ns/net"}


def test_tty_asks_for_a_terminal_of_the_console_size():
    got = options({"Tty": True}, {"ConsoleSize": [40, 120]})
    assert got["terminal"] is True and got["console_size"] == [40, 120]
    assert options({"Tty": True})["console_size"] is None
    assert "terminal" not in options({"Tty": False}, {"ConsoleSize": [40, 120]})


def test_volumes_and_binds_are_the_mounts():
    assert options(mounts=[VOLUME])["mounts"] == [VOLUME]


def test_the_daemons_etc_files_become_bind_mounts_after_the_users():
    got = options(mounts=[VOLUME], etc_files=ETC)["mounts"]
    assert got == [VOLUME,
                   {"destination": "/etc/hostname", "type": "bind", "source": "/d/c/hostname",
                    "options": ["rbind", "rprivate", "rw"]},
                   {"destination": "/etc/hosts", "type": "bind", "source": "/d/c/hosts",
                    "options": ["rbind", "rprivate", "rw"]},
                   {"destination": "/etc/resolv.conf", "type": "bind", "source": "/d/c/resolv.conf",
                    "options": ["rbind", "rprivate", "rw"]}]


def test_etc_files_are_read_only_with_a_read_only_rootfs():
    for mount in options(host={"ReadonlyRootfs": True}, etc_files=ETC)["mounts"]:
        assert mount["options"][-1] == "ro"


def test_a_users_own_etc_hosts_wins():
    mine = {"destination": "/etc/hosts", "type": "bind", "source": "/home/me/hosts", "options": ["rbind", "ro"]}
    got = options(mounts=[mine], etc_files=ETC)["mounts"]
    assert [m["destination"] for m in got] == ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
    assert [m for m in got if m["destination"] == "/etc/hosts"] == [mine]


def test_the_mapping_does_not_change_the_record():
    data = record({"Tty": True}, {"NetworkMode": "host", "ConsoleSize": [1, 2]})
    before = repr(data)
    oci.spec_options(data, user=None, additional_gids=[], mounts=[], cgroup_parent="t", etc_files=ETC)
    assert repr(data) == before


def test_make_spec_accepts_the_options():
    """The mapping's output is what the runtime's make_spec takes: every Docker setting lands in config.json."""
    got = options({"Tty": True, "Hostname": "web"}, {"Memory": 64 * 1024 * 1024, "NanoCpus": 500_000_000,
                                                      "PidsLimit": 20, "ReadonlyRootfs": True, "Init": True,
                                                      "ConsoleSize": [24, 80]},
                  user="1000:100", additional_gids=[10], mounts=[VOLUME], etc_files=ETC)
    spec = make_spec(["sh"], "/rootfs", **got)
    assert spec["hostname"] == "web" and spec["root"] == {"path": "/rootfs", "readonly": True}
    assert spec["process"]["user"] == {"uid": 1000, "gid": 100, "additionalGids": [10]}
    assert spec["process"]["terminal"] is True and spec["process"]["consoleSize"] == {"height": 24, "width": 80}
    assert "A=1" in spec["process"]["env"]
    resources = spec["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 * 1024 * 1024}
    assert resources["cpu"]["quota"] == 50000 and resources["pids"] == {"limit": 20}
    assert spec["linux"]["cgroupsPath"] == f"/teachdock/{CONTAINER_ID}"
    assert spec["annotations"] == {"org.teachdock.init": "true"}
    destinations = [m["destination"] for m in spec["mounts"]]
    assert {"/data", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} <= set(destinations)
    assert "/tmp" not in destinations  # --read-only: not even /tmp is writable, as in Docker


def test_env_dict():
    assert oci.env_dict([]) == {}
    assert oci.env_dict(["EMPTY=", "NOEQUALS", "K=v"]) == {"EMPTY": "", "NOEQUALS": "", "K": "v"}


def test_a_volume_over_etc_gets_none_of_the_daemons_files():
    conf = {"destination": "/etc/", "type": "bind", "source": "/var/lib/teachdock/daemon/volumes/conf/_data",
            "options": ["rbind", "rw"]}
    assert options(mounts=[conf], etc_files=ETC)["mounts"] == [conf]
    elsewhere = {**conf, "destination": "/etcetera"}  # a prefix of the name is not a parent directory
    assert [m["destination"] for m in options(mounts=[elsewhere], etc_files=ETC)["mounts"]] == \
        ["/etcetera", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]


# --- --security-opt (moby's parseSecurityOpt) -----------------------------------------------------------------
MKDIR_PROFILE = '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}'


@pytest.mark.parametrize("security_opt, expected", [
    (None, {"seccomp": "default", "no_new_privileges": False}),
    ([], {"seccomp": "default", "no_new_privileges": False}),
    (["seccomp=unconfined"], {"seccomp": None, "no_new_privileges": False}),
    (["seccomp:unconfined"], {"seccomp": None, "no_new_privileges": False}),  # the old spelling
    (["seccomp=builtin"], {"seccomp": "default", "no_new_privileges": False}),
    (["no-new-privileges"], {"seccomp": "default", "no_new_privileges": True}),
    (["no-new-privileges:true"], {"seccomp": "default", "no_new_privileges": True}),
    (["no-new-privileges=1", "no-new-privileges=false"], {"seccomp": "default", "no_new_privileges": False}),
    (["apparmor=unconfined", "label=disable", "label:disable", "disable"],
     {"seccomp": "default", "no_new_privileges": False}),  # what teachdock already is
    ([f"seccomp={MKDIR_PROFILE}"], {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}, "no_new_privileges": False}),
])
def test_security_options(security_opt, expected):
    assert oci.security_options(security_opt) == expected
    assert {key: options(host={"SecurityOpt": security_opt})[key] for key in expected} == expected


@pytest.mark.parametrize("security_opt, words", [
    (["foo"], 'invalid --security-opt 1: "foo"'),  # dockerd's words, checked against dockerd 20.10
    (["foo=bar"], 'invalid --security-opt 2: "foo=bar"'),
    (["no-new-privileges=maybe"], 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    (["seccomp={not json"], "Decoding seccomp profile failed"),
    (["apparmor=docker-default"], "no AppArmor support"),
    (["label=type:svirt_apache_t"], "no SELinux support"),
    (["writable-cgroups"], 'invalid --security-opt 1: "writable-cgroups"'),
    ("seccomp=unconfined", "SecurityOpt must be a list of strings"),
])
def test_security_options_it_cannot_honour_are_refused(security_opt, words):
    with pytest.raises(InvalidConfig) as caught:
        oci.security_options(security_opt)
    assert words in str(caught.value)


def test_the_options_reach_the_spec():
    spec = make_spec(["sh"], "/rootfs", **options(host={"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]}))
    assert "seccomp" not in spec["linux"] and spec["process"]["noNewPrivileges"] is True
    spec = make_spec(["sh"], "/rootfs", **options(host={"SecurityOpt": [f"seccomp={MKDIR_PROFILE}"]}))
    assert spec["linux"]["seccomp"]["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    assert spec["process"]["noNewPrivileges"] is False
