"""The learner's language: every sentence the lab shows goes through ``say``.

The course exists in English (``notebooks/``) and Korean (``notebooks/ko/``). The chapters'
code cells are the same in both, so the language cannot come from the notebook: it comes from
the setting ``scripts/lab --lang ko`` gives every kernel, the environment variable
``TEACHDOCK_LANG`` (``en`` or ``ko``; English when unset). ``teachdock doctor --lang ko`` sets it
for one command.

``say`` takes the English sentence itself, gettext's way, so the code still reads as English
and a learner who opens a check finds its hint right there:

    return CheckResult(False, say("{kind} was asked for in namespaces=, so the container got "
                                  "a new one: not shared.", kind=kind))

The Korean sentences live in gettext catalogues, ``teachdock/lab/locale/ko/<package>.po`` (one
per chapter package, with its chapter's has_root/Prediction sentences; ``common.po`` for what
several packages say, ``slides.po`` for the decks' own), read with Babel, which JupyterLab
already brings; each entry is the English ``msgid`` and its Korean ``msgstr``. Placeholders
are ``str.format`` names (``{kind}``), the same in both; a literal brace is doubled (``{{``). A
sentence with no Korean yet falls back to English, and ``tests/unit/test_message_catalogue.py``
fails on it: every ``say`` in the code, every ``has_root``/``Prediction`` sentence in a notebook,
must have its Korean, with the same placeholders, and no catalogue entry may outlive its English.
A TEACHDOCK_LANG that names no language of the course gives English and a warning, once.

Plots need a font with Hangul: in Korean, importing teachdock.lab (``plot_fonts``) puts
NanumGothic (``fonts-nanum``, installed by scripts/setup) before matplotlib's default.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

LANGUAGES = {"en": "English", "ko": "한국어"}
LOCALE = Path(__file__).resolve().parents[1] / "locale"  # teachdock/lab/locale/<language>/<package>.po
KOREAN_FONTS = ["NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "UnDotum"]


def language() -> str:
    """``en`` or ``ko``, from TEACHDOCK_LANG (unset: ``en``). A setting that names no language of
    the course gives English, with a warning once: never silently."""
    setting = os.environ.get("TEACHDOCK_LANG", "").strip()
    code = language_of(setting) if setting else "en"
    if code is None:
        _warn_unknown_language(setting)
        return "en"
    return code


def language_of(setting: str) -> str | None:
    """The course's language a setting names (``ko``, ``ko_KR.UTF-8`` and ``ko-KR`` are ``ko``), or None."""
    code = setting.strip().lower().replace("-", "_").split("_")[0].split(".")[0]
    return code if code in LANGUAGES else None


@cache
def _warn_unknown_language(setting: str) -> None:
    """Once per process, on stderr (red under a notebook cell, a line in a terminal); in English,
    since the setting names no other language to say it in."""
    known = ", ".join(LANGUAGES)
    print(f"teachdock: warning: TEACHDOCK_LANG={setting!r} is not a language of the course ({known}); "
          "speaking English", file=sys.stderr)  # the same in every language


class SaidWhenRead(Mapping):
    """A table with sentences in it, made anew (``make()``) each time it is read, not at import:
    a module constant would keep the language of the moment it was imported, this one speaks the
    learner's (``REASONS.items()`` in a Korean notebook prints Korean)."""

    def __init__(self, make):
        self._make = make

    def __getitem__(self, key):
        return self._make()[key]

    def __iter__(self):
        return iter(self._make())

    def __len__(self) -> int:
        return len(self._make())

    def __repr__(self) -> str:
        return repr(self._make())


class MadeWhenRead(Sequence):
    """The same for a list of records with sentences in them (``TIMELINE``, ``ARCHITECTURES``)."""

    def __init__(self, make):
        self._make = make

    def __getitem__(self, index):
        return self._make()[index]

    def __len__(self) -> int:
        return len(self._make())

    def __iter__(self):
        return iter(self._make())

    def __repr__(self) -> str:
        return repr(self._make())


@contextmanager
def speaking(code: str | None):
    """Within the block the lab speaks ``code`` (None: as set); for one command of the CLI.

    ``teachdock doctor --lang ko`` speaks Korean, ``--json`` English; ``teachdock system reset``
    lists the chapters' leftovers in its own English whatever the terminal's TEACHDOCK_LANG.
    """
    before = os.environ.get("TEACHDOCK_LANG")
    if code:
        os.environ["TEACHDOCK_LANG"] = code
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TEACHDOCK_LANG", None)
        else:
            os.environ["TEACHDOCK_LANG"] = before


def say(english: str, **values) -> str:
    """The sentence in the learner's language, its ``{placeholders}`` filled with ``values``."""
    return translated(english).format(**values)


def translated(sentence: str) -> str:
    """A sentence written in a notebook's code cell (``has_root("...")``, ``Prediction("...")``)
    in the learner's language: looked up like ``say``'s, but taken as it is, braces and all."""
    code = language()
    return sentence if code == "en" else catalogue(code).get(sentence) or sentence


@cache
def catalogue(code: str) -> dict[str, str]:
    """English → translation for one language, from every ``.po`` file of its folder."""
    from babel.messages.pofile import read_po  # noqa: PLC0415 - only when a translation is asked for

    sentences: dict[str, str] = {}
    for path in sorted((LOCALE / code).glob("*.po")):
        with open(path, "rb") as f:
            for message in read_po(f):
                if message.id and message.string and not message.fuzzy:
                    sentences[message.id] = message.string
    return sentences


def plot_fonts() -> None:
    """Let matplotlib draw the learner's language; teachdock.lab calls it as it is imported.

    It must come before the first figure: a figure's title and labels take their font when the
    figure is made, not when their text is set. English needs nothing, so English never pays
    for importing matplotlib here.
    """
    if language() == "ko":
        _korean_fonts()


@cache
def _korean_fonts() -> None:
    """Let matplotlib draw Hangul (its default DejaVu Sans has none); once per process."""
    import matplotlib  # noqa: PLC0415 - matplotlib itself, not pyplot: a tenth of a second
    from matplotlib import font_manager  # noqa: PLC0415

    # matplotlib caches the fonts it found on its first run; one installed later (fonts-nanum by
    # scripts/setup, after matplotlib ran once) is unknown to it until added by file.
    if not {font.name for font in font_manager.fontManager.ttflist} & set(KOREAN_FONTS):
        for path in font_manager.findSystemFonts():
            if any(name in Path(path).name for name in ("NanumGothic", "NanumBarunGothic", "NotoSansCJK")):
                font_manager.fontManager.addfont(path)
    known = {font.name for font in font_manager.fontManager.ttflist}
    korean = [name for name in KOREAN_FONTS if name in known]
    # A list of families, not the generic "sans-serif": then matplotlib takes each glyph from the
    # first family that has it — Hangul from the Korean font, ☑ and − from DejaVu Sans.
    matplotlib.rcParams["font.family"] = korean[:1] + ["DejaVu Sans"]
    # and where a label names the generic family (["monospace", "sans-serif"]), Hangul from it
    matplotlib.rcParams["font.sans-serif"] = korean[:1] + [
        name for name in matplotlib.rcParams["font.sans-serif"] if name not in korean[:1]]
    # NanumGothic's bold is weight 600, not 700: matplotlib uses it and logs a warning for every
    # bold title, which would print in English under the learner's plot.
    logging.getLogger("matplotlib.font_manager").addFilter(
        lambda record: "Failed to find font weight" not in record.getMessage())
