"""host_platform: ``uname -m`` translated into the names image indexes use (Go's GOARCH).

One host_platform serves pull, load and a new FROM scratch config: if it named a machine
differently from the registry's index, pull would find no manifest for this host.
"""

import json
import os

import pytest

from teachdock.image.dockerfile import new_config
from teachdock.image.manifest import OCI_INDEX, OCI_MANIFEST
from teachdock.image.platforms import host_platform, select_manifest

MACHINES = [
    ("x86_64", {"architecture": "amd64", "os": "linux"}),
    ("i686", {"architecture": "386", "os": "linux"}),
    ("i386", {"architecture": "386", "os": "linux"}),
    ("aarch64", {"architecture": "arm64", "os": "linux"}),
    ("armv8l", {"architecture": "arm", "os": "linux", "variant": "v8"}),     # 32-bit userland on a 64-bit ARM
    ("armv7l", {"architecture": "arm", "os": "linux", "variant": "v7"}),
    ("armv6l", {"architecture": "arm", "os": "linux", "variant": "v6"}),     # a Raspberry Pi Zero
    ("armv5tel", {"architecture": "arm", "os": "linux", "variant": "v5"}),
    ("ppc64le", {"architecture": "ppc64le", "os": "linux"}),
    ("ppc64", {"architecture": "ppc64", "os": "linux"}),
    ("s390x", {"architecture": "s390x", "os": "linux"}),
    ("riscv64", {"architecture": "riscv64", "os": "linux"}),
    ("loongarch64", {"architecture": "loong64", "os": "linux"}),
    ("sparc64", {"architecture": "sparc64", "os": "linux"}),                 # unknown: passed through
]


def on(monkeypatch, machine):
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(("Linux", "h", "6.1", "#1", machine)))


@pytest.mark.parametrize("machine, platform", MACHINES, ids=[m for m, _ in MACHINES])
def test_each_machine_has_its_oci_platform(monkeypatch, machine, platform):
    on(monkeypatch, machine)
    assert host_platform() == platform


@pytest.mark.parametrize("machine, platform", MACHINES, ids=[m for m, _ in MACHINES])
def test_this_hosts_manifest_is_found_in_a_multi_platform_index(monkeypatch, machine, platform):
    """The index of an image like busybox, with every platform Docker Hub publishes."""
    on(monkeypatch, machine)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 1, "platform": p}
        for i, (_, p) in enumerate(MACHINES)]}
    assert select_manifest(index)["platform"] == platform


def test_a_new_config_starts_with_the_architecture_as_image_configs_do(monkeypatch):
    """The config's bytes are its digest: the key order must not change between releases."""
    on(monkeypatch, "x86_64")
    assert json.dumps(new_config()).startswith('{"architecture": "amd64", "os": "linux", "config"')
    on(monkeypatch, "armv7l")
    assert list(new_config())[:3] == ["architecture", "os", "variant"]
