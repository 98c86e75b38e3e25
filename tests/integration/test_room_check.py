"""`teachdock doctor --room` and `--json` on this machine, through the real command: every line
parses, the text and the JSON agree, and the exit status is what the chapters' verdicts say."""

import json
import os
import subprocess
import sys

import pytest

from teachdock.lab.start_here.room import CHAPTERS


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "teachdock.cli", "doctor", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_room_check_prints_one_line_per_requirement_and_exits_as_the_chapters_say():
    text, as_json = doctor("--room"), doctor("--room", "--json")
    data = json.loads(as_json.stdout)
    requirements = data["requirements"]
    lines = text.stdout.splitlines()
    assert len(lines) > len(requirements), text.stdout
    for line, requirement in zip(lines, requirements):  # the same machine, seen twice
        status, name, _value = line.split(None, 2)
        assert status in ("OK", "WARN", "MISSING") and (status.lower(), name) == (requirement["status"],
                                                                                    requirement["name"])
    assert set(data["chapters"]) == set(CHAPTERS)
    blocked = [n for n, verdict in data["chapters"].items() if verdict["status"] == "blocked"]
    assert data["cannot_run"] == blocked
    assert text.returncode == as_json.returncode == (1 if blocked else 0), text.stdout
    if blocked:
        assert lines[-1].startswith("cannot run: ")
    else:
        assert lines[-1] == f"every chapter can run ({len(CHAPTERS)} chapters)"
    # what is plainly true here
    assert data["is_root"] == (os.geteuid() == 0)
    python = next(r for r in requirements if r["name"] == "python")
    assert python["value"] == ".".join(map(str, sys.version_info[:3]))


def test_doctor_json_is_the_report_and_exits_0():
    result = doctor("--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["kernel"] == os.uname().release
    assert {f["status"] for f in data["findings"]} <= {"ok", "warn", "missing"}


@pytest.mark.parametrize("flag, code, stream, words", [("--help", 0, "stdout", "usage: teachdock doctor"),
                                                        ("--nope", 2, "stderr", "unrecognized arguments: --nope")])
def test_help_teaches_and_unknown_flags_are_refused(flag, code, stream, words):
    result = doctor(flag)
    assert result.returncode == code and words in getattr(result, stream)
    assert "can this machine run the course" not in result.stdout  # the doctor did not run
