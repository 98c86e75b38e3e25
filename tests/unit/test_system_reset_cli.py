"""`teachdock system reset`'s command line and its pure parts: where it looks, what it says it
would remove, the counts it reports (the real reset: tests/integration/test_system_reset.py)."""

from pathlib import Path

import pytest

from teachdock.cli import main
from teachdock.cli import reset
from teachdock.errors import TeachdockError


def _roots(*argv, host=None):
    return reset.roots_from(reset.parser().parse_args(list(argv)), host)


def test_default_roots_are_the_default_daemons(monkeypatch):
    monkeypatch.delenv("TEACHDOCK_DATA_ROOT", raising=False)
    monkeypatch.delenv("TEACHDOCK_STATE_ROOT", raising=False)
    monkeypatch.setattr("teachdock.paths.os.geteuid", lambda: 0)  # root's defaults, also in the unprivileged re-run
    roots = _roots()
    assert (roots.data_root, roots.exec_root, roots.socket, roots.state_root, roots.cgroup_parent) == (
        Path("/var/lib/teachdock"), Path("/run/teachdock"), "/run/teachdock/teachdock.sock",
        Path("/run/teachdock/runtime"), "teachdock")


def test_an_exec_root_brings_its_own_socket_and_state_root():
    roots = _roots("--exec-root", "/tmp/x/exec", "--data-root", "/tmp/x/data", "--cgroup-parent", "/tdd-1/")
    assert roots.socket == "/tmp/x/exec/teachdock.sock" and roots.state_root == Path("/tmp/x/exec/runtime")
    assert roots.cgroup_parent == "tdd-1" and roots.host == "unix:///tmp/x/exec/teachdock.sock"
    assert _roots(host="unix:///tmp/y.sock").socket == "/tmp/y.sock"


def test_a_tcp_host_is_refused():
    with pytest.raises(TeachdockError, match="unix://PATH"):
        _roots("-H", "tcp://127.0.0.1:2375")


def test_the_plan_names_every_object_and_the_daemon_it_stops():
    found = reset.Inventory(
        daemon_pid=42, containers=[("a" * 64, "web")], networks=[("b" * 64, "lab")],
        default_network={"Name": "bridge", "Bridge": "teachdock0"}, volumes=["notes"],
        images=[("sha256:" + "c" * 64, ("docker.io/library/hello:1",))], base_extra_names=["docker.io/library/mybox:1"],
        runtime=[("demo1", "running")], cgroups=["/teachdock/demo1"], mounts=["/var/lib/teachdock/x/merged"])
    lines = reset.plan_lines(found, _roots())
    assert lines[:4] == ["container aaaaaaaaaaaa web", "image cccccccccccc docker.io/library/hello:1",
                         "image tag docker.io/library/mybox:1 (of the base image; the base stays)",
                         "network bbbbbbbbbbbb lab"]
    assert "runtime container demo1 (running)" in lines and "volume notes" in lines
    assert any(line.startswith("bridge teachdock0 ") for line in lines)
    assert lines[-1] == "stop teachdockd (pid 42) on /run/teachdock/teachdock.sock"
    assert reset.Inventory(volumes=["v"]).daemon_work and not reset.Inventory(images=[("x", ())]).daemon_work


def test_the_summary_counts_each_kind():
    removed = reset.Removed()
    removed.add("container", "a web")
    removed.add("container", "b db")
    removed.add("volume", "notes")
    assert removed.summary() == ("removed: 2 containers, 0 images, 0 networks, 1 volume, 0 runtime containers, "
                                 "0 cgroups, 0 mounts")
    assert removed.lines[0] == "removed container a web"


def test_help_unknown_flags_and_tls_through_the_cli(capsys):
    assert main(["system", "reset", "--help"]) == 0
    assert "--dry-run" in capsys.readouterr().out
    assert main(["system", "reset", "--everything"]) == 2
    assert "unrecognized arguments: --everything" in capsys.readouterr().err
    assert main(["--tls", "system", "reset"]) == 125
    assert main(["system", "--help"]) == 0
    assert "commands: prune, reset" in capsys.readouterr().out


def test_the_daemon_pid_is_none_where_nothing_listens(tmp_path):
    assert reset.daemon_pid(str(tmp_path / "nothing.sock")) is None


def test_only_the_default_roots_take_the_chapters_leftovers_along(monkeypatch):
    monkeypatch.delenv("TEACHDOCK_DATA_ROOT", raising=False)
    assert _roots().default
    assert not _roots("--data-root", "/tmp/x").default and not _roots("--exec-root", "/tmp/x").default
    assert not _roots(host="unix:///tmp/y.sock").default and not _roots("--cgroup-parent", "td2").default
    found = reset.Inventory(chapters=["chapter 08's network by hand: namespace tdlab-a"])
    assert "chapter 08's network by hand: namespace tdlab-a" in reset.plan_lines(found, _roots())


def test_the_chapters_leftovers_are_listed_in_the_commands_english(monkeypatch):
    """A terminal of the Korean lab has TEACHDOCK_LANG=ko; reset's lines stay one language."""
    import sys
    import types

    from teachdock.cli import reset
    from teachdock.lab.common.language import say

    lab = types.ModuleType("fake_chapter_lab")
    lab.leftovers = lambda: [say("namespace {name}", name="tdlab-a")]
    monkeypatch.setitem(sys.modules, "fake_chapter_lab", lab)
    monkeypatch.setattr(reset, "CHAPTER_LABS", (("chapter 08's network by hand", "fake_chapter_lab"),))
    monkeypatch.setenv("TEACHDOCK_LANG", "ko")
    assert say("namespace {name}", name="tdlab-a") != "namespace tdlab-a"  # the lab itself speaks Korean here
    assert reset.chapter_leftovers() == ["chapter 08's network by hand: namespace tdlab-a"]
