"""The ``teachdock`` CLI's docker verbs against a real teachdockd, as a user types them:
output, exit statuses as docker's, -H / TEACHDOCK_HOST / contexts, system prune."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.registry import REGISTRY_BINARY, local_registry


pytestmark = [
    pytest.mark.root,
]


@pytest.fixture
def td(daemon, tmp_path):
    """Run ``teachdock ARGS`` with TEACHDOCK_HOST on the module's daemon and a private config dir."""
    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_CONFIG": str(tmp_path / "cfg"),
           "TEACHDOCK_AUTOSTART": "0"}

    def run(*args, input=None, extra_env=None):  # noqa: A002
        return subprocess.run([sys.executable, "-m", "teachdock.cli", *args], input=input, capture_output=True,
                              text=True, timeout=60, env={**env, **(extra_env or {})})

    yield run
    left = daemon.json("GET", "/v1.45/containers/json?all=1")
    daemon.remove_all()
    assert not left, f"the test left containers: {[c['Names'] for c in left]}"


def test_run_prints_output_and_exits_with_the_programs_status(td):
    result = td("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_run_flags(td):
    result = td("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1000", "--pids-limit", "10", "busybox",
                "sh", "-c", "echo $A; pwd; id -u; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "/tmp", "1000", "10"]


def test_run_publishes_a_port_and_names_on_a_user_network(td):
    import urllib.request  # noqa: PLC0415

    started = td("run", "-d", "--name", "site", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
                 "mkdir -p /www && echo hi from site > /www/index.html && exec httpd -f -p 80 -h /www")
    assert started.returncode == 0, started.stderr
    mapping = td("port", "site", "80")
    assert mapping.returncode == 0 and mapping.stdout.startswith("127.0.0.1:"), mapping.stdout + mapping.stderr
    url = f"http://{mapping.stdout.strip()}/"
    deadline = time.monotonic() + 10
    while True:  # httpd takes a moment to listen
        try:
            assert urllib.request.urlopen(url, timeout=2).read() == b"hi from site\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert td("network", "create", "clinet").returncode == 0
    try:
        server = td("run", "-d", "--name", "named", "--network", "clinet", "--network-alias", "db",
                    "busybox", "sleep", "60")
        assert server.returncode == 0, server.stderr
        lookup = td("run", "--rm", "--network", "clinet", "busybox", "nslookup", "db")
        assert lookup.returncode == 0 and "127.0.0.11" in lookup.stdout, lookup.stdout + lookup.stderr
        assert td("run", "--rm", "-p", "8080:", "busybox", "true").returncode == 125  # no container port
    finally:
        td("rm", "-f", "site", "named")
        td("network", "rm", "clinet")


def test_run_interactive_reads_stdin(td):
    result = td("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="")
    assert (result.returncode, result.stdout) == (0, "")
    result = td("run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input="piped input\n")
    assert (result.returncode, result.stdout) == (0, "PIPED INPUT\n")


def test_run_errors_exit_like_docker(td):
    missing = td("run", "--rm", "busybox", "no-such-program")
    assert missing.returncode == 127
    assert "no-such-program" in missing.stderr
    bad_flag = td("run", "--frobnicate", "busybox")
    assert bad_flag.returncode == 125 and "unknown flag: --frobnicate" in bad_flag.stderr
    no_image = td("run", "--rm", "teachdock-no-such-image-xyz:1", "true")
    assert no_image.returncode == 125
    assert "Unable to find image 'teachdock-no-such-image-xyz:1' locally" in no_image.stderr
    assert "Error response from daemon:" in no_image.stderr


def test_detached_ps_logs_stop_rm(td):
    started = td("run", "-d", "--name", "web", "busybox", "sh", "-c", "echo hello; exec sleep 60")
    assert started.returncode == 0
    container_id = started.stdout.strip()
    assert len(container_id) == 64
    ps = td("ps").stdout.splitlines()
    assert ps[0].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    assert ps[1].startswith(container_id[:12]) and ps[1].endswith("web") and "Up " in ps[1]
    assert td("ps", "-q").stdout == container_id[:12] + "\n"
    for _ in range(100):
        if td("logs", "web").stdout == "hello\n":
            break
        time.sleep(0.05)
    assert td("logs", "web").stdout == "hello\n"
    assert td("stop", "-t", "1", "web").stdout == "web\n"
    assert td("ps", "-q").stdout == ""
    assert "Exited (137)" in td("ps", "-a").stdout
    assert td("wait", "web").stdout == "137\n"
    inspected = json.loads(td("inspect", "web").stdout)
    assert inspected[0]["Id"] == container_id and inspected[0]["State"]["ExitCode"] == 137
    assert td("rm", "web").stdout == "web\n"
    gone = td("rm", "web")
    assert gone.returncode == 1 and "Error response from daemon: No such container: web" in gone.stderr
    assert td("rm", "-f", "web").returncode == 0  # docker rm -f of a missing container is not a failure
    nothing = td("inspect", "web")
    assert nothing.returncode == 1 and "No such object: web" in nothing.stderr


def test_start_kill_exec(td):
    assert td("run", "-d", "--name", "box", "busybox", "sleep", "60").returncode == 0
    execed = td("exec", "box", "sh", "-c", "echo in-box; exit 5")
    assert (execed.returncode, execed.stdout) == (5, "in-box\n")
    assert td("exec", "-i", "box", "cat", input="to exec\n").stdout == "to exec\n"
    assert td("kill", "box").stdout == "box\n"
    assert td("start", "box").stdout == "box\n"
    assert "Up " in td("ps").stdout
    assert td("kill", "-s", "KILL", "box").returncode == 0
    assert td("rm", "box").returncode == 0


def test_images_tag_rmi_inspect(td):
    images = td("images").stdout.splitlines()
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in images[1:])
    assert td("tag", "busybox", "course/box:v1").returncode == 0
    assert any(line.split()[:2] == ["course/box", "v1"] for line in td("images").stdout.splitlines())
    assert json.loads(td("inspect", "course/box:v1").stdout)[0]["RepoTags"]
    assert td("rmi", "course/box:v1").stdout == "Untagged: course/box:v1\n"


def test_the_image_group_is_the_daemons(td):
    """`teachdock image ls` = `teachdock images` (both ask the daemon); inspect, history, prune too."""
    assert td("image", "ls").stdout == td("images").stdout
    assert td("image", "tag", "busybox", "course/grouped:v1").returncode == 0
    assert json.loads(td("image", "inspect", "course/grouped:v1").stdout)[0]["RepoTags"]
    history = td("image", "history", "busybox").stdout.splitlines()
    assert history[0].split()[:4] == ["IMAGE", "CREATED", "CREATED", "BY"] and "bootstrap busybox" in history[-1]
    assert td("image", "rm", "course/grouped:v1").stdout == "Untagged: course/grouped:v1\n"
    pruned = td("image", "prune", "-f")
    assert pruned.returncode == 0 and pruned.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    missing = td("image", "inspect", "no-such-image:1")
    assert missing.returncode == 1 and "Error response from daemon" in missing.stderr


def test_version_and_info(td, daemon):
    version = td("version").stdout
    assert "Client:" in version and "Server: teachdock Engine" in version and f"unix://{daemon.socket_path}" in version
    info = td("info").stdout
    assert f"Docker Root Dir: {daemon.data_root}" in info


def test_version_without_a_daemon_does_not_start_one(td, tmp_path):
    host = f"unix://{tmp_path}/none.sock"
    result = td("-H", host, "version", extra_env={"TEACHDOCK_AUTOSTART": "1"})
    assert result.returncode == 1
    assert "Client:" in result.stdout and f"cannot connect to teachdockd at {host}" in result.stderr
    assert not (tmp_path / "none.sock").exists()


def test_host_flag_beats_environment_and_context(td, daemon, tmp_path):
    socket_host = f"unix://{daemon.socket_path}"
    nowhere = f"unix://{tmp_path}/nowhere.sock"
    # TEACHDOCK_HOST pointing nowhere, -H pointing at the daemon: -H wins.
    assert td("-H", socket_host, "ps", extra_env={"TEACHDOCK_HOST": nowhere}).returncode == 0
    failed = td("ps", extra_env={"TEACHDOCK_HOST": nowhere})
    assert failed.returncode == 1
    assert f"cannot connect to teachdockd at {nowhere}" in failed.stderr and "Is the daemon running?" in failed.stderr
    assert td("run", "--rm", "busybox", "true", extra_env={"TEACHDOCK_HOST": nowhere}).returncode == 125


def test_named_contexts_pick_the_daemon(td, daemon, tmp_path):
    no_env = {"TEACHDOCK_HOST": ""}
    assert td("context", "create", "lab", "--host", f"unix://{daemon.socket_path}").returncode == 0
    assert td("context", "create", "dead", "--host", f"unix://{tmp_path}/dead.sock").returncode == 0
    assert td("context", "use", "lab").returncode == 0
    assert td("run", "--rm", "busybox", "echo", "via-context", extra_env=no_env).stdout == "via-context\n"
    listing = td("context", "ls").stdout.splitlines()
    assert any(line.startswith("lab *") for line in listing)
    assert td("context", "use", "dead").returncode == 0
    assert td("ps", extra_env=no_env).returncode == 1
    assert td("context", "rm", "dead", "lab").returncode == 0


def test_system_prune_removes_stopped_containers_and_a_crash_leftover(td, daemon):
    assert td("run", "--name", "stopped", "busybox", "true").returncode == 0
    leftover = Path(daemon.data_root) / "daemon" / "containers" / secrets.token_hex(32)
    leftover.mkdir()
    (leftover / "container.json").write_text("{not json")
    asked = td("system", "prune", input="n\n")
    assert "Are you sure you want to continue? [y/N]" in asked.stdout
    assert leftover.exists() and "stopped" in td("ps", "-a").stdout
    pruned = td("system", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert "Deleted Containers:" in pruned.stdout and "Total reclaimed space:" in pruned.stdout
    assert f"container directory without a record: {leftover}" in pruned.stdout
    assert not leftover.exists()
    assert td("ps", "-aq").stdout == ""


def test_help_teaches_the_api_calls(td):
    top = td("--help").stdout
    assert "run       create and run a container" in top and "runtime" in top
    run_help = td("run", "--help").stdout
    assert "POST /containers/create" in run_help and "/attach" in run_help and "/start" in run_help
    assert "GET /containers/json" in td("ps", "--help").stdout


def test_build_commit_save_load(td, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "hello.txt").write_text("from the context\n")
    (context / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo built > /built\n"
                                        'CMD ["cat", "/hello.txt", "/built"]\n')
    built = td("build", "-t", "course/built:v1", str(context))
    assert built.returncode == 0, built.stderr
    assert "Step 1/4 : FROM busybox" in built.stdout and "Successfully tagged course/built:v1" in built.stdout
    assert td("run", "--rm", "course/built:v1").stdout == "from the context\nbuilt\n"

    assert td("run", "--name", "changer", "busybox", "sh", "-c", "echo changed > /changed").returncode == 0
    committed = td("commit", "changer", "course/committed:v1")
    assert committed.returncode == 0 and committed.stdout.startswith("sha256:")
    assert td("rm", "changer").returncode == 0
    assert td("run", "--rm", "course/committed:v1", "cat", "/changed").stdout == "changed\n"

    archive = tmp_path / "images.tar"
    assert td("save", "-o", str(archive), "course/built:v1").returncode == 0
    assert archive.stat().st_size > 0
    assert td("rmi", "course/built:v1", "course/committed:v1").returncode == 0
    loaded = td("load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert "Loaded image: course/built:v1" in loaded.stdout
    assert td("run", "--rm", "course/built:v1").stdout == "from the context\nbuilt\n"
    assert td("rmi", "course/built:v1").returncode == 0


def test_build_failure_exits_1(td, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 9\n")
    failed = td("build", str(tmp_path))
    assert failed.returncode == 1
    assert "Error response from daemon:" in failed.stderr


def test_networks_and_volumes(td):
    name = f"tdnet{secrets.token_hex(2)}"
    created = td("network", "create", name)
    assert created.returncode == 0, created.stderr
    assert any(line.split()[1:2] == [name] for line in td("network", "ls").stdout.splitlines())
    assert td("network", "rm", name).stdout == name + "\n"
    assert not any(line.split()[1:2] == [name] for line in td("network", "ls").stdout.splitlines())

    assert td("volume", "create", "coursevol").stdout == "coursevol\n"
    assert "coursevol" in td("volume", "ls").stdout.split()
    assert td("run", "--rm", "-v", "coursevol:/data", "busybox", "sh", "-c", "echo kept > /data/f").returncode == 0
    assert td("run", "--rm", "-v", "coursevol:/data:ro", "busybox", "cat", "/data/f").stdout == "kept\n"
    assert td("volume", "rm", "coursevol").stdout == "coursevol\n"
    assert "coursevol" not in td("volume", "ls").stdout.split()


def test_stats_and_events(td):
    since = time.time()
    assert td("run", "-d", "--name", "measured", "-m", "32m", "busybox", "sleep", "60").returncode == 0
    stats = td("stats", "--no-stream", "measured").stdout.splitlines()
    assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert stats[1].split()[1] == "measured" and "/ 32MiB" in stats[1]
    assert td("rm", "-f", "measured").returncode == 0
    events = td("events", "--since", str(since), "--until", str(time.time() + 0.5)).stdout.splitlines()
    mine = [line.split()[2] for line in events if "name=measured" in line]
    assert mine[0] == "create" and "start" in mine and mine[-1] == "destroy"


def test_cli_autostarts_a_daemon_on_an_empty_socket(td, scratch_dir):
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    from teachdock.client.autostart import EmbeddedDaemon  # noqa: PLC0415
    from teachdock.image.images import Images  # noqa: PLC0415

    directory = Path(scratch_dir) / f"cli-auto-{secrets.token_hex(3)}"
    Images(directory / "data").bootstrap_busybox()
    host = f"unix://{directory}/run/td.sock"
    started = None
    try:
        result = td("-H", host, "run", "--rm", "busybox", "echo", "autostarted",
                    extra_env={"TEACHDOCK_AUTOSTART": "1", "TEACHDOCK_DATA_ROOT": str(directory / "data")})
        match = re.search(r"started teachdockd \(pid (\d+), log (\S+)\)", result.stderr)
        assert match, result.stderr
        started = EmbeddedDaemon(host, int(match.group(1)), match.group(2))
        assert (result.returncode, result.stdout) == (0, "autostarted\n")
        assert started.running()
        again = td("-H", host, "ps", "-a", extra_env={"TEACHDOCK_AUTOSTART": "1"})
        assert again.returncode == 0 and "started teachdockd" not in again.stderr  # it answers now
    finally:
        if started is not None:
            started.stop()
            assert not started.running()
        shutil.rmtree(directory, ignore_errors=True)


def test_run_forwards_signals_to_the_container(daemon, tmp_path):
    """--sig-proxy as docker's: SIGTERM to the CLI becomes POST /containers/ID/kill?signal=SIGTERM."""
    import signal  # noqa: PLC0415

    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_AUTOSTART": "0"}
    script = 'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.1; done'
    process = subprocess.Popen([sys.executable, "-m", "teachdock.cli", "run", "--rm", "busybox", "sh", "-c", script],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, out) == (5, "got TERM\n"), err
    for _ in range(100):
        if not daemon.json("GET", "/v1.45/containers/json?all=1"):
            break
        time.sleep(0.05)
    assert daemon.json("GET", "/v1.45/containers/json?all=1") == []


def test_run_it_gives_a_terminal(daemon):
    """``run -it`` from a terminal: keys go to the container's shell as typed, its exit code comes back."""
    import pty  # noqa: PLC0415
    import select  # noqa: PLC0415

    env = {**os.environ, "TEACHDOCK_HOST": f"unix://{daemon.socket_path}", "TEACHDOCK_AUTOSTART": "0"}
    import fcntl  # noqa: PLC0415
    import struct  # noqa: PLC0415
    import termios  # noqa: PLC0415

    pid, master = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal of its own, 21 rows x 77 columns
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 21, 77, 0, 0))
        os.execve(sys.executable, [sys.executable, "-m", "teachdock.cli", "run", "--rm", "-it", "busybox", "sh"], env)
    seen = b""

    def read_until(marker: bytes, timeout: float = 20) -> bytes:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        return seen

    try:
        assert b"/ # " in read_until(b"/ # "), seen
        os.write(master, b"stty size; test -t 0 && echo stdin-is-a-tty; echo typed-$((6*7)); exit 4\r")
        assert b"typed-42" in read_until(b"typed-42"), seen
        assert b"21 77\r\n" in seen and b"stdin-is-a-tty" in seen
        _, status = os.waitpid(pid, 0)
        pid = None
        assert os.WEXITSTATUS(status) == 4
    finally:
        if pid is not None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(master)


def test_pull_from_a_local_registry(td, tmp_path):
    if REGISTRY_BINARY is None:
        pytest.skip("needs Debian's docker-registry (apt-get install docker-registry) as a local registry")
    from teachdock.image.images import Images  # noqa: PLC0415
    from teachdock.image.registry import push  # noqa: PLC0415

    with local_registry(tmp_path) as registry:
        source = Images(tmp_path / "source")
        source.bootstrap_busybox()
        name = f"{registry.host}/course/pulled:v2"
        source.tag("busybox:latest", name)
        push(source.store, name)
        pulled = td("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        assert "Status: Downloaded newer image for" in pulled.stdout and pulled.stdout.endswith(f"{name}\n")
        assert td("run", "--rm", name, "echo", "from-registry").stdout == "from-registry\n"
        assert td("rmi", name).returncode == 0
        missing = td("pull", f"{registry.host}/course/absent:v1")
        assert missing.returncode == 1 and "Error response from daemon:" in missing.stderr


def test_pause_top_rename_restart(td):
    assert td("run", "-d", "--name", "verbs", "busybox", "sleep", "300").returncode == 0
    top = td("top", "verbs", "-o", "pid,comm").stdout.splitlines()
    assert top[0].split() == ["PID", "COMMAND"] and top[1].split()[1] == "sleep"
    assert td("pause", "verbs").stdout == "verbs\n"
    assert "(Paused)" in td("ps").stdout
    refused = td("exec", "verbs", "true")
    assert refused.returncode != 0 and "unpause the container before exec" in refused.stderr
    assert td("unpause", "verbs").returncode == 0
    assert td("rename", "verbs", "renamed").returncode == 0
    assert td("restart", "-t", "0", "renamed").stdout == "renamed\n"
    assert td("ps").stdout.splitlines()[1].endswith("renamed")
    assert td("rm", "-f", "renamed").returncode == 0
    missing = td("top", "renamed")
    assert missing.returncode == 1 and "No such container: renamed" in missing.stderr


def test_cp_both_ways(td, tmp_path):
    assert td("run", "-d", "--name", "copier", "busybox", "sh", "-c", "mkdir -p /d/s; echo in > /d/s/f; "
                                                                      "touch /ready; exec sleep 300").returncode == 0
    assert td("exec", "copier", "sh", "-c", "while ! test -e /ready; do sleep 0.05; done").returncode == 0
    assert td("cp", "copier:/d", str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out" / "s" / "f").read_text() == "in\n"
    assert td("cp", "copier:/d/s/f", str(tmp_path / "renamed.txt")).returncode == 0
    assert (tmp_path / "renamed.txt").read_text() == "in\n"
    (tmp_path / "up.txt").write_text("up\n")
    assert td("cp", str(tmp_path / "up.txt"), "copier:/tmp/").returncode == 0
    assert td("cp", str(tmp_path / "up.txt"), "copier:/tmp/other.txt").returncode == 0
    assert td("exec", "copier", "cat", "/tmp/up.txt", "/tmp/other.txt").stdout == "up\nup\n"
    missing = td("cp", "copier:/nope", str(tmp_path))
    assert missing.returncode == 1 and "Could not find the file /nope" in missing.stderr
    assert td("cp", "a", "b").returncode == 125
    td("rm", "-f", "copier")
