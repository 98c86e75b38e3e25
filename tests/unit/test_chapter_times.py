"""The chapters' stated times are the measured ones (scripts/chapter_times.py), and stay so.

The README's table holds, per chapter, the words a learner reads, the reading time at 200 words a
minute, and the run time measured by executing the chapter; each chapter's first cell states the
same "about N minutes". When a chapter's text grows or shrinks by more than a minute of reading,
this test asks for the table to be measured again (``sudo .venv/bin/python scripts/chapter_times.py
--write``).
"""

import json
from pathlib import Path

import pytest

from tests.support.scripts import load_script

REPOSITORY = Path(__file__).resolve().parents[2]
chapter_times = load_script(REPOSITORY / "scripts" / "chapter_times.py")

CHAPTERS = chapter_times.chapters()
TABLE = chapter_times.read_table((REPOSITORY / "README.md").read_text(encoding="utf-8"))
REMEASURE = "run `sudo .venv/bin/python scripts/chapter_times.py --write` and commit the README and chapters"


def test_every_chapter_has_a_row_and_no_row_is_stale():
    assert sorted(TABLE) == [path.stem for path in CHAPTERS], REMEASURE


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_the_reading_time_matches_the_chapter_as_it_is(chapter):
    notebook = json.loads(chapter.read_text(encoding="utf-8"))
    row = TABLE[chapter.stem]
    now = chapter_times.reading_minutes(chapter_times.words_to_read(notebook))
    assert abs(now - row["reading"]) <= 1, f"{chapter.stem}: {now} min of reading now, {row['reading']} in the README; {REMEASURE}"
    assert row["about"] >= row["reading"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_the_chapter_states_the_measured_time(chapter):
    notebook = json.loads(chapter.read_text(encoding="utf-8"))
    assert chapter_times.stated_minutes(notebook) == TABLE[chapter.stem]["about"], REMEASURE


def test_a_chapter_past_an_hour_is_two_chapters():
    too_long = {name: row["about"] for name, row in TABLE.items() if row["about"] > 60}
    assert not too_long, f"split these chapters (NOTEBOOK_STYLE: a chapter past ~60 minutes is two): {too_long}"


def test_words_folded_solutions_and_exercise_cells_are_found():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# 99 · x\n", "**What you will learn** (about 5 minutes)\n", "one two"]},
        {"cell_type": "code", "source": ["print(1)\n"]},
        {"cell_type": "markdown", "source": ["## 3. Exercises\n", "three\n<details>\nhidden words here\n</details>"]},
        {"cell_type": "code", "source": ["answer = ...  # a number\n", "check(answer)\n"]},
        {"cell_type": "markdown", "source": ["## Recap\n"]},
        {"cell_type": "code", "source": ["cleanup()\n"]}]}
    assert chapter_times.exercise_cells(notebook) == {3}
    assert chapter_times.stated_minutes(notebook) == 5
    words = chapter_times.words_to_read(notebook)
    assert words == 24  # 3 of the title, 7 + 2 + 1 + 6 + 2 + 1 + 1 + 1 more; not the folded solution
    assert chapter_times.PLACEHOLDER.sub(r'\1"x"', "answer = ...  # n\nf(...)") == 'answer = "x"  # n\nf(...)'
    assert chapter_times.about_minutes(reading=12, run_seconds=200) == 20
