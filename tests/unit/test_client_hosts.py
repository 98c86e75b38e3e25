"""Host choice (argument > TEACHDOCK_HOST > current context > default) and named contexts."""

import json

import pytest

from teachdock.cli import main
from teachdock.client import hosts
from teachdock.client.transport import DEFAULT_HOST, parse_host
from teachdock.errors import Conflict, InvalidConfig, NotFound


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("TEACHDOCK_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.delenv("TEACHDOCK_HOST", raising=False)
    return tmp_path / "cfg"


def test_default_then_context_then_environment_then_argument(config, monkeypatch):
    assert hosts.resolve_host() == DEFAULT_HOST
    hosts.create_context("lab", "unix:///tmp/lab.sock")
    assert hosts.resolve_host() == DEFAULT_HOST  # created, not used yet
    hosts.use_context("lab")
    assert hosts.resolve_host() == "unix:///tmp/lab.sock"
    monkeypatch.setenv("TEACHDOCK_HOST", "unix:///tmp/env.sock")
    assert hosts.resolve_host() == "unix:///tmp/env.sock"
    assert hosts.resolve_host("tcp://127.0.0.1:2375") == "tcp://127.0.0.1:2375"


def test_contexts_are_a_json_file(config):
    hosts.create_context("lab", "unix:///tmp/lab.sock", "the lab")
    hosts.use_context("lab")
    data = json.loads((config / "contexts.json").read_text())
    assert data == {"current": "lab", "contexts": {"lab": {"host": "unix:///tmp/lab.sock", "description": "the lab"}}}
    rows = hosts.list_contexts()
    assert [(r["name"], r["current"]) for r in rows] == [("default", False), ("lab", True)]
    hosts.remove_context("lab")
    assert hosts.resolve_host() == DEFAULT_HOST  # removing the current one falls back to default
    assert [r["name"] for r in hosts.list_contexts()] == ["default"]


def test_context_errors(config):
    with pytest.raises(InvalidConfig):
        hosts.create_context("default", "unix:///tmp/x.sock")
    with pytest.raises(InvalidConfig, match="unsupported host"):
        hosts.create_context("bad", "http://example.com")
    hosts.create_context("lab", "unix:///tmp/lab.sock")
    with pytest.raises(Conflict):
        hosts.create_context("lab", "unix:///tmp/other.sock")
    with pytest.raises(NotFound):
        hosts.use_context("nope")
    with pytest.raises(NotFound):
        hosts.remove_context("nope")


def test_parse_host():
    assert parse_host("unix:///run/x.sock") == ("unix", "/run/x.sock")
    assert parse_host("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    for bad in ("unix://relative.sock", "tcp://nohost", "ftp://x"):
        with pytest.raises(InvalidConfig):
            parse_host(bad)


def test_context_verbs_on_the_command_line(config, capsys):
    assert main(["context", "create", "lab", "--host", "unix:///tmp/lab.sock"]) == 0
    assert main(["context", "use", "lab"]) == 0
    capsys.readouterr()
    assert main(["context", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "TEACHDOCK", "ENDPOINT"]
    assert lines[2].startswith("lab *") and lines[2].endswith("unix:///tmp/lab.sock")
    assert not lines[1].startswith("default *")
    assert main(["context", "create", "lab", "--host", "unix:///tmp/lab.sock"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["context", "rm", "lab"]) == 0
    assert main(["context", "use", "default"]) == 0
    assert hosts.resolve_host() == DEFAULT_HOST


def test_cli_usage_errors(config, capsys):
    assert main(["run", "--bogus", "busybox"]) == 125
    assert "unknown flag: --bogus" in capsys.readouterr().err
    assert main(["network", "frobnicate"]) == 125
    assert main(["run", "--help"]) == 0
    assert "API: POST /containers/create" in capsys.readouterr().out
