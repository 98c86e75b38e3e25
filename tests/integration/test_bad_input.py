"""Bad input: every mistake gets its own clear error, and a failed create leaves nothing behind
(no state directory, no cgroup, no process, no mount — the leak check watches the last two)."""

import json
import signal

import pytest

from teachdock.errors import Conflict, ContainerStartError, InvalidConfig, NotFound, TeachdockError
from teachdock.runtime import Container, make_spec, run, write_bundle
from teachdock.runtime.cgroups import open_cgroup

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]


def assert_nothing_left(state_root, container_id):
    assert not (state_root / container_id).exists(), "state directory left behind"
    assert not open_cgroup(f"/teachdock/{container_id}").exists(), "cgroup left behind"


def write_config(bundle, config_text: str):
    bundle.mkdir()
    (bundle / "config.json").write_text(config_text)
    return bundle


# --- bundles on disk ----------------------------------------------------------------------------------------
def test_malformed_config_json(tmp_path, state_root, new_id):
    bundle = write_config(tmp_path / "bundle", '{"ociVersion": "1.2.0", "process": {')
    container_id = new_id()
    with pytest.raises(InvalidConfig, match=r"config\.json: not valid JSON: Expecting .* at line 1 column \d+"):
        Container.create(container_id, bundle, state_root=state_root)
    assert_nothing_left(state_root, container_id)


def test_config_json_without_args(tmp_path, state_root, new_id, rootfs):
    config = make_spec(["true"], str(rootfs))
    config["process"]["args"] = []
    bundle = write_config(tmp_path / "bundle", json.dumps(config))
    container_id = new_id()
    with pytest.raises(InvalidConfig, match="process.args must be a non-empty list of strings"):
        Container.create(container_id, bundle, state_root=state_root)
    assert_nothing_left(state_root, container_id)


def test_bundle_without_config_json(tmp_path, state_root, new_id):
    (tmp_path / "empty").mkdir()
    container_id = new_id()
    with pytest.raises(NotFound, match="has no config.json"):
        Container.create(container_id, tmp_path / "empty", state_root=state_root)
    assert_nothing_left(state_root, container_id)


def test_bundle_whose_rootfs_is_missing(tmp_path, state_root, new_id):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = make_spec(["true"], "rootfs")  # relative to the bundle, which has no rootfs/
    (bundle / "config.json").write_text(json.dumps(config))
    container_id = new_id()
    with pytest.raises(NotFound, match=f"rootfs {bundle}/rootfs does not exist"):
        Container.create(container_id, bundle, state_root=state_root)
    assert_nothing_left(state_root, container_id)


def test_negative_limit_in_config_json(tmp_path, state_root, new_id, rootfs):
    config = make_spec(["true"], str(rootfs))
    config["linux"]["resources"]["cpu"] = {"quota": -5, "period": 100000}
    bundle = write_config(tmp_path / "bundle", json.dumps(config))
    container_id = new_id()
    with pytest.raises(InvalidConfig, match=r"cpu[ .]quota[ =]-5"):  # names the field and the value
        Container.create(container_id, bundle, state_root=state_root)
    assert_nothing_left(state_root, container_id)


# --- keyword arguments -------------------------------------------------------------------------------------
BAD_OPTIONS = [
    pytest.param({"rootfs": "/nonexistent/rootfs"}, NotFound,
                 "rootfs /nonexistent/rootfs does not exist or is not a directory", id="missing-rootfs"),
    pytest.param({"namespaces": ("pid", "mount", "pidd")}, InvalidConfig,
                 r"linux.namespaces\[2\].type 'pidd' is not a namespace \(known: pid, network", id="unknown-namespace"),
    pytest.param({"namespaces": ("pid", "pid", "mount")}, InvalidConfig, "lists 'pid' twice", id="namespace-twice"),
    pytest.param({"memory": "-64m"}, InvalidConfig, "memory limit '-64m' must be positive", id="negative-memory"),
    pytest.param({"cpus": -1}, InvalidConfig, r"cpus=-1: give a positive number of CPUs", id="negative-cpus"),
    pytest.param({"pids_limit": -5}, InvalidConfig, r"pids[ .]limit[ =]-5", id="negative-pids"),
    pytest.param({"memory": "4k"}, InvalidConfig, "below the 4 MiB minimum", id="impossible-memory"),
    pytest.param({"cpus": 0.005}, InvalidConfig, r"cpu quota 500µs is below the kernel's minimum", id="impossible-cpu"),
    pytest.param({"memory": "64m", "memory_swap": "32m"}, InvalidConfig,
                 "memory\\+swap limit 33554432 is smaller than the memory limit 67108864", id="swap-below-memory"),
    pytest.param({"cwd": "tmp"}, InvalidConfig, "process.cwd is required and must be an absolute path", id="relative-cwd"),
    pytest.param({"namespaces": ("pid", "mount"), "hostname": "box"}, InvalidConfig,
                 "hostname is set but there is no uts namespace", id="hostname-without-uts"),
    pytest.param({"capabilities": ["CAP_FLY"]}, InvalidConfig, "unknown capability", id="unknown-capability"),
    pytest.param({"user": "alice"}, InvalidConfig, "unable to find user alice: no matching entries", id="user-name"),
]


@pytest.mark.parametrize("options, error, message", BAD_OPTIONS)
def test_bad_options(rootfs, state_root, new_id, options, error, message):
    options = {"rootfs": str(rootfs), **options}
    container_id = new_id()
    with pytest.raises(error, match=message):
        Container.create(container_id, args=["true"], state_root=state_root, **options)
    assert_nothing_left(state_root, container_id)


def test_args_given_as_a_string(rootfs, state_root, new_id):
    container_id = new_id()
    with pytest.raises(InvalidConfig, match=r"args must be a list such as \['sh', '-c', 'echo hi'\]"):
        run("echo hi", rootfs=rootfs, state_root=state_root, container_id=container_id)
    assert_nothing_left(state_root, container_id)


def test_an_invalid_container_id(rootfs, state_root):
    with pytest.raises(InvalidConfig, match="invalid container id '../outside'"):
        Container.create("../outside", rootfs=rootfs, args=["true"], state_root=state_root)
    assert not (state_root.parent / "outside").exists()


# --- failures found only while setting the container up -----------------------------------------------
def test_a_cwd_that_does_not_exist(rootfs, state_root, new_id):
    container_id = new_id()
    with pytest.raises(ContainerStartError, match="process.cwd /nope: No such file or directory inside the container"):
        run(["true"], rootfs=rootfs, state_root=state_root, container_id=container_id, cwd="/nope")
    assert_nothing_left(state_root, container_id)


def test_joining_a_namespace_that_does_not_exist(rootfs, state_root, new_id):
    config = make_spec(["true"], str(rootfs))
    config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "network", "path": "/proc/999999999/ns/net"}]
    del config["hostname"]
    container_id = new_id()
    with pytest.raises(NotFound, match="cannot join network namespace /proc/999999999/ns/net: No such file"):
        Container.create(container_id, config=config, state_root=state_root)
    assert_nothing_left(state_root, container_id)


def test_no_mount_namespace_never_touches_the_hosts_mounts(rootfs, state_root, new_id, host_mount_guard):
    """Without "mount" the runtime must refuse (runc does) or at least leave the host's mount
    namespace alone. The guard fixture stops the first host-namespace mount call, so a bug
    here cannot pivot the host's root; it records the call instead."""
    container_id = new_id()
    try:
        run(["true"], rootfs=rootfs, state_root=state_root, container_id=container_id,
            namespaces=("pid", "uts", "ipc", "network"))
    except TeachdockError:
        pass  # refusing is right; which error is up to the runtime
    assert not host_mount_guard.exists(), (
        f"the runtime called, in the host's mount namespace: {host_mount_guard.read_text()}")
    assert_nothing_left(state_root, container_id)


# --- clashes -------------------------------------------------------------------------------------------------
def test_an_id_clash_leaves_the_first_container_alone(rootfs, state_root, new_id, tmp_path):
    container_id = new_id()
    with Container.create(container_id, rootfs=rootfs, args=["sleep", "30"], state_root=state_root) as first:
        first.start()
        bundle = tmp_path / "bundle"
        write_bundle(bundle, make_spec(["true"], str(rootfs)))
        with pytest.raises(Conflict, match=f"a container with id '{container_id}' already exists"):
            Container.create(container_id, bundle, state_root=state_root)
        assert first.status == "running"
        assert first.pid in first.cgroup.processes()
        first.kill(signal.SIGKILL)
        assert first.wait(10) == 137
    assert_nothing_left(state_root, container_id)


def test_a_cgroup_clash_leaves_the_owner_alone(rootfs, state_root, new_id):
    shared = f"/teachdock/{new_id.prefix}-shared"
    with Container.create(new_id(), rootfs=rootfs, args=["sleep", "30"], state_root=state_root,
                          cgroups_path=shared) as owner:
        owner.start()
        second_id = new_id()
        with pytest.raises(Conflict, match=f"cgroup {shared} already exists"):
            Container.create(second_id, rootfs=rootfs, args=["true"], state_root=state_root, cgroups_path=shared)
        assert not (state_root / second_id).exists()
        try:
            assert owner.status == "running", "the clash killed the container that owns the cgroup"
            assert open_cgroup(shared).exists(), "the clash destroyed the owner's cgroup"
        finally:
            if not open_cgroup(shared).exists():
                open_cgroup(shared).create()  # so that the owner's delete() finds what it expects
