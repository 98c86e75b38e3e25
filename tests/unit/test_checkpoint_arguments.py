"""teachdock.runtime.checkpoint: what is passed to criu, and how its answers are read (no criu needed)."""

import os

import pytest

from teachdock.runtime import checkpoint as ck
from teachdock.runtime.spec import make_spec
from teachdock.vm import criu_guest


class FakeCgroup:
    def __init__(self, version, directory="/sys/fs/cgroup/teachdock/new", dirs=None):
        self.version, self.dir, self.dirs = version, directory, dirs or {}


@pytest.fixture
def config(tmp_path):
    (tmp_path / "rootfs" / "etc").mkdir(parents=True)
    for name in ("hostname", "hosts", "resolv.conf"):  # the etc files are bound only where the image has them
        (tmp_path / "rootfs" / "etc" / name).write_text("")
    config = make_spec(["sh", "-c", "sleep 1"], tmp_path / "rootfs", etc_directory=tmp_path / "etc")
    config["mounts"].append({"destination": "/data", "type": "none", "source": "/srv/vol", "options": ["rbind"]})
    return config


def test_dump_names_every_bind_mount_and_the_cgroup_view_as_external(config, tmp_path):
    binds = ck.cgroup_mounts(config, FakeCgroup("v2", "/sys/fs/cgroup/teachdock/old"))
    assert binds == {"/sys/fs/cgroup": "/sys/fs/cgroup/teachdock/old"}
    arguments = ck.dump_arguments(4242, tmp_path / "img", config, binds)
    assert arguments[:5] == ["dump", "--tree", "4242", "--images-dir", str(tmp_path / "img")]
    externals = [arguments[i + 1] for i, word in enumerate(arguments) if word == "--external"]
    assert externals == ["mnt[/etc/hostname]:/etc/hostname", "mnt[/etc/hosts]:/etc/hosts",
                         "mnt[/etc/resolv.conf]:/etc/resolv.conf", "mnt[/data]:/data",
                         "mnt[/sys/fs/cgroup]:/sys/fs/cgroup"]
    assert "--manage-cgroups=soft" in arguments
    assert arguments[arguments.index("--network-lock") + 1] == "nftables"
    assert "--leave-running" not in arguments
    assert "--leave-running" in ck.dump_arguments(1, tmp_path, config, binds, leave_running=True)


def test_restore_maps_each_external_mount_to_the_new_containers_source(config, tmp_path):
    binds = ck.cgroup_mounts(config, FakeCgroup("v2"))
    arguments = ck.restore_arguments(tmp_path / "img", tmp_path / "state", config, "/teachdock/new", binds,
                                     tmp_path / "pid", [(11, "pipe:[77]")])
    externals = [arguments[i + 1] for i, word in enumerate(arguments) if word == "--external"]
    assert f"mnt[/etc/hosts]:{tmp_path / 'etc' / 'hosts'}" in externals
    assert "mnt[/data]:/srv/vol" in externals
    assert "mnt[/sys/fs/cgroup]:/sys/fs/cgroup/teachdock/new" in externals
    assert arguments[arguments.index("--root") + 1] == str(tmp_path / "rootfs")
    assert arguments[arguments.index("--cgroup-root") + 1] == "/teachdock/new"
    assert {"--restore-detached", "--restore-sibling"} <= set(arguments)
    assert arguments[arguments.index("--inherit-fd") + 1] == "fd[11]:pipe:[77]"
    assert arguments[arguments.index("--pidfile") + 1] == str(tmp_path / "pid")


def test_cgroup_v1_gives_one_external_bind_per_controller(config):
    cgroup = FakeCgroup("v1", dirs={"memory": "/sys/fs/cgroup/memory/teachdock/x",
                                    "pids": "/sys/fs/cgroup/pids/teachdock/x"})
    assert ck.cgroup_mounts(config, cgroup) == {"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/teachdock/x",
                                                "/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids/teachdock/x"}


def test_only_pipes_and_sockets_of_the_stdio_are_handed_over_each_once():
    assert ck.inherited_stdio(["pipe:[5]", "pipe:[6]", "pipe:[6]"]) == [(10, "pipe:[5]"), (11, "pipe:[6]")]
    assert ck.inherited_stdio(["/dev/null", "socket:[9]", ""]) == [(11, "socket:[9]")]


def test_the_error_lines_of_a_criu_log_are_what_the_caller_reads(tmp_path):
    log = tmp_path / "dump.log"
    log.write_text("(00.1) Dumping pstree\n(00.2) Error (criu/mount.c:753): mnt: no root mount\n"
                   "(00.3) Error (criu/cr-dump.c:2053): Dumping FAILED.\n(00.4) Unlock network\n")
    assert ck.criu_log_errors(log) == ("(00.2) Error (criu/mount.c:753): mnt: no root mount / "
                                       "(00.3) Error (criu/cr-dump.c:2053): Dumping FAILED.")
    assert "no log at" in ck.criu_log_errors(tmp_path / "missing.log")


def test_where_criu_cannot_run_the_reason_is_criu_checks_own_words(monkeypatch):
    class Done:
        returncode, stdout = 1, ""
        stderr = ("Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n"
                  "Error (criu/crtools.c:260): Could not initialize kernel features detection.\n")
    monkeypatch.setattr(ck, "_check_cache", {})  # the real answer, cached per process, stays untouched
    monkeypatch.setattr(ck.os, "geteuid", lambda: 0)
    monkeypatch.setattr(ck.shutil, "which", lambda name: "/usr/sbin/criu")
    monkeypatch.setattr(ck.subprocess, "run", lambda *a, **k: Done())
    reason = ck.why_criu_cannot_run(refresh=True)
    assert reason.startswith("`criu check` fails on this kernel")
    assert "vdso: Failed to fill self vdso symtable" in reason
    Done.returncode, Done.stdout, Done.stderr = 0, "Looks good.\n", ""
    assert ck.why_criu_cannot_run(refresh=True) is None
    monkeypatch.setattr(ck.os, "geteuid", lambda: 1000)
    assert "needs root" in ck.why_criu_cannot_run()


def test_the_guest_prelude_makes_programs_executable_and_loads_modules_in_order():
    files = {"usr/sbin/criu": b"", "lib64/ld-linux-x86-64.so.2": b"", "lib/modules/criu/tun.ko": b""}
    prelude = criu_guest.criu_prelude(files, ["lib/modules/criu/a.ko", "lib/modules/criu/tun.ko"])
    lines = prelude.splitlines()
    assert lines[0] == "chmod 755 /lib64/ld-linux-x86-64.so.2 /usr/sbin/criu"
    assert [line.split()[1] for line in lines[1:]] == ["/lib/modules/criu/a.ko", "/lib/modules/criu/tun.ko"]


def test_a_criu_that_hangs_is_killed_at_the_deadline_and_a_quick_one_gives_its_status():
    import subprocess

    from teachdock.runtime.checkpoint import wait_for_criu
    hanging = subprocess.Popen(["sleep", "30"])
    assert wait_for_criu(hanging.pid, 0.3) is None
    assert not os.path.exists(f"/proc/{hanging.pid}/stat") or open(f"/proc/{hanging.pid}/stat").read().split()[2] == "Z"
    quick = subprocess.Popen(["sh", "-c", "exit 3"])
    status = wait_for_criu(quick.pid, 10)
    assert os.waitstatus_to_exitcode(status) == 3
