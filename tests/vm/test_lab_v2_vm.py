"""teachdock.lab.cgroups.v2_vm: the cgroups chapter's optional look at cgroup v2 in a VM."""

import pytest

from teachdock.errors import NotFound
from teachdock.lab.cgroups import v2_vm
from teachdock.vm import VmError, find_qemu, prepare_kernel

FAKE_ROWS = [("/sys/fs/cgroup/teachdock/demo/memory.max", "33554432", "memory=\"32m\" <in bytes>"),
             ("/sys/fs/cgroup/teachdock/demo/memory.events", "max 3\noom_kill 1", "after")]


def test_the_table_shows_file_content_and_meaning_escaped():
    table = v2_vm.V2Demo(FAKE_ROWS, kernel="6.1", seconds=14.2).table()
    assert "cgroup v2 in a VM (kernel 6.1, 14 s)" in table.text
    assert "max 3 | oom_kill 1" in table.text
    assert "<code>max 3<br>oom_kill 1</code>" in table.html
    assert "&lt;in bytes&gt;" in table.html


def test_the_sentence_names_the_hosts_version(tmp_path):
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    (tmp_path / "v1" / "memory" / "cgroup.procs").write_text("")
    assert "uses cgroup v2" in v2_vm.host_cgroup_sentence(str(tmp_path / "v2"))
    assert "uses cgroup v1" in v2_vm.host_cgroup_sentence(str(tmp_path / "v1"))
    (tmp_path / "none").mkdir()
    assert "no usable cgroup filesystem" in v2_vm.host_cgroup_sentence(str(tmp_path / "none"))


def test_output_without_the_marker_says_what_the_vm_printed():
    assert v2_vm.parse_demo_output('noise\nTEACHDOCK-V2 [["f", "c", "m"]]\n') == [("f", "c", "m")]
    with pytest.raises(VmError, match="Traceback"):
        v2_vm.parse_demo_output("Traceback (most recent call last):\n  boom\n")


@pytest.mark.slow
def test_the_vm_shows_a_containers_v2_files_live():
    try:
        find_qemu()
        prepare_kernel()
    except NotFound as exc:
        pytest.skip(f"needs QEMU and a Linux kernel: {exc}")
    demo = v2_vm.show_v2_in_vm()
    files = {}
    for path, content, _meaning in demo.rows:
        files.setdefault(path.rsplit("/", 1)[-1], []).append(content)
    assert {"memory", "pids", "cpu"} <= set(files["cgroup.controllers"][0].split())
    assert files["memory.max"] == ["33554432"]
    assert files["pids.max"] == ["20"]
    assert files["cpu.max"] == ["50000 100000"]
    before, after = (dict(line.split() for line in text.splitlines()) for text in files["memory.events"])
    assert (before["oom_kill"], after["oom_kill"]) == ("0", "1")
    assert int(after["max"]) >= 1
    assert files["cgroup"] == ["0::/teachdock/demo"]
