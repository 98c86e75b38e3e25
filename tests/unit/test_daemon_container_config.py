"""daemon/container_config.py: the create body checked and completed from the image, as dockerd does."""

from __future__ import annotations

import pytest

from teachdock.daemon import container_config
from teachdock.errors import InvalidConfig

IMAGE = {"config": {"Entrypoint": ["/entry"], "Cmd": ["serve"], "Env": ["PATH=/bin", "MODE=prod"],
                    "User": "app", "WorkingDir": "/srv"}}


@pytest.mark.parametrize("body, expected", [
    ({}, (["/entry"], ["serve"])),                                   # all from the image
    ({"Cmd": ["debug"]}, (["/entry"], ["debug"])),                   # docker run IMAGE debug
    ({"Cmd": "debug"}, (["/entry"], ["debug"])),                     # a string is one argument
    ({"Entrypoint": ["sh"]}, (["sh"], [])),                          # --entrypoint drops the image's CMD
    ({"Entrypoint": [], "Cmd": ["ls"]}, ([], ["ls"])),
])
def test_command(body, expected):
    assert container_config.command(body, IMAGE) == expected


def test_no_command_at_all_is_a_400():
    with pytest.raises(InvalidConfig, match="no command specified"):
        container_config.command({}, {"config": {}})


def test_config_takes_the_image_where_the_body_gives_nothing():
    config = container_config.config({"Image": "app:1", "Env": ["MODE=dev", "X=1"]}, IMAGE, "ab" * 32,
                                     ["/entry"], ["serve"])
    assert config["Env"] == ["PATH=/bin", "MODE=dev", "X=1"]  # -e wins over the image's ENV
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("app", "/srv", "ab" * 6)
    assert config["Image"] == "app:1" and config["StopSignal"] == "SIGTERM" and config["Entrypoint"] == ["/entry"]
    mine = container_config.config({"User": "0", "WorkingDir": "/", "Hostname": "h"}, IMAGE, "ab" * 32, [], ["ls"])
    assert (mine["User"], mine["WorkingDir"], mine["Hostname"], mine["Entrypoint"]) == ("0", "/", "h", None)


def test_host_config_defaults():
    host = container_config.host_config({"ShmSize": 0})
    # "default": the daemon's default network (bridge), named when the networks are configured
    assert host["NetworkMode"] == "default" and host["ShmSize"] == 64 * 1024 * 1024
    assert host["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0} and host["AutoRemove"] is False
    assert container_config.host_config({"NetworkMode": "container:other"})["NetworkMode"] == "container:other"
    with pytest.raises(InvalidConfig, match="invalid network mode"):
        container_config.host_config({"NetworkMode": "container:"})


@pytest.mark.parametrize("body, field", [
    ({"Cmd": [1]}, "Cmd"),
    ({"User": 0}, "User"),
    ({"HostConfig": []}, "HostConfig"),
    ({"HostConfig": {"Memory": "64m"}}, "HostConfig.Memory"),
    ({"HostConfig": {"Memory": True}}, "HostConfig.Memory"),
    ({"HostConfig": {"PidsLimit": -2}}, "HostConfig.PidsLimit"),
    ({"HostConfig": {"ConsoleSize": [24]}}, "HostConfig.ConsoleSize"),
])
def test_check_types_names_the_field(body, field):
    with pytest.raises(InvalidConfig, match=field):
        container_config.check_types(body)
    container_config.check_types({"Cmd": ["ls"], "User": "0", "HostConfig": {"Memory": 1, "PidsLimit": -1}})


@pytest.mark.parametrize("security_opt, words", [
    (["seccomp=" + '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOPE"}]}'],
     "seccomp profile: syscalls[0].action 'SCMP_ACT_NOPE' is not one of"),
    (['seccomp={"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_VAX"]}'],
     "seccomp profile: unknown architecture 'SCMP_ARCH_VAX'"),
    (['seccomp={"defaultAction":"SCMP_ACT_NOTIFY"}'], "SCMP_ACT_NOTIFY needs a seccomp agent"),
    (["bogus"], 'invalid --security-opt 1: "bogus"'),
])
def test_a_profile_the_runtime_would_refuse_is_a_400_at_create(security_opt, words):
    """dockerd finds a bad profile only at start (runc's error); teachdock refuses it at create."""
    with pytest.raises(InvalidConfig) as caught:
        container_config.host_config({"SecurityOpt": security_opt})
    assert words in str(caught.value)


# --- --memory and --memory-swap, as dockerd reads them -------------------------------------------
MIB = 1024 * 1024


@pytest.mark.parametrize("asked, accounting, swap", [
    ({"Memory": 64 * MIB}, True, 128 * MIB),                          # swap as large as the limit
    ({"Memory": 64 * MIB, "MemorySwap": 0}, True, 128 * MIB),
    ({"Memory": 64 * MIB, "MemorySwap": 64 * MIB}, True, 64 * MIB),   # = memory: no swap
    ({"Memory": 64 * MIB, "MemorySwap": -1}, True, -1),               # unlimited swap
    ({"Memory": 64 * MIB}, False, -1),                                # the kernel cannot limit swap
    ({}, True, None),                                                 # no limit, nothing filled in
])
def test_memory_swap_is_filled_in_as_dockerd_does(asked, accounting, swap):
    assert container_config.host_config(asked, swap_accounting=accounting).get("MemorySwap") == swap


@pytest.mark.parametrize("asked, words", [
    ({"MemorySwap": 128 * MIB}, "You should always set the Memory limit when using Memoryswap limit"),
    ({"Memory": 64 * MIB, "MemorySwap": 32 * MIB}, "Minimum memoryswap limit should be larger than memory limit"),
])
def test_an_impossible_memory_swap_is_refused_in_dockerd_s_words(asked, words):
    with pytest.raises(InvalidConfig, match=words):
        container_config.host_config(asked)


def test_the_create_answer_warns_when_swap_cannot_be_limited():
    assert container_config.swap_warnings({"Memory": 64 * MIB}, swap_accounting=False) == [container_config.SWAP_WARNING]
    assert container_config.swap_warnings({"Memory": 64 * MIB}, swap_accounting=True) == []
    assert container_config.swap_warnings({"Memory": 64 * MIB, "MemorySwap": -1}, swap_accounting=False) == []
    assert container_config.swap_warnings({}, swap_accounting=False) == []
