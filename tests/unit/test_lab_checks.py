"""teachdock.lab.start_here.checks (chapter 00) and teachdock.lab.common (views, CheckResult): right answers pass, wrong ones fail with the hint for that mistake.

The checks learn the truth by starting a container; here that observation is replaced by
a fixed truth, so these tests need neither root nor the runtime.
"""

import os

import pytest

from teachdock.lab.common import views
from teachdock.lab.common.checks import CheckResult
from teachdock.lab.start_here import checks
from teachdock.lab.start_here.checks import (
    check_interfaces,
    check_own_pid,
    check_ps_count,
    judge_interfaces,
    judge_own_pid,
    judge_ps_count,
)

HOST_INTERFACES = ["lo", "eth0", "ifb0"]


NET_DEV_HEADER = (
    "Inter-|   Receive                            |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes\n"
)


def _net_dev(*names):
    return NET_DEV_HEADER + "".join(f"{name:>6}:       0       0    0    0    0     0          0         0\n" for name in names)


@pytest.fixture
def fake_container(monkeypatch, tmp_path):
    """Checks see a container whose sh is PID 1, whose ps lists 1 process, and that has only lo
    (or the host's devices, when it is started without a network namespace)."""

    def run(args, rootfs, **options):
        if tuple(args) == ("cat", "/proc/net/dev"):
            own_netns = "network" in options.get("namespaces", ("network",))
            return _net_dev("lo") if own_netns else _net_dev(*HOST_INTERFACES)
        return {("sh", "-c", "echo $$"): "1\n", ("ps",): "PID   USER     COMMAND\n    1 root     ps\n"}[tuple(args)]

    monkeypatch.setattr(checks, "run_in_container", run)
    host = views.View("host", 4242, "systemd", [(i, "x") for i in range(1, 81)], "vm", 30, HOST_INTERFACES, 0)
    monkeypatch.setattr(checks, "host_view", lambda: host)
    return tmp_path  # used as the rootfs argument: never touched


# ---- exercise 1 -----------------------------------------------------------------------------


def test_own_pid_right_answer_passes(fake_container):
    result = check_own_pid(1, rootfs=fake_container)
    assert result.passed and result.message.startswith("Right: 1.")
    assert check_own_pid("1", rootfs=fake_container).passed  # typed as text is fine too


@pytest.mark.parametrize(
    "answer, hint",
    [
        (0, "kernel's idle task"),
        (-1, "never negative"),
        (31337, "looks like a host PID"),
        ("one", "whole number"),
        (True, "whole number"),
    ],
)
def test_own_pid_wrong_answers_get_the_hint_for_that_mistake(fake_container, answer, hint):
    result = check_own_pid(answer, rootfs=fake_container)
    assert not result.passed
    assert hint in result.message


def test_own_pid_of_the_notebook_kernel_is_named_as_such():
    result = judge_own_pid(os.getpid(), truth=1)
    assert not result.passed and "PID of this notebook's kernel" in result.message


def test_placeholder_answer_asks_for_an_answer_without_running_anything(monkeypatch):
    monkeypatch.setattr(checks, "run_in_container", lambda *a: pytest.fail("a placeholder must not start a container"))
    for check in (check_own_pid, check_ps_count, check_interfaces):
        result = check(...)
        assert not result.passed and not result.answered and "Replace the ..." in result.message
        assert repr(result).startswith("✎") and "#ececec" in result._repr_html_()


# ---- exercise 2 -----------------------------------------------------------------------------


def test_ps_count_right_answer_passes(fake_container):
    result = check_ps_count(1, rootfs=fake_container)
    assert result.passed and "ps itself" in result.message


@pytest.mark.parametrize(
    "answer, hint",
    [
        (2, "header line"),
        (0, "at least itself"),
        (80, "about what the host sees (80 processes"),
        (75, "about what the host sees"),
        (7, "Count the processes that exist inside the container"),
        (2.5, "whole number"),
    ],
)
def test_ps_count_wrong_answers_get_the_hint_for_that_mistake(fake_container, answer, hint):
    result = check_ps_count(answer, rootfs=fake_container)
    assert not result.passed
    assert hint in result.message


def test_ps_count_follows_the_real_truth_not_a_constant():
    # With an init process in front, two processes would be right, and one would not.
    assert judge_ps_count(2, truth=2, host_count=80).passed
    assert not judge_ps_count(1, truth=2, host_count=80).passed


# ---- exercise 3 -----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [["lo"], "lo", {"lo"}, ("lo",), " lo "])
def test_interfaces_right_answer_passes_in_any_reasonable_shape(fake_container, answer):
    assert check_interfaces(answer, rootfs=fake_container).passed


@pytest.mark.parametrize(
    "answer, hint",
    [
        ([], "Not empty"),
        (["lo", "eth0"], "eth0 belongs to the host's network namespace"),
        (["eth0", "ifb0"], "eth0, ifb0 belong to the host's network namespace"),
        (["ifb0"], "ifb0 belongs to the host"),
        (["veth1"], "veth1 does not exist in a new network namespace"),
        (42, "Answer with interface names"),
    ],
)
def test_interfaces_wrong_answers_get_the_hint_for_that_mistake(fake_container, answer, hint):
    result = check_interfaces(answer, rootfs=fake_container)
    assert not result.passed
    assert hint in result.message


NO_NETNS = ("pid", "mount", "uts", "ipc")


@pytest.mark.parametrize("answer", [HOST_INTERFACES, "eth0 ifb0 lo", "lo, eth0, ifb0"])
def test_without_a_network_namespace_the_hosts_devices_are_right(fake_container, answer):
    result = check_interfaces(answer, namespaces=NO_NETNS, rootfs=fake_container)
    assert result.passed and "--network host" in result.message


@pytest.mark.parametrize(
    "answer, hint",
    [
        (["lo"], "what a *new* network namespace holds"),
        ([], "Not empty"),
        (["lo", "eth0"], "Missing: ifb0"),
        (["lo", "eth0", "ifb0", "docker0"], "docker0 is not on this host"),
    ],
)
def test_without_a_network_namespace_wrong_answers_get_their_hint(fake_container, answer, hint):
    result = check_interfaces(answer, namespaces=NO_NETNS, rootfs=fake_container)
    assert not result.passed
    assert hint in result.message


def test_eth0_on_a_host_without_eth0_gets_the_docker_hint():
    result = judge_interfaces(["lo", "eth0"], truth=["lo"], host_interfaces=["lo", "ens3"])
    assert not result.passed and "Docker adds it" in result.message


# ---- when no container can start ------------------------------------------------------------


def test_a_check_that_cannot_start_a_container_explains_instead_of_raising(monkeypatch, tmp_path):
    def refuse(args, rootfs, **options):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(checks, "run_in_container", refuse)
    result = check_own_pid(1, rootfs=tmp_path)
    assert not result.passed
    assert "Could not start a container" in result.message and "needs root" in result.message


def test_check_result_shows_as_a_coloured_box_and_as_text():
    good, bad = CheckResult(True, "fine"), CheckResult(False, "a <b> hint")
    assert repr(good) == "✔ fine" and repr(bad) == "✘ a <b> hint"
    assert "#00603f" in good._repr_html_() and "#8f1d1d" in bad._repr_html_()
    assert "a &lt;b&gt; hint" in bad._repr_html_()


# ---- views: the host-vs-container comparison ------------------------------------------------

PROBE_OUTPUT = """\
pid=1
pid1=sh
hostname=box
uid=0
mounts=14
interfaces=lo 
--- ps
PID   USER     COMMAND
    1 root     sh -c echo "pid=$$"
    9 root     {ps} sh -c echo
"""


def test_container_view_reads_back_the_probe_output():
    view = views.container_view(PROBE_OUTPUT)
    assert (view.own_pid, view.pid1, view.hostname, view.uid, view.mounts) == (1, "sh", "box", 0, 14)
    assert view.interfaces == ["lo"]
    assert view.processes == [(1, 'sh -c echo "pid=$$"'), (9, "{ps} sh -c echo")]


def test_container_view_says_what_is_missing():
    with pytest.raises(ValueError, match="lacks hostname"):
        views.container_view("pid=1\npid1=sh\nuid=0\nmounts=3\ninterfaces=lo\n")


def test_parse_ps_handles_a_time_column_and_empty_input():
    text = "  PID USER       TIME  COMMAND\n    1 root       0:00 sleep 30\n    7 root       0:00 ps\n"
    assert views.parse_ps(text) == [(1, "sleep 30"), (7, "ps")]
    assert views.parse_ps("") == []


def test_host_view_agrees_with_proc():
    view = views.host_view()
    assert view.who == "host" and view.own_pid == os.getpid() and view.uid == os.getuid()
    assert os.getpid() in [pid for pid, _ in view.processes]
    assert "lo" in view.interfaces
    assert view.mounts == len(open("/proc/self/mountinfo").read().splitlines())


def test_comparison_table_marks_differences():
    host = views.View("host", 4242, "systemd", [(1, "systemd"), (7, "sshd"), (4242, "python")], "vm", 30,
                      ["lo", "eth0"], 1000)
    container = views.container_view(PROBE_OUTPUT)
    table = views.compare_table(host, container)
    html = table._repr_html_()
    assert html.count("<tr style=") == 7  # every answer differs here
    assert "systemd" in html and "box" in html and "lo eth0" in html
    assert "processes I can see  3" in repr(table)


def test_comparison_plot_has_one_panel_per_count():
    host = views.View("host", 4242, "systemd", [(1, "systemd"), (4242, "python")], "vm", 30, ["lo", "eth0"], 0)
    fig = views.plot_comparison(host, views.container_view(PROBE_OUTPUT))
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["processes", "mounts", "network interfaces"]
    heights = [[bar.get_height() for bar in ax.patches] for ax in axes]
    assert heights == [[2, 2], [30, 14], [2, 1]]
