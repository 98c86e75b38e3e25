"""What a Korean learner reads: Hangul, and no English prose left between the names.

Checks' unit tests call ``reads_korean(result.message)`` with ``TEACHDOCK_LANG=ko`` set (the
``korean`` fixture of tests/unit/conftest.py): the sentence must have Hangul, and no run of four
English words — names such as ``namespaces=``, ``/proc/self/ns``, ``docker run`` or
``memory.max`` are fine, a sentence left in English is not.
"""

from __future__ import annotations

import re

HANGUL = re.compile(r"[가-힣]")
#: Four words of plain letters in a row, none of them touching code punctuation.
ENGLISH_PROSE = re.compile(r"(?<![\w./=`'\"-])(?:[A-Za-z]+[ ,]+){3}[A-Za-z]+(?![\w./=(`'\"-])")


def english_left(text: str) -> list[str]:
    """Runs of English prose in ``text`` (code in backticks and quoted values left out)."""
    plain = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"|<[^>]*>", " ", text)
    return ENGLISH_PROSE.findall(plain)


def reads_korean(text: str) -> bool:
    return bool(HANGUL.search(text)) and not english_left(text)
