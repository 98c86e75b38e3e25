"""The json-file log of teachdockd (teachdock/daemon/logs.py), without a container: a writer
process copies two pipes into the file; readers follow it until the writer lets go.

Why test it alone: it is what makes ``docker logs -f`` and a foreground ``docker run`` end,
and what keeps logs flowing while the daemon is down (the writer is its own process).
"""

from __future__ import annotations

import json
import os
import struct
import threading

from teachdock.daemon import logs


def test_frame_is_dockers_multiplexed_header():
    assert logs.frame("stdout", b"hi\n") == b"\x01\x00\x00\x00" + struct.pack(">I", 3) + b"hi\n"
    assert logs.frame("stderr", b"")[:1] == b"\x02"


def test_timestamp_is_rfc3339_with_nanoseconds():
    assert logs.timestamp(0) == "1970-01-01T00:00:00.000000000Z"
    assert logs.timestamp(1.5) == "1970-01-01T00:00:01.500000000Z"


def test_writer_copies_both_pipes_and_releases_the_lock_at_the_end(tmp_path):
    log_path = tmp_path / "c-json.log"
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    writer = logs.spawn_writer(log_path, out_read, err_read)
    os.close(out_read)
    os.close(err_read)
    with open(log_path, "rb") as log_file:
        assert logs.writer_running(log_file)  # locked from the start, before the first byte

    os.write(out_write, b"one\ntwo\n")
    os.write(err_write, "fünf\n".encode())
    os.write(out_write, b"no newline")
    followed = []
    follower = threading.Thread(target=lambda: followed.extend(logs.read_entries(log_path, follow=True)))
    follower.start()  # follows until the writer has finished: closing the pipes ends it
    os.close(out_write)
    os.close(err_write)
    follower.join(timeout=30)
    assert not follower.is_alive(), "follow did not end when the writer finished"
    assert writer.wait(timeout=30) == 0

    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert followed == entries
    by_stream = {(e["stream"], e["log"]) for e in entries}
    assert by_stream == {("stdout", "one\n"), ("stdout", "two\n"), ("stderr", "fünf\n"), ("stdout", "no newline")}
    assert all(e["time"].endswith("Z") for e in entries)
    with open(log_path, "rb") as log_file:
        assert not logs.writer_running(log_file)


def test_tail_and_from_end(tmp_path):
    log_path = tmp_path / "c-json.log"
    log_path.write_text("".join(json.dumps({"log": f"{n}\n", "stream": "stdout", "time": "t"}) + "\n"
                                for n in range(5)) + '{"log": "half-writ')  # a crash mid-line
    assert [e["log"] for e in logs.read_entries(log_path, tail=2)] == ["3\n", "4\n"]
    assert list(logs.read_entries(log_path, tail=0)) == []
    assert len(list(logs.read_entries(log_path))) == 5  # the damaged last line is not an entry
    assert list(logs.read_entries(log_path, from_end=True)) == []
    assert list(logs.read_entries(tmp_path / "missing.log")) == []
