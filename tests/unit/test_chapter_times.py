"""The chapters' stated times are the measured ones (scripts/chapter_times.py), and stay so.

The README's table holds, per chapter, the words a learner reads, the reading time at 200 words a
minute, and the run time measured by executing the chapter; each chapter's first cell states the
same "about N minutes". When a chapter's text grows or shrinks by more than a minute of reading,
this test asks for the table to be measured again (``sudo .venv/bin/python scripts/chapter_times.py
--write``).
"""

import json
import re
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


# --- the Korean chapters (notebooks/ko/) state the same time, rewritten with the English one -----------

def _chapter(folder: Path, first: str, name: str = "03_demo.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    notebook = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": first.splitlines(True)},
                          {"cell_type": "code", "id": "b", "metadata": {}, "source": ["print(1)\n"],
                           "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _first_cell(path: Path) -> str:
    return "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])


ROW = {"chapter": "03_demo", "words": 4000, "reading": 20, "run": 130.0, "exercises": 10.0, "about": 25}


def test_write_rewrites_the_korean_chapters_minutes_too(tmp_path):
    english = _chapter(tmp_path, "# 03 · Demo\n**What you will learn** (about 15 minutes: 12 of reading at 200 words a "
                                 "minute and 1 of cells running, measured; time to think is extra)\n\nText.\n")
    korean = _chapter(tmp_path / "ko", "# 03 · 데모\n> 용어: [용어집](glossary.md)\n\n**이 장에서 배울 것** (약 15분: 읽기 "
                                        "12분(분당 200단어 기준), 셀 실행 1분(실측). 생각하는 시간은 별도입니다): 무엇을 배우는지.\n"
                                        "둘째 줄은 그대로.\n")
    assert chapter_times.write_stated_times(ROW, english, tmp_path / "ko") == [english, korean]
    assert "(about 25 minutes: 20 of reading at 200 words a minute and 3 of cells running" in _first_cell(english)
    text = _first_cell(korean)
    assert ("**이 장에서 배울 것** (약 25분: 분당 200단어 기준으로 읽기 20분, 셀 실행 3분(실측). "
            "생각하는 시간은 별도입니다): 무엇을 배우는지.\n둘째 줄은 그대로.\n") in text
    assert text.startswith("# 03 · 데모\n> 용어: [용어집](glossary.md)\n\n")
    stated = re.search(r"\(약 (\d+)분", text).group(1)
    assert int(stated) == ROW["about"]


def test_write_without_a_korean_chapter_writes_the_english_one_only(tmp_path):
    english = _chapter(tmp_path, "**What you will learn** (about 5 minutes: x)\n")
    assert chapter_times.write_stated_times(ROW, english, tmp_path / "ko") == [english]
    assert not (tmp_path / "ko").exists()


def test_a_korean_chapter_without_its_time_line_is_an_error(tmp_path):
    english = _chapter(tmp_path, "**What you will learn** (about 5 minutes: x)\n")
    _chapter(tmp_path / "ko", "# 03 · 데모\n배울 것: 많습니다.\n")
    with pytest.raises(SystemExit, match="이 장에서 배울 것"):
        chapter_times.write_stated_times(ROW, english, tmp_path / "ko")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_korean_chapter_can_be_rewritten_and_keeps_the_english_time(chapter, tmp_path):
    """Each notebooks/ko/ chapter has exactly one line --write finds; written from the README's row, it
    states what the English chapter states (the sync test's own check), and nothing else in it changes."""
    korean = chapter_times.KOREAN / chapter.name
    if not korean.exists():
        pytest.skip(f"no Korean {chapter.name} yet")
    sync = load_script(REPOSITORY / "tests" / "unit" / "test_korean_chapters.py")
    copy = tmp_path / "ko" / chapter.name
    copy.parent.mkdir()
    copy.write_bytes(korean.read_bytes())
    row = chapter_times.read_table((REPOSITORY / "README.md").read_text(encoding="utf-8"), full=True)[chapter.stem]
    chapter_times.write_stated_time(copy, row, "ko")
    before, after = json.loads(korean.read_text(encoding="utf-8")), json.loads(copy.read_text(encoding="utf-8"))
    assert before["cells"][1:] == after["cells"][1:] and before["metadata"] == after["metadata"]
    english_first = json.loads(chapter.read_text(encoding="utf-8"))["cells"][0]
    assert sync.time_problems(after["cells"][0], english_first) == []
