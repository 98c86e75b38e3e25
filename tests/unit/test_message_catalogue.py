"""Every sentence the lab shows a learner has its Korean (teachdock/lab/common/language.py).

The English is the key, gettext's way. This test reads the code, not the running lab:

- every ``say("...", name=...)`` in teachdock/lab and teachdock/cli passes one literal sentence (no f-string, no
  variable: a computed sentence could never be looked up) with exactly the keyword values its
  ``{placeholders}`` name;
- every sentence a chapter's or a deck's code cell hands the lab to show (``has_root("...")``,
  ``Prediction("...")`` and its ``unit=`` when that is a word, such as "calls") is a literal too;
- each of those has a Korean entry in teachdock/lab/locale/ko/*.po: present, not fuzzy, with
  Hangul, with the same placeholders; an entry whose English no longer occurs anywhere is
  stale (its English was edited: the Korean must be read again) and fails as well;
- the places where the lab hands text to the learner — a ``CheckResult``'s message, a widget's
  ``description``/``placeholder``/``tooltip``, ``widgets.HTML``/``Label``, a plot's title and
  axis labels, ``print`` — get no English sentence that skipped ``say`` (a line may say
  ``# the same in every language`` when its words are names, such as a file or a unit).
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.support.korean import HANGUL

REPOSITORY = Path(__file__).resolve().parents[2]
CODE = REPOSITORY / "teachdock"
LAB = CODE / "lab"
NOTEBOOKS = REPOSITORY / "notebooks"
SLIDES = REPOSITORY / "slides"  # the workshop decks: their code cells hand the lab sentences too
KOREAN = LAB / "locale" / "ko"
SAME_IN_EVERY_LANGUAGE = "# the same in every language"

#: Calls whose first argument (or keyword) is text a learner reads.
SHOWN_AS_FIRST_ARGUMENT = {"CheckResult": 1, "HTML": 0, "Label": 0, "set_title": 0, "set_xlabel": 0,
                           "set_ylabel": 0, "suptitle": 0, "print": 0}
SHOWN_AS_KEYWORD = {"description", "placeholder", "tooltip", "message"}
#: Notebook calls whose first argument the lab shows in the learner's language.
NOTEBOOK_SENTENCES = {"has_root", "Prediction"}


def placeholders(sentence: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(sentence) if name is not None}


def python_files():
    """The lab and the CLI: the layers below speak to programs and logs, not to learners (a ``say``
    there, such as image/images.py's progress callback, is another function)."""
    return sorted(path for folder in (LAB, CODE / "cli") for path in folder.rglob("*.py")
                  if "__pycache__" not in path.parts)


def called_name(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else (
        call.func.attr if isinstance(call.func, ast.Attribute) else None)


def say_calls():
    """(where, sentence or None, keyword names) for every say(...) in the code."""
    for path in python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called_name(node) == "say":
                where = f"{path.relative_to(REPOSITORY)}:{node.lineno}"
                first = node.args[0] if node.args else None
                sentence = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                names = {keyword.arg for keyword in node.keywords}
                yield where, sentence, names, len(node.args)


def code_cells(notebook: Path):
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            yield "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def notebook_sentences():
    """(where, sentence or None) for every has_root/Prediction sentence in the English chapters and decks."""
    for notebook in sorted([*NOTEBOOKS.glob("*.ipynb"), *SLIDES.glob("*.ipynb")]):
        for source in code_cells(notebook):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and called_name(node) in NOTEBOOK_SENTENCES and node.args:
                    first = node.args[0]
                    sentence = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
                    yield f"{notebook.relative_to(REPOSITORY)} {called_name(node)}({ast.unparse(first)[:50]}…)", sentence
                    for keyword in node.keywords:  # Prediction(..., unit="calls"): a word, not a symbol like ms
                        if (keyword.arg == "unit" and isinstance(keyword.value, ast.Constant)
                                and re.fullmatch(r"[a-z]{3,}", str(keyword.value.value))):
                            yield f"{notebook.relative_to(REPOSITORY)} Prediction(unit={keyword.value.value!r})", keyword.value.value


def korean_entries():
    """msgid → (msgstr, fuzzy, file) from every Korean catalogue; a msgid in two files fails here."""
    entries: dict[str, tuple[str, bool, str]] = {}
    for path in sorted(KOREAN.glob("*.po")):
        with open(path, "rb") as f:
            for message in read_po(f, abort_invalid=True):
                if not message.id:
                    continue
                assert message.id not in entries, (
                    f"{message.id[:60]!r} is in both {entries[message.id][2]} and {path.name}: keep one")
                entries[message.id] = (message.string, message.fuzzy, path.name)
    return entries


def needed_sentences() -> dict[str, str]:
    needed = {sentence: where for where, sentence, _, _ in say_calls() if sentence}
    needed.update({sentence: where for where, sentence in notebook_sentences() if sentence})
    return needed


def test_every_say_passes_one_literal_sentence_and_its_values():
    problems = []
    for where, sentence, names, positional in say_calls():
        if "teachdock/lab/common/language.py" in where:
            continue  # the docstring's example
        if sentence is None or positional != 1:
            problems.append(f"{where}: say() needs one literal English sentence (values as keywords), not a "
                            "computed one: a computed sentence has no catalogue entry")
            continue
        if None in names:
            problems.append(f"{where}: say(**values) hides the placeholders; name each value")
        elif placeholders(sentence) != names:
            problems.append(f"{where}: {{{', '.join(sorted(placeholders(sentence)))}}} in the sentence, but values "
                            f"{sorted(names)}")
    assert not problems, "\n".join(problems)


def test_the_notebooks_hand_the_lab_literal_sentences():
    computed = [where for where, sentence in notebook_sentences() if sentence is None]
    assert not computed, "computed sentences can't be translated:\n" + "\n".join(computed)


def test_every_sentence_has_its_korean():
    entries = korean_entries()
    problems = []
    for sentence, where in sorted(needed_sentences().items(), key=lambda item: item[1]):
        if sentence not in entries:
            problems.append(f"{where}: no Korean for {sentence[:70]!r}")
            continue
        korean, fuzzy, file = entries[sentence]
        if not korean or fuzzy:
            problems.append(f"{file}: {sentence[:70]!r} is {'fuzzy' if fuzzy else 'empty'}")
        elif not HANGUL.search(korean):
            problems.append(f"{file}: {sentence[:70]!r} has no Hangul in its Korean")
        elif placeholders(korean) != placeholders(sentence):
            problems.append(f"{file}: {sentence[:70]!r}: placeholders {sorted(placeholders(korean))} in the Korean, "
                            f"{sorted(placeholders(sentence))} in the English")
    assert not problems, f"{len(problems)} untranslated:\n" + "\n".join(problems)


def test_no_korean_entry_outlives_its_english():
    needed = needed_sentences()
    stale = [f"{file}: {sentence[:80]!r}" for sentence, (_, _, file) in korean_entries().items() if sentence not in needed]
    assert not stale, ("no code says these any more (edited English? translate the new one and delete these):\n"
                       + "\n".join(stale))


def english_words(text: str) -> int:
    """Words of prose: letters only, two or more, not part of a name like memory.max or /proc."""
    return len(re.findall(r"(?<![\w./`{-])[A-Za-z]{2,}(?![\w./`(}-])", text))


def literal_text(node: ast.AST) -> str | None:
    """The fixed text of a str constant or f-string (values left out); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " ".join(part.value for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        parts = [literal_text(node.left), literal_text(node.right)]
        return " ".join(part for part in parts if part) or None
    return None


@cache
def unsaid_english() -> tuple[str, ...]:
    """Every sentence handed to the learner without say(), read once for all the packages' tests."""
    return tuple(_unsaid_english())


def _unsaid_english():
    files = [path for path in python_files() if LAB in path.parents] + [CODE / "cli" / "doctor.py"]
    for path in files:
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines), str(path))):
            if not isinstance(node, ast.Call):
                continue
            shown = []
            position = SHOWN_AS_FIRST_ARGUMENT.get(called_name(node))
            if position is not None and len(node.args) > position:
                shown.append(node.args[position])
            shown += [keyword.value for keyword in node.keywords if keyword.arg in SHOWN_AS_KEYWORD]
            for argument in shown:
                text = literal_text(argument)
                span = lines[node.lineno - 1:(node.end_lineno or node.lineno)]
                if text and english_words(text) >= 2 and not any(SAME_IN_EVERY_LANGUAGE in line for line in span):
                    yield f"{path.relative_to(REPOSITORY)}:{node.lineno}: {text.strip()[:70]!r}"


@pytest.mark.parametrize("package", sorted(p.name for p in LAB.iterdir() if (p / "__init__.py").exists())
                         + ["cli/doctor.py"])
def test_the_lab_shows_no_english_sentence_without_say(package):
    found = [line for line in unsaid_english()
             if line.startswith(f"teachdock/lab/{package}/") or line.startswith(f"teachdock/{package}")]
    assert not found, f"{len(found)} sentences a learner reads skip say():\n" + "\n".join(found)


def test_say_speaks_korean_when_asked(monkeypatch, capsys):
    from teachdock.lab.common.checks import not_answered_yet  # noqa: PLC0415
    from teachdock.lab.common.language import _warn_unknown_language, say  # noqa: PLC0415

    monkeypatch.setenv("TEACHDOCK_LANG", "ko_KR.UTF-8")
    assert HANGUL.search(not_answered_yet().message)
    assert say("off by a factor of {factor} (more than you guessed)", factor=3) == "3배 차이 (예측보다 큼)"
    assert say("A sentence nobody translated, {n}", n=1) == "A sentence nobody translated, 1"  # English, never nothing
    monkeypatch.setenv("TEACHDOCK_LANG", "en")
    assert say("off by a factor of {factor} (more than you guessed)", factor=3).startswith("off by a factor of 3")
    monkeypatch.setenv("TEACHDOCK_LANG", "fr")  # unknown: English (scripts/lab refuses it before a kernel sees it)
    _warn_unknown_language.cache_clear()
    capsys.readouterr()
    assert not HANGUL.search(not_answered_yet().message)
    assert not HANGUL.search(not_answered_yet().message)
    warned = capsys.readouterr().err
    assert warned.count("TEACHDOCK_LANG='fr' is not a language of the course (en, ko); speaking English") == 1


def test_korean_plots_draw_hangul_and_symbols(monkeypatch, caplog):
    """In Korean, a figure draws Hangul from a Korean font and ☑, − from DejaVu Sans: no glyph is
    missing and no font warning is printed under the learner's plot (even bold: NanumGothic's bold
    is weight 600)."""
    import warnings  # noqa: PLC0415

    from matplotlib import font_manager  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    from teachdock.lab.common.language import KOREAN_FONTS, plot_fonts, say  # noqa: PLC0415

    if not any(any(name.replace(" ", "") in path for name in KOREAN_FONTS) for path in font_manager.findSystemFonts()):
        pytest.skip("no Korean font on this machine (scripts/setup installs fonts-nanum)")
    monkeypatch.setenv("TEACHDOCK_LANG", "ko")
    plot_fonts()  # what importing teachdock.lab does in a Korean kernel
    figure = Figure(figsize=(3, 1))
    axes = figure.subplots()
    axes.set_title(say("Lock in") + " ☑ ☐ −1", weight="bold")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" is a UserWarning
        with caplog.at_level("WARNING", logger="matplotlib.font_manager"):
            figure.savefig(io.BytesIO(), format="png")
    assert not caplog.records, [record.getMessage() for record in caplog.records]


def test_speaking_sets_the_language_for_a_block_and_puts_it_back(monkeypatch):
    from teachdock.lab.common.language import language, speaking  # noqa: PLC0415

    monkeypatch.setenv("TEACHDOCK_LANG", "ko")
    with speaking("en"):
        assert language() == "en"
    assert language() == "ko"
    with speaking(None):  # as set
        assert language() == "ko"
    monkeypatch.delenv("TEACHDOCK_LANG")
    with speaking("ko"):
        assert language() == "ko"
    assert "TEACHDOCK_LANG" not in os.environ
