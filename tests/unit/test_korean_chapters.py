"""The Korean chapters (notebooks/ko/) are the English chapters with only their Markdown translated.

A translated chapter must run exactly the code its English chapter runs, or the root test run,
which leaves notebooks/ko/ out (pyproject.toml: ``--ignore=notebooks/ko``), would stop proving
anything about it. So, for every ``notebooks/ko/NN_name.ipynb``:

- ``notebooks/NN_name.ipynb`` exists;
- the same cells in the same order: cell_type, id and tags equal, cell for cell;
- every code cell's source is byte for byte the English one's, with no outputs and no
  execution count (committed clean);
- every Markdown cell has Korean text (Hangul): a cell left in English is a cell not translated;
- every relative link leads to a file that exists; a link to a chapter (``X.ipynb``) stays inside
  notebooks/ko/, except ``../NN_name.ipynb``, the chapter's own English original; the first
  Markdown cell links the glossary (``glossary.md``) and states the English chapter's time in
  Korean ("**이 장에서 배울 것** (약 N분: …", with the same minutes of reading and of cells);
- ``nbformat.validate`` passes.

``test_every_english_chapter_has_a_korean_one`` is separate on purpose: the translations land one
chapter at a time, and that test lists what is still missing.

The glossary (notebooks/ko/glossary.md, "용어집") is checked too: its table parses, each English
term appears once, in alphabetical order, and the terms fixed for the course keep exactly their
Korean (GLOSSARY_FIXED below).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from tests.support.korean import HANGUL

REPOSITORY = Path(__file__).resolve().parents[2]
ENGLISH = REPOSITORY / "notebooks"
KOREAN = ENGLISH / "ko"
GLOSSARY = KOREAN / "glossary.md"

#: The stated time of a chapter (scripts/chapter_times.py measures it) and its Korean form.
ENGLISH_TIME = re.compile(r"\*\*What you will learn\*\* \(about (\d+) minutes: (\d+) of reading .*? and (\d+) of cells")
KOREAN_TIME = re.compile(r"\*\*이 장에서 배울 것\*\* \(약 (\d+)분[^\n]*")
#: [text](target "title"), ![alt](target), <a href="target">, and [label]: target lines.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'][^)]*[\"'])?\s*\)")
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

#: The terms BRIEFING18 fixed for the course: the glossary must give exactly this Korean.
GLOSSARY_FIXED = {
    "bare-metal": "베어메탈",
    "bridge": "브리지",
    "build": "빌드",
    "capability": "케이퍼빌리티",
    "cgroup": "cgroup(컨트롤 그룹)",
    "check": "확인",
    "checkpoint": "체크포인트",
    "container": "컨테이너",
    "copy-on-write": "쓰기 시 복사(copy-on-write)",
    "daemon": "데몬",
    "digest": "다이제스트",
    "exercise": "연습 문제",
    "health check": "헬스 체크",
    "host": "호스트",
    "hypervisor": "하이퍼바이저",
    "image": "이미지",
    "kernel": "커널",
    "layer": "레이어",
    "manifest": "매니페스트",
    "memory limit": "메모리 제한",
    "mount": "마운트",
    "namespace": "네임스페이스",
    "network namespace": "네트워크 네임스페이스",
    "OOM killer": "OOM 킬러",
    "operating system": "운영체제",
    "overlay filesystem": "오버레이 파일시스템",
    "port publishing": "포트 공개(publish)",
    "predict": "예측",
    "prediction": "예측",
    "process": "프로세스",
    "pull": "풀",
    "push": "푸시",
    "registry": "레지스트리",
    "root filesystem": "루트 파일시스템",
    "rootless": "루트리스",
    "runtime": "런타임",
    "seccomp": "seccomp",
    "socket": "소켓",
    "swap": "스왑",
    "system call": "시스템 콜",
    "throttling": "스로틀링",
    "user namespace": "사용자 네임스페이스",
    "virtual machine": "가상 머신(VM)",
    "virtualization": "가상화",
    "volume": "볼륨",
    "whiteout": "화이트아웃",
}


# --- what the tests check, as functions of files (so that synthetic notebooks can fail them) ------

def text_of(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def links_in(markdown: str) -> list[str]:
    """Every link target in a Markdown cell: inline, image, HTML href/src and reference links."""
    inline = [target.strip("<>") for target in INLINE_LINK.findall(markdown)]
    return inline + HTML_LINK.findall(markdown) + REFERENCE_LINK.findall(markdown)


def is_relative(target: str) -> bool:
    return not URL_SCHEME.match(target) and not target.startswith(("#", "/"))


def link_problems(markdown: str, korean: Path, english: Path) -> list[str]:
    """What is wrong with the relative links of one Markdown cell of the Korean chapter ``korean``."""
    problems = []
    here = korean.parent.resolve()
    for target in links_in(markdown):
        if not is_relative(target):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue
        resolved = (here / path).resolve()
        if path.endswith(".ipynb") and resolved.parent != here and resolved != english.resolve():
            problems.append(f"link {target!r} leads out of the Korean chapters: a chapter link stays "
                            f"inside {here.name}/ (only ../{english.name}, this chapter's English original, may leave)")
        elif not resolved.exists():
            problems.append(f"link {target!r} leads to a file that does not exist ({resolved})")
    return problems


def chapter_problems(korean: Path, english: Path) -> list[str]:
    """Everything that keeps ``korean`` from being a faithful translation of ``english``; [] if none."""
    if not english.exists():
        return [f"{korean.name}: no English chapter {english} of the same name"]
    try:
        notebook = nbformat.read(korean, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, nbformat.ValidationError) as error:
        return [f"{korean.name}: not a notebook nbformat can read: {error}"]
    problems = []
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        problems.append(f"nbformat.validate: {error.message}")
    original = nbformat.read(english, as_version=4)
    ours, theirs = notebook.cells, original.cells
    if len(ours) != len(theirs):
        problems.append(f"{len(ours)} cells, the English chapter has {len(theirs)}")
    for index, (cell, model) in enumerate(zip(ours, theirs)):
        where = f"cell {index}"
        if cell.cell_type != model.cell_type:
            problems.append(f"{where}: {cell.cell_type}, the English cell is {model.cell_type}")
            continue
        if cell.get("id") != model.get("id"):
            problems.append(f"{where}: id {cell.get('id')!r}, the English cell's is {model.get('id')!r}")
        if cell.metadata.get("tags", []) != model.metadata.get("tags", []):
            problems.append(f"{where}: tags {cell.metadata.get('tags', [])}, the English cell's are "
                            f"{model.metadata.get('tags', [])}")
        if cell.cell_type == "code":
            if text_of(cell) != text_of(model):
                problems.append(f"{where}: code differs from the English chapter's (code cells are not translated)")
            if cell.get("outputs") or cell.get("execution_count") is not None:
                problems.append(f"{where}: has outputs or an execution count (commit it cleared)")
        elif cell.cell_type == "markdown":
            if not HANGUL.search(text_of(cell)):
                problems.append(f"{where}: Markdown without Korean text (not translated?)")
            problems += [f"{where}: {problem}" for problem in link_problems(text_of(cell), korean, english)]
    markdown = [cell for cell in ours if cell.cell_type == "markdown"]
    problems += time_problems(markdown[0] if markdown else None,
                              next((cell for cell in theirs if cell.cell_type == "markdown"), None))
    if not markdown or "glossary.md" not in [target.split("#")[0] for target in links_in(text_of(markdown[0]))]:
        problems.append("the first Markdown cell does not link the glossary (glossary.md)")
    return [f"{korean.name}: {problem}" for problem in problems]


def time_problems(korean_cell, english_cell) -> list[str]:
    """The English chapter's stated time, "**What you will learn** (about N minutes: R of reading …
    and C of cells …", must be the Korean one's: "**이 장에서 배울 것** (약 N분: … R분 … C분 …"."""
    stated = ENGLISH_TIME.search(text_of(english_cell)) if english_cell is not None else None
    if stated is None:
        return []
    total, reading, cells = stated.groups()
    line = KOREAN_TIME.search(text_of(korean_cell)) if korean_cell is not None else None
    if line is None:
        return [f"the first Markdown cell has no \"**이 장에서 배울 것** (약 {total}분: …\" line"]
    if line.group(1) != total or not all(re.search(rf"(?<!\d){minutes}분", line.group(0)) for minutes in (reading, cells)):
        return [f"the stated time differs from the English chapter's (about {total} minutes: {reading} of reading, "
                f"{cells} of cells): {line.group(0)!r}"]
    return []


def english_chapters(folder: Path = ENGLISH) -> list[str]:
    return sorted(path.name for path in folder.glob("[0-9][0-9]_*.ipynb"))


def missing_translations(english: Path = ENGLISH, korean: Path = KOREAN) -> list[str]:
    return [name for name in english_chapters(english) if not (korean / name).exists()]


def glossary_rows(text: str) -> list[tuple[str, str, str]]:
    """The rows (English, 한국어, note) of the glossary's table: the table whose header begins "English"."""
    rows, in_table = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        if not in_table:
            in_table = cells[0] == "English"
            if in_table and len(cells) != 3:
                raise ValueError(f"line {number}: the header must be | English | 한국어 | note |")
            continue
        if all(set(cell) <= set(":-") for cell in cells):
            continue  # the separator line
        if len(cells) != 3 or not cells[0] or not cells[1]:
            raise ValueError(f"line {number}: a row needs three cells, English and 한국어 not empty: {line!r}")
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def glossary_problems(text: str) -> list[str]:
    try:
        rows = glossary_rows(text)
    except ValueError as error:
        return [str(error)]
    if not rows:
        return ["no table with the header | English | 한국어 | note |"]
    problems = []
    english = [row[0] for row in rows]
    seen = set()
    for term in english:
        if term.lower() in seen:
            problems.append(f"{term!r} appears twice")
        seen.add(term.lower())
    if english != sorted(english, key=str.lower):
        first = next(a for a, b in zip(english, sorted(english, key=str.lower)) if a != b)
        problems.append(f"not in alphabetical order by English (first out of place: {first!r})")
    korean = {row[0]: row[1] for row in rows}
    for term, wanted in GLOSSARY_FIXED.items():
        if term not in korean:
            problems.append(f"{term!r} is missing (its Korean is fixed: {wanted})")
        elif korean[term] != wanted:
            problems.append(f"{term!r} is {korean[term]!r}; the course uses {wanted!r}")
    return problems


# --- the repository's chapters -----------------------------------------------------------------------

def korean_chapters() -> list:
    found = sorted(KOREAN.glob("*.ipynb"))
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no Korean chapters in notebooks/ko/ yet"))]
    return [pytest.param(path, id=path.stem) for path in found]


@pytest.mark.parametrize("korean", korean_chapters())
def test_the_korean_chapter_is_the_english_one_translated(korean):
    problems = chapter_problems(korean, ENGLISH / korean.name)
    assert not problems, "\n".join(problems)


def test_every_english_chapter_has_a_korean_one():
    """Fails while translations are missing, and names them (the chapters land one by one)."""
    missing = missing_translations()
    assert not missing, (f"{len(missing)} of {len(english_chapters())} chapters have no Korean translation "
                         f"in notebooks/ko/ yet: {', '.join(missing)}")


def test_the_glossary_table_is_well_formed_and_keeps_the_fixed_terms():
    assert GLOSSARY.exists(), f"{GLOSSARY} is missing: every Korean chapter links it"
    text = GLOSSARY.read_text(encoding="utf-8")
    assert text.startswith("# 용어집 (glossary)\n")
    problems = glossary_problems(text)
    assert not problems, "\n".join(problems)
    assert len(glossary_rows(text)) >= 120, "the glossary should cover every term the course uses"


# --- the checks can fail: synthetic chapters ------------------------------------------------------------

def make_chapter(folder: Path, name: str = "01_demo.ipynb", markdown: str = "# 01 · 데모\n\n> 용어: [용어집](glossary.md)",
                 code: str = "print(1 + 1)", more_markdown: str = "## 정리\n\n표를 봅니다.") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(markdown, id="intro"),
        nbformat.v4.new_code_cell(code, id="run", metadata={"tags": ["needs-root"]}),
        nbformat.v4.new_markdown_cell(more_markdown, id="recap"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def course(tmp_path):
    """A course of one English chapter, and a faithful Korean translation beside its glossary."""
    english = make_chapter(tmp_path / "notebooks", markdown="# 01 · Demo", more_markdown="## Recap")
    korean_folder = tmp_path / "notebooks" / "ko"
    korean_folder.mkdir()
    (korean_folder / "glossary.md").write_text("# 용어집 (glossary)\n")
    return english, korean_folder


def test_a_faithful_translation_passes(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, markdown="# 01 · 데모\n\n> 용어: [용어집](glossary.md) · English: "
                                                  "[../01_demo.ipynb](../01_demo.ipynb)")
    assert chapter_problems(korean, english) == []


def test_a_changed_code_cell_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, code="print(1 + 2)")
    assert chapter_problems(korean, english) == [
        "01_demo.ipynb: cell 1: code differs from the English chapter's (code cells are not translated)"]


def test_an_english_only_markdown_cell_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, more_markdown="## Recap")
    assert chapter_problems(korean, english) == ["01_demo.ipynb: cell 2: Markdown without Korean text (not translated?)"]


def test_a_link_to_another_english_chapter_fails(course):
    english, korean_folder = course
    make_chapter(english.parent, name="02_next.ipynb", markdown="# 02 · Next")
    korean = make_chapter(korean_folder, more_markdown="## 정리\n\n다음 장: [02](../02_next.ipynb)")
    [problem] = chapter_problems(korean, english)
    assert "leads out of the Korean chapters" in problem and "../02_next.ipynb" in problem


def test_a_link_to_a_korean_chapter_not_there_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, more_markdown='## 정리\n\n다음 장: <a href="02_next.ipynb">02</a>')
    [problem] = chapter_problems(korean, english)
    assert "does not exist" in problem


def test_a_first_cell_without_the_glossary_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, markdown="# 01 · 데모")
    assert chapter_problems(korean, english) == [
        "01_demo.ipynb: the first Markdown cell does not link the glossary (glossary.md)"]


def test_the_stated_time_follows_the_english_chapter(course):
    english, korean_folder = course
    notebook = nbformat.read(english, as_version=4)
    notebook.cells[0].source += ("\n\n**What you will learn** (about 15 minutes: 14 of reading at 200 words a minute and "
                                 "1 of cells running, measured; time to think is extra)")
    nbformat.write(notebook, english)
    intro = "# 01 · 데모\n\n> 용어: [용어집](glossary.md)\n\n**이 장에서 배울 것** (약 15분: 읽기 {}분, 셀 실행 1분(실측))"
    assert chapter_problems(make_chapter(korean_folder, markdown=intro.format(14)), english) == []
    [problem] = chapter_problems(make_chapter(korean_folder, markdown=intro.format(12)), english)
    assert "the stated time differs" in problem
    [problem] = chapter_problems(make_chapter(korean_folder, markdown="# 01 · 데모\n\n> [용어집](glossary.md)"), english)
    assert "no \"**이 장에서 배울 것** (약 15분" in problem


def test_changed_structure_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder)
    notebook = nbformat.read(korean, as_version=4)
    notebook.cells[1].metadata["tags"] = []
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    notebook.cells[2].id = "other"
    notebook.cells.append(nbformat.v4.new_markdown_cell("추가", id="extra"))
    nbformat.write(notebook, korean)
    problems = "\n".join(chapter_problems(korean, english))
    for expected in ("4 cells, the English chapter has 3", "cell 1: tags []", "cell 1: has outputs",
                     "cell 2: id 'other'"):
        assert expected in problems


def test_a_chapter_without_an_english_original_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder, name="99_invented.ipynb")
    [problem] = chapter_problems(korean, english.parent / korean.name)
    assert "no English chapter" in problem


def test_an_invalid_notebook_fails(course):
    english, korean_folder = course
    korean = make_chapter(korean_folder)
    content = json.loads(korean.read_text())
    content["cells"][0]["translated_by"] = "me"  # a key nbformat's schema does not allow in a cell
    korean.write_text(json.dumps(content))
    assert any("nbformat.validate" in problem for problem in chapter_problems(korean, english))
    korean.write_text(json.dumps(content)[:-20])
    assert "not a notebook nbformat can read" in chapter_problems(korean, english)[0]


def test_missing_translations_are_listed(course):
    english, korean_folder = course
    make_chapter(english.parent, name="02_next.ipynb", markdown="# 02 · Next")
    make_chapter(korean_folder)
    assert missing_translations(english.parent, korean_folder) == ["02_next.ipynb"]


def test_links_are_found_in_every_form():
    markdown = ('[a](a.ipynb) ![b](img/b.png "title") <a href="c.ipynb">c</a> [d](<d e.md>)\n'
                "[ref]: ref.md\n[web](https://example.org/x.ipynb) [anchor](#top)")
    assert links_in(markdown) == ["a.ipynb", "img/b.png", "d e.md", "https://example.org/x.ipynb", "#top",
                                  "c.ipynb", "ref.md"]
    assert [target for target in links_in(markdown) if is_relative(target)] == [
        "a.ipynb", "img/b.png", "d e.md", "c.ipynb", "ref.md"]


GOOD_GLOSSARY = "# 용어집 (glossary)\n\n| English | 한국어 | note |\n| --- | --- | --- |\n" + "".join(
    f"| {term} | {korean} | |\n" for term, korean in sorted(GLOSSARY_FIXED.items(), key=lambda item: item[0].lower()))


def test_a_glossary_with_the_fixed_terms_passes():
    assert glossary_problems(GOOD_GLOSSARY) == []


def test_a_glossary_that_renames_a_fixed_term_fails():
    text = GOOD_GLOSSARY.replace("| namespace | 네임스페이스 |", "| namespace | 이름공간 |")
    assert glossary_problems(text) == ["'namespace' is '이름공간'; the course uses '네임스페이스'"]


def test_a_glossary_with_a_duplicate_or_out_of_order_term_fails():
    text = GOOD_GLOSSARY + "| container | 컨테이너 | again |\n"
    problems = glossary_problems(text)
    assert "'container' appears twice" in problems
    assert any(problem.startswith("not in alphabetical order") for problem in problems)


def test_a_glossary_row_with_a_missing_cell_fails():
    text = GOOD_GLOSSARY + "| zone | |\n"
    [problem] = glossary_problems(text)
    assert "a row needs three cells" in problem
