"""teachdock.lab.applications.live_move: reading the counter and showing the move (no daemon needed)."""

from teachdock.lab.applications import live_move


def test_numbers_are_the_whole_lines_of_the_log():
    assert live_move.numbers("1\n2\n3\nsh: oops\n4") == [1, 2, 3, 4]
    assert live_move.numbers("") == []


def test_the_table_says_whether_it_kept_counting():
    move = live_move.LiveMove([7, 8, 9], [10, 11, 12], 4100, 5200, [("pages-1.img", 409600), ("core-1.img", 900)],
                              {"checkpoint": 0.31, "copy": 0.01, "restore": 0.4})
    assert move.kept_counting
    table = move.table()
    lines = [" ".join(line.split()) for line in table.text.splitlines()]  # the columns' padding aside
    assert lines[:4] == ["last numbers on A 7 8 9", "first numbers on B 10 11 12", "kept counting yes",
                         "host PID on A / on B 4100 / 5200"]
    assert lines[4] == "checkpoint 2 files, 401 KiB (largest: pages-1.img, core-1.img)"
    assert "<th style='text-align:left'>kept counting</th><td>yes</td>" in table.html
    restarted = live_move.LiveMove([7, 8, 9], [1, 2, 3], 1, 2)
    assert not restarted.kept_counting
    assert "kept counting no" in [" ".join(line.split()) for line in restarted.table().text.splitlines()]
