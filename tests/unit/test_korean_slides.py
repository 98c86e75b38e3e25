"""The Korean decks (slides/ko/) are the English decks (slides/) with only their Markdown translated.

A Korean deck is built by ``scripts/slides --lang ko`` exactly as its English deck is built: the
same cells make the same figures, the same slide types cut the same slides (the PDF handout's page
count is checked against them), the same tags hide the same code. So, for every deck
``slides/NN_name.ipynb`` there is ``slides/ko/NN_name.ipynb`` with:

- the same notebook metadata, and the same cells in the same order: cell_type, id and the whole
  cell metadata (``slideshow.slide_type``, tags, ``jupyter.source_hidden``) equal, cell for cell;
- every code cell's source byte for byte the English one's, committed without outputs;
- every Markdown cell (slides and speaker notes) in Korean (Hangul), the first one still
  starting ``# NN · `` (the builder's index takes the deck's title from it);
- ``nbformat.validate`` passing.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests.support.korean import HANGUL

REPOSITORY = Path(__file__).resolve().parents[2]
ENGLISH = REPOSITORY / "slides"
KOREAN = ENGLISH / "ko"


def text_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def deck_problems(korean: Path, english: Path) -> list[str]:
    """Everything that keeps ``korean`` from being ``english`` with its Markdown translated; [] if none."""
    if not english.exists():
        return [f"{korean.name}: no English deck {english} of the same name"]
    try:
        notebook = nbformat.read(korean, as_version=4)
        nbformat.validate(notebook)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, nbformat.ValidationError) as error:
        return [f"{korean.name}: not a valid notebook: {error}"]
    original = nbformat.read(english, as_version=4)
    problems = []
    if notebook.metadata != original.metadata:
        problems.append("the notebook's metadata differs from the English deck's")
    if len(notebook.cells) != len(original.cells):
        problems.append(f"{len(notebook.cells)} cells, the English deck has {len(original.cells)}")
    for index, (cell, model) in enumerate(zip(notebook.cells, original.cells)):
        where = f"cell {index}"
        if (cell.cell_type, cell.get("id")) != (model.cell_type, model.get("id")):
            problems.append(f"{where}: {cell.cell_type} {cell.get('id')!r}, the English cell is "
                            f"{model.cell_type} {model.get('id')!r}")
            continue
        if cell.metadata != model.metadata:
            problems.append(f"{where}: metadata {dict(cell.metadata)}, the English cell's is {dict(model.metadata)} "
                            "(slide type, tags and hidden source are the same in both languages)")
        if cell.cell_type == "code":
            if text_of(cell) != text_of(model):
                problems.append(f"{where}: code differs from the English deck's (code cells are not translated)")
            if cell.get("outputs") or cell.get("execution_count") is not None:
                problems.append(f"{where}: has outputs or an execution count (commit it cleared)")
        elif cell.cell_type == "markdown" and not HANGUL.search(text_of(cell)):
            problems.append(f"{where}: Markdown without Korean text (not translated?)")
    number = korean.name.split("_", 1)[0]
    if notebook.cells and not text_of(notebook.cells[0]).startswith(f"# {number} · "):
        problems.append(f"the first cell does not start with the deck's title '# {number} · …'")
    return [f"{korean.name}: {problem}" for problem in problems]


def english_decks() -> list[Path]:
    return sorted(ENGLISH.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("english", english_decks(), ids=lambda path: path.stem.split("_", 1)[0])
def test_the_korean_deck_is_the_english_one_translated(english):
    korean = KOREAN / english.name
    assert korean.exists(), f"{english.name} has no Korean deck in slides/ko/"
    problems = deck_problems(korean, english)
    assert not problems, "\n".join(problems)


def test_no_korean_deck_without_an_english_one():
    strays = sorted({path.name for path in KOREAN.glob("*.ipynb")} - {path.name for path in english_decks()})
    assert not strays, f"Korean decks named after no English deck: {strays}"


# --- the checks can fail: synthetic decks ------------------------------------------------------------

def make_deck(folder: Path, title: str = "# 01 · 데모", code: str = "print(1)", notes: str = "발표자 노트",
              slide_type: str = "slide") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(title, id="title", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_code_cell(code, id="figure", metadata={"slideshow": {"slide_type": slide_type},
                                                                "tags": ["remove-input"]}),
        nbformat.v4.new_markdown_cell(notes, id="notes", metadata={"slideshow": {"slide_type": "notes"}}),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "01_demo.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def english(tmp_path) -> Path:
    return make_deck(tmp_path, title="# 01 · Demo", notes="Speaker notes")


def test_a_faithful_translation_passes(english, tmp_path):
    assert deck_problems(make_deck(tmp_path / "ko"), english) == []


def test_changed_code_fails(english, tmp_path):
    assert deck_problems(make_deck(tmp_path / "ko", code="print(2)"), english) == [
        "01_demo.ipynb: cell 1: code differs from the English deck's (code cells are not translated)"]


def test_untranslated_notes_fail(english, tmp_path):
    assert deck_problems(make_deck(tmp_path / "ko", notes="Speaker notes"), english) == [
        "01_demo.ipynb: cell 2: Markdown without Korean text (not translated?)"]


def test_another_slide_type_fails(english, tmp_path):
    problems = deck_problems(make_deck(tmp_path / "ko", slide_type="-"), english)
    assert len(problems) == 1 and "cell 1: metadata" in problems[0], problems


def test_a_lost_title_fails(english, tmp_path):
    assert deck_problems(make_deck(tmp_path / "ko", title="# 데모"), english) == [
        "01_demo.ipynb: the first cell does not start with the deck's title '# 01 · …'"]


def test_outputs_fail(english, tmp_path):
    korean = make_deck(tmp_path / "ko")
    notebook = nbformat.read(korean, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nbformat.write(notebook, korean)
    assert deck_problems(korean, english) == [
        "01_demo.ipynb: cell 1: has outputs or an execution count (commit it cleared)"]
