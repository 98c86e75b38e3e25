"""client/create_body.py: ``docker run``'s flags as the create body, split as the docker CLI splits them."""

from __future__ import annotations

import json

import pytest

from teachdock.client.create_body import create_body, device_mapping, security_options


@pytest.mark.parametrize("given, expected", [
    ("/dev/null", ("/dev/null", "/dev/null", "rwm")), ("/dev/null:/dev/mynull", ("/dev/null", "/dev/mynull", "rwm")),
    ("/dev/null:r", ("/dev/null", "/dev/null", "r")), ("/dev/null:/dev/x:rw", ("/dev/null", "/dev/x", "rw")),
    ("/dev/null:/dev/x:rwx", ("/dev/null", "/dev/x", "rwx")),  # the daemon refuses the mode, in the CLI's words
])
def test_device_mapping(given, expected):
    assert device_mapping(given) == dict(zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), expected))


def test_a_seccomp_file_is_sent_as_its_compacted_json(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
    assert security_options([f"seccomp={profile}", "seccomp=unconfined", "no-new-privileges"]) == [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}', "seccomp=unconfined", "no-new-privileges"]


def test_a_missing_or_broken_seccomp_file_is_the_clis_error(tmp_path):
    with pytest.raises(ValueError, match=r"^opening seccomp profile \(/nope.json\) failed: no such file or directory$"):
        security_options(["seccomp=/nope.json"])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="compacting json for seccomp profile"):
        security_options([f"seccomp={broken}"])


def test_the_security_flags_land_in_host_config():
    host = create_body("busybox", ["true"], read_only=True, privileged=True, cap_add=["NET_ADMIN"], cap_drop=["ALL"],
                       devices=["/dev/null"], security_opt=["no-new-privileges"])["HostConfig"]
    assert {key: host[key] for key in ("ReadonlyRootfs", "Privileged", "CapAdd", "CapDrop", "Devices",
                                       "SecurityOpt")} == {
        "ReadonlyRootfs": True, "Privileged": True, "CapAdd": ["NET_ADMIN"], "CapDrop": ["ALL"],
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"}],
        "SecurityOpt": ["no-new-privileges"]}
    plain = create_body("busybox", "echo hi")
    assert plain["Cmd"] == ["sh", "-c", "echo hi"] and not {"Privileged", "CapAdd", "Devices"} & set(plain["HostConfig"])
    assert json.dumps(plain)  # a JSON body


def test_memory_swap_lands_in_host_config_and_minus_one_means_unlimited():
    assert create_body("busybox", memory="64m", memory_swap="128m")["HostConfig"]["MemorySwap"] == 128 * 1024 * 1024
    assert create_body("busybox", memory="64m", memory_swap="-1")["HostConfig"]["MemorySwap"] == -1
    assert "MemorySwap" not in create_body("busybox", memory="64m")["HostConfig"]  # the daemon fills in Docker's 2x
