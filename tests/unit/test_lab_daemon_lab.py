"""teachdock.lab.client_and_daemon.daemon_lab without a daemon: the socket as ls -l shows it and who listens,
HTTP by hand against a scripted socket, chunked bodies, the disk map of a fake data root."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from teachdock.errors import NotFound
from teachdock.lab.client_and_daemon.daemon_lab import (dechunk, disk_map, object_files, raw_request, socket_info, socket_path, tree,
                                      visible)
from tests.support.korean import reads_korean


@pytest.fixture
def listening(tmp_path):
    path = tmp_path / "d.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o660)
    server.listen(1)
    yield server, path
    server.close()


def test_socket_info_of_a_listening_socket(listening):
    _server, path = listening
    info = socket_info(f"unix://{path}")
    assert info.is_socket and info.permissions == "srw-rw----"
    assert info.ls_line.startswith("srw-rw---- 1 ") and info.ls_line.endswith(str(path))
    assert os.getpid() in [pid for pid, _command in info.listeners]
    assert "a Unix socket" in repr(info) and f"PID {os.getpid()}" in repr(info)


def test_socket_info_of_a_plain_file_and_of_nothing(tmp_path):
    plain = tmp_path / "not-a-socket"
    plain.write_text("x")
    info = socket_info(plain)
    assert not info.is_socket and info.listeners == [] and "not a socket" in repr(info)
    with pytest.raises(NotFound, match="does not exist"):
        socket_info(tmp_path / "missing.sock")


def test_raw_request_shows_the_exact_bytes(listening):
    server, path = listening
    seen = []

    def answer():
        conn, _ = server.accept()
        with conn:
            data = b""
            while not data.endswith(b"\r\n\r\n{\"a\": 1}"):
                data += conn.recv(100)
            seen.append(data)
            conn.sendall(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nApi-Version: 1.45\r\n\r\n"
                         b"4\r\n{\"Id\r\n6\r\n\": \"x\"\r\n1\r\n}\r\n0\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    exchange = raw_request(path, "POST", "/v1.45/containers/create", body={"a": 1})
    thread.join(5)
    assert exchange.sent == seen[0]
    assert exchange.sent.startswith(b"POST /v1.45/containers/create HTTP/1.1\r\nHost: localhost\r\n")
    assert b"Content-Length: 8\r\n" in exchange.sent and b"Connection: close\r\n\r\n" in exchange.sent
    assert exchange.status == 201 and exchange.status_line == "HTTP/1.1 201 Created"
    assert exchange.headers["Api-Version"] == "1.45" and exchange.json() == {"Id": "x"}
    assert "POST /v1.45/containers/create HTTP/1.1\\r\\n\n" in repr(exchange)
    assert "sent (" in exchange._repr_html_()


def test_dechunk_and_visible():
    assert dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n") == b"abcde"
    assert visible(b"a\r\nb") == "a\\r\\n\nb"
    assert socket_path("unix:///x/y.sock") == "/x/y.sock" and socket_path("/x/y.sock") == "/x/y.sock"


def test_disk_map_names_each_object(tmp_path):
    data, exec_root = tmp_path / "data", tmp_path / "exec"
    container = "c" * 64
    record = data / "daemon" / "containers" / container
    record.mkdir(parents=True)
    (record / "container.json").write_text("{}")
    (record / f"{container}-json.log").write_text('{"log": "hi\\n"}\n')
    (data / "images" / "blobs" / "sha256").mkdir(parents=True)
    (data / "images" / "index.json").write_text("{}")
    (data / "daemon" / "volumes" / "notes" / "_data").mkdir(parents=True)
    (data / "daemon" / "networks").mkdir(parents=True)
    (exec_root / "runtime" / container).mkdir(parents=True)
    rows = object_files(data, exec_root)
    kinds = {(row["object"], os.path.relpath(row["path"], tmp_path)) for row in rows}
    assert ("container", f"data/daemon/containers/{container}/{container}-json.log") in kinds
    assert ("container", f"data/daemon/containers/{container}/container.json") in kinds
    assert ("container", f"exec/runtime/{container}") in kinds
    assert ("image", "data/images/index.json") in kinds and ("volume", "data/daemon/volumes") in kinds
    assert ("network", "data/daemon/networks") in kinds
    assert "json.log" in repr(disk_map(data, exec_root)) and "<table>" in disk_map(data)._repr_html_()


def test_tree_cuts_long_directories(tmp_path):
    for number in range(10):
        (tmp_path / f"f{number}").write_text("")
    (tmp_path / "sub").mkdir()
    text = tree(tmp_path, max_entries=4)
    assert text.splitlines()[1] == "├── sub/" and "… 7 more" in text


def test_leftovers_name_only_this_labs_cgroups(tmp_path, monkeypatch):
    """Another chapter's daemons (td07-… too) may run beside ours: only our cgroup parents count."""
    from teachdock.lab.client_and_daemon import daemon_lab

    cgroups = ["/sys/fs/cgroup/memory/td07-a-111111", "/sys/fs/cgroup/memory/td07-lab-222222"]
    monkeypatch.setattr(daemon_lab, "_cgroups_named",
                        lambda prefix: [c for c in cgroups if c.rsplit("/", 1)[1].startswith(prefix)])
    lab = daemon_lab.LabDaemons(tmp_path / "daemons")
    lab.cgroup_parents.append("td07-a-111111")
    try:
        assert lab.leftovers() == ["cgroup /sys/fs/cgroup/memory/td07-a-111111", f"directory {tmp_path / 'daemons'}"]
    finally:
        lab.close()
    assert lab.leftovers() == ["cgroup /sys/fs/cgroup/memory/td07-a-111111"]


def test_the_views_speak_korean(korean, listening, tmp_path):
    from teachdock.lab.client_and_daemon.trace_views import TraceEntry, trace_table
    from teachdock.lab.common.root import without_root_sentence

    _server, path = listening
    assert reads_korean(repr(socket_info(path))) and "유닉스 소켓" in repr(socket_info(path))
    (tmp_path / "data" / "daemon" / "networks").mkdir(parents=True)
    table = disk_map(tmp_path / "data")
    assert ">담긴 것</th>" in table._repr_html_() and "네트워크마다 JSON 기록 하나" in repr(table)
    start = TraceEntry(1, 1, "POST", "/v1.45/containers/" + "a" * 64 + "/start", status=204, reason="No Content")
    assert start.meaning == "시작: 이제 프로세스가 실행됨"
    assert ">의미</th>" in trace_table([start])._repr_html_()
    skipped = without_root_sentence("runs a container on daemon b for you to find its log; a container needs root")
    assert reads_korean(skipped) and "데몬 b에서 실행하는" in skipped


def test_the_korean_diagrams_have_every_glyph(korean):
    """The architecture picture and the API-call diagram, drawn in Korean, miss no glyph."""
    import io
    import warnings

    pytest.importorskip("matplotlib")
    from matplotlib import font_manager

    from teachdock.lab.client_and_daemon.daemon_lab import plot_architecture
    from teachdock.lab.client_and_daemon.trace_views import TraceEntry, plot_trace
    from teachdock.lab.common.language import KOREAN_FONTS

    if not {font.name for font in font_manager.fontManager.ttflist} & set(KOREAN_FONTS):
        pytest.skip("matplotlib knows no Hangul font here (fonts-nanum missing, or its font cache is older)")
    start = TraceEntry(1, 1, "POST", "/v1.45/containers/x/start", status=204, reason="No Content", sent=0.01,
                       answered=0.02, finished=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # "Glyph … missing from font(s)" is a UserWarning
        for figure in (plot_architecture(), plot_trace([start])):
            figure.savefig(io.BytesIO(), format="png")
