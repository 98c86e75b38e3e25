"""Chapter 01's opening and its kernel picture, without root: the timeline's data, strace's output
read and filtered, the shipped application packed and unpacked (teachdock.lab.virtualization:
history, syscalls, shipping). Containers are not started here; tests/integration does that.
"""

import os
import shutil

import pytest

from teachdock.image.digest import DigestMismatch
from teachdock.lab.virtualization import checks, history, shipping, syscalls

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

needs_busybox = pytest.mark.skipif(not os.path.exists(shipping.BUSYBOX), reason="the host's busybox is missing")

# ---- history -------------------------------------------------------------------------------


def test_the_timeline_holds_the_milestones_in_order_of_time():
    years = {m.name: m.year for m in history.TIMELINE}
    assert years["chroot"] == 1979 and years["FreeBSD jails"] == 2000 and years["cgroups"] == 2007
    assert years["LXC"] == 2008 and years["Docker"] == 2013 and years["libcontainer"] == 2014
    assert years["OCI"] == years["runc"] == 2015 and years["containerd"] == 2016
    assert [row[0] for row in history.timeline_rows()] == sorted(m.year for m in history.TIMELINE)
    assert {m.kind for m in history.TIMELINE} <= set(history.KINDS)


def test_the_timeline_is_drawn_one_marker_per_milestone():
    fig = history.plot_timeline()
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert len(texts) == len(history.TIMELINE)
    assert "Docker\n2013" in texts and "chroot\n1979" in texts
    with pytest.raises(ValueError, match="empty"):
        history.plot_timeline(())


# ---- strace's output -----------------------------------------------------------------------

# A runtime (pid 10) forks its monitor (11), which forks the container's PID 1 (12, pid 1 inside);
# 12 execs busybox sh, which forks a child (13 on the host, 2 inside the container's PID namespace).
TRACE = """\
10 execve("/usr/bin/python3", ["python3", "-c", "...", "/bin/busybox", "sh", "-c", "x"], 0x1 /* 3 vars */) = 0
10 clone(child_stack=NULL, flags=SIGCHLD) = 11
11 unshare(CLONE_NEWPID) = 0
11 clone(child_stack=NULL, flags=SIGCHLD) = 12
12 mount("proc", "/proc", "proc", 0, NULL) = 0
12 pivot_root(".", ".") = 0
12 execve("/bin/busybox", ["/bin/busybox", "sh", "-c", "uname -n; cat /x"], 0x2 /* 3 vars */ <unfinished ...>
11 wait4(-1,  <unfinished ...>
12 <... execve resumed>) = 0
12 brk(NULL)                         = 0x1000
12 uname({sysname="Linux", nodename="box", ...}) = 0
12 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>
12 <... clone resumed>, child_tidptr=0x88be690) = 2 /* 13 in strace's PID NS */
13 openat(AT_FDCWD, "/x", O_RDONLY) = -1 ENOENT (No such file or directory)
13 exit_group(1)                     = ?
13 +++ exited with 1 +++
12 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=2} ---
12 wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 1}], 0, NULL) = 2
12 exit_group(1)                     = ?
11 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 1}], 0, NULL) = 12
"""


def test_strace_lines_become_one_call_each_with_its_result():
    calls = syscalls.parse_strace(TRACE)
    assert [call.name for call in calls].count("wait4") == 2  # the resumed line completes, not repeats
    execve = next(call for call in calls if call.pid == 12 and call.name == "execve")
    assert execve.result == "0"  # from the "resumed" line
    clone = next(call for call in calls if call.pid == 12 and call.name == "clone")
    assert clone.result == "13"  # the host's PID, not the container's 2
    assert not any("SIGCHLD {" in call.line or "exited" in call.line for call in calls)


def test_only_the_commands_calls_are_kept_with_its_children_and_none_of_the_runtimes():
    calls = syscalls.command_calls(syscalls.parse_strace(TRACE))
    assert [(call.pid, call.name) for call in calls] == [
        (12, "execve"), (12, "brk"), (12, "uname"), (12, "clone"), (13, "openat"), (13, "exit_group"),
        (12, "wait4"), (12, "exit_group")]


def test_a_trace_without_the_commands_execve_says_so():
    text = '5 execve("/bin/busybox", ["/bin/busybox", "sh", "-c", "x"], 0x1) = -1 ENOENT (No such file)\n'
    with pytest.raises(ValueError, match="did the command start"):
        syscalls.command_calls(syscalls.parse_strace(text))


def _trace(where, names):
    return syscalls.Trace(where, [syscalls.Call(1, name, name + "()", "0") for name in names], "")


def test_compare_and_overlap_line_the_two_traces_up():
    host = _trace("host", ["read", "read", "write", "uname"])
    container = _trace("container", ["read", "write", "getcwd"])
    assert syscalls.compare(host, container) == [
        ("read", 2, 1), ("write", 1, 1), ("getcwd", 0, 1), ("uname", 1, 0)]
    assert syscalls.overlap(host, container) == pytest.approx(2 / 4)
    assert syscalls.overlap(host, host) == 1.0
    fig = syscalls.plot_syscall_counts(host, container)
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == ["read", "write", "getcwd", "uname"]


def test_no_strace_or_a_strace_that_may_not_trace_says_so(monkeypatch):
    monkeypatch.setattr(syscalls.shutil, "which", lambda name: None)
    with pytest.raises(syscalls.StraceUnavailable, match="apt-get install strace"):
        syscalls.trace_on_host("true")
    monkeypatch.setattr(syscalls.shutil, "which", lambda name: "/bin/true")  # runs, traces nothing
    with pytest.raises(syscalls.StraceUnavailable, match="could not trace here"):
        syscalls.trace_on_host("true")
    assert "strace" in checks.check_makes_directory("mkdir /x", rootfs="/nonexistent").message


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@needs_busybox
def test_a_host_command_is_traced_from_its_execve_to_its_exit():
    try:
        trace = syscalls.trace_on_host("uname -n")
    except syscalls.StraceUnavailable as error:
        # e.g. in the unprivileged re-run of tests/unit (a user namespace with no id mapped, where
        # strace's setreuid fails); the root run traces for real
        pytest.skip(f"strace cannot trace here: {error}")
    names = [call.name for call in trace.calls]
    assert names[0] == "execve" and names[-1] == "exit_group"
    assert "uname" in names and trace.output.strip() == os.uname().nodename


# ---- exercise 1: a system call made from inside a container --------------------------------


def test_a_command_that_creates_a_directory_passes():
    result = checks.judge_makes_directory("mkdir /tmp/new", {"execve", "mkdir", "exit_group"})
    assert result.passed and "mkdir(2)" in result.message


def test_echoing_the_word_is_not_calling_mkdir():
    result = checks.judge_makes_directory("echo mkdir", {"execve", "write", "exit_group"})
    assert not result.passed and "only writes the word" in result.message


def test_a_command_that_creates_no_directory_is_told_what_it_did():
    result = checks.judge_makes_directory("touch /tmp/f", {"execve", "openat", "exit_group"})
    assert not result.passed and "openat" in result.message and "Which busybox applet" in result.message


@pytest.mark.parametrize("answer", [["mkdir", "/x"], "", 42])
def test_an_answer_that_is_no_command_is_asked_for_one(answer):
    assert not checks.check_makes_directory(answer).passed
    assert "as a string" in checks.check_makes_directory(answer).message


def test_the_placeholder_is_not_an_answer():
    assert not checks.check_makes_directory(...).answered


# ---- the shipped application ---------------------------------------------------------------


@needs_busybox
def test_the_application_travels_as_one_layer_and_arrives_byte_for_byte(tmp_path):
    app = shipping.build_application(tmp_path / "here" / "app", greeting="hi there")
    digest = shipping.pack_application(app, tmp_path / "here" / "app.tar")
    assert digest == shipping.pack_application(app, tmp_path / "again.tar")  # the same files, the same digest
    (tmp_path / "there").mkdir()
    moved = shutil.copy(tmp_path / "here" / "app.tar", tmp_path / "there")
    root = shipping.unpack_application(moved, tmp_path / "there" / "rootfs", digest)
    for name in ("bin/busybox", "app/run.sh", "app/greeting"):
        assert (root / name).read_bytes() == (app / name).read_bytes()
    assert os.readlink(root / "bin" / "sh") == "busybox"
    assert os.access(root / "app" / "run.sh", os.X_OK)
    assert sorted(path.relative_to(root) for path in root.rglob("*")) == sorted(
        path.relative_to(app) for path in app.rglob("*"))


@needs_busybox
def test_a_layer_changed_on_the_way_is_refused(tmp_path):
    app = shipping.build_application(tmp_path / "app")
    digest = shipping.pack_application(app, tmp_path / "app.tar")
    with open(tmp_path / "app.tar", "r+b") as tar:
        tar.seek(5000)
        byte = tar.read(1)
        tar.seek(5000)
        tar.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DigestMismatch):
        shipping.unpack_application(tmp_path / "app.tar", tmp_path / "rootfs", digest)
    assert not (tmp_path / "rootfs").exists()
