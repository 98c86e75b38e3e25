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
    NO_PID_NAMESPACE,
    check_host_network,
    check_pid1_without_pid_namespace,
    check_ps_count,
    judge_host_network,
    judge_pid1_without_pid_namespace,
    judge_ps_count,
)
from teachdock.runtime import make_spec
from tests.support.korean import reads_korean

HOST_INTERFACES = ["lo", "eth0", "ifb0"]
HOST = views.View("host", 4242, "process_api", [(i, "x") for i in range(1, 81)], "vm", 30, HOST_INTERFACES, 0)


def _probe_output(pid: int, hostname: str, interfaces: list[str]) -> str:
    return (f"pid={pid}\npid1=sh\nhostname={hostname}\nuid=0\nmounts=20\ninterfaces={' '.join(interfaces)} \n"
            f"--- ps\nPID   USER     COMMAND\n{pid:>5} root     sh -s\n")


@pytest.fixture
def fake_container(monkeypatch, tmp_path):
    """Checks see containers that behave as the kernel would, without starting any: ps alone lists
    itself; without a PID namespace the shell has a host PID and PID 1 is the host's; the probe
    reports the hostname and interfaces the options ask for, and run()'s own validation refuses
    what it refuses (make_spec is the real one)."""

    def run(args, rootfs, **options):
        if tuple(args) == ("ps",):
            return "PID   USER     COMMAND\n    1 root     ps\n"
        if tuple(args) == ("sh", "-c", "echo $$; cat /proc/1/comm"):
            assert options == {"namespaces": NO_PID_NAMESPACE}
            return "31337\nprocess_api\n"
        assert tuple(args) == ("sh", "-s") and options.pop("input") == views.PROBE_SCRIPT
        spec = make_spec(args, str(rootfs), **options)  # raises InvalidConfig or TypeError as run() would
        kinds = [namespace["type"] for namespace in spec["linux"]["namespaces"]]
        return _probe_output(1 if "pid" in kinds else 31337, spec.get("hostname") or HOST.hostname,
                             ["lo"] if "network" in kinds else HOST_INTERFACES)

    monkeypatch.setattr(checks, "run_in_container", run)
    monkeypatch.setattr(checks, "host_view", lambda: HOST)
    return tmp_path  # used as the rootfs argument: never read


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(checks, "is_root", lambda: True)


def test_placeholder_answer_asks_for_an_answer_without_running_anything(monkeypatch):
    monkeypatch.setattr(checks, "run_in_container",
                        lambda *a, **k: pytest.fail("a placeholder must not start a container"))
    for check in (check_ps_count, check_pid1_without_pid_namespace, check_host_network):
        result = check(...)
        assert not result.passed and not result.answered and "Replace the ..." in result.message
        assert repr(result).startswith("✎") and "#ececec" in result._repr_html_()


# ---- exercise 1 -----------------------------------------------------------------------------


def test_ps_count_right_answer_passes(fake_container):
    result = check_ps_count(1, rootfs=fake_container)
    assert result.passed and "ps itself" in result.message
    assert check_ps_count("1", rootfs=fake_container).passed  # typed as text is fine too


@pytest.mark.parametrize(
    "answer, hint",
    [
        (2, "header line"),
        (0, "at least itself"),
        (80, "about what the host sees (80 processes"),
        (75, "about what the host sees"),
        (7, "Count the processes that exist inside the container"),
        (2.5, "whole number"),
        (True, "whole number"),
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


# ---- exercise 2 -----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["process_api", " Process_API\n"])
def test_pid1_without_a_pid_namespace_is_the_hosts(fake_container, as_root, answer):
    result = check_pid1_without_pid_namespace(answer, rootfs=fake_container)
    assert result.passed and "$$ = 31337" in result.message and "--pid host" in result.message


@pytest.mark.parametrize(
    "answer, hint",
    [
        ("sh", "sh is PID 1 only in a PID namespace of its own. Here the shell printed $$ = 31337"),
        ("cat", "cat reads or prints, but it is not PID 1"),
        ("systemd", "systemd is PID 1 on many Linux machines, but not on this one"),
        ("init", "not on this one"),
        (1, "not its number"),
        ("1", "not its number"),
        ("", "Answer with a program's name"),
        ("python", "look at the host's column"),
    ],
)
def test_pid1_without_a_pid_namespace_wrong_answers_get_their_hint(fake_container, as_root, answer, hint):
    result = check_pid1_without_pid_namespace(answer, rootfs=fake_container)
    assert not result.passed and result.answered
    assert hint in result.message


def test_pid1_follows_the_real_truth_not_a_constant():
    assert judge_pid1_without_pid_namespace("systemd", truth="systemd", shell_pid=900).passed
    assert not judge_pid1_without_pid_namespace("process_api", truth="systemd", shell_pid=900).passed


def test_pid1_without_root_says_root_is_needed_and_starts_nothing(monkeypatch):
    monkeypatch.setattr(checks, "is_root", lambda: False)
    monkeypatch.setattr(checks, "run_in_container", lambda *a, **k: pytest.fail("no container without root"))
    result = check_pid1_without_pid_namespace("sh")
    assert not result.passed and not result.answered
    assert result.message.startswith("This check needs root.") and "sudo scripts/lab" in result.message


# ---- exercise 3 -----------------------------------------------------------------------------

RIGHT_OPTIONS = {"hostname": "lab", "namespaces": ("pid", "mount", "uts", "ipc")}


@pytest.mark.parametrize("options", [RIGHT_OPTIONS, {"hostname": "lab", "namespaces": ["mount", "pid", "uts"]}])
def test_host_network_right_options_pass(fake_container, options):
    result = check_host_network(dict(options), rootfs=fake_container)
    assert result.passed, result.message
    assert "the host's 3 interfaces" in result.message and "--network host" in result.message


@pytest.mark.parametrize(
    "options, hint",
    [
        ({"hostname": "lab"}, "sees only lo: it still got a network namespace of its own"),
        ({"hostname": "lab", "namespaces": ("pid", "mount", "uts", "ipc", "network")}, "sees only lo"),
        ({"namespaces": ("pid", "mount", "uts", "ipc")}, "calls itself 'teachdock'. Pass hostname=\"lab\""),
        ({"hostname": "lab", "namespaces": ("pid", "mount", "ipc")}, 'Keep "uts" in namespaces'),
        ({"hostname": None, "namespaces": ("pid", "mount", "ipc")}, "answers to the host's name, 'vm'"),
        ({"hostname": "lab", "namespaces": ("pid", "uts", "ipc")}, 'Keep "mount" in namespaces'),
        ({"hostname": "lab", "namespaces": ("pid", "mount", "uts", "net")}, "Use the names run() knows"),
        ({"hostname": "lab", "network": False}, "run() has no such keyword"),
        ({"hostname": "lab", "namespaces": "pid mount uts"}, "not one string"),
        (("hostname", "lab"), "as a dict"),
    ],
)
def test_host_network_wrong_options_get_the_hint_for_that_mistake(fake_container, options, hint):
    result = check_host_network(options, rootfs=fake_container)
    assert not result.passed and result.answered
    assert hint in result.message, result.message


def test_host_network_without_a_pid_namespace_is_caught():
    seen = views.container_view(_probe_output(31337, "lab", HOST_INTERFACES))
    result = judge_host_network({"hostname": "lab", "namespaces": ("mount", "uts")}, seen, HOST)
    assert not result.passed and 'is PID 31337, a host number: keep "pid"' in result.message
    rootless = judge_host_network({}, None, HOST, refusal="config.json: a user namespace needs a new pid namespace too")
    assert not rootless.passed and 'Keep "pid" in namespaces' in rootless.message


# ---- when no container can start ------------------------------------------------------------


def test_a_check_that_cannot_start_a_container_explains_instead_of_raising(monkeypatch, tmp_path):
    def refuse(args, rootfs, **options):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(checks, "run_in_container", refuse)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    result = check_ps_count(1, rootfs=tmp_path)
    assert not result.passed
    assert "Could not start a container" in result.message and "Operation not permitted" in result.message
    assert "doctor()" in result.message and "rootless" not in result.message
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = check_ps_count(1, rootfs=tmp_path)
    assert "run the lab as root" in result.message or "needs root" in result.message


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
    assert [ax.get_title() for ax in axes] == ["processes I can see", "mounts I can see", "network interfaces"]
    heights = [[bar.get_height() for bar in ax.patches] for ax in axes]
    assert heights == [[2, 2], [30, 14], [2, 1]]


def test_the_two_views_in_korean(korean):
    host = views.View("host", 4242, "systemd", [(1, "systemd"), (4242, "python")], "vm", 30, ["lo", "eth0"], 0)
    container = views.container_view(PROBE_OUTPUT)
    table = views.compare_table(host, container)
    assert "보이는 프로세스" in repr(table) and reads_korean(table._repr_html_())
    fig = views.plot_comparison(host, container)
    assert reads_korean(fig._suptitle.get_text())
    assert [ax.get_title() for ax in fig.get_axes()] == ["보이는 프로세스", "보이는 마운트", "네트워크 인터페이스"]
