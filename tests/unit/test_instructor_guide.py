"""docs/instructor.md stays true where a machine can check it.

The guide's workshop plans give each chapter minutes taken from the README's measured table
("The chapters and their times", written by scripts/chapter_times.py --write). These tests parse
both and fail when a plan names a chapter that does not exist, when the measured figures it quotes
differ from the README's, or when a chapter's measured reading + run time grows past what a plan
gives it. They also check every chapter, module and script path the guide names.

A plan is a Markdown table under a heading ``### Plan … (slot: N minutes)``, one row per block:

    | block | chapter | how | measured: reading + run | planning allowance | minutes |

``how`` starts with ``full`` (learners work through the whole chapter: minutes >= reading + run)
or ``demo`` (the instructor runs chosen sections on the projector: minutes >= the whole
chapter's run time, so that even running every cell fits). Rows without a chapter (a welcome,
a break) are allowance only. The ``**total**`` row is the sum, and at most the slot.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
GUIDE = REPOSITORY / "docs" / "instructor.md"
README = REPOSITORY / "README.md"
NOTEBOOKS = REPOSITORY / "notebooks"

TABLE_START = "<!-- chapter-times: start"
TABLE_END = "<!-- chapter-times: end -->"
PLAN_HEADING = re.compile(r"^### (Plan .*?) \(slot: (\d+) minutes\)\s*$", re.MULTILINE)
CHAPTER_NAME = re.compile(r"\b(\d\d_[a-z][a-z0-9_]*[a-z0-9])\b")
CHAPTER_FILE = re.compile(r"notebooks/(\d\d_[a-z0-9_]+)\.ipynb")
# Paths in the repository (not slides/build/ or build/book/: those are built, and ignored by git).
REPO_PATH = re.compile(r"`((?:teachdock|classroom|scripts|tests|notebooks|docs)/[A-Za-z0-9_./-]+)`")


@dataclass
class Row:
    block: str
    chapter: str | None
    how: str
    measured: str
    allowance: int
    minutes: int


@dataclass
class Plan:
    name: str
    slot: int
    rows: list[Row] = field(default_factory=list)
    total: int | None = None
    left: int | None = None  # "N minutes of the slot are left ..." under the table

    def chapters(self, how: str | None = None) -> list[str]:
        return [row.chapter for row in self.rows if row.chapter and (how is None or row.how.startswith(how))]


def measured_times(readme_text: str) -> dict[str, tuple[int, float]]:
    """{chapter: (reading minutes, seconds of all cells run)} from the README's table."""
    if TABLE_START not in readme_text or TABLE_END not in readme_text:
        raise ValueError("the README has no chapter-times table (its markers are missing)")
    block = readme_text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    times = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            times[cells[0].strip("`")] = (int(cells[2].split()[0]), float(cells[3].split()[0].replace(",", "")))
    if not times:
        raise ValueError("the README's chapter-times table is empty: run scripts/chapter_times.py --write")
    return times


def _number(cell: str) -> int:
    return int(cell.strip().strip("*").strip())


def parse_plans(guide_text: str) -> list[Plan]:
    """Every ``### Plan … (slot: N minutes)`` heading and the table under it."""
    plans = []
    headings = list(PLAN_HEADING.finditer(guide_text))
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(guide_text)
        next_heading = re.search(r"^#{1,3} ", guide_text[heading.end():end], re.MULTILINE)
        section = guide_text[heading.end(): heading.end() + next_heading.start() if next_heading else end]
        plan = Plan(heading.group(1), int(heading.group(2)))
        left = re.search(r"^(\d+) minutes of the slot are left", section, re.MULTILINE)
        plan.left = int(left.group(1)) if left else None
        for line in section.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.startswith("|") or len(cells) != 6 or cells[0] in ("block", "") or cells[0].startswith("---"):
                continue
            if cells[0] == "**total**":
                plan.total = _number(cells[5])
                continue
            chapter = cells[1].strip("`") if cells[1].startswith("`") else None
            plan.rows.append(Row(cells[0], chapter, cells[2], cells[3], _number(cells[4]), _number(cells[5])))
        plans.append(plan)
    return plans


def plan_problems(plan: Plan, times: dict[str, tuple[int, float]], chapters: set[str]) -> list[str]:
    """What is wrong with one plan, as sentences (an empty list: nothing)."""
    problems = []
    for row in plan.rows:
        where = f"{plan.name}, {row.block!r}"
        if row.chapter is None:
            if row.minutes != row.allowance:
                problems.append(f"{where}: a block without a chapter is its allowance only")
            continue
        if row.chapter not in chapters:
            problems.append(f"{where}: no chapter {row.chapter} in notebooks/")
            continue
        if row.chapter not in times:
            problems.append(f"{where}: {row.chapter} is not in the README's measured table")
            continue
        reading, run_seconds = times[row.chapter]
        run = math.ceil(run_seconds / 60)
        if row.how.startswith("full"):
            wanted, floor = f"{reading} + {run}", reading + run_seconds / 60
            if row.minutes != reading + run + row.allowance:
                problems.append(f"{where}: minutes {row.minutes} != reading {reading} + run {run} "
                                f"+ allowance {row.allowance}")
        elif row.how.startswith("demo"):
            wanted, floor = f"run {run}", run_seconds / 60
            if row.minutes != run + row.allowance:
                problems.append(f"{where}: minutes {row.minutes} != run {run} + allowance {row.allowance}")
        else:
            problems.append(f"{where}: 'how' must start with full or demo, not {row.how!r}")
            continue
        if row.measured != wanted:
            problems.append(f"{where}: quotes {row.measured!r} as measured; the README says {wanted!r}")
        if row.minutes < floor:
            problems.append(f"{where}: {row.minutes} minutes, less than the measured {floor:.1f}")
    total = sum(row.minutes for row in plan.rows)
    if plan.total != total:
        problems.append(f"{plan.name}: its total row says {plan.total}, the rows add up to {total}")
    if total > plan.slot:
        problems.append(f"{plan.name}: {total} minutes do not fit the slot of {plan.slot}")
    elif plan.left != plan.slot - total:
        problems.append(f"{plan.name}: says {plan.left} minutes are left, the slot leaves {plan.slot - total}")
    return problems


def named_chapters(guide_text: str) -> set[str]:
    """Every chapter the guide names: notebooks/NN_x.ipynb, or `NN_x` in backticks."""
    names = set(CHAPTER_FILE.findall(guide_text))
    for code in re.findall(r"`([^`\n]+)`", guide_text):
        names.update(CHAPTER_NAME.findall(code))
    return names


def missing_paths(guide_text: str) -> list[str]:
    """The repository paths the guide names in backticks that do not exist."""
    return [path for path in REPO_PATH.findall(guide_text) if not (REPOSITORY / path.rstrip("/")).exists()]


def real_chapters() -> set[str]:
    return {path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}


# --- the guide as it is -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plans(guide_text) -> list[Plan]:
    found = parse_plans(guide_text)
    assert found, "docs/instructor.md has no '### Plan … (slot: N minutes)' tables"
    return found


def test_every_plan_fits_the_measured_times(plans):
    times = measured_times(README.read_text(encoding="utf-8"))
    problems = [problem for plan in plans for problem in plan_problems(plan, times, real_chapters())]
    assert not problems, "\n".join(problems)


def test_the_three_plans_are_there(plans):
    names = " / ".join(plan.name for plan in plans)
    assert any("3-hour" in plan.name for plan in plans), names
    assert any("full day" in plan.name for plan in plans), names
    assert sum("two days" in plan.name for plan in plans) == 2, names


def test_the_two_days_cover_every_chapter_in_full(plans):
    covered = [chapter for plan in plans if "two days" in plan.name for chapter in plan.chapters("full")]
    assert sorted(covered) == sorted(real_chapters()), covered


def test_the_full_day_ends_with_the_capstone(plans):
    full_day = next(plan for plan in plans if "full day" in plan.name)
    assert full_day.chapters()[-1] == "11_build_your_own_container"
    assert "11_build_your_own_container" in full_day.chapters("full")


def test_the_3_hour_introduction_keeps_the_core_in_full(plans):
    short = next(plan for plan in plans if "3-hour" in plan.name)
    assert {"00_start_here", "02_namespaces", "03_cgroups"} <= set(short.chapters("full")), short.chapters()


def test_every_chapter_the_guide_names_exists(guide_text):
    named = named_chapters(guide_text)
    assert named, "the guide names no chapter"
    assert not named - real_chapters(), sorted(named - real_chapters())


def test_every_path_the_guide_names_exists(guide_text):
    assert REPO_PATH.findall(guide_text), "the guide names no path"
    assert not missing_paths(guide_text), missing_paths(guide_text)


# --- the checks can fail: synthetic texts ---------------------------------------------------------------

SYNTHETIC_README = f"""
{TABLE_START} (scripts/chapter_times.py --write) -->
| chapter | words | reading | all cells run here | of which exercises | about |
| --- | ---: | ---: | ---: | ---: | ---: |
| `00_start_here` | 2,658 | 14 min | 90 s | 3 s | 20 min |
| `01_virtualization` | 5,711 | 29 min | 75 s | 9 s | 35 min |
{TABLE_END}
"""

GOOD_PLAN = """
### Plan X · a test (slot: 60 minutes)

| block | chapter | how | measured: reading + run | planning allowance | minutes |
| --- | --- | --- | ---: | ---: | ---: |
| welcome | — | — | — | 5 | 5 |
| first container | `00_start_here` | full: all of it | 14 + 2 | 9 | 25 |
| the VM, shown | `01_virtualization` | demo: section 4 | run 2 | 8 | 10 |
| **total** | | | | | **40** |

20 minutes of the slot are left for slower reading, questions and the unexpected.
"""

CHAPTERS = {"00_start_here", "01_virtualization"}


def synthetic_problems(plan_text: str, readme_text: str = SYNTHETIC_README) -> list[str]:
    times = measured_times(readme_text)
    return [problem for plan in parse_plans(plan_text) for problem in plan_problems(plan, times, CHAPTERS)]


def test_a_consistent_plan_passes():
    assert synthetic_problems(GOOD_PLAN) == []
    plan, = parse_plans(GOOD_PLAN)
    assert (plan.slot, plan.total, plan.chapters("full"), plan.chapters("demo")) == (
        60, 40, ["00_start_here"], ["01_virtualization"])


def test_a_table_that_grew_past_the_plan_fails():
    grown = SYNTHETIC_README.replace("| 14 min | 90 s |", "| 30 min | 90 s |")
    problems = synthetic_problems(GOOD_PLAN, grown)
    assert any("quotes '14 + 2' as measured; the README says '30 + 2'" in p for p in problems), problems
    assert any("less than the measured 31.5" in p for p in problems), problems


def test_a_demo_slower_than_its_slot_fails():
    slow = SYNTHETIC_README.replace("| 75 s |", "| 900 s |")
    problems = synthetic_problems(GOOD_PLAN, slow)
    assert any("less than the measured 15.0" in p for p in problems), problems


def test_an_unknown_chapter_fails():
    problems = synthetic_problems(GOOD_PLAN.replace("`01_virtualization`", "`01_virtualisation`"))
    assert any("no chapter 01_virtualisation" in p for p in problems), problems


def test_minutes_that_do_not_add_up_fail():
    problems = synthetic_problems(GOOD_PLAN.replace("| 9 | 25 |", "| 9 | 30 |"))
    assert any("!= reading 14 + run 2 + allowance 9" in p for p in problems), problems
    assert any("total row says 40, the rows add up to 45" in p for p in problems), problems
    assert any("says 20 minutes are left, the slot leaves 15" in p for p in problems), problems


def test_a_plan_longer_than_its_slot_fails():
    problems = synthetic_problems(GOOD_PLAN.replace("(slot: 60 minutes)", "(slot: 30 minutes)"))
    assert problems == ["Plan X · a test: 40 minutes do not fit the slot of 30"]


def test_an_empty_readme_table_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        measured_times(f"{TABLE_START} -->\n{TABLE_END}")
    with pytest.raises(ValueError, match="markers"):
        measured_times("no table here")


def test_a_misspelt_chapter_name_in_the_text_is_found():
    text = "Open `notebooks/02_namespace.ipynb`, then `03_cgroups`."
    assert named_chapters(text) == {"02_namespace", "03_cgroups"}
    assert named_chapters(text) - {"02_namespaces", "03_cgroups"} == {"02_namespace"}


def test_a_path_that_does_not_exist_is_found():
    text = "Read `teachdock/daemon/firewall.py` and `teachdock/daemon/firewal.py`; run `scripts/setup`."
    assert missing_paths(text) == ["teachdock/daemon/firewal.py"]
