"""Chapter 02's lab in Korean (TEACHDOCK_LANG=ko): the checks' answers and hints, and the explorer's
table, heat-map and widget, read as Korean (tests/support/korean.py), with the values still in them."""

from __future__ import annotations

import re

import pytest

from teachdock.lab.namespaces import explorer as ex
from teachdock.lab.namespaces.checks import (
    ContainerFacts,
    check_root_is_host_uid,
    judge_host_pid,
    judge_root_is_host_uid,
    judge_shared_kinds,
    judge_shared_network,
)
from tests.support.korean import reads_korean
from tests.unit.test_lab_explorer import HOST_INODES, container_side, facts, host_side

TRUTH = {"pid", "ipc", "network", "user", "cgroup", "time"}
ASKED = ("mount", "uts")


def reads_korean_besides_kinds(text: str) -> bool:
    """A list of kind names ("pid, ipc, network, user") is values, not English prose."""
    return reads_korean(re.sub(r"\b(?:%s|proc|disk)\b" % "|".join(ex.KINDS), "", text))


@pytest.mark.parametrize("answer, passed", [
    (TRUTH, True),
    (TRUTH | {"uts"}, False),            # asked for, so not shared
    (TRUTH | {"proc", "disk"}, False),   # not namespace kinds (the plural sentence)
    ({"pid", "ipc", "network"}, False),  # forgot the kinds never created by default
])
def test_shared_kinds_answers_in_korean(korean, answer, passed):
    result = judge_shared_kinds(answer, TRUTH, ASKED)
    assert result.passed == passed and reads_korean_besides_kinds(result.message), result.message


@pytest.mark.parametrize("answer, passed", [(31000, True), (1, False), (4242, False), (30999, False)])
def test_host_pid_answers_in_korean(korean, answer, passed):
    result = judge_host_pid(answer, 31000, monitor_pid=30999, kernel_pid=4242,
                            describe={30999: "td-shim", 4242: "python"}.get)
    assert result.passed == passed and reads_korean(result.message), result.message
    assert str(answer) in result.message


def test_built_containers_are_judged_in_korean(korean):
    right = judge_root_is_host_uid(facts({"user": 9}, uid_map=[(0, 100000, 65536)], host_uid=101000))
    assert right.passed and reads_korean(right.message) and "uid 1000" in right.message
    wrong = judge_root_is_host_uid(facts({"user": 9}, uid_map=[(0, 200000, 65536)]))
    assert not wrong.passed and reads_korean(wrong.message) and "200000" in wrong.message
    missing = judge_shared_network(facts({"network": 50}, id="a"), ContainerFacts("b"))
    assert not missing.answered and reads_korean(missing.message) and "두 번째" in missing.message
    pod = judge_shared_network(facts({"network": 50, "pid": 1}, id="a"), facts({"network": 50, "pid": 2}, id="b"))
    assert pod.passed and reads_korean(pod.message)


def test_the_root_gate_speaks_korean(korean, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("teachdock.lab.namespaces.checks"), "is_root", lambda: False)
    result = check_root_is_host_uid("ns-ex4")
    assert not result.answered and reads_korean(result.message) and "sudo scripts/lab" in result.message


def test_the_explorer_table_and_heat_map_read_korean(korean):
    asked = ("pid", "mount", "network")
    result = ex.compare(asked, host_side(), container_side(asked), init_host_pid=31000, init_host_uid=0)
    table = result.table()
    assert reads_korean(table.html) and reads_korean(table.text)
    assert "호스트 아이노드" in table.html and str(HOST_INODES["pid"]) in table.html
    assert result.row("pid").verdict == "isolated"  # a value for code, the same in every language
    texts = [text.get_text() for ax in ex.plot_matrix(result).axes for text in ax.texts]
    assert "프로브 컨테이너가 호스트와 공유하는 것" in texts
    assert all(reads_korean(text) for text in texts if len(text.split()) >= 4), texts


def test_the_explorer_widget_reads_korean(korean, monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 1000)
    widget = ex.isolation_explorer()
    assert widget.run_button.description == "프로브 실행"
    assert reads_korean(widget.status.value) and reads_korean(widget.widget.children[0].value)
    assert all(reads_korean(box.tooltip) for box in widget.checkboxes.values())
