"""docs/ko/instructor.md, the instructor's guide in Korean, stays true the way docs/instructor.md does.

Its plans are the English guide's plans, translated: a plan is a table under a heading
``### 계획 … (배정 시간: N분)``, one row per block,

    | 블록 | 장 | 방식 | 측정값: 읽기 + 실행 | 계획 여유 | 분 |

where ``방식`` starts with ``전체`` (full: minutes >= reading + run) or ``시연`` (demo: minutes >= the
whole chapter's run time), a demo's measured figure reads ``실행 N``, the ``**합계**`` row is the sum
and the line under the table says ``배정 시간 중 N분이 남습니다``. Read into the English test's
Plan and Row, every plan passes the same checks against the README's measured table
(tests/unit/test_instructor_guide.py's ``plan_problems``), and each plan equals the English guide's
plan of the same place, row for row: same slot, chapters, kinds, measured figures, allowances and
minutes. So when the README's times move, both guides fail until both are redone.

Also: every relative link resolves (the Korean chapters ``../../notebooks/ko/…``, the Korean decks
``../../slides/ko/…``, the glossary) and every chapter and deck is linked; every chapter and path
named in backticks exists; every paragraph of prose is Korean; and the guide says how to start the
lab and build the decks in Korean.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.korean import HANGUL
from tests.unit.test_instructor_guide import (
    GUIDE as ENGLISH_GUIDE,
    README,
    Plan,
    Row,
    measured_times,
    missing_paths,
    named_chapters,
    parse_plans,
    plan_problems,
    real_chapters,
)

REPOSITORY = Path(__file__).resolve().parents[2]
GUIDE = REPOSITORY / "docs" / "ko" / "instructor.md"
PLAN_HEADING = re.compile(r"^### (계획 .*?) \(배정 시간: (\d+)분\)\s*$", re.MULTILINE)
LEFT = re.compile(r"^배정 시간 중 (\d+)분이 남습니다", re.MULTILINE)
HOW = {"전체": "full", "시연": "demo"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _number(cell: str) -> int:
    return int(cell.strip().strip("*").strip())


def parse_korean_plans(guide_text: str) -> list[Plan]:
    """Every ``### 계획 … (배정 시간: N분)`` and its table, as the English test's Plans (``full``/``demo``, ``run N``)."""
    plans = []
    headings = list(PLAN_HEADING.finditer(guide_text))
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(guide_text)
        next_heading = re.search(r"^#{1,3} ", guide_text[heading.end():end], re.MULTILINE)
        section = guide_text[heading.end(): heading.end() + next_heading.start() if next_heading else end]
        plan = Plan(heading.group(1), int(heading.group(2)))
        left = LEFT.search(section)
        plan.left = int(left.group(1)) if left else None
        for line in section.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.startswith("|") or len(cells) != 6 or cells[0] in ("블록", "") or cells[0].startswith("---"):
                continue
            if cells[0] == "**합계**":
                plan.total = _number(cells[5])
                continue
            chapter = cells[1].strip("`") if cells[1].startswith("`") else None
            kind = next((english for korean, english in HOW.items() if cells[2].startswith(korean)), cells[2])
            measured = re.sub(r"^실행 (\d+)$", r"run \1", cells[3])
            plan.rows.append(Row(cells[0], chapter, kind, measured, _number(cells[4]), _number(cells[5])))
        plans.append(plan)
    return plans


def plan_differences(korean: list[Plan], english: list[Plan]) -> list[str]:
    """Where the Korean plans are not the English ones (the blocks' names aside)."""
    if len(korean) != len(english):
        return [f"{len(korean)} plans, the English guide has {len(english)}"]
    problems = []
    for ours, theirs in zip(korean, english):
        def shape(plan: Plan):
            return (plan.slot, plan.total, plan.left,
                    [(row.chapter, row.how.split(":")[0], row.measured, row.allowance, row.minutes) for row in plan.rows])
        if shape(ours) != shape(theirs):
            problems.append(f"{ours.name} is not the English {theirs.name}: {shape(ours)} != {shape(theirs)}")
    return problems


def broken_links(guide_text: str, folder: Path) -> list[str]:
    return [target for target in LINK.findall(guide_text)
            if not re.match(r"^[a-z]+:", target) and not target.startswith("#")
            and not (folder / target.split("#")[0]).resolve().exists()]


def english_paragraphs(guide_text: str) -> list[str]:
    """Paragraphs of prose (not code, not a table, not a heading) with no Hangul."""
    prose = re.sub(r"```.*?```", "", guide_text, flags=re.DOTALL)
    found = []
    for paragraph in re.split(r"\n\s*\n", prose):
        text = paragraph.strip()
        if not text or text.startswith(("|", "#")) or HANGUL.search(text):
            continue
        if len(re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)", "", text).split()) >= 4:
            found.append(text[:80])
    return found


# --- the guide as it is -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plans(guide_text) -> list[Plan]:
    found = parse_korean_plans(guide_text)
    assert found, "docs/ko/instructor.md has no '### 계획 … (배정 시간: N분)' tables"
    return found


def test_every_plan_fits_the_measured_times(plans):
    times = measured_times(README.read_text(encoding="utf-8"))
    problems = [problem for plan in plans for problem in plan_problems(plan, times, real_chapters())]
    assert not problems, "\n".join(problems)


def test_the_plans_are_the_english_guides(plans):
    problems = plan_differences(plans, parse_plans(ENGLISH_GUIDE.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_the_three_plans_are_there(plans):
    names = " / ".join(plan.name for plan in plans)
    assert any("3시간" in plan.name for plan in plans), names
    assert any("하루 과정" in plan.name for plan in plans), names
    assert sum("이틀 과정" in plan.name for plan in plans) == 2, names


def test_every_link_resolves_and_every_korean_chapter_and_deck_is_linked(guide_text):
    assert not broken_links(guide_text, GUIDE.parent), broken_links(guide_text, GUIDE.parent)
    targets = set(LINK.findall(guide_text))
    for chapter in sorted(real_chapters()):
        assert f"../../notebooks/ko/{chapter}.ipynb" in targets, f"the Korean chapter {chapter} is not linked"
        assert f"../../slides/ko/{chapter}.ipynb" in targets, f"the Korean deck {chapter} is not linked"
    assert "../../notebooks/ko/glossary.md" in targets and "../instructor.md" in targets


def test_every_chapter_and_path_the_guide_names_exists(guide_text):
    assert not named_chapters(guide_text) - real_chapters(), sorted(named_chapters(guide_text) - real_chapters())
    assert not missing_paths(guide_text), missing_paths(guide_text)


def test_the_guide_is_korean(guide_text):
    assert guide_text.startswith("# teachdock 워크숍 강사 안내서\n")
    assert not english_paragraphs(guide_text), english_paragraphs(guide_text)


def test_the_guide_says_how_to_teach_in_korean(guide_text):
    assert "scripts/lab --lang ko" in guide_text
    assert "scripts/slides --lang ko" in guide_text and "slides/build/ko/" in guide_text


# --- the checks can fail: synthetic texts ---------------------------------------------------------------

KOREAN_PLAN = """
### 계획 X · 시험 (배정 시간: 60분)

| 블록 | 장 | 방식 | 측정값: 읽기 + 실행 | 계획 여유 | 분 |
| --- | --- | --- | ---: | ---: | ---: |
| 환영 | — | — | — | 5 | 5 |
| 첫 컨테이너 | `00_start_here` | 전체: 모두 | 14 + 2 | 9 | 25 |
| VM 보여 주기 | `01_virtualization` | 시연: 4절 | 실행 2 | 8 | 10 |
| **합계** | | | | | **40** |

배정 시간 중 20분이 남습니다. 느린 읽기, 질문, 예상하지 못한 일에 씁니다.
"""

ENGLISH_PLAN = """
### Plan X · a test (slot: 60 minutes)

| block | chapter | how | measured: reading + run | planning allowance | minutes |
| --- | --- | --- | ---: | ---: | ---: |
| welcome | — | — | — | 5 | 5 |
| first container | `00_start_here` | full: all of it | 14 + 2 | 9 | 25 |
| the VM, shown | `01_virtualization` | demo: section 4 | run 2 | 8 | 10 |
| **total** | | | | | **40** |

20 minutes of the slot are left for slower reading, questions and the unexpected.
"""


def test_a_translated_plan_reads_as_the_english_one():
    ours, = parse_korean_plans(KOREAN_PLAN)
    assert (ours.slot, ours.total, ours.left, ours.chapters("full"), ours.chapters("demo")) == (
        60, 40, 20, ["00_start_here"], ["01_virtualization"])
    assert plan_differences([ours], parse_plans(ENGLISH_PLAN)) == []


def test_a_plan_that_drifted_from_the_english_one_fails():
    drifted = parse_korean_plans(KOREAN_PLAN.replace("| 9 | 25 |", "| 14 | 30 |").replace("**40**", "**45**"))
    problems = plan_differences(drifted, parse_plans(ENGLISH_PLAN))
    assert len(problems) == 1 and "계획 X · 시험 is not the English Plan X · a test" in problems[0], problems
    assert plan_differences([], parse_plans(ENGLISH_PLAN)) == ["0 plans, the English guide has 1"]


def test_a_demo_row_keeps_its_kind_and_its_run():
    ours, = parse_korean_plans(KOREAN_PLAN.replace("시연: 4절", "전체: 4절"))
    assert ours.chapters("demo") == [] and ours.chapters("full") == ["00_start_here", "01_virtualization"]
    assert ours.rows[2].measured == "run 2"


def test_a_broken_link_and_an_english_paragraph_are_found(tmp_path):
    (tmp_path / "there.md").write_text("x")
    text = "[있음](there.md) · [없음](missing.ipynb) · [웹](https://example.org)\n\nThis paragraph was left in English.\n"
    assert broken_links(text, tmp_path) == ["missing.ipynb"]
    assert english_paragraphs(text) == ["This paragraph was left in English."]
    assert english_paragraphs("| a table | row |\n\n```bash\necho not prose here\n```\n\n`td run` 명령.") == []
