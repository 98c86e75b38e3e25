"""The workshop decks (slides/NN_name.ipynb) and the pure parts of their builder (scripts/build_slides.py).

Building runs every deck as root and takes minutes: tests/browser/test_slides.py does that. Here,
without running anything: every chapter has a deck; each deck is a slideshow (every cell has a
slide type), committed without outputs, made of the four parts an instructor needs, guarded where
it needs root, importing only what teachdock exports; and the builder's helpers.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from tests.unit.test_notebook_imports import teachdock_imports
from tests.unit.test_notebook_root_guards import unguarded_root_cells
from tests.support.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}
PARTS = ("## The idea", "## Type this", "## Exercise")  # and a picture: a code cell shown on a slide


builder = load_script(REPO / "scripts" / "build_slides.py")
DECKS = builder.decks()


def cells(deck) -> list[dict]:
    return json.loads(deck.path.read_text(encoding="utf-8"))["cells"]


def slide_type(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def test_every_chapter_has_a_deck():
    chapters = {path.stem for path in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert chapters, "no chapters found"
    assert sorted(chapters - {deck.name for deck in DECKS}) == [], "chapters without a deck in slides/"
    assert sorted({deck.name for deck in DECKS} - chapters) == [], "decks named after no chapter"


@pytest.mark.parametrize("deck", DECKS, ids=lambda deck: deck.number)
def test_deck_is_a_slideshow_without_outputs(deck):
    found = cells(deck)
    assert slide_type(found[0]) == "slide" and found[0]["cell_type"] == "markdown"
    assert found[0]["source"][0].startswith(f"# {deck.number} · "), "the first line is the chapter's title"
    for index, cell in enumerate(found):
        assert slide_type(cell) in SLIDE_TYPES, f"cell {index} has no slideshow.slide_type"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {index} has outputs"
            if slide_type(cell) not in ("skip", "notes"):
                assert "remove-input" in cell["metadata"].get("tags", []), (
                    f"cell {index} is shown on a slide: tag it remove-input (the room sees the figure, not the code)")
                assert cell["metadata"].get("jupyter", {}).get("source_hidden"), (
                    f"cell {index}: hide its source (jupyter.source_hidden) for RISE and JupyterLab too")


@pytest.mark.parametrize("deck", DECKS, ids=lambda deck: deck.number)
def test_deck_has_the_idea_a_picture_the_commands_and_an_exercise(deck):
    found = cells(deck)
    text = ["".join(cell["source"]) for cell in found if cell["cell_type"] == "markdown"]
    for part in PARTS:
        assert any(source.lstrip().startswith(part) for source in text), f"no slide starting with {part!r}"
    shown = [cell for cell in found if cell["cell_type"] == "code" and slide_type(cell) not in ("skip", "notes")]
    assert shown, "no picture: a code cell shown on a slide makes the deck's figure during the build"
    assert "cleanup.close()" in "".join(found[-1]["source"]), "the last cell removes what the deck made"


@pytest.mark.parametrize("deck", DECKS, ids=lambda deck: deck.number)
def test_deck_guards_its_root_cells_and_imports_public_names(deck):
    assert unguarded_root_cells(deck.path) == []
    statements = teachdock_imports(deck.path)
    assert statements
    for statement in statements:
        tree = ast.parse(statement)
        for alias in tree.body[0].names:
            assert not alias.name.startswith("_"), f"{statement}: a private name"
        exec(compile(tree, deck.path.name, "exec"), {})  # ImportError: a name teachdock no longer has


def test_slides_are_words_for_a_projector():
    """Few words a slide: a markdown slide of more than 60 words is a page, not a slide."""
    for deck in DECKS:
        for cell in cells(deck):
            if cell["cell_type"] == "markdown" and slide_type(cell) in ("slide", "-"):
                prose = "".join(line for line in "".join(cell["source"]).split("```")[::2])
                assert len(prose.split()) <= 60, f"{deck.name}: {prose[:60]!r}… has {len(prose.split())} words"


# --- the builder's helpers -------------------------------------------------------------------------

def test_decks_are_found_in_order_with_titles():
    assert [deck.number for deck in DECKS] == sorted(deck.number for deck in DECKS)
    assert DECKS[0].name == "00_start_here" and DECKS[0].title.startswith("00 · Start here")


def test_select_by_number_or_name_and_refuse_unknown():
    assert builder.select(DECKS, []) == DECKS
    assert [deck.name for deck in builder.select(DECKS, ["03", "05_images_and_layers"])] == [
        "03_cgroups", "05_images_and_layers"]
    with pytest.raises(SystemExit, match="no deck 42"):
        builder.select(DECKS, ["03", "42"])


def _fake_build(tmp_path, deck, *, pdf=True, source=None):
    entry = {"html": f"{deck.name}.slides.html", "source": source or builder.fingerprint(deck)}
    (tmp_path / entry["html"]).write_text("<html>")
    if pdf:
        entry["pdf"] = f"{deck.name}.pdf"
        (tmp_path / entry["pdf"]).write_bytes(b"%PDF-1.4")
    (tmp_path / "manifest.json").write_text(json.dumps({"decks": {deck.name: entry}}))


def test_up_to_date_only_for_a_build_of_the_current_source(tmp_path):
    deck = DECKS[0]
    assert not builder.up_to_date(tmp_path, [deck]), "no manifest: nothing built"
    _fake_build(tmp_path, deck)
    assert builder.up_to_date(tmp_path, [deck])
    assert not builder.up_to_date(tmp_path, [deck, DECKS[1]]), "a deck missing from the build"
    _fake_build(tmp_path, deck, source="0" * 64)
    assert not builder.up_to_date(tmp_path, [deck]), "built from another version of the deck"
    _fake_build(tmp_path, deck, pdf=False)
    assert builder.up_to_date(tmp_path, [deck], pdf=False) and not builder.up_to_date(tmp_path, [deck])


def test_fingerprint_follows_the_deck(tmp_path):
    copy = tmp_path / DECKS[0].path.name
    copy.write_bytes(DECKS[0].path.read_bytes())
    same = builder.fingerprint(builder.Deck(copy))
    assert same == builder.fingerprint(DECKS[0])
    copy.write_bytes(copy.read_bytes().replace(b"Start here", b"Start there"))
    assert builder.fingerprint(builder.Deck(copy)) != same


def test_handouts_print_reveals_print_mode_from_disk(tmp_path):
    assert builder.print_url(tmp_path / "03_cgroups.slides.html") == (
        (tmp_path / "03_cgroups.slides.html").as_uri() + "?print-pdf")


def test_progress_line_names_the_deck_and_each_step():
    line = builder.progress_line(3, 11, DECKS[3], {"executed": 21.43, "html": 0.8, "pdf": 2.06})
    assert line == f"slides: [ 3/11] {DECKS[3].name:30} executed 21.4 s · html 0.8 s · pdf 2.1 s"


def test_index_page_links_slides_and_handouts():
    page = builder.index_page([{"title": "03 · cgroups <limits>", "html": "03_cgroups.slides.html",
                                "pdf": "03_cgroups.pdf"},
                               {"title": "04 · Filesystems", "html": "04_filesystems.slides.html"}])
    assert '<a href="03_cgroups.slides.html">03 · cgroups &lt;limits&gt;</a>' in page
    assert '<a href="03_cgroups.pdf">PDF handout</a>' in page
    assert "04_filesystems.pdf" not in page
    assert "http" not in page, "the index loads nothing from outside"


def test_a_missing_set_up_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(builder, "REVEAL", tmp_path / "node_modules" / "reveal.js")
    with pytest.raises(builder.SetupMissing, match="run scripts/setup"):
        builder.check_setup(pdf=False)


def test_the_template_loads_nothing_from_outside():
    template = (REPO / "slides" / "template" / "teachdock" / "index.html.j2").read_text()
    for block in ("html_head_js", "jupyter_widgets", "html_head_js_mathjax", "footer_js"):
        assert f"block {block}" in template, f"the stock {block} block (CDN scripts) is not replaced"
    assert "http" not in template.replace("http-equiv", "")
    assert os.path.basename(builder.REVEAL_PREFIX) == "reveal.js"


# --- languages: scripts/slides --lang ko builds slides/ko/ into slides/build/ko/ ------------------------

def test_each_language_has_its_folder_and_its_build():
    english, korean = builder.language("en"), builder.language("ko")
    assert (english.folder, english.out) == (builder.SLIDES, builder.BUILD)
    assert (korean.folder, korean.out) == (builder.SLIDES / "ko", builder.BUILD / "ko")
    assert [deck.name for deck in builder.decks(korean.folder)] == [deck.name for deck in DECKS]


def test_an_unknown_language_is_refused_naming_those_there_are(capsys):
    with pytest.raises(ValueError, match=r"unknown language 'fr': the decks exist in en \(English\), ko \(한국어\)"):
        builder.language("fr")
    with pytest.raises(SystemExit) as refused:
        builder.main(["--lang", "fr"])
    assert refused.value.code == 2
    assert "argument --lang: unknown language 'fr'" in capsys.readouterr().err


def test_help_teaches_the_language_option(capsys):
    with pytest.raises(SystemExit):
        builder.main(["--help"])
    shown = capsys.readouterr().out
    assert "--lang LANGUAGE" in shown and "ko (한국어): slides/ko/ -> slides/build/ko/" in shown
    assert "scripts/slides --lang ko" in shown, "the examples show it"


@pytest.mark.parametrize("argv, folder, out, code", [
    (["--no-pdf"], "slides", "slides/build", "en"),
    (["--lang", "ko", "--no-pdf"], "slides/ko", "slides/build/ko", "ko"),
    (["--lang=ko", "03", "--no-pdf"], "slides/ko", "slides/build/ko", "ko"),
])
def test_main_builds_the_languages_decks_into_its_folder(monkeypatch, argv, folder, out, code):
    asked = {}

    def fake_build(wanted, into, *, pdf, lang):
        asked.update(wanted=wanted, into=into, pdf=pdf, lang=lang)

    monkeypatch.setattr(builder, "build", fake_build)
    assert builder.main(argv) == 0
    assert {deck.path.parent for deck in asked["wanted"]} == {REPO / folder}
    assert (asked["into"], asked["lang"].code, asked["pdf"]) == (REPO / out, code, False)
    if "03" in argv:
        assert [deck.number for deck in asked["wanted"]] == ["03"]
    else:
        assert len(asked["wanted"]) == len(DECKS)


def test_the_kernel_speaks_the_decks_language(monkeypatch):
    monkeypatch.setenv("TEACHDOCK_LANG", "ko")  # a shell left in Korean must not make the English decks Korean
    assert builder.kernel_environment("en")["TEACHDOCK_LANG"] == "en"
    korean = builder.kernel_environment("ko")
    assert korean["TEACHDOCK_LANG"] == "ko" and korean["PATH"] == os.environ["PATH"]


def test_the_korean_index_page_is_korean():
    page = builder.index_page([{"title": "03 · cgroup", "html": "03_cgroups.slides.html", "pdf": "03_cgroups.pdf"}],
                              builder.language("ko"))
    assert '<html lang="ko">' in page and "PDF 유인물" in page and "scripts/slides --lang ko" in page
    assert "'NanumGothic','Noto Sans CJK KR'" in page
    english = builder.index_page([{"title": "03 · cgroups", "html": "03_cgroups.slides.html"}])
    assert '<html lang="en">' in english and "Nanum" not in english


def test_the_template_sets_korean_decks_in_a_font_with_hangul():
    template = (REPO / "slides" / "template" / "teachdock" / "index.html.j2").read_text()
    korean = template.split("html:lang(ko) {", 1)[1].split("}", 1)[0]
    for variable in ("--r-main-font", "--r-heading-font", "--jp-content-font-family"):
        stack = re.search(rf"{variable}:([^;]*);", korean).group(1)
        assert stack.strip().startswith("'NanumGothic', 'Noto Sans CJK KR'"), f"{variable}: {stack}"


def test_the_exported_page_says_its_language(tmp_path):
    import nbformat  # noqa: PLC0415

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# 00 · 시작하기", metadata={"slideshow": {"slide_type": "slide"}})]
    for code in ("en", "ko"):
        builder.export(notebook, tmp_path / f"{code}.html", code)
        assert f'<html lang="{code}">' in (tmp_path / f"{code}.html").read_text()


def _pretend_to_build(monkeypatch):
    """build() with every slow step replaced: no kernel, no reveal.js, no Chromium."""
    import nbformat  # noqa: PLC0415

    monkeypatch.setattr(builder, "check_setup", lambda *, pdf: None)
    monkeypatch.setattr(builder, "copy_reveal", lambda build: (build / "reveal.js").mkdir())
    monkeypatch.setattr(builder, "execute", lambda deck, scratch, lang: nbformat.read(deck.path, as_version=4))
    monkeypatch.setattr(builder, "export", lambda notebook, out, lang: out.write_text(f'<html lang="{lang}">'))


def test_building_one_language_keeps_the_others_build(monkeypatch, tmp_path):
    _pretend_to_build(monkeypatch)
    out = tmp_path / "build"
    english, korean = builder.language("en"), builder.language("ko")
    builder.build(DECKS[:1], out / "ko", pdf=False, say=lambda line: None, lang=korean)
    builder.build(DECKS[:2], out, pdf=False, say=lambda line: None, lang=english)
    assert (out / "ko" / "manifest.json").is_file(), "the English build threw the Korean one away"
    assert json.loads((out / "ko" / "manifest.json").read_text())["language"] == "ko"
    assert '<html lang="ko">' in (out / "ko" / f"{DECKS[0].name}.slides.html").read_text()
    assert (out / f"{DECKS[1].name}.slides.html").is_file()
    builder.build(DECKS[1:2], out / "ko", pdf=False, say=lambda line: None, lang=korean)
    assert (out / f"{DECKS[1].name}.slides.html").is_file(), "the Korean build threw the English one away"
    assert not (out / "ko" / f"{DECKS[0].name}.slides.html").exists(), "a build replaces its own folder"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["build"], "no scratch left behind"
    assert not [path for path in out.iterdir() if path.name.startswith(".slides-")]


def test_a_failed_build_leaves_the_last_one(monkeypatch, tmp_path):
    _pretend_to_build(monkeypatch)
    out = tmp_path / "build"
    builder.build(DECKS[:1], out, pdf=False, say=lambda line: None)

    def failing(deck, scratch, lang):
        raise OSError("the kernel died")

    monkeypatch.setattr(builder, "execute", failing)
    with pytest.raises(RuntimeError, match="failed while running"):
        builder.build(DECKS[:1], out / "ko", pdf=False, say=lambda line: None, lang=builder.language("ko"))
    assert (out / "manifest.json").is_file() and not (out / "ko").exists()
    assert not [path for path in out.iterdir() if path.name.startswith(".slides-")]
