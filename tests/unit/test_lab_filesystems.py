"""teachdock.lab.filesystems (experiments and checks) without root: parsing, tables, the plot,
the forked-child channel, and every judge with right and wrong answers.

The checks' observations (a container's mount table, a child's mounts) are replaced by fixed
facts here; tests/integration/test_lab_filesystems.py runs them against the real kernel.
"""

import errno
import os
import signal

import pytest

from teachdock import kernel
from teachdock.errors import KernelError
from teachdock.kernel.mountinfo import parse_mountinfo
from teachdock.lab.filesystems import checks as fc
from teachdock.lab.filesystems.child import Child, ChildFailed, run_in_child
from teachdock.lab.filesystems import experiments as fs
from teachdock.lab.filesystems.checks import (
    check_escape,
    check_hidden_cpuinfo,
    check_private_tmpfs,
    check_readonly_root,
    judge_escape,
    judge_hidden_file,
    judge_private_tmpfs,
    judge_readonly_root,
    masked_in,
)
from tests.support.korean import reads_korean

# A container's mountinfo as teachdock's runtime makes it (shortened), with a space escaped
# in one mount point and propagation tags on two lines.
CONTAINER_MOUNTINFO = """\
64 42 254:0 /var/lib/teachdock/rootfs/busybox / ro,relatime - ext4 /dev/vda rw,discard
65 64 0:40 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
66 64 0:41 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
67 66 0:42 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
70 64 0:44 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
71 70 0:45 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs ro,mode=755
77 64 0:46 / /tmp rw,nosuid,nodev,relatime shared:7 - tmpfs tmpfs rw,size=65536k
78 64 0:47 / /my\\040data rw,relatime master:3 propagate_from:2 - tmpfs tmpfs rw
43 65 0:48 / /proc/acpi ro,relatime - tmpfs tmpfs ro
44 65 0:41 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
51 65 0:40 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
47 70 0:49 / /sys/firmware ro,relatime - tmpfs tmpfs ro
"""


@pytest.fixture
def box_mounts():
    return parse_mountinfo(CONTAINER_MOUNTINFO)


# ---- mountinfo ------------------------------------------------------------------------------


def test_parse_mountinfo_reads_every_field(box_mounts):
    root = box_mounts[0]
    assert (root.mount_id, root.parent_id, root.device) == (64, 42, "254:0")
    assert (root.root, root.mount_point, root.fs_type, root.source) == (
        "/var/lib/teachdock/rootfs/busybox", "/", "ext4", "/dev/vda")
    assert root.options == ("ro", "relatime") and root.read_only
    assert root.super_options == ("rw", "discard")
    assert root.propagation == () and root.propagation_type == "private"


def test_parse_mountinfo_unescapes_paths_and_keeps_optional_fields(box_mounts):
    data = next(m for m in box_mounts if m.mount_id == 78)
    assert data.mount_point == "/my data"
    assert data.propagation == ("master:3", "propagate_from:2") and data.propagation_type == "slave"
    tmp = next(m for m in box_mounts if m.mount_point == "/tmp")
    assert tmp.propagation_type == "shared" and not tmp.read_only


def test_propagation_types_from_tags():
    line = "1 0 0:1 / /x rw {tags} - tmpfs tmpfs rw"
    kinds = {tags: parse_mountinfo(line.format(tags=tags))[0].propagation_type
             for tags in ("shared:1 master:2", "unbindable", "shared:4")}
    assert kinds == {"shared:1 master:2": "shared+slave", "unbindable": "unbindable", "shared:4": "shared"}


def test_parse_mountinfo_skips_lines_that_are_not_mounts():
    assert parse_mountinfo("garbage\n\n1 2 3\n") == []


def test_mounts_under_and_count_by_type(box_mounts):
    assert [m.mount_point for m in fs.mounts_under("/proc", box_mounts)] == ["/proc", "/proc/acpi", "/proc/keys",
                                                                             "/proc/sys"]
    assert fs.mounts_under("/pro", box_mounts) == []  # a prefix of a name is not a parent directory
    assert fs.count_by_type(box_mounts)["tmpfs"] == 7


def test_read_mounts_reads_this_process(tmp_path):
    mounts = fs.read_mounts()
    assert any(m.mount_point == "/" for m in mounts)


def test_describe_mount_names_masked_and_read_only_paths(box_mounts):
    by_point = {m.mount_point: m for m in box_mounts}
    masked, readonly = ["/proc/acpi", "/proc/keys", "/sys/firmware"], ["/proc/sys"]
    assert fs.describe_mount(by_point["/proc/keys"], masked, readonly) == "masked: /dev/null bound over it"
    assert fs.describe_mount(by_point["/proc/acpi"], masked, readonly) == "masked: an empty read-only tmpfs"
    assert fs.describe_mount(by_point["/proc/sys"], masked, readonly) == "read-only bind of itself"
    assert fs.describe_mount(by_point["/"]) == "the rootfs, after pivot_root"
    host_null = parse_mountinfo("81 66 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw")[0]
    assert fs.describe_mount(host_null, masked, readonly).startswith("the host's node, bound in")


def test_masked_in_finds_null_binds_and_empty_tmpfs_but_not_the_cgroup_tmpfs(box_mounts):
    assert masked_in(box_mounts) == {"/proc/acpi", "/proc/keys", "/sys/firmware"}


def test_mount_tree_rows_nest_by_parent(box_mounts):
    rows = [(depth, m.mount_point) for depth, m in fs.mount_tree_rows(box_mounts)]
    assert rows[0] == (0, "/")  # its parent (42, the detached old root) is not in the table
    assert (1, "/dev") in rows and (2, "/dev/pts") in rows and (3, "/sys/fs/cgroup") not in rows
    assert (2, "/sys/fs/cgroup") in rows and rows.index((1, "/proc")) < rows.index((2, "/proc/keys"))
    assert len(rows) == len(box_mounts)


def test_mount_table_shows_each_mount_once(box_mounts):
    table = fs.mount_table(box_mounts, ["/proc/keys"], ["/proc/sys"])
    assert len(repr(table).splitlines()) == len(box_mounts)
    assert "masked: /dev/null bound over it" in repr(table)
    assert table._repr_html_().count("<tr") == len(box_mounts) + 1  # + the header


def test_plot_mounts_draws_both_panels(box_mounts):
    host = parse_mountinfo("1 0 254:0 / / rw - ext4 /dev/vda rw\n2 1 0:5 / /proc rw - proc proc rw\n")
    fig = fs.plot_mounts(host, box_mounts, ["/proc/keys"], ["/proc/sys"])
    left, right = fig.axes
    assert left.get_title() == "mounts by filesystem type"
    assert {t.get_text() for t in left.get_yticklabels()} == {"ext4", "proc", "tmpfs", "devpts", "sysfs"}
    labels = [t.get_text() for t in right.texts]
    assert "keys" in labels and "fs/cgroup" in labels  # children are named relative to their parent


# ---- tables of results --------------------------------------------------------------------------


def test_escape_table_marks_who_escaped():
    jail = fs.EscapeAttempt("plain chroot", ["jail"], ["home", "usr"], True)
    box = fs.EscapeAttempt("teachdock container", ["bin"], ["bin"], False)
    text = repr(fs.escape_table(jail, box))
    assert "YES: escaped | no: still inside" in text
    assert "#fbdada" in jail._repr_html_() and "#d9f2e6" in box._repr_html_()


def test_escape_table_shortens_long_listings():
    many = [f"d{i:02}" for i in range(20)]
    assert "… (+8)" in repr(fs.escape_table(fs.EscapeAttempt("x", many, many, False)))


def test_propagation_table_rows():
    results = [fs.PropagationResult("shared", True, True, ("shared:1",), ("shared:1",)),
               fs.PropagationResult("private", False, False, ("shared:1",), ())]
    lines = repr(fs.propagation_table(results)).splitlines()
    assert lines[0].split()[:2] == ["shared", "shared:1"] and lines[0].count("✔ yes") == 2
    assert "(none)" in lines[1] and lines[1].count("✘ no") == 2


@pytest.mark.parametrize("code, words", [(errno.EBUSY, "same mount"), (errno.EINVAL, "not a mount point"),
                                         (errno.EPERM, "CAP_SYS_ADMIN"), (errno.ENOENT, "ENOENT: see pivot_root(2)")])
def test_explain_pivot_root_error(code, words):
    assert words in fs.explain_pivot_root_error(KernelError("pivot_root", code, "x"))


def test_masked_example_prefers_kcore_then_a_file_this_kernel_has(monkeypatch):
    present = {"/proc/interrupts", "/proc/keys"}
    monkeypatch.setattr(os.path, "isfile", lambda path: path in present)
    assert fs.masked_example(["/proc/kcore", "/proc/keys", "/proc/interrupts"]) == "/proc/interrupts"
    present.add("/proc/kcore")
    assert fs.masked_example(["/proc/kcore", "/proc/keys"]) == "/proc/kcore"
    assert fs.masked_example(["/proc/acpi"]) is None


def test_make_jail_builds_a_tiny_tree(tmp_path):
    jail = fs.make_jail(str(tmp_path))
    assert sorted(os.listdir(jail)) == ["YOU-ARE-IN-THE-JAIL", "bin", "etc", "home", "tmp"]


def test_make_jail_copies_a_rootfs(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "sh").symlink_to("busybox")
    jail = fs.make_jail(str(tmp_path / "copy"), str(rootfs))
    assert os.readlink(os.path.join(jail, "bin", "sh")) == "busybox"
    assert os.path.isdir(os.path.join(jail, "tmp")) and not os.path.exists(os.path.join(jail, "YOU-ARE-IN-THE-JAIL"))


def test_scratch_directory_is_removed_and_remembered():
    with fs.scratch_directory("unit") as path:
        assert os.path.isdir(path) and os.path.basename(path).startswith(fs.SCRATCH_PREFIX + "unit-")
        open(os.path.join(path, "file"), "w").close()
    assert not os.path.exists(path)
    assert path in fs._scratch_made and path not in fs.leftovers()[0]


# ---- the forked child ------------------------------------------------------------------------------


def test_run_in_child_returns_the_childs_value():
    def work(channel, a, b):
        return {"sum": a + b, "pid": os.getpid()}

    result = run_in_child(work, 2, 3)
    assert result["sum"] == 5 and result["pid"] != os.getpid()


def test_an_errno_in_the_child_is_a_kernel_error_in_the_parent():
    def work(channel):
        os.rmdir("/definitely/not/here")

    with pytest.raises(KernelError) as caught:
        run_in_child(work)
    assert caught.value.errno == errno.ENOENT


def test_other_exceptions_come_back_as_child_failed():
    def work(channel):
        raise ValueError("bad value")

    with pytest.raises(ChildFailed, match="ValueError: bad value"):
        run_in_child(work)


def test_a_conversation_and_the_child_is_reaped():
    def work(channel):
        question = channel.receive()["question"]
        channel.send(answer=question * 2)
        channel.receive()
        return "done"

    with Child(work) as child:
        child.send(question=21)
        assert child.receive() == {"answer": 42}
        child.send(bye=True)
        assert child.result() == "done"
        pid = child.pid
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


def test_a_hung_child_is_killed_after_the_timeout():
    def work(channel):
        signal.pause()

    child = Child(work, timeout=0.2)
    with pytest.raises(ChildFailed, match="no answer within 0.2 s"):
        child.receive()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # killed and reaped already


# ---- exercise 1: hide /proc/cpuinfo, keep Docker's masks ------------------------------------------------

DOCKER_MASKED = {"/proc/acpi", "/proc/keys", "/sys/firmware"}


def test_hidden_file_right_answer_passes():
    result = judge_hidden_file(dict(masked_paths=[...]), bytes_read=0, masked=DOCKER_MASKED | {"/proc/cpuinfo"},
                               docker_masked=DOCKER_MASKED)
    assert result.passed and "all 3 of Docker's masks are still there" in result.message


def test_hidden_file_that_replaced_dockers_list_names_what_came_back():
    result = judge_hidden_file(dict(masked_paths=["/proc/cpuinfo"]), bytes_read=0, masked={"/proc/cpuinfo"},
                               docker_masked=DOCKER_MASKED)
    assert not result.passed
    assert "/proc/acpi (and 2 more) is visible again" in result.message and "DEFAULT_MASKED_PATHS" in result.message


@pytest.mark.parametrize("options, bytes_read, hint", [
    (dict(readonly_paths=["/proc/cpuinfo"]), 2674, "read-only only forbids writing"),
    (dict(), 2674, "still reads 2674 bytes"),
    (dict(masked_paths=["/proc/cpu"]), 2674, "`masked_paths` option"),
    (dict(), None, "could not read /proc/cpuinfo at all"),
])
def test_hidden_file_not_hidden_gets_the_hint_for_its_mistake(options, bytes_read, hint):
    result = judge_hidden_file(options, bytes_read=bytes_read, masked=DOCKER_MASKED, docker_masked=DOCKER_MASKED)
    assert not result.passed and hint in result.message


def test_masked_in_leaves_out_the_device_nodes_a_rootless_container_binds_from_the_host():
    table = parse_mountinfo(CONTAINER_MOUNTINFO + "81 66 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw\n")
    assert masked_in(table) == {"/proc/acpi", "/proc/keys", "/sys/firmware"}


class _Ran:
    def __init__(self, stdout):
        self.stdout = stdout


def test_check_hidden_cpuinfo_runs_the_learners_options_beside_a_default_container(monkeypatch):
    calls = []

    def fake_run(args, **options):
        calls.append((args, options))
        if args[0] == "cat":
            return _Ran(CONTAINER_MOUNTINFO)
        return _Ran("0\n" + CONTAINER_MOUNTINFO + "90 65 0:41 /null /proc/cpuinfo rw - tmpfs tmpfs rw\n")

    monkeypatch.setattr("teachdock.runtime.run", fake_run)
    result = check_hidden_cpuinfo(dict(masked_paths=["anything"]), rootfs="/nowhere")
    assert result.passed, result.message
    assert calls[1][1]["masked_paths"] == ["anything"] and "wc -c < /proc/cpuinfo" in calls[1][0][-1]


@pytest.mark.parametrize("answer, hint", [
    (..., "Replace the ..."),
    (["/proc/cpuinfo"], "Answer with a dict"),
    (dict(rootfs="/x"), "Leave out rootfs"),
])
def test_check_hidden_cpuinfo_bad_answers(answer, hint):
    assert hint in check_hidden_cpuinfo(answer, rootfs="/nowhere").message


# ---- exercise 2: read-only root, writable /data ---------------------------------------------------------


def _mount(point, fs_type="tmpfs", options="rw"):
    return parse_mountinfo(f"1 0 0:1 / {point} {options} - {fs_type} {fs_type} rw")[0]


ROOT_RO = _mount("/", "ext4", "ro,relatime")


@pytest.mark.parametrize("kwargs, hint", [
    (dict(root=_mount("/", "ext4", "rw"), data=_mount("/data"), writes={"/": "ok", "/data": "ok"}),
     "its root is not read-only"),
    (dict(root=ROOT_RO, data=None, writes={"/": "EROFS", "/data": "ENOENT"}), "There is no /data in the container"),
    (dict(root=ROOT_RO, data=None, writes={"/": "EROFS", "/data": "EROFS"}), "a plain directory of the read-only root"),
    (dict(root=ROOT_RO, data=_mount("/data", options="ro"), writes={"/": "EROFS", "/data": "EROFS"}),
     "a read-only one"),
    (dict(root=ROOT_RO, data=_mount("/data"), writes={"/": "EROFS", "/data": "EACCES"}), "failed with EACCES"),
    (dict(root=None, data=None, writes={}), "no root mount"),
])
def test_readonly_root_wrong_setups_get_their_hint(kwargs, hint):
    result = judge_readonly_root(**kwargs)
    assert not result.passed and hint in result.message


def test_readonly_root_right_setup_passes():
    result = judge_readonly_root(root=ROOT_RO, data=_mount("/data"), writes={"/": "EROFS", "/data": "ok"})
    assert result.passed and "writable tmpfs mount" in result.message


@pytest.mark.parametrize("options, hint", [
    (["readonly"], "Answer with a dict"),
    ({"args": ["sh"], "readonly": True}, "Leave out args"),
    ({"rootfs": "/x"}, "Leave out rootfs"),
])
def test_check_readonly_root_refuses_bad_answers_before_starting_anything(options, hint):
    result = check_readonly_root(options, rootfs="/nowhere")
    assert not result.passed and hint in result.message


def test_placeholders_ask_for_an_answer():
    for result in (check_hidden_cpuinfo(...), check_readonly_root(...)):
        assert not result.answered and "Replace the ..." in result.message


# ---- exercise 3: a private tmpfs --------------------------------------------------------------------


def test_placeholder_functions_are_recognised():
    def setup(target):
        ...  # a comment does not change the function's code

    def real(target):
        os.mkdir(target)

    assert fc._is_placeholder(setup) and not fc._is_placeholder(real)
    assert fc._is_placeholder(lambda target: None)  # doing nothing at all is "not answered yet" too
    for check in (check_private_tmpfs, check_escape):
        result = check(setup)
        assert not result.answered and "Replace the ..." in result.message


@pytest.mark.parametrize("check", [check_private_tmpfs, check_escape])
def test_checks_want_a_function(check):
    result = check("unshare then mount")
    assert not result.passed and "Answer with a function" in result.message


TMPFS = _mount("/tmp/x/mine")
PRIVATE = {"target": "/", "flags": kernel.MS_REC | kernel.MS_PRIVATE, "fstype": None}
PRIVATE_NOT_REC = {"target": "/", "flags": kernel.MS_PRIVATE, "fstype": None}
OK = dict(refused=False, error=None, own_namespace=True, inside=TMPFS, host_sees=False, calls=[PRIVATE])


@pytest.mark.parametrize("changes, hint", [
    (dict(refused=True), "still in the host's mount namespace"),
    (dict(error="KernelError: mount(...): Operation not permitted (EPERM)"), "run the notebook as root"),
    (dict(error="KernelError: mount(...): Invalid argument (EINVAL)"), "propagation flags (MS_PRIVATE, MS_REC) go in a call of their own"),
    (dict(error="NameError: name 'kernal' is not defined"), "Your function raised NameError"),
    (dict(own_namespace=False, inside=None), "never left the host's mount namespace"),
    (dict(host_sees=True, calls=[PRIVATE_NOT_REC]), "without MS_REC"),
    (dict(host_sees=True, calls=[]), "it propagated"),
    (dict(inside=None), "Nothing is mounted on the target"),
    (dict(inside=_mount("/tmp/x/mine", "ext4")), "mount of type ext4, not a tmpfs"),
])
def test_private_tmpfs_mistakes_get_their_hint(changes, hint):
    result = judge_private_tmpfs(**{**OK, **changes})
    assert not result.passed and hint in result.message


def test_private_tmpfs_right_answer_passes():
    assert judge_private_tmpfs(**OK).passed


# ---- exercise 4: the escape --------------------------------------------------------------------------


def test_escape_that_reached_the_host_root_passes():
    assert judge_escape(escaped=True, error=None, calls=[], jail_depth=3).passed


@pytest.mark.parametrize("kwargs, hint", [
    (dict(error="OSError: [Errno 30] Read-only file system: 'escape-hatch' [EROFS]"), "any directory that already exists"),
    (dict(error="FileNotFoundError: 'nothere' [ENOENT]"), "Your function raised FileNotFoundError"),
    (dict(calls=[("chdir", "..")] * 5), "never called os.chroot"),
    (dict(calls=[("chroot", "tmp"), ("chdir", "/")] + [("chdir", "..")] * 5 + [("chroot", ".")]), "closes the door"),
    (dict(calls=[("chroot", "tmp"), ("chdir", "..")]), "You climbed 1 level(s)"),
    (dict(calls=[("chroot", "tmp"), ("chdir", "../../../..")]), "Finish with a chroot"),
    (dict(calls=[("chroot", "tmp")] + [("chdir", "..")] * 5 + [("chroot", ".")]), "Still inside the jail"),
])
def test_escape_mistakes_get_their_hint(kwargs, hint):
    arguments = dict(escaped=False, error=None, calls=[], jail_depth=3) | kwargs
    result = judge_escape(**arguments)
    assert not result.passed and hint in result.message


def test_check_readonly_root_without_root_says_root_is_needed(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = check_readonly_root(dict(readonly=True))
    assert not result.passed and result.answered and "needs root" in result.message
    assert "Answer with a dict" in check_readonly_root(["readonly"]).message  # the form is still judged


# ---- in Korean (TEACHDOCK_LANG=ko): the verdicts, hints and tables a Korean learner reads -------------


def test_the_filesystems_judges_speak_korean(korean):
    right = judge_hidden_file(dict(masked_paths=[...]), bytes_read=0, masked=DOCKER_MASKED | {"/proc/cpuinfo"},
                              docker_masked=DOCKER_MASKED)
    replaced = judge_hidden_file(dict(masked_paths=["/proc/cpuinfo"]), bytes_read=0, masked={"/proc/cpuinfo"},
                                 docker_masked=DOCKER_MASKED)
    not_masked = judge_hidden_file(dict(), bytes_read=2674, masked=DOCKER_MASKED, docker_masked=DOCKER_MASKED)
    escaped = judge_escape(escaped=True, error=None, calls=[], jail_depth=3)
    too_low = judge_escape(escaped=False, error=None, calls=[("chroot", "tmp"), ("chdir", "..")], jail_depth=3)
    propagated = judge_private_tmpfs(**{**OK, "host_sees": True, "calls": []})
    for result in (right, replaced, not_masked, escaped, too_low, propagated):
        assert reads_korean(result.message), result.message
    assert right.passed and not replaced.passed and "/proc/acpi" in replaced.message and "2674" in not_masked.message
    assert "'ro'" in judge_readonly_root(root=ROOT_RO, data=_mount("/data", options="ro"), writes={}).message
    assert reads_korean(check_hidden_cpuinfo(dict(rootfs="/x"), rootfs="/nowhere").message)


def test_the_filesystems_tables_speak_korean(korean, box_mounts):
    table = fs.mount_table(box_mounts, ["/proc/keys"], ["/proc/sys"])
    assert "마운트 포인트" in table._repr_html_() and "마스킹됨" in repr(table)
    escape = fs.escape_table(fs.EscapeAttempt("plain chroot", ["jail"], ["home"], True),
                             fs.EscapeAttempt("teachdock container", ["bin"], ["bin"], False))
    assert "평범한 chroot" in escape._repr_html_() and "#fbdada" in escape._repr_html_()
    assert "예: 탈출함 | 아니요: 아직 안쪽" in repr(escape)
    error = KernelError("pivot_root", errno.EINVAL, "Invalid argument")
    assert reads_korean(fs.explain_pivot_root_error(error))
    assert fs.plot_mounts(box_mounts, box_mounts).axes[0].get_title() == "파일시스템 타입별 마운트"
