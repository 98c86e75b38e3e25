"""teachdock.lab.namespaces.explorer and teachdock.lab.namespaces.checks without root: fake probe data in, matrix and hints out.

The explorer's comparison, drawing and widget callback are fed made-up host and container
views; the exercise judges get made-up facts. Right answers must pass, and each typical
mistake must get the hint written for it.
"""

import importlib

import pytest

from teachdock.errors import InvalidConfig, NotFound, TeachdockError
from teachdock.lab.namespaces import explorer as ex
from teachdock.lab.namespaces import heatmap
from teachdock.lab.namespaces.checks import (
    ContainerFacts,
    check_host_pid,
    check_root_is_host_uid,
    check_shared_kinds,
    check_shared_network,
    container_facts,
    judge_host_network_own_hostname,
    judge_host_pid,
    judge_root_is_host_uid,
    judge_shared_kinds,
    judge_shared_network,
)

namespace_checks = importlib.import_module("teachdock.lab.namespaces.checks")

HOST_INODES = {kind: 4026531830 + number for number, kind in enumerate(ex.KINDS)}


def host_side(**changes) -> ex.Side:
    values = dict(inodes=dict(HOST_INODES), own_pid=4242, processes=90, hostname="vm", ipc_visible=True,
                  interfaces=["lo", "eth0"], uid=0, uid_map="0 0 4294967295", cgroup="memory:/user.slice",
                  uptime=1000.0, time_offsets="monotonic 0 0; boottime 0 0", mounts=30)
    values.update(changes)
    return ex.Side(**values)


def container_side(isolated, **changes) -> ex.Side:
    """The probe's view when the kinds in ``isolated`` are its own (as the kernel would show them)."""
    inodes = {kind: (4026532200 + HOST_INODES[kind] % 100 if kind in isolated else HOST_INODES[kind])
              for kind in ex.KINDS}
    values = dict(
        inodes=inodes,
        own_pid=1 if "pid" in isolated else 31000,
        processes=3 if "pid" in isolated else 92,
        hostname="probe" if "uts" in isolated else "vm",
        ipc_visible="ipc" not in isolated,
        interfaces=["lo"] if "network" in isolated else ["lo", "eth0"],
        uid=0,
        uid_map="0 100000 65536" if "user" in isolated else "0 0 4294967295",
        cgroup="memory:/" if "cgroup" in isolated else "memory:/teachdock/explorer-1",
        uptime=1000.2,
        time_offsets="monotonic 0 0; boottime 0 0",
        mounts=26,
    )
    values.update(changes)
    return ex.Side(**values)


# ---- normalise ----------------------------------------------------------------------------


def test_normalise_always_adds_mount_and_keeps_the_teaching_order(monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 0)
    assert ex.normalise(["uts", "net", "pid"]) == ("pid", "mount", "uts", "network")
    assert ex.normalise([]) == ("mount",)
    assert ex.normalise("ipc") == ("mount", "ipc")


def test_normalise_adds_user_without_root(monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 1000)
    assert ex.normalise(["pid"]) == ("pid", "mount", "user")


def test_normalise_names_the_eight_kinds_for_an_unknown_one():
    with pytest.raises(InvalidConfig, match="'proc' is not a namespace kind: choose from pid, mount, uts"):
        ex.normalise(["proc"])


# ---- reading the views ----------------------------------------------------------------------

PROBE_OUTPUT = """\
pid=1
processes=4
hostname=probe
ipc=hidden
interfaces=lo 
uid=0
uid_map=         0     100000      65536
cgroup=9:name=systemd:/;8:pids:/;4:memory:/;0::/;
uptime=2828.31
time_offsets=monotonic           0         0;boottime            0         0;
mounts=32
"""


def test_parse_probe_reads_every_answer():
    side = ex.parse_probe(PROBE_OUTPUT, {"pid": 7})
    assert side.inodes == {"pid": 7}
    assert (side.own_pid, side.processes, side.hostname, side.ipc_visible) == (1, 4, "probe", False)
    assert side.interfaces == ["lo"] and side.uid == 0 and side.uid_map == "0 100000 65536"
    assert side.cgroup == "memory:/" and side.uptime == 2828.31 and side.mounts == 32
    assert side.time_offsets == "monotonic 0 0; boottime 0 0"


def test_parse_probe_says_what_is_missing():
    with pytest.raises(TeachdockError, match="lacks hostname, ipc"):
        ex.parse_probe("pid=1\nprocesses=3\ninterfaces=lo\nuid=0\nuid_map=0 0 1\ncgroup=0::/\nuptime=1\nmounts=3\n", {})


@pytest.mark.parametrize("text, line", [
    ("9:name=systemd:/\n4:memory:/teachdock/x\n0::/\n", "memory:/teachdock/x"),  # v1 (hybrid)
    ("0::/user.slice/session-1.scope\n", "unified:/user.slice/session-1.scope"),  # v2 only
    ("3:cpu:/a;2:pids:/b;", "cpu:/a"),  # neither: the first line
    ("", ""),
])
def test_pick_cgroup_line(text, line):
    assert ex.pick_cgroup_line(text) == line


@pytest.mark.parametrize("uid_map, text", [
    ("0 100000 65536", "uids 0-65535 → host 100000-165535"),
    ("0 1000 1", "uid 0 → host 1000"),
    ("0 0 4294967295", "identity map: every uid is the same uid on the host"),
    ("", "?"),
])
def test_uid_map_text(uid_map, text):
    assert ex._uid_map_text(uid_map) == text


# ---- the comparison ---------------------------------------------------------------------------


def test_compare_marks_exactly_the_asked_kinds_isolated():
    asked = ("pid", "mount", "uts")
    result = ex.compare(asked, host_side(), container_side(asked), init_host_pid=31000, init_host_uid=0)
    assert [row.kind for row in result.rows] == list(ex.KINDS)
    assert result.isolated == {"pid", "mount", "uts"}
    assert result.shared == {"ipc", "network", "user", "cgroup", "time"}
    assert result.as_asked
    assert result.row("net") is result.row("network")
    assert result.row("pid").verdict == "isolated" and result.row("ipc").verdict == "shared"


def test_compare_puts_the_concrete_evidence_in_each_row():
    asked = ex.KINDS
    result = ex.compare(asked, host_side(), container_side(asked), init_host_pid=31000, init_host_uid=100000)
    sees = {row.kind: (row.container_sees, row.host_sees) for row in result.rows}
    assert sees["pid"] == ("its own PID is 1; sees 3 processes",
                           "this notebook is PID 4242; sees 90 processes; the probe is PID 31000 here")
    assert sees["uts"] == ("hostname 'probe'", "hostname 'vm'")
    assert sees["ipc"][0] == "cannot see the host's shared memory segment"
    assert sees["network"] == ("interfaces: lo", "interfaces: lo eth0")
    assert sees["user"] == ("uid 0; uids 0-65535 → host 100000-165535", "uid 0; the probe runs as uid 100000 here")
    assert sees["cgroup"] == ("its cgroup: memory:/", "its cgroup: memory:/user.slice")
    assert sees["time"][0] == "uptime 1000 s; offsets: monotonic 0 0; boottime 0 0"
    assert sees["mount"] == ("26 mounts, the rootfs is /", "30 mounts")


def test_shared_kinds_show_the_hosts_answers():
    result = ex.compare(["mount"], host_side(), container_side({"mount"}))
    assert result.row("ipc").container_sees == "sees the host's shared memory segment"
    assert result.row("uts").container_sees == "hostname 'vm'"
    assert result.row("user").container_sees.endswith("identity map: every uid is the same uid on the host")


def test_a_kind_that_did_not_happen_as_asked_is_flagged():
    asked = ("mount", "network")
    result = ex.compare(asked, host_side(), container_side({"mount"}))  # network asked, but the inode is the host's
    assert not result.as_asked and not result.row("network").as_asked
    assert "⚠" in result.table().text and "⚠" in result.table().html


def test_a_kind_this_kernel_lacks_is_neither_shared_nor_isolated():
    host = host_side(inodes={k: v for k, v in HOST_INODES.items() if k != "time"})
    container = container_side({"mount"})
    del container.inodes["time"]
    result = ex.compare(["mount"], host, container)
    assert "time" not in result.isolated | result.shared
    assert result.row("time").verdict == "not in this kernel" and result.as_asked


def test_user_without_pid_failure_is_explained():
    message = "container x: mount(proc proc -> /r/proc): Operation not permitted (EPERM)"
    assert ex.explain_start_failure(("mount", "user"), message) == ex.user_without_pid()
    assert ex.explain_start_failure(("pid", "mount", "user"), message) is None
    assert ex.explain_start_failure(("mount", "user"), "exec \"sh\": no such file") is None


# ---- drawing ------------------------------------------------------------------------------------


def _texts(figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def test_heat_map_has_a_coloured_cell_per_row_in_the_right_column():
    asked = ("pid", "mount", "network")
    result = ex.compare(asked, host_side(), container_side(asked), init_host_pid=31000)
    figure = ex.plot_matrix(result)
    texts = _texts(figure)
    assert "What the probe container shares with the host" in texts
    assert any("PID 31000 on the host" in text for text in texts)
    for row in result.rows:
        assert f"{'☑' if row.asked else '☐'} {row.kind}" in texts
        assert str(row.container_inode) in texts
    assert texts.count("= the host's") == 5  # one per shared kind
    assert sum(text.startswith("≠ host") for text in texts) == 3
    fills = {patch.get_facecolor()[:3] for ax in figure.axes for patch in ax.patches}
    from matplotlib.colors import to_rgb
    assert to_rgb(heatmap.SHARED["fill"]) in fills and to_rgb(heatmap.ISOLATED["fill"]) in fills
    assert ex.figure_png(figure).startswith(b"\x89PNG")


def test_table_has_one_row_per_kind():
    asked = ("mount", "user")
    table = ex.compare(asked, host_side(), container_side(asked)).table()
    assert table.html.count("<tr>") == 1 + len(ex.KINDS)
    assert table.html.count("≠ isolated") == 2 and table.html.count("= shared") == 6
    assert table.text.splitlines()[0].startswith("kind")


# ---- the widget -------------------------------------------------------------------------------------


@pytest.fixture
def fake_explore(monkeypatch):
    """explore() answers from fake views, recording what it was asked."""
    calls = []

    def explore(namespaces, rootfs=None, **options):
        asked = ex.normalise(namespaces)
        calls.append(asked)
        return ex.compare(asked, host_side(), container_side(asked), init_host_pid=31000, seconds=0.05)

    monkeypatch.setattr(ex, "explore", explore)
    return calls


def test_widget_starts_with_dockers_default_and_mount_locked(monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 0)
    widget = ex.isolation_explorer()
    assert widget.selected == ex.DOCKER_DEFAULT
    assert widget.checkboxes["mount"].disabled and widget.checkboxes["mount"].value
    assert "pivot_root" in widget.widget.children[0].value


def test_click_runs_the_probe_and_shows_the_matrix(fake_explore, monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 0)
    widget = ex.isolation_explorer()
    widget.select("pid", "ipc")
    widget.run_button.click()
    assert fake_explore == [("pid", "mount", "ipc")]
    assert widget.error is None and widget.result.isolated == {"pid", "mount", "ipc"}
    assert bytes(widget.image.value).startswith(b"\x89PNG")
    assert "≠ isolated" in widget.table.value
    assert "exactly as asked" in widget.status.value and "run 1" in widget.status.value
    assert not widget.run_button.disabled


def test_select_cannot_untick_mount(fake_explore, monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 0)
    widget = ex.isolation_explorer()
    widget.select()
    assert widget.selected == ("mount",)


def test_without_root_user_is_ticked_and_locked(monkeypatch):
    monkeypatch.setattr(ex.os, "geteuid", lambda: 1000)
    widget = ex.isolation_explorer()
    widget.select("pid")
    assert widget.checkboxes["user"].disabled and widget.selected == ("pid", "mount", "user")
    assert "without root" in widget.widget.children[0].value


def test_a_failed_run_is_reported_in_the_widget(monkeypatch):
    def explore(namespaces, rootfs=None, **options):
        raise TeachdockError("rootfs /nowhere does not exist")

    monkeypatch.setattr(ex, "explore", explore)
    widget = ex.isolation_explorer()
    widget.image.value = b"old"
    widget.run_button.click()
    assert widget.result is None and widget.error == "TeachdockError: rootfs /nowhere does not exist"
    assert "did not run" in widget.status.value and "/nowhere" in widget.status.value
    assert widget.image.value == b"" and not widget.run_button.disabled


# ---- exercise 1: shared kinds -------------------------------------------------------------------

TRUTH = {"pid", "ipc", "network", "user", "cgroup", "time"}
ASKED = ("mount", "uts")


def test_shared_kinds_right_answer_passes_in_any_spelling():
    assert judge_shared_kinds(TRUTH, TRUTH, ASKED).passed
    assert judge_shared_kinds("pid ipc net user cgroup time", TRUTH, ASKED).passed
    assert judge_shared_kinds(["PID", "ipc", "network", "user", "cgroup", "time"], TRUTH, ASKED).passed


@pytest.mark.parametrize("answer, hint", [
    (TRUTH | {"mount"}, "mount is never shared here"),
    (TRUTH | {"uts"}, "uts was asked for in namespaces="),
    ({"pid", "ipc", "network"}, "Also shared: user, cgroup, time"),
    ({"user", "cgroup", "time"}, "pid, ipc, network: not in namespaces="),
    (TRUTH | {"proc"}, "proc is not a namespace kind"),
    (42, "Answer with namespace names"),
    ([1, 2], "Answer with namespace names"),
])
def test_shared_kinds_wrong_answers_get_the_hint_for_that_mistake(answer, hint):
    result = judge_shared_kinds(answer, TRUTH, ASKED)
    assert not result.passed and hint in result.message


def test_shared_kinds_without_root_user_is_the_containers_own():
    rootless_truth, rootless_asked = TRUTH - {"user"}, (*ASKED, "user")  # run() added a user namespace
    assert judge_shared_kinds(rootless_truth, rootless_truth, rootless_asked, rootless=True).passed
    result = judge_shared_kinds(TRUTH, rootless_truth, rootless_asked, rootless=True)  # the root answer
    assert not result.passed and "Without root, user is not shared: run() adds a user namespace" in result.message


def test_shared_kinds_placeholder_is_not_an_answer():
    result = judge_shared_kinds(..., TRUTH, ASKED)
    assert not result.passed and not result.answered


def test_check_shared_kinds_asks_a_real_probe(monkeypatch, tmp_path):
    seen = []

    def explore(namespaces, rootfs=None, **options):
        seen.append((namespaces, rootfs))
        asked = ex.normalise(namespaces)
        return ex.compare(asked, host_side(), container_side(asked))

    monkeypatch.setattr(ex.os, "geteuid", lambda: 0)
    monkeypatch.setattr(namespace_checks, "explore", explore)
    assert check_shared_kinds(TRUTH, rootfs=tmp_path).passed
    assert seen == [(("mount", "uts"), tmp_path)]
    assert not check_shared_kinds({"pid"}, rootfs=tmp_path).passed


def test_check_shared_kinds_explains_when_no_container_can_start(monkeypatch, tmp_path):
    def explore(namespaces, rootfs=None, **options):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(namespace_checks, "explore", explore)
    result = check_shared_kinds(TRUTH, rootfs=tmp_path)
    assert not result.passed and "Could not start a container" in result.message


# ---- exercise 2: the host PID of PID 1 ---------------------------------------------------------------

NAMES = {31000: "sleep", 30999: "td-shim ns-demo", 4242: "python", 777: "sshd"}


def judge(answer):
    return judge_host_pid(answer, 31000, monitor_pid=30999, kernel_pid=4242, describe=NAMES.get)


def test_host_pid_right_answer_passes():
    result = judge(31000)
    assert result.passed and "NSpid: 31000 1" in result.message
    assert judge("31000").passed


@pytest.mark.parametrize("answer, hint", [
    (1, "inside its own PID namespace"),
    (4242, "this notebook's own kernel"),
    (30999, "'td-shim ns-demo', the container's monitor"),
    (123456, "No process has PID 123456"),
    (777, "PID 777 is 'sshd' on the host"),
    ("sleep", "whole number"),
])
def test_host_pid_wrong_answers_get_the_hint_for_that_mistake(answer, hint):
    result = judge(answer)
    assert not result.passed and hint in result.message


def test_check_host_pid_reads_the_container_and_its_parent(monkeypatch):
    class FakeContainer:
        pid = 31000

    monkeypatch.setattr(namespace_checks, "parent_pid", lambda pid: 30999 if pid == 31000 else None)
    monkeypatch.setattr(namespace_checks, "describe_pid", lambda pid: NAMES.get(pid))
    assert check_host_pid(31000, FakeContainer()).passed
    assert "monitor" in check_host_pid(30999, FakeContainer()).message
    assert not check_host_pid(..., FakeContainer()).answered

    class NotStarted:
        pid = None

    assert "not running" in check_host_pid(5, NotStarted()).message


# ---- exercises 3-5: containers the learner built ------------------------------------------------------


def facts(kind_inodes=None, **changes) -> ContainerFacts:
    """A running container whose namespaces are the host's, except those in ``kind_inodes``."""
    inodes = dict(HOST_INODES)
    inodes.update(kind_inodes or {})
    values = dict(id="ns-ex", found=True, status="running", pid=31000, inodes=inodes, host_inodes=dict(HOST_INODES),
                  uid_map=[(0, 0, 4294967295)], host_uid=0, hostname="web", host_hostname="vm")
    values.update(changes)
    return ContainerFacts(**values)


def test_a_missing_container_is_not_yet_an_answer():
    result = judge_host_network_own_hostname(ContainerFacts("ns-ex3"))
    assert not result.answered and "No container called 'ns-ex3' yet" in result.message


def test_a_stopped_container_is_told_to_run_something_that_lasts():
    result = judge_host_network_own_hostname(facts(status="stopped"))
    assert not result.passed and result.answered and "sleep" in result.message


def test_host_network_own_hostname_right():
    result = judge_host_network_own_hostname(facts({"uts": 1, "pid": 2, "mount": 3}))
    assert result.passed and "--network host" in result.message and "'web'" in result.message


def test_host_network_own_hostname_notes_a_name_equal_to_the_hosts():
    result = judge_host_network_own_hostname(facts({"uts": 1}, hostname="vm"))
    assert result.passed and "happens to be the host's" in result.message


@pytest.mark.parametrize("own, hint", [
    ({"network": 1}, "The other way round"),
    ({"network": 1, "uts": 2}, '"network" is still in namespaces='),
    ({}, 'Add "uts" to namespaces='),
])
def test_host_network_own_hostname_mistakes(own, hint):
    result = judge_host_network_own_hostname(facts(own))
    assert not result.passed and hint in result.message


def test_root_is_host_uid_right():
    result = judge_root_is_host_uid(facts({"user": 9}, uid_map=[(0, 100000, 65536)], host_uid=100000))
    assert result.passed and "uid_map says 0 100000 65536" in result.message


def test_root_is_host_uid_notes_a_program_that_is_not_root_inside():
    result = judge_root_is_host_uid(facts({"user": 9}, uid_map=[(0, 100000, 65536)], host_uid=101000))
    assert result.passed and "as uid 1000" in result.message


@pytest.mark.parametrize("changes, hint", [
    (dict(), "shares the host's user namespace"),
    (dict(kind_inodes={"user": 9}, uid_map=[(0, 200000, 65536)]), "Root inside is uid 200000 on the host, not 100000"),
    (dict(kind_inodes={"user": 9}, uid_map=[(0, 0, 65536)]), "root is still the host's root"),
    (dict(kind_inodes={"user": 9}, uid_map=[(1000, 100000, 1)]), "maps no host uid to root"),
])
def test_root_is_host_uid_mistakes(changes, hint):
    result = judge_root_is_host_uid(facts(**changes), 100000)
    assert not result.passed and hint in result.message


def test_shared_network_right():
    first = facts({"network": 50, "pid": 1, "uts": 2}, id="a")
    second = facts({"network": 50, "pid": 3, "uts": 4}, id="b")
    result = judge_shared_network(first, second)
    assert result.passed and "--network container" in result.message and "pid, uts" in result.message


@pytest.mark.parametrize("first_own, second_own, hint", [
    ({}, {"network": 50}, "uses the host's network namespace"),
    ({"network": 50}, {}, "is in the host's network namespace, not in 'a''s"),
    ({"network": 50}, {"network": 51}, "Each has a network namespace of its own"),
])
def test_shared_network_mistakes(first_own, second_own, hint):
    result = judge_shared_network(facts(first_own, id="a"), facts(second_own, id="b"))
    assert not result.passed and hint in result.message


def test_shared_network_needs_both_containers():
    result = judge_shared_network(facts({"network": 50}, id="a"), ContainerFacts("b"))
    assert not result.answered and "'b'" in result.message and "second container" in result.message


def test_container_facts_of_an_unknown_id(monkeypatch):
    from teachdock import runtime

    def load(container_id, state_root=None):
        raise NotFound(f"no such container: {container_id}")

    monkeypatch.setattr(runtime.Container, "load", staticmethod(load))
    result = container_facts("ns-nothing")
    assert not result.found and result.id == "ns-nothing" and result.host_inodes


@pytest.mark.parametrize("check", [lambda: check_root_is_host_uid("ns-ex4"),
                                   lambda: check_shared_network("ns-ex5a", "ns-ex5b")],
                         ids=["exercise 4", "exercise 5"])
def test_exercises_4_and_5_say_they_need_root(check, monkeypatch):
    from teachdock import runtime

    def load(container_id, state_root=None):
        raise NotFound(f"no such container: {container_id}")

    monkeypatch.setattr(runtime.Container, "load", staticmethod(load))
    monkeypatch.setattr(namespace_checks, "is_root", lambda: False)
    without = check()
    assert not without.passed and not without.answered and "This exercise needs root" in without.message
    monkeypatch.setattr(namespace_checks, "is_root", lambda: True)
    with_root = check()  # the gate is gone: the check looks for the container
    assert not with_root.passed and "No container called" in with_root.message
