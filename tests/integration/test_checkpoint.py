"""Checkpoint and restore on this host: refused with criu check's own words where criu cannot
work (this machine: kernel 6.18, criu 3.17), and refused for a container that is not running,
everywhere. The real dump and restore run in the VM: tests/vm/test_criu_vm.py."""

import os
import subprocess
import sys

import pytest

from teachdock.errors import Conflict
from teachdock.runtime import DEVNULL, Container
from teachdock.runtime import checkpoint as ck

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

REASON = ck.why_criu_cannot_run()
needs_a_host_criu_rejects = pytest.mark.skipif(
    REASON is None, reason="criu check passes here: the refusal cannot be shown (the VM test covers the move)")


@pytest.fixture
def counter(rootfs, state_root, new_id):
    container = Container.create(new_id(), rootfs=rootfs, args=["sh", "-c", "while true; do sleep 1; done"],
                                 state_root=state_root, detach=True, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
    container.start()
    yield container
    container.delete(force=True)


@needs_a_host_criu_rejects
def test_checkpoint_says_why_criu_cannot_run_and_leaves_nothing(counter, tmp_path):
    with pytest.raises(ck.CriuUnavailable) as refusal:
        ck.checkpoint(counter, tmp_path / "images")
    assert str(refusal.value) == REASON
    assert "criu check" in REASON or "not installed" in REASON
    assert not (tmp_path / "images").exists()
    assert counter.status == "running"  # untouched


@needs_a_host_criu_rejects
def test_restore_says_why_too(tmp_path, rootfs, state_root, new_id):
    from teachdock.runtime.spec import make_spec  # noqa: PLC0415

    config = make_spec(["true"], rootfs)
    name = new_id()
    with pytest.raises(ck.CriuUnavailable) as refusal:
        ck.restore(name, tmp_path, config=config, state_root=state_root)
    assert str(refusal.value) == REASON
    assert not (state_root / name).exists()


def test_a_stopped_container_cannot_be_checkpointed(rootfs, state_root, new_id, tmp_path):
    container = Container.create(new_id(), rootfs=rootfs, args=["true"], state_root=state_root, detach=True)
    try:
        container.start()
        container.wait(10)
        with pytest.raises(Conflict, match="is stopped: only a running container can be checkpointed"):
            ck.checkpoint(container, tmp_path / "images")
        assert not (tmp_path / "images").exists()
    finally:
        container.delete(force=True)


@needs_a_host_criu_rejects
def test_the_runtime_cli_prints_the_reason_and_fails(counter, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", str(counter.state_root),
                           "checkpoint", "--image-path", str(tmp_path / "images"), counter.id],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"teachdock runtime: {REASON}"
    assert not (tmp_path / "images").exists()
