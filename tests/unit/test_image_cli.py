"""`teachdock store ...` (the daemonless image store) on a temporary data root, with the copy driver (no mounts, no containers)."""

import json
import subprocess
import sys

import pytest

from teachdock.cli.store import main


@pytest.fixture
def cli(tmp_path, capsys):
    """``cli("ls")`` -> (exit status, stdout, stderr), against a data root in tmp_path."""
    data_root = tmp_path / "data"

    def run(*args):
        status = main(["--data-root", str(data_root), "--storage-driver", "copy", *args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@pytest.fixture
def context(tmp_path):
    directory = tmp_path / "ctx"
    directory.mkdir()
    (directory / "Dockerfile").write_text('FROM scratch\nARG WHO\nCOPY hello.txt /\nCMD ["/hello"]\n')
    (directory / "hello.txt").write_text("hello\n")
    return directory


def test_help_imports_nothing_heavy():
    code = ("import sys, teachdock.cli.store as cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('teachdock')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: teachdock store" in done.stdout
    loaded = done.stdout.strip().splitlines()[-1]
    assert "teachdock.runtime" not in loaded and "teachdock.image.store" not in loaded


def test_build_ls_history_tag_inspect_rm(cli, context):
    status, out, _ = cli("build", "-t", "hello:1", "--build-arg", "WHO=me", str(context))
    assert status == 0
    assert out.splitlines()[0] == "Step 1/4 : FROM scratch"
    assert out.splitlines()[-1] == "Successfully tagged hello:1"

    status, out, _ = cli("build", "-q", "-t", "hello:1", str(context))
    image_id = out.strip()
    assert status == 0 and image_id.startswith("sha256:") and len(image_id) == 71

    status, out, _ = cli("ls")
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert row.split()[:3] == ["hello", "1", image_id[7:19]]
    assert cli("ls", "-q", "--no-trunc")[1].split() == [image_id]

    status, out, _ = cli("history", "hello:1")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert lines[1].startswith(image_id[7:19]) and "CMD" in lines[1]
    assert "COPY file:" in lines[2] and "ARG WHO" in lines[3]

    assert cli("tag", "hello:1", "other")[0] == 0
    status, out, _ = cli("inspect", "other")
    (details,) = json.loads(out)
    assert details["Id"] == image_id and details["RepoTags"] == ["hello:1", "other:latest"]
    assert details["Config"]["Cmd"] == ["/hello"]

    status, out, _ = cli("rm", "other", "hello:1")
    assert status == 0
    assert out.splitlines() == ["Untagged: other:latest", "Untagged: hello:1", f"Deleted: {image_id}"]
    assert cli("ls", "-q")[1] == ""


def test_errors_are_one_line_and_exit_1(cli, tmp_path):
    status, out, err = cli("inspect", "nothing")
    assert status == 1 and err == "teachdock: error: No such image: nothing:latest\n"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "Dockerfile").write_text("FROM scratch\nFETCH x\n")
    status, out, err = cli("build", str(tmp_path / "bad"))
    assert status == 1 and err == "teachdock: error: Dockerfile:2: unknown instruction: FETCH\n"
    status, _, err = cli("rm", "nothing", "alsonothing")
    assert status == 1 and err.count("No such image") == 2


def test_data_root_after_the_command_and_from_the_environment(tmp_path, monkeypatch, capsys, context):
    data_root = tmp_path / "elsewhere"
    assert main(["build", "-q", "--storage-driver", "copy", "--data-root", str(data_root), str(context)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("TEACHDOCK_DATA_ROOT", str(data_root))
    assert main(["ls", "-q"]) == 0
    assert len(capsys.readouterr().out.split()) == 1
    assert (data_root / "images" / "index.json").exists()
