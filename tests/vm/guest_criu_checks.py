"""A real CRIU checkpoint and restore of a teachdock container: checked inside the test VM only.

The host's kernel is one ``criu check`` rejects, so this file runs in the guest (Debian's 6.1
kernel, criu and its modules added by teachdock.vm.criu_guest); test_criu_vm.py boots it.
The name does not start with ``test_``: the host's pytest never collects it.
"""

import json
import os
import secrets
import select
import time

import pytest

from teachdock.errors import Conflict
from teachdock.image import busybox
from teachdock.runtime import DEVNULL, PIPE, Container
from teachdock.runtime import checkpoint as ck
from teachdock.runtime.spec import make_spec

COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"

pytestmark = pytest.mark.skipif(os.environ.get("TEACHDOCK_IN_VM") != "1",
                                reason="runs only inside teachdock's test VM, where criu check passes")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return busybox.build_busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


def numbers(fd: int, count: int, timeout: float = 10) -> list[int]:
    """The next ``count`` whole lines the counter printed on ``fd``."""
    seen, buffer, deadline = [], b"", time.monotonic() + timeout
    while len(seen) < count:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"the counter said only {seen}"
        chunk = os.read(fd, 4096)
        assert chunk, f"the counter's output ended after {seen}"
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        seen += [int(line) for line in lines if line]
    return seen


def test_criu_check_passes_in_the_vm():
    assert ck.why_criu_cannot_run(refresh=True) is None


def counter(rootfs, tmp_path, name, stdin=PIPE):
    config = make_spec(["sh", "-c", COUNTER], rootfs, etc_directory=tmp_path / f"etc-{name}")
    return Container.create(f"{name}-{secrets.token_hex(3)}", config=config, state_root=tmp_path / "state",
                            stdout=PIPE, stdin=stdin, stderr=PIPE, detach=True), config


def test_a_counter_checkpointed_and_restored_keeps_counting(rootfs, tmp_path):
    original, config = counter(rootfs, tmp_path, "orig")
    restored = None
    try:
        original.start()
        before = numbers(original.stdout, 3)
        try:
            images = ck.checkpoint(original, tmp_path / "images")
        except ck.CriuError:
            print((tmp_path / "images" / ck.DUMP_LOG).read_text()[-6000:])
            raise
        assert (images / "pages-1.img").exists() and (images / ck.DESCRIPTORS).exists()
        assert original.wait(10) == 137  # the dump stopped it (criu killed the tree)
        print("dumped after", before, "files:", sorted(p.name for p in images.iterdir())[:12])
        # whatever was in the old pipe and not read yet is gone with it; the new pipe carries on
        new_config = make_spec(["sh", "-c", COUNTER], rootfs, etc_directory=tmp_path / "etc-copy")
        restored = ck.restore(f"copy-{secrets.token_hex(3)}", images, config=new_config,
                              state_root=tmp_path / "state", stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert restored.status == "running"
        assert restored.pid != original.state()["pid"]
        after = numbers(restored.stdout, 3)
        print("restored, it says", after)
        assert after[0] > before[-1], (before, after)  # from where it was, not from 1
        assert after == list(range(after[0], after[0] + 3))
        cgroup_line = open(f"/proc/{restored.pid}/cgroup").read().strip()
        assert cgroup_line == f"0::{restored.cgroup.path}"
        restored.kill(9)
        assert restored.wait(10) == 137
    finally:
        for container in (original, restored):
            if container is not None and container.state_dir.exists():
                container.delete(force=True)


def test_leave_running_keeps_the_original_going(rootfs, tmp_path):
    # stdin is the host's /dev/null, as for a daemon's container without -i: init reopens the
    # container's own, else criu finds a file of a mount outside the container and refuses
    original, _ = counter(rootfs, tmp_path, "live", stdin=DEVNULL)
    try:
        original.start()
        numbers(original.stdout, 2)
        ck.checkpoint(original, tmp_path / "images", leave_running=True)
        assert original.status == "running"
        assert len(numbers(original.stdout, 3)) == 3
        descriptors = json.loads((tmp_path / "images" / ck.DESCRIPTORS).read_text())
        assert descriptors[1].startswith("pipe:[")
    finally:
        original.delete(force=True)


def test_a_stopped_container_is_refused(rootfs, tmp_path):
    config = make_spec(["true"], rootfs, etc_directory=tmp_path / "etc")
    container = Container.create(f"stopped-{secrets.token_hex(3)}", config=config, state_root=tmp_path / "s")
    try:
        container.start()
        container.wait(10)
        with pytest.raises(Conflict, match="only a running container can be checkpointed"):
            ck.checkpoint(container, tmp_path / "images")
        assert not (tmp_path / "images").exists()
    finally:
        container.delete(force=True)


def test_the_chapters_live_move_between_two_daemons(tmp_path):
    """Two teachdockd, the counter moved from A to B through the Engine API: it keeps counting."""
    from teachdock.client import Client  # noqa: PLC0415
    from teachdock.lab.applications import live_move  # noqa: PLC0415
    from teachdock.lab.client_and_daemon.daemon_lab import LabDaemons  # noqa: PLC0415

    with LabDaemons(tmp_path / "daemons") as daemons:
        a, b = (Client(daemons.start(name).host) for name in ("a", "b"))
        move = live_move.move_counter(a, b, tmp_path / "checkpoints")
        print(move.table().text)
        assert move.kept_counting, (move.before, move.after)
        assert move.pid_a != move.pid_b
        assert a.inspect("counter")["State"]["Status"] == "exited"  # the checkpoint stopped it on A
        assert b.inspect("counter")["State"]["Running"] is True
        assert "pages-1.img" in dict(move.files)
        later = live_move.wait_for_numbers(b, "counter", len(move.after) + 3)
        assert later[:3] == move.after and later[-1] > move.after[-1]
        assert a.checkpoints("counter", checkpoint_dir=str(tmp_path / "checkpoints" / "a")) == ["move"]
        a.checkpoint_remove("counter", "move", checkpoint_dir=str(tmp_path / "checkpoints" / "a"))
        assert a.checkpoints("counter", checkpoint_dir=str(tmp_path / "checkpoints" / "a")) == []
    assert daemons.leftovers() == []


def test_the_runtime_cli_checkpoints_and_restores_like_runc(rootfs, tmp_path):
    """teachdock runtime checkpoint / restore, the verbs runc has; the counter keeps its number in
    a file of its /tmp tmpfs, which criu saves and restores with the processes."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    bundle, state = tmp_path / "bundle", str(tmp_path / "state")

    def runtime(*args):
        # create and restore hand their stdio to the container, which keeps it: /dev/null, not a
        # pipe we would wait on for ever (nor a host file, which criu could not dump)
        quiet = args[0] in ("create", "restore")
        done = subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", state, *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL if quiet else subprocess.PIPE, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stderr)

    def count(container_id):
        pid = json.loads(subprocess.run([sys.executable, "-m", "teachdock.cli", "runtime", "--root", state, "state",
                                         container_id], capture_output=True, text=True).stdout)["pid"]
        while True:  # `echo $i > /tmp/n` empties the file before it writes: read again then
            text = open(f"/proc/{pid}/root/tmp/n").read()
            if text.strip():
                return int(text)
            time.sleep(0.01)

    bundle.mkdir()
    runtime("spec", "--bundle", str(bundle), "--rootfs", str(rootfs), "--",
            "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.2; done")
    runtime("create", "--bundle", str(bundle), "first")
    runtime("start", "first")
    time.sleep(1)
    before = count("first")
    runtime("checkpoint", "--image-path", str(tmp_path / "images"), "first")
    runtime("restore", "--image-path", str(tmp_path / "images"), "--bundle", str(bundle), "-d", "second")
    after = count("second")
    time.sleep(0.6)
    later = count("second")
    assert 4 <= before <= after < later, (before, after, later)  # on from where the checkpoint found it
    runtime("delete", "first")
    runtime("delete", "--force", "second")


def test_a_damaged_checkpoint_fails_with_criu_words_and_leaves_nothing(rootfs, tmp_path):
    original, _ = counter(rootfs, tmp_path, "dmg")
    try:
        original.start()
        numbers(original.stdout, 2)
        images = ck.checkpoint(original, tmp_path / "images")
    finally:
        original.delete(force=True)
    (images / "pstree.img").unlink()  # which processes there were: criu cannot start without it
    config = make_spec(["sh", "-c", COUNTER], rootfs, etc_directory=tmp_path / "etc-dmg2")
    name = f"broken-{secrets.token_hex(3)}"
    with pytest.raises(ck.CriuError, match="criu restore of container broken-.* failed: .*No pstree.img image"):
        ck.restore(name, images, config=config, state_root=tmp_path / "state", stdin=PIPE, stdout=PIPE, stderr=PIPE)
    assert not (tmp_path / "state" / name).exists()
    assert not os.path.exists(f"/sys/fs/cgroup/teachdock/{name}")


def test_a_container_with_a_network_interface_is_refused_with_the_reason(rootfs, tmp_path):
    import subprocess  # noqa: PLC0415

    original, _ = counter(rootfs, tmp_path, "net")
    try:
        original.start()
        subprocess.run(["ip", "link", "add", "tdx0", "type", "dummy"], check=True)
        subprocess.run(["ip", "link", "set", "tdx0", "netns", str(original.pid)], check=True)
        with pytest.raises(ck.InvalidConfig, match=r"network interfaces \['tdx0'\].*--network none"):
            ck.checkpoint(original, tmp_path / "images")
        assert not (tmp_path / "images").exists()
        assert original.status == "running"
    finally:
        original.delete(force=True)
