"""The container lifecycle, runc style: create, start, state, kill, wait, delete — plus run(),
the OCI state JSON, a proper init (zombies reaped, SIGTERM passed on), and stdio."""

import json
import os
import shutil
import signal
import time

import pytest

from teachdock.errors import Conflict, ContainerStartError, NotFound
from teachdock.runtime import PIPE, Container, list_containers, make_spec, run, write_bundle
from teachdock.runtime.cgroups import open_cgroup

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

WAIT_FOR_STDIN = "echo ready; read x; echo bye"


@pytest.fixture
def create(rootfs, state_root, new_id):
    """``create(args, **options)``: Container.create with this test's rootfs, state root and a new id."""

    def make(args, **options):
        return Container.create(new_id(), rootfs=rootfs, args=args, state_root=state_root, **options)

    return make


def assert_gone(container):
    assert not container.state_dir.exists()
    assert not open_cgroup(f"/teachdock/{container.id}").exists()
    with pytest.raises(NotFound, match=f"no such container: {container.id}"):
        Container.load(container.id, container.state_root)


# --- the verbs, one step at a time ----------------------------------------------------------------------
def test_create_start_kill_delete(create, state_root):
    container = create(["sleep", "30"])
    try:
        state = container.state()
        assert state["status"] == "created"
        assert {"ociVersion", "id", "status", "pid", "bundle"} <= set(state)  # the OCI state's required keys
        assert state["id"] == container.id and isinstance(state["pid"], int) and state["pid"] > 0
        # Created means: namespaces and cgroup ready, the user's program not yet executed.
        assert os.path.exists(f"/proc/{container.pid}")
        assert container.pid in container.cgroup.processes()
        assert not os.readlink(f"/proc/{container.pid}/exe").endswith("/bin/busybox")  # still the runtime's code
        assert [s["id"] for s in list_containers(state_root)] == [container.id]

        container.start()
        assert container.status == "running"
        assert os.readlink(f"/proc/{container.pid}/exe") == "/bin/busybox"  # as seen from inside its root

        container.kill(signal.SIGKILL)
        assert container.wait(10) == 137
        state = container.state()
        assert (state["status"], state["exitCode"], state["oomKilled"]) == ("stopped", 137, False)
    finally:
        container.delete(force=True)
    assert_gone(container)


def test_the_exit_code_of_the_program_is_reported(create):
    with create(["sh", "-c", "exit 3"]) as container:
        container.start()
        assert container.wait(10) == 3
        assert container.exit_code == 3


def test_killing_a_created_container_stops_it(create):
    with create(["true"]) as container:
        container.kill(signal.SIGKILL)
        assert container.wait(10) == 137
        assert container.status == "stopped"


def test_another_handle_can_start_and_wait(create, state_root):
    """Like `runc start` from a second shell: a Container.load()ed handle works through the state files."""
    with create(["sh", "-c", "exit 5"]) as container:
        other = Container.load(container.id, state_root)
        other.start()
        assert other.wait(10) == 5
        assert container.wait(10) == 5


def test_delete_removes_state_and_cgroup(create):
    container = create(["true"])
    assert container.state_dir.is_dir() and container.cgroup.exists()
    container.delete()
    assert_gone(container)


def test_the_context_manager_deletes(create):
    with create(["sleep", "30"]) as container:
        container.start()
    assert_gone(container)


# --- refusals ----------------------------------------------------------------------------------------------
def test_an_id_clash_is_a_conflict(create, rootfs, state_root):
    with create(["sleep", "30"]) as first:
        with pytest.raises(Conflict, match=f"a container with id '{first.id}' already exists"):
            Container.create(first.id, rootfs=rootfs, args=["true"], state_root=state_root)
        assert first.status == "created"  # the first one is untouched
        first.start()
        assert first.status == "running"


def test_starting_twice_is_a_conflict(create):
    with create(["sleep", "30"]) as container:
        container.start()
        with pytest.raises(Conflict, match="is running, not created"):
            container.start()


def test_a_stopped_container_cannot_be_started_or_signalled(create):
    with create(["true"]) as container:
        container.start()
        assert container.wait(10) == 0
        with pytest.raises(Conflict, match="is stopped, not created"):
            container.start()
        with pytest.raises(Conflict, match="is stopped: only a created or running container can be signalled"):
            container.kill()


def test_deleting_a_running_container_needs_force(create):
    container = create(["sleep", "30"])
    container.start()
    with pytest.raises(Conflict, match="is running: stop it first"):
        container.delete()
    assert container.status == "running"
    container.delete(force=True)
    assert_gone(container)


# --- exec failures -----------------------------------------------------------------------------------------
def test_a_missing_program_fails_at_start_and_leaves_nothing(create):
    container = create(["no-such-program"])
    with pytest.raises(ContainerStartError, match='exec: "no-such-program": executable file not found in \\$PATH'):
        container.start()
    assert container.status == "stopped"
    assert container.wait(10) == 127
    container.delete()
    assert_gone(container)


def test_run_of_a_missing_program_raises_and_leaves_nothing(rootfs, state_root, new_id):
    container_id = new_id()
    with pytest.raises(ContainerStartError, match='exec: "/bin/nope": no such file or directory'):
        run(["/bin/nope"], rootfs=rootfs, state_root=state_root, container_id=container_id)
    assert os.listdir(state_root) == []
    assert not open_cgroup(f"/teachdock/{container_id}").exists()


# --- init: zombies and signals ------------------------------------------------------------------------------
# The script leaves an orphan: a subshell starts `cat` in the background and exits, so the
# kernel re-parents `cat` to the namespace's PID 1. `cat` reads the container's stdin (fd 3
# dodges the /dev/null a shell gives background jobs) and exits when we close it. Then
# PID 1 execs `sleep`, which never calls wait(): without an init, `cat` stays a zombie.
LEAVE_AN_ORPHAN = "exec 3<&0; (cat <&3 >/dev/null &); exec 3<&-; echo ready; exec sleep 30"


def orphan_and_its_parent(container, host, init: bool):
    """Wait until PID 1 (or the child of teachdock-init) is `sleep` and `cat` runs; return cat's (pid, parent pid)."""
    expected = {"cat", "sleep"} | ({"teachdock-init"} if init else set())

    def settled():
        names = {pid: host.proc_stat(pid)[2] for pid in container.cgroup.processes() if host.proc_stat(pid)}
        return names if set(names.values()) == expected else None

    names = host.wait_until(settled)
    assert names, "the container never reached: PID 1 = sleep, with an orphaned cat"
    cat = next(pid for pid, name in names.items() if name == "cat")
    return cat, host.proc_stat(cat)[1]


def test_without_init_an_orphan_stays_a_zombie(running, host):
    with running(LEAVE_AN_ORPHAN) as container:
        cat, parent = orphan_and_its_parent(container, host, init=False)
        assert parent == container.pid  # adopted by the container's PID 1, which is `sleep`
        os.close(container.stdin)
        container.stdin = None
        assert host.wait_until(lambda: (host.proc_stat(cat) or ("gone",))[0] == "Z"), "cat should become a zombie"
        assert (cat, "Z", "cat") in host.children_of(container.pid)


def test_with_init_the_orphan_is_reaped(running, host):
    with running(LEAVE_AN_ORPHAN, init=True) as container:
        assert host.proc_stat(container.pid)[2] == "teachdock-init"
        cat, parent = orphan_and_its_parent(container, host, init=True)
        assert parent == container.pid  # adopted by teachdock-init
        os.close(container.stdin)
        container.stdin = None
        assert host.wait_until(lambda: host.proc_stat(cat) is None), "teachdock-init should reap the orphan"
        assert [name for _pid, _state, name in host.children_of(container.pid)] == ["sleep"]


def test_a_shell_as_pid_1_ignores_sigterm(running, finish):
    """The kernel drops signals to a namespace's PID 1 that it has no handler for, so SIGTERM does nothing."""
    with running("echo ready; read x; echo survived") as container:
        container.kill(signal.SIGTERM)
        assert finish(container) == (0, "survived\n")


def test_with_init_sigterm_reaches_the_program(running):
    """teachdock-init passes SIGTERM on to the program (PID 2), which dies of it: 128 + 15."""
    with running("echo ready; read x; echo survived", init=True) as container:
        container.kill(signal.SIGTERM)
        assert container.wait(10) == 143
        assert os.read(container.stdout, 100) == b""


# --- stdio, options and run() -----------------------------------------------------------------------------
def test_run_passes_stdin_and_separates_stdout_and_stderr(box):
    result = box("tr a-z A-Z; echo to-stderr >&2; exit 4", input="hello\n")
    assert (result.exit_code, result.stdout, result.stderr) == (4, "HELLO\n", "to-stderr\n")
    assert result.ok is False and result.duration > 0


def test_large_input_and_output_do_not_deadlock(box):
    data = "x" * 300_000 + "\n"  # more than a pipe buffer each way
    result = box("cat; cat /dev/zero | head -c 300000 >&2", input=data)
    assert (result.exit_code, len(result.stdout), len(result.stderr)) == (0, len(data), 300_000)


def test_run_timeout_kills_the_container(box):
    result = box("echo started; exec sleep 30", timeout=0.5)
    assert (result.exit_code, result.stdout) == (137, "started\n")


def test_run_timeout_also_holds_after_the_program_closes_its_output(box):
    result = box("exec >/tmp/log 2>&1; exec sleep 3", timeout=0.5)  # 3 s: long enough to tell, short if it fails
    assert result.exit_code == 137, f"the program ran to its end (exit {result.exit_code}) despite timeout=0.5"


def test_env_cwd_and_user(box):
    result = box('echo "$GREETING"; pwd; id -u; id -g', env={"GREETING": "hi there"}, cwd="/tmp", user="1000:1001")
    assert result.stdout.splitlines() == ["hi there", "/tmp", "1000", "1001"]


def test_a_bundle_on_disk_runs_and_is_named_in_the_state(rootfs, state_root, new_id, tmp_path):
    bundle = tmp_path / "bundle"
    write_bundle(bundle, make_spec(["sh", "-c", "echo from-bundle; exit 6"], str(rootfs)))
    with Container.create(new_id(), bundle, state_root=state_root, stdout=PIPE) as container:
        assert container.state()["bundle"] == str(bundle)
        container.start()
        assert container.wait(10) == 6
        assert os.read(container.stdout, 100) == b"from-bundle\n"
    result = run(None, bundle=bundle, state_root=state_root, container_id=new_id())
    assert (result.exit_code, result.stdout) == (6, "from-bundle\n")


ETC_SCRIPT = "cat /etc/hostname; grep -c . /etc/hosts; grep -v '^#' /etc/resolv.conf | wc -l; hostname"


def test_a_bundle_gets_exactly_the_mounts_config_json_lists(rootfs, state_root, new_id, tmp_path):
    """The runtime adds no /etc files of its own (runc does not either): without mounts for them
    the container reads the rootfs's; with make_spec(etc_directory=bundle) it reads the bundle's."""
    bare, own = tmp_path / "bare", tmp_path / "own"
    write_bundle(bare, make_spec(["sh", "-c", ETC_SCRIPT], str(rootfs), hostname="box"))
    result = run(None, bundle=bare, state_root=state_root, container_id=new_id())
    hosts_lines = len((rootfs / "etc/hosts").read_text().splitlines())
    assert result.stdout.splitlines() == [(rootfs / "etc/hostname").read_text().strip(), str(hosts_lines), "0", "box"]
    config = make_spec(["sh", "-c", ETC_SCRIPT], str(rootfs), hostname="box", etc_directory=own)
    assert {m["destination"]: m["source"] for m in config["mounts"] if m["type"] == "bind"} == {
        "/etc/hostname": str(own / "hostname"), "/etc/hosts": str(own / "hosts"),
        "/etc/resolv.conf": str(own / "resolv.conf")}
    write_bundle(own, config)
    result = run(None, bundle=own, state_root=state_root, container_id=new_id())
    assert result.stdout.splitlines() == ["box", "7", "0", "box"]


def test_rootfs_and_args_give_the_container_its_own_etc_files(create):
    """The convenience path makes the spec itself, so it plays dockerd's part (in the state directory)."""
    with create(["cat", "/etc/hostname"], hostname="mine", stdout=PIPE) as container:
        config = json.loads((container.state_dir / "config.json").read_text())
        assert str(container.state_dir / "etc" / "hostname") in [m.get("source") for m in config["mounts"]]
        container.start()
        assert container.wait(10) == 0
        assert os.read(container.stdout, 100) == b"mine\n"


def test_with_init_the_program_is_pid_2(box):
    result = box("ps -o pid,comm; echo end", init=True)
    rows = [line.split() for line in result.stdout.splitlines()[1:-1]]
    assert rows == [["1", "teachdock-init"], ["2", "sh"], ["3", "ps"]]


def test_a_detached_container_is_not_our_child(rootfs, state_root, new_id, host):
    """detach=True: the monitor (the shim) leaves our process tree, like `runc create` + `runc start` in a CLI."""
    container_id = new_id()
    created = Container.create(container_id, rootfs=rootfs, args=["sh", "-c", "exit 9"], state_root=state_root,
                               detach=True)
    monitor = created.state()["monitorPid"]
    assert monitor not in host.descendants_of(os.getpid())
    del created
    container = Container.load(container_id, state_root)  # as a later CLI call would
    container.start()
    assert container.wait(10) == 9
    container.delete()
    assert_gone(container)


def test_one_fd_can_be_both_stdout_and_stderr(create):
    read_end, write_end = os.pipe()
    try:
        with create(["sh", "-c", "echo out; echo err >&2"], stdout=write_end, stderr=write_end) as container:
            os.close(write_end)
            write_end = None
            container.start()
            assert container.wait(10) == 0
            assert sorted(os.read(read_end, 100).decode().split()) == ["err", "out"]
    finally:
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)


def test_deleting_through_a_loaded_handle_reaps_our_monitor(create, state_root):
    """A notebook that drops its Container object and later deletes the container by id must
    not leave the monitor (our child) behind as a zombie."""
    first = create(["true"])
    first.start()
    os.close(first._report)  # drop the first handle without letting it wait or reap
    first._report = first._monitor = None
    handle = Container.load(first.id, state_root)
    assert handle.wait(10) == 0
    monitor = handle.state()["monitorPid"]
    assert os.path.exists(f"/proc/{monitor}")  # a zombie child of ours until someone reaps it
    handle.delete()
    with pytest.raises(ChildProcessError):
        os.waitpid(monitor, os.WNOHANG)  # reaped already


def test_poll_answers_at_once(create):
    with create(["sleep", "30"]) as container:
        container.start()
        assert container.poll() is None
        container.kill(signal.SIGKILL)
        assert container.wait(10) == 137
        assert container.poll() == 137


@pytest.mark.parametrize("kill_on_caller_exit", [True, False])
def test_a_container_dies_with_its_caller_only_when_asked(rootfs, state_root, new_id, kill_on_caller_exit):
    """A crashed notebook kernel should not leave its CPU burners running, if it asked so."""
    container_id = new_id()
    read_end, write_end = os.pipe()
    caller = os.fork()
    if caller == 0:  # a stand-in for a notebook kernel: create, start, report, die
        try:
            os.close(read_end)
            container = Container.create(container_id, rootfs=rootfs, args=["sleep", "30"], state_root=state_root,
                                         kill_on_caller_exit=kill_on_caller_exit)
            container.start()
            os.write(write_end, b"started")
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 10) == b"started"
    os.close(read_end)
    os.waitpid(caller, 0)
    container = Container.load(container_id, state_root)
    try:
        if kill_on_caller_exit:
            assert container.wait(10) == 137
        else:
            with pytest.raises(TimeoutError):
                container.wait(0.5)
            assert container.status == "running"
    finally:
        container.delete(force=True)


def test_a_created_container_whose_state_was_removed_does_not_wait_forever(create):
    """Someone deleted the state directory (a test's teardown, rm -rf): the container can never
    be started, so its monitor kills it instead of waiting for a start that cannot come."""
    container = create(["true"])
    pid, cgroup = container.pid, container.cgroup
    shutil.rmtree(container.state_dir)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        assert time.monotonic() < deadline, "the created container still waits for a start"
        time.sleep(0.05)
    os.waitpid(container._monitor, 0)  # our child: the monitor exits once it has killed the container
    os.close(container._report)
    cgroup.destroy()


def test_pause_freezes_every_process_and_resume_lets_them_run_on(running):
    """runc pause / resume: the freezer cgroup stops the processes where they stand (no signal)."""
    with running("echo ready; while true; do :; done") as container:
        cpu = lambda: container.metrics().cpu_usage_ns  # noqa: E731 - the busy loop's CPU time so far
        time.sleep(0.2)
        container.pause()
        assert container.status == "paused"
        frozen_at = cpu()
        time.sleep(0.3)
        assert cpu() == frozen_at  # not one more instruction while frozen
        stat = open(f"/proc/{container.pid}/stat").read()
        assert stat.split(") ")[1][0] in "DS"  # asleep in the freezer, not running
        with pytest.raises(Conflict, match="is paused: stop it first"):
            container.delete()
        container.resume()
        assert container.status == "running"
        time.sleep(0.2)
        assert cpu() > frozen_at
        with pytest.raises(Conflict, match="not paused"):
            container.resume()
        container.pause()
        container.kill(signal.SIGKILL)  # a paused container can still be killed: thawed after the signal
        assert container.wait(timeout=10) == 128 + signal.SIGKILL
