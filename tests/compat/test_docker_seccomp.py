"""The docker CLI's ``--security-opt`` against teachdockd: Docker's seccomp profile by default,
``seccomp=unconfined``, ``seccomp=FILE`` (the CLI sends the file's content), ``no-new-privileges``,
dockerd's words for an option it does not know, ``docker info``'s security options, and exec.

dockerd 20.10 on this machine is the oracle the expected words and states were read from
(``docker create --security-opt …`` then ``grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status``);
one test puts the two daemons side by side.
"""

from __future__ import annotations

import json

import pytest

from tests.support.daemons import DOCKER, docker_cli
from tests.support.dockerd import dockerd_missing, running_dockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI installed: it is the client under test"),
]

STATUS = "grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status | tr -s '\\t' ' '; mkdir /x 2>&1; echo mkdir=$?"
MKDIR_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"],
                                                                  "action": "SCMP_ACT_ERRNO"}]}


@pytest.fixture
def docker(daemon, tmp_path):
    yield docker_cli(daemon.socket_path, tmp_path / "docker-config")
    daemon.remove_all()


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(MKDIR_PROFILE, indent=2))
    return path


def status(run) -> list[str]:
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if not line.startswith("mkdir:")]


def test_docker_info_reports_the_builtin_profile(docker):
    result = docker("info", "-f", "{{json .SecurityOptions}}")
    assert json.loads(result.stdout) == ["name=seccomp,profile=builtin"]


def test_a_default_container_is_filtered_without_no_new_privs(docker):
    assert status(docker("run", "--rm", "busybox", "sh", "-c", STATUS)) == [
        "NoNewPrivs: 0", "Seccomp: 2", "mkdir=0"]
    refused = docker("run", "--rm", "busybox", "unshare", "-U", "true")
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr + refused.stdout


def test_unconfined_no_new_privileges_and_a_profile_file(docker, profile_file):
    assert status(docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", STATUS)) == [
        "NoNewPrivs: 0", "Seccomp: 0", "mkdir=0"]
    assert docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U",
                  "true").returncode == 0
    for spelling in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
        assert status(docker("run", "--rm", "--security-opt", spelling, "busybox", "sh", "-c", STATUS)) == [
            "NoNewPrivs: 1", "Seccomp: 2", "mkdir=0"], spelling
    assert status(docker("run", "--rm", "--security-opt", f"seccomp={profile_file}", "busybox", "sh", "-c",
                         STATUS)) == ["NoNewPrivs: 0", "Seccomp: 2", "mkdir=1"]


def test_inspect_keeps_the_options_as_given(docker, profile_file):
    created = docker("create", "--security-opt", f"seccomp={profile_file}", "--security-opt", "no-new-privileges",
                     "busybox", "true")
    assert created.returncode == 0, created.stderr
    options = json.loads(docker("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", created.stdout.strip()).stdout)
    assert options[1] == "no-new-privileges"
    assert json.loads(options[0].removeprefix("seccomp=")) == MKDIR_PROFILE  # the CLI sent the file's content


def test_exec_runs_under_the_containers_filter(docker, profile_file):
    started = docker("run", "-d", "--security-opt", f"seccomp={profile_file}", "busybox", "sleep", "60")
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    result = docker("exec", container, "mkdir", "/y")
    assert result.returncode == 1 and "Operation not permitted" in result.stderr
    assert docker("exec", container, "touch", "/y").returncode == 0


@pytest.mark.parametrize("option, words", [
    ("foo=bar", 'Error response from daemon: invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'Error response from daemon: invalid --security-opt 2: "no-new-privileges=maybe"'),
    ("apparmor=docker-default", "no AppArmor support"),
])
def test_an_option_it_cannot_honour_is_refused_at_create_and_nothing_is_left(docker, option, words):
    result = docker("create", "--name", "refused", "--security-opt", option, "busybox", "true")
    assert result.returncode != 0 and words in result.stderr
    assert docker("ps", "-aq").stdout == ""


def test_a_bad_profile_is_refused_at_create(docker, tmp_path):
    """dockerd takes it and fails at start, from runc; teachdock says so at create, leaving nothing."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}))
    result = docker("create", "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert result.returncode != 0
    assert "seccomp profile: syscalls[0].action 'SCMP_ACT_NOPE' is not one of" in result.stderr
    assert docker("ps", "-aq").stdout == ""


@pytest.mark.skipif(dockerd_missing() is not None, reason=dockerd_missing() or "")
def test_side_by_side_with_dockerd(docker, daemon, profile_file):
    """The same commands against dockerd and teachdockd: the same states and the same error words."""
    commands = [
        ["run", "--rm", "--network", "none", "busybox", "sh", "-c", STATUS],
        ["run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", STATUS],
        ["run", "--rm", "--network", "none", "--security-opt", "no-new-privileges", "busybox", "sh", "-c", STATUS],
        ["run", "--rm", "--network", "none", "--security-opt", f"seccomp={profile_file}", "busybox", "sh", "-c",
         STATUS],
        ["create", "--security-opt", "foo=bar", "busybox", "true"],
    ]
    with running_dockerd(daemon.data_root) as dockerd:
        theirs = [dockerd.docker(*command) for command in commands]
    ours = [docker(*command) for command in commands]
    for command, mine, reference in zip(commands, ours, theirs):
        assert (mine.returncode, mine.stdout) == (reference.returncode, reference.stdout), command
        assert mine.stderr.replace("mkdir: can't create directory '/x': Operation not permitted\n", "") == \
            reference.stderr.replace("mkdir: can't create directory '/x': Operation not permitted\n", ""), command
