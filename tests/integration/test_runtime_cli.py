"""`teachdock runtime`: the runc verbs from the shell, as a learner types them."""

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]


@pytest.fixture
def cli(state_root, tmp_path):
    """``cli(*args)``: run `teachdock runtime --root <this test's state root> ARGS` and return it.

    Like runc, `create` hands its own stdout and stderr to the container, which keeps them
    open while it lives: capture into files, not pipes, or the test would wait for the
    container to end."""

    def run(*args, check=True, timeout=30):
        with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
            done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", str(state_root), *args],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True, timeout=timeout)
            out.seek(0)
            err.seek(0)
            done.stdout, done.stderr = out.read(), err.read()
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


@pytest.fixture
def bundle(tmp_path, rootfs, cli):
    """A bundle written by `teachdock runtime spec`; ``bundle(*args)`` sets the program."""

    def make(*args):
        directory = tmp_path / "bundle"
        directory.mkdir(exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "spec", "--bundle", str(directory),
                               "--rootfs", str(rootfs), "--", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return directory

    return make


def test_spec_writes_a_bundle_runc_would_accept(bundle):
    config = json.loads((bundle("sh", "-c", "true") / "config.json").read_text())
    assert config["ociVersion"] == "1.0.2" and config["process"]["args"] == ["sh", "-c", "true"]


def test_run_prints_and_passes_the_exit_code_on(bundle, cli, new_id, state_root):
    done = cli("run", "--bundle", str(bundle("sh", "-c", "echo hello from $(hostname); exit 3")), new_id(), check=False)
    assert (done.returncode, done.stdout) == (3, "hello from teachdock\n")
    assert os.listdir(state_root) == []  # run deletes the container when it ends


def test_create_list_start_state_delete(bundle, cli, new_id):
    container_id = new_id()
    cli("create", "--bundle", str(bundle("sleep", "30")), container_id)
    listing = cli("list").stdout.splitlines()
    assert listing[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert listing[1].split()[0] == container_id and listing[1].split()[2] == "created"
    cli("start", container_id)
    assert json.loads(cli("state", container_id).stdout)["status"] == "running"
    cli("kill", container_id, "KILL")
    deadline = time.monotonic() + 10
    while json.loads(cli("state", container_id).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline, "the container did not stop after SIGKILL"
        time.sleep(0.05)
    assert json.loads(cli("state", container_id).stdout)["exitCode"] == 137
    cli("delete", container_id)
    assert cli("list").stdout.splitlines()[1:] == []


def test_cleanup_removes_a_stopped_container(bundle, cli, new_id):
    container_id = new_id()
    cli("create", "--bundle", str(bundle("true")), container_id)
    cli("start", container_id)
    deadline = time.monotonic() + 10
    while json.loads(cli("state", container_id).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert f"removed stopped container {container_id}" in cli("cleanup").stdout
    assert cli("list").stdout.splitlines()[1:] == []


@pytest.mark.parametrize("args, message", [
    (("state", "no-such-box"), "teachdock runtime: no such container: no-such-box"),
    (("kill", "no-such-box", "TERM"), "teachdock runtime: no such container: no-such-box"),
    (("run", "--bundle", "/nonexistent-bundle", "x1"), "bundle /nonexistent-bundle does not exist"),
])
def test_errors_are_one_line_and_exit_1(cli, args, message):
    done = cli(*args, check=False)
    assert done.returncode == 1
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_unknown_signal_is_named(bundle, cli, new_id):
    container_id = new_id()
    cli("create", "--bundle", str(bundle("sleep", "30")), container_id)
    try:
        done = cli("kill", container_id, "SIGNOPE", check=False)
        assert done.returncode == 1 and "unknown signal 'SIGNOPE'" in done.stderr
    finally:
        cli("delete", "--force", container_id)


def test_spec_seccomp_takes_default_unconfined_or_a_profile_file(tmp_path, rootfs, cli, new_id):
    """`teachdock runtime spec --seccomp`: a learner's own filter (block mkdir) from a file."""
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    seen = {}
    for choice in ("default", "unconfined", str(profile)):
        directory = tmp_path / f"bundle-{len(seen)}"
        done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "spec", "--bundle", str(directory),
                               "--rootfs", str(rootfs), "--seccomp", choice, "--", "sh", "-c",
                               "grep Seccomp: /proc/self/status; mkdir /tmp/x && echo made"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        seen[choice] = cli("run", "--bundle", str(directory), new_id(), check=False)
    assert seen["default"].stdout.split() == ["Seccomp:", "2", "made"]
    assert seen["unconfined"].stdout.split() == ["Seccomp:", "0", "made"]
    assert seen[str(profile)].stdout.split() == ["Seccomp:", "2"]
    assert "Operation not permitted" in seen[str(profile)].stderr
    bad = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "spec", "--bundle", str(tmp_path / "b"),
                          "--seccomp", str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot read the profile" in bad.stderr
