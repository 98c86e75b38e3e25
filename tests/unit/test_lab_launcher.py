"""The container launcher's logic, without a container: exit codes in words, the report."""

from types import SimpleNamespace

import pytest

from teachdock.errors import TeachdockError
from teachdock.lab.start_here.launcher import ContainerLauncher, describe_exit, launch, memory_options, result_html
from teachdock.runtime.cgroups import Metrics


@pytest.mark.parametrize("code, oom, words", [
    (0, False, "0: success"),
    (3, False, "3: the program's own error code"),
    (137, True, "137 = 128 + 9: killed by SIGKILL by the kernel's OOM killer"),
    (143, False, "143 = 128 + 15: killed by SIGTERM"),
    (None, False, "unknown"),
])
def test_exit_codes_in_words(code, oom, words):
    assert describe_exit(code, oom).startswith(words)


def test_the_report_shows_output_code_time_and_memory():
    result = SimpleNamespace(exit_code=0, oom_killed=False, duration=0.0123, stdout="PID 1\n", stderr="<err>",
                             metrics=Metrics(memory_peak_bytes=3 * 1048576, cpu_usage_ns=4_500_000))
    page = result_html("ps", result)
    assert "0: success" in page and "12 ms" in page and "3.0 MiB" in page and "4.5 ms" in page
    assert "PID 1" in page and "&lt;err&gt;" in page  # the output is escaped, never interpreted


def test_a_rootless_result_says_there_is_no_cgroup():
    result = SimpleNamespace(exit_code=0, oom_killed=False, duration=0.01, stdout="", stderr="", metrics=None)
    assert "no cgroup" in result_html("true", result) and "(no output)" in result_html("true", result)


def test_without_root_the_memory_limit_is_an_address_space_rlimit():
    assert memory_options(32, as_root=True) == {"memory": "32m"}
    assert memory_options(32, as_root=False) == {"rlimits": {"RLIMIT_AS": (32 * 1048576, 32 * 1048576)}}
    assert memory_options(0, as_root=False) == {} and memory_options(None, as_root=True) == {}
    result = SimpleNamespace(exit_code=1, oom_killed=False, duration=0.2, stdout="", stderr="sh: out of memory\n",
                             metrics=None)
    page = result_html("x=a; while true; do x=$x$x; done", result, address_space_mib=32)
    assert "RLIMIT_AS = 32 MiB" in page and "out of memory" in page
    assert "RLIMIT_AS" not in result_html("true", result)


def test_an_empty_command_is_refused_before_any_container():
    with pytest.raises(TeachdockError, match="type a command first"):
        launch("   ", rootfs="/nonexistent")


@pytest.mark.parametrize("uid", [0, 1000])
def test_a_preset_fills_the_command_and_the_hog_gets_a_small_limit(monkeypatch, uid):
    monkeypatch.setattr("os.geteuid", lambda: uid)
    launcher = ContainerLauncher(rootfs="/nonexistent")
    launcher.preset.value = "hostname"
    assert launcher.command.value == "hostname"
    launcher.preset.value = next(cmd for cmd in launcher.preset.options if "while true" in cmd[1])[1]
    assert launcher.memory.value == 32


def test_a_failed_run_is_shown_and_the_button_comes_back():
    launcher = ContainerLauncher(rootfs="/nonexistent-rootfs")
    launcher.run_button.click()
    assert launcher.result is None and "does not exist" in launcher.error
    assert "Could not run it" in launcher.report.value and not launcher.run_button.disabled
