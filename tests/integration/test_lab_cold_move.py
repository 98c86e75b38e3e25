"""teachdock.lab.applications.cold_move with two real teachdockd (chapter 07's LabDaemons): the busybox
counter moved from daemon a to daemon b by export → import and by commit → save → load. Its files move
(the counter's file arrives with the value it had), its processes do not (new PIDs, the count in the
shell's memory starts again at one); commit → save → load keeps the image id and the config, export
→ import keeps the files byte for byte but needs the config given back; nothing is left after close."""

from __future__ import annotations

import pytest

from teachdock.client import Client
from teachdock.errors import TeachdockError
from teachdock.lab.applications.cold_move import (COUNTER_FILE, COUNTER_SCRIPT, ColdMove, counts, move_by_commit,
                                                  move_by_export, start_counter)
from teachdock.lab.client_and_daemon.daemon_lab import LabDaemons

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from teachdock.image import busybox

    try:
        busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    daemons = LabDaemons(tmp_path_factory.mktemp("cold") / "daemons")
    daemons.start("a")
    daemons.start("b")
    yield daemons
    daemons.close()
    assert not daemons.leftovers()


@pytest.fixture
def clients(lab):
    with Client(lab.daemons["a"].host, autostart=False) as a, Client(lab.daemons["b"].host, autostart=False) as b:
        yield a, b
        for client in (a, b):
            for container in client.containers(all=True):
                client.remove(container["Id"], force=True)


def _same_facts(report: ColdMove, clients) -> None:
    a, b = clients
    assert report.counter_before >= 3
    assert report.state_file.strip() == str(report.counter_before)       # the file moved with its content
    assert report.counter_after == 1                                      # the process did not
    assert counts(b, report.moved_container)[:2] in ([1], [1, 2])
    before = {pid for pid, _ in report.processes_before}
    after = {pid for pid, _ in report.processes_after}
    assert before and after and not before & after
    for side in (report.processes_before, report.processes_after):
        assert any(command.startswith("sh -c") for _, command in side), side
    assert a.inspect("counter")["State"]["Running"] is False              # a cold move stops it on A
    assert (COUNTER_FILE, len(report.state_file)) in report.files
    assert report.config_after["Cmd"] == ["sh", "-c", COUNTER_SCRIPT]
    text = repr(report)
    assert "started again at 1" in text and "new processes" in text
    assert "<table>" in report._repr_html_()


def test_export_import_moves_the_whole_filesystem_and_not_the_processes(clients):
    a, b = clients
    start_counter(a)
    report = move_by_export(a, b)
    _same_facts(report, clients)
    assert report.method == "export → import"
    assert ("/bin/busybox", 0) not in report.files and any(path == "/bin/busybox" for path, _ in report.files)
    image = b.inspect_image("moved/counter:export")
    assert len(image["RootFS"]["Layers"]) == 1 and image["Comment"] == "moved from counter"
    # the layer is the exported tar as it was: its digest is the diff_id B recorded
    assert report.config_after["Env"] == a.inspect("counter")["Config"]["Env"]


def test_commit_save_load_keeps_the_image_id_and_moves_only_the_changes(clients):
    a, b = clients
    start_counter(a)
    report = move_by_commit(a, b)
    _same_facts(report, clients)
    assert report.image_id == report.source_image_id == a.inspect_image("moved/counter:commit")["Id"]
    assert [path for path, _ in report.files] == [COUNTER_FILE]          # busybox's layer is below it
    layers = b.inspect_image("moved/counter:commit")["RootFS"]["Layers"]
    assert layers == a.inspect_image("moved/counter:commit")["RootFS"]["Layers"] and len(layers) == 2


def test_without_start_nothing_runs_on_b(clients):
    a, b = clients
    start_counter(a)
    report = move_by_export(a, b, image="moved/counter:idle", start=False)
    assert report.moved_container == "" and report.processes_after == [] and report.counter_after is None
    assert b.containers(all=True) == []
