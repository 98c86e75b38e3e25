"""teachdock.client.Client against a real teachdockd: run as the docker CLI does it, the
container verbs, pull on a missing image, autostart, and prune sweeping crash leftovers."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest

from teachdock.client import APIError, Client, DaemonUnavailable, NotFoundError, start_daemon
from teachdock.image.images import Images
from teachdock.image.registry import push
from teachdock.image.overlay import mount_points
from teachdock.runtime import DEVNULL, Container

from tests.support.registry import REGISTRY_BINARY, local_registry

pytestmark = [
    pytest.mark.root,
]


@pytest.fixture
def client(daemon):
    """A client of the module's daemon; every test must leave no container behind."""
    with Client(f"unix://{daemon.socket_path}", autostart=False) as c:
        yield c
        left = c.containers(all=True)
        for summary in left:
            c.remove(summary["Id"], force=True)
        assert not left, f"the test left containers: {[s['Names'] for s in left]}"


def test_run_in_the_foreground(client):
    result = client.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 3"], remove=True)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert client.containers(all=True) == []  # --rm: nothing left


def test_run_is_create_attach_wait_start(client):
    client.trace.clear()
    client.run("busybox", ["true"], remove=True)
    calls = [(t.method, t.path.split("?")[0].rsplit("/", 1)[-1], t.status) for t in client.trace]
    assert calls == [("POST", "create", 201), ("POST", "attach", 101), ("POST", "wait", 200), ("POST", "start", 204)]
    wait = client.trace[2]
    assert wait.path.endswith("?condition=removed")
    assert wait.seconds >= client.trace[3].seconds  # its answer comes only after the exit


def test_run_without_rm_keeps_the_container_and_waits_for_next_exit(client):
    result = client.run("busybox", ["sh", "-c", "exit 7"], name="kept")
    assert result.exit_code == 7
    assert client.trace[-2].path.endswith("?condition=next-exit")
    state = client.inspect("kept")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 7)
    client.remove("kept")


def test_run_with_input(client):
    result = client.run("busybox", ["sh", "-c", "tr a-z A-Z; echo done"], remove=True, input=b"hello\nworld\n")
    assert (result.exit_code, result.stdout) == (0, "HELLO\nWORLD\ndone\n")
    big = b"x" * 300_000  # more than the socket buffers hold before start
    result = client.run("busybox", ["wc", "-c"], remove=True, input=big)
    assert result.stdout.strip() == str(len(big))


def test_run_limits_env_workdir_user(client):
    script = ("echo $GREETING; pwd; id -u; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
              "|| cat /sys/fs/cgroup/memory.max")
    result = client.run("busybox", ["sh", "-c", script], remove=True, environment={"GREETING": "hi"},
                        workdir="/tmp", user="1000", memory="64m")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["hi", "/tmp", "1000", str(64 << 20)]


def test_missing_program_exits_127_and_rm_leaves_nothing(client):
    result = client.run("busybox", ["no-such-program"], remove=True)
    assert result.exit_code == 127
    assert "no-such-program" in result.stderr
    for _ in range(100):
        if not client.containers(all=True):
            break
        time.sleep(0.05)
    assert client.containers(all=True) == []


def test_detached_run_ps_logs_stop_rm(client):
    result = client.run("busybox", ["sh", "-c", "echo started; exec sleep 60"], name="bg", detach=True)
    assert result.exit_code is None and len(result.id) == 64
    running = client.containers()
    assert [(c["Id"], c["Names"], c["State"]) for c in running] == [(result.id, ["/bg"], "running")]
    for _ in range(100):
        if client.logs("bg") == "started\n":
            break
        time.sleep(0.05)
    assert client.logs("bg") == "started\n"
    assert client.stop("bg", timeout=1) is True
    assert client.containers() == []
    assert client.containers(all=True)[0]["State"] == "exited"
    assert client.wait("bg") == 137  # sleep as PID 1 ignores SIGTERM: killed after the grace period
    client.remove("bg")
    with pytest.raises(NotFoundError, match="No such container: bg"):
        client.inspect("bg")


def test_start_kill_and_errors(client):
    container = client.create("busybox", ["sleep", "60"], name="killme")
    assert client.start(container) is True
    assert client.start(container) is False  # 304: running already
    with pytest.raises(APIError) as caught:
        client.remove(container)
    assert caught.value.status == 409
    client.kill(container, "SIGKILL")
    assert client.wait(container) == 137
    client.remove(container)


def test_exec(client):
    container = client.create("busybox", ["sleep", "60"], name="ex")
    client.start(container)
    try:
        result = client.exec("ex", ["sh", "-c", "echo in; echo err >&2; exit 4"])
        assert (result.exit_code, result.stdout, result.stderr) == (4, "in\n", "err\n")
        assert client.exec("ex", ["cat"], input=b"piped\n").stdout == "piped\n"
    finally:
        client.remove(container, force=True)


def test_events_between_times(client):
    since = time.time()
    client.run("busybox", ["true"], remove=True, name="evented")
    actions = [e["Action"] for e in client.events(since=since, until=time.time() + 0.5)
               if e.get("Type") == "container" and (e.get("Actor") or {}).get("Attributes", {}).get("name") == "evented"]
    assert actions[0] == "create"
    assert "start" in actions and "die" in actions and actions[-1] == "destroy"


@pytest.mark.skipif(REGISTRY_BINARY is None,
                    reason="needs Debian's docker-registry (apt-get install docker-registry) as a local registry")
def test_run_pulls_a_missing_image_and_a_missing_one_is_an_error(client, tmp_path):
    with local_registry(tmp_path) as registry:
        source = Images(tmp_path / "source")
        source.bootstrap_busybox()
        name = f"{registry.host}/course/box:v1"
        source.tag("busybox:latest", name)
        push(source.store, name)
        seen = []
        client.trace.clear()
        result = client.run(name, ["echo", "pulled"], remove=True, progress=seen.append)
        assert (result.exit_code, result.stdout) == (0, "pulled\n")
        calls = [(t.path.split("?")[0], t.status) for t in client.trace[:3]]
        assert calls == [("/containers/create", 404), ("/images/create", 200), ("/containers/create", 201)]
        assert any("Downloaded newer image" in m.get("status", "") for m in seen)
        client.remove_image(name)

        missing = f"{registry.host}/course/absent:v1"
        with pytest.raises(APIError) as caught:
            client.run(missing, ["true"], remove=True)
        assert "absent" in caught.value.message
        assert client.containers(all=True) == []


def test_prune_removes_stopped_containers_and_sweeps_a_crash_leftover(client, daemon):
    client.run("busybox", ["true"], name="stopped1")
    keeper = client.run("busybox", ["sleep", "60"], name="running1", detach=True).id
    # What a daemon killed in the middle of `create` leaves: a container directory whose
    # container.json never got written, and the overlay snapshot it had already mounted.
    orphan = secrets.token_hex(32)
    leftover_dir = Path(daemon.data_root) / "daemon" / "containers" / orphan
    leftover_dir.mkdir(parents=True)
    (leftover_dir / "container.json.tmp").write_text("{half")
    images = Images(daemon.data_root)
    snapshot = images.prepare("busybox", orphan)
    (snapshot.rootfs / "junk").write_bytes(b"j" * 100_000)
    assert str(snapshot.rootfs) in mount_points() or snapshot.driver == "copy"
    # ... and had even started it: a runtime container whose record never made it to disk.
    runtime = Container.create(orphan, rootfs=str(snapshot.rootfs), args=["sleep", "60"],
                               state_root=str(daemon.exec_root / "runtime"), detach=True,
                               stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL,
                               cgroups_path=f"/{daemon.cgroup_parent}/{orphan}")
    runtime.start()
    pid = runtime.pid
    assert Path(f"/proc/{pid}").exists()

    result = client.prune_containers()
    assert len(result["ContainersDeleted"]) == 1
    assert client.containers(all=True)[0]["Id"] == keeper
    assert any(orphan in line for line in result["Swept"])
    assert result["SpaceReclaimed"] >= 100_000
    assert not leftover_dir.exists()
    assert not snapshot.directory.exists()
    assert not any(orphan in point for point in mount_points())
    assert not (daemon.exec_root / "runtime" / orphan).exists()
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()
    client.remove(keeper, force=True)


def test_dead_daemon(tmp_path):
    client = Client(f"unix://{tmp_path}/gone.sock", autostart=False)
    with pytest.raises(DaemonUnavailable, match=f"{tmp_path}/gone.sock"):
        client.run("busybox", ["true"])


def test_start_daemon_and_autostart(scratch_dir, monkeypatch):
    """A client that finds nothing on its socket starts a daemon there (TEACHDOCK_DATA_ROOT
    honoured); start_daemon gives two daemons side by side; stop() ends them by pid."""
    directory = Path(scratch_dir) / f"auto-{secrets.token_hex(3)}"
    data_root = directory / "data"
    Images(data_root).bootstrap_busybox()
    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(data_root))
    host = f"unix://{directory}/run/auto.sock"
    cgroup_parent = f"tdc-{secrets.token_hex(3)}"
    second = None
    client = Client(host)
    try:
        assert client.run("busybox", ["echo", "autostarted"], remove=True).stdout == "autostarted\n"
        started = client.started_daemon
        assert started is not None and started.host == host
        assert Path(f"{directory}/run/auto.pid").read_text().strip() == str(started.pid)
        assert client.info()["DockerRootDir"] == str(data_root)
        assert Path(started.log_path).exists()

        second = start_daemon(f"unix://{directory}/run2/second.sock", data_root=directory / "data2",
                              cgroup_parent=cgroup_parent)
        other = Client(second.host, autostart=False)
        assert other.ping() and other.info()["DockerRootDir"] == str(directory / "data2")
        assert other.info()["ID"] != client.info()["ID"]
        other.close()
    finally:
        client.close()
        for embedded in (client.started_daemon, second):
            if embedded is not None:
                embedded.stop()
                assert not embedded.running()
        shutil.rmtree(directory, ignore_errors=True)
    assert not Client(host, autostart=False).ping()


def test_start_daemon_failure_shows_the_log(tmp_path):
    # A data root that is a file: the daemon cannot start, and the error says why.
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DaemonUnavailable, match="exited with status") as caught:
        start_daemon(f"unix://{tmp_path}/bad.sock", data_root=tmp_path / "file", timeout=20)
    assert "the end of its log" in str(caught.value)


def test_run_and_exec_with_a_terminal(client):
    result = client.run("busybox", ["sh", "-c", "stty size; test -t 1 && echo tty; echo err >&2"], remove=True,
                        tty=True, console_size=(10, 40))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "10 40\r\ntty\r\nerr\r\n", "")
    container = client.create("busybox", ["sleep", "60"], name="termbox")
    client.start(container)
    try:
        execed = client.exec("termbox", ["sh", "-c", "stty size; exit 2"], tty=True, console_size=(12, 34))
        assert (execed.exit_code, execed.stdout) == (2, "12 34\r\n")
    finally:
        client.remove(container, force=True)


def test_logs_keep_the_streams_apart_and_a_terminal_is_one_raw_stream(client):
    client.run("busybox", ["sh", "-c", "echo out; echo err >&2"], name="logged")
    assert list(client.log_frames("logged")) == [(1, b"out\n"), (2, b"err\n")]
    assert client.logs("logged", tail=1) == "err\n"
    client.run("busybox", ["sh", "-c", "echo tty-out; echo tty-err >&2"], name="ttylogged", tty=True)
    assert client.logs("ttylogged") == "tty-out\r\ntty-err\r\n"
    client.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"], name="followed",
               detach=True)
    followed = b"".join(data for _, data in client.log_frames("followed", follow=True))
    assert followed == b"line1\nline2\nline3\n"  # returned once the container stopped
    for name in ("logged", "ttylogged", "followed"):
        client.remove(name, force=True)


def test_prune_by_label(client):
    doomed = client.create("busybox", ["true"], name="doomed", labels={"course": "a"})
    kept = client.create("busybox", ["true"], name="kept-label", labels={"course": "b"})
    result = client.prune_containers(filters={"label": {"course=a": True}})
    assert result["ContainersDeleted"] == [doomed]
    assert [c["Id"] for c in client.containers(all=True)] == [kept]
    assert client.prune_containers()["ContainersDeleted"] == [kept]
