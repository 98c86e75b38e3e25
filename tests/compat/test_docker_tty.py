"""``docker run -it`` and ``docker exec -it`` with the real docker CLI in a real terminal.

``script`` (util-linux) gives the CLI a pseudo-terminal, as a user's terminal window would.
The daemon then gives the program a terminal of its own: one raw stream, no frames;
``stty size`` inside shows the size the CLI sent (ConsoleSize, then /resize).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.daemons import DOCKER

SCRIPT = shutil.which("script")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
    pytest.mark.skipif(SCRIPT is None, reason="needs util-linux's script to give the CLI a terminal"),
]


@pytest.fixture(scope="module")
def env(daemon, tmp_path_factory):
    env = {**os.environ, "DOCKER_HOST": f"unix://{daemon.socket_path}", "DOCKER_CLI_HINTS": "false",
           "DOCKER_CONFIG": str(tmp_path_factory.mktemp("docker-config"))}
    env.pop("DOCKER_CONTEXT", None)
    return env


def in_terminal(env, command: str, typed: str | None = None, rows: int = 20, cols: int = 90):
    """Run a shell command line inside a pseudo-terminal of rows x cols; returns (exit code, text seen)."""
    line = f"stty rows {rows} cols {cols}; {command}"
    result = subprocess.run([SCRIPT, "-qec", line, "/dev/null"], env=env, capture_output=True, timeout=60,
                            input=typed.encode() if typed is not None else None,
                            stdin=None if typed is not None else subprocess.DEVNULL)
    return result.returncode, result.stdout.decode(errors="replace").replace("\r\n", "\n")


def test_run_it_gives_the_program_a_terminal_of_the_users_size(env):
    code, seen = in_terminal(env, f"{DOCKER} run -it --rm busybox sh -c 'stty size; tty; ls /dev/pts; exit 3'",
                             rows=21, cols=77)
    assert code == 3
    assert "21 77\n" in seen  # the size was there before the program's first instruction
    assert "/dev/pts/0\n" in seen and "0     ptmx" in seen  # a pty of the container's own devpts


def test_typing_into_an_interactive_shell(env):
    code, seen = in_terminal(env, f"{DOCKER} run -it --rm busybox sh", typed="echo $((6*7))\nexit 4\n")
    assert code == 4
    assert "42\n" in seen


def test_run_t_logs_are_one_raw_stream_with_terminal_line_ends(env, daemon):
    subprocess.run([DOCKER, "run", "-t", "--name", "tty-logs", "busybox", "sh", "-c", "echo out; echo err >&2"],
                   env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, check=True)
    logs = subprocess.run([DOCKER, "logs", "tty-logs"], env=env, capture_output=True, timeout=60)
    assert logs.stdout == b"out\r\nerr\r\n" and logs.stderr == b""  # a terminal merges both and adds \r
    subprocess.run([DOCKER, "rm", "tty-logs"], env=env, capture_output=True, timeout=60)


def test_exec_it_into_a_running_container(env):
    started = subprocess.run([DOCKER, "run", "-d", "busybox", "sleep", "300"], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
    container = started.stdout.strip()
    try:
        code, seen = in_terminal(env, f"{DOCKER} exec -it {container} sh -c 'stty size; exit 6'", rows=19, cols=66)
        assert code == 6 and "19 66\n" in seen
        code, seen = in_terminal(env, f"{DOCKER} exec -it {container} sh", typed="echo $((7*6))x\nexit\n")
        assert code == 0 and "42x\n" in seen
    finally:
        subprocess.run([DOCKER, "rm", "-f", container], env=env, capture_output=True, timeout=60)


def test_resize_with_nonsense_sizes_is_a_400(daemon):
    container = daemon.create(["sleep", "30"], Tty=True, OpenStdin=True)
    status, _, body = daemon.request("POST", f"/v1.45/containers/{container}/resize?h=abc&w=80")
    assert status == 400 and b"as numbers" in body
    status, _, body = daemon.request("POST", "/v1.45/containers/create",
                                     {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"ConsoleSize": [24]}})
    assert status == 400 and b"ConsoleSize must be [height, width]" in body
    daemon.request("DELETE", f"/v1.45/containers/{container}?force=1")
