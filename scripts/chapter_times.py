"""How long each chapter takes, measured: reading at 200 words a minute plus the cells' run time.

    sudo .venv/bin/python scripts/chapter_times.py            # measure and print the table
    sudo .venv/bin/python scripts/chapter_times.py --write    # ...and write it into the README
                                                              # and each chapter's "(about N minutes"
                                                              # (and its Korean one's "(약 N분")
    sudo .venv/bin/python scripts/chapter_times.py --write 03_cgroups   # measure one chapter again
    .venv/bin/python scripts/chapter_times.py --words-only    # the reading column alone, no kernel

Reading time is an estimate from the words of the Markdown cells and the code cells' tokens (200 a
minute, a common figure for reading technical text; folded solutions are left out: you open them
after trying). The run
time is measured: every chapter is executed top to bottom here with nbclient, as root, and each
cell's run time is read from the kernel's own timestamps. The exercises' share is the cells under
the chapter's "Exercises" heading (for the capstone, its levels). Time to think is yours and is
not in the table; the README says so.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import datetime
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPOSITORY / "notebooks"
KOREAN = NOTEBOOKS / "ko"  # the Korean chapters, same names: their stated time follows the English one
README = REPOSITORY / "README.md"
WORDS_PER_MINUTE = 200
TABLE_START = "<!-- chapter-times: start (scripts/chapter_times.py --write) -->"
TABLE_END = "<!-- chapter-times: end -->"
ABOUT = re.compile(r"(\*\*What you will learn\*\* \()about \d+ minutes[^)]*(\))")
# The Korean line's parenthesis holds parentheses of its own ("셀 실행 1분(실측)"): up to the line's last ")".
KOREAN_ABOUT = re.compile(r"(\*\*이 장에서 배울 것\*\* \()약 \d+분[^\n]*(\))")
FOLDED = re.compile(r"<details>.*?</details>", re.DOTALL)
EXERCISE_HEADING = re.compile(r"^#{2,3} .*\b(Exercises?|Level \d+)\b", re.MULTILINE)
SECTION_HEADING = re.compile(r"^## ", re.MULTILINE)
PLACEHOLDER = re.compile(r"^(\s*[A-Za-z_][A-Za-z0-9_]*\s*=\s*)\.\.\.(?=\s*(#.*)?$)", re.MULTILINE)


def chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def words_to_read(notebook: dict) -> int:
    """Words a learner reads: the Markdown (without folded solutions) and the code cells' tokens."""
    words = 0
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            text = FOLDED.sub(" ", text)
        words += len(re.findall(r"[^\s|#*`>-]+", text))
    return words


def reading_minutes(words: int) -> int:
    return math.ceil(words / WORDS_PER_MINUTE)


def exercise_cells(notebook: dict) -> set[int]:
    """Indexes of the code cells under an Exercises (or capstone Level) heading."""
    inside, indexes = False, set()
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and SECTION_HEADING.search(source):
            inside = bool(EXERCISE_HEADING.search(source))
        elif cell["cell_type"] == "markdown" and EXERCISE_HEADING.search(source):
            inside = True
        if inside and cell["cell_type"] == "code":
            indexes.add(index)
    return indexes


def about_minutes(reading: int, run_seconds: float) -> int:
    """The stated time: reading plus running, rounded up to five minutes."""
    return 5 * math.ceil((reading + run_seconds / 60) / 5)


def measure_run(path: Path) -> tuple[float, float]:
    """(seconds for all cells, seconds for the exercise cells), run here with nbclient."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    exercises = exercise_cells(notebook)
    for index in exercises:  # a stand-in answer, so each check really runs its experiment
        notebook.cells[index].source = PLACEHOLDER.sub(r'\1"(a timing run)"', notebook.cells[index].source)
    # Errors are allowed so that an exercise cell which cannot take the stand-in (it parses the answer
    # first) does not stop the run; any other cell that fails stops the measurement below.
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=True,
                                     allow_errors=True, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for index, cell in enumerate(notebook.cells):
        failed = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        tags = cell.get("metadata", {}).get("tags", [])
        if failed and index not in exercises and "raises-exception" not in tags:
            raise SystemExit(f"{path.name}: cell {index} failed: {failed[0]['ename']}: {failed[0]['evalue']}")
    total = in_exercises = 0.0
    for index, cell in enumerate(notebook.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
        seconds = (end - start).total_seconds()
        total += seconds
        in_exercises += seconds if index in exercises else 0
    return total, in_exercises


def table(rows: list[dict]) -> str:
    lines = ["| chapter | words | reading | all cells run here | of which exercises | about |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| `{row['chapter']}` | {row['words']:,} | {row['reading']} min | {row['run']:.0f} s | "
                     f"{row['exercises']:.0f} s | {row['about']} min |")
    return "\n".join(lines)


def read_table(readme_text: str, *, full: bool = False) -> dict[str, dict]:
    """The README's table back as {chapter: {"words", "reading", "about"}} (for the unit test);
    ``full`` adds "chapter", "run" and "exercises" (seconds), to write the row again."""
    block = readme_text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            row = {"words": int(cells[1].replace(",", "")), "reading": int(cells[2].split()[0]),
                   "about": int(cells[5].split()[0])}
            if full:
                row.update(chapter=cells[0].strip("`"), run=float(cells[3].split()[0]),
                           exercises=float(cells[4].split()[0]))
            rows[cells[0].strip("`")] = row
    return rows


def merged_rows(measured: list[dict], readme_text: str) -> list[dict]:
    """Every chapter's row: the ones just measured, the others as the README has them (measure
    one chapter again after editing it). A chapter with no row anywhere is an error."""
    fresh = {row["chapter"]: row for row in measured}
    old = {} if TABLE_START not in readme_text else read_table(readme_text, full=True)
    rows = []
    for path in chapters():
        row = fresh.get(path.stem) or old.get(path.stem)
        if row is None:
            raise SystemExit(f"{path.stem} has no row in the README yet: measure it too")
        rows.append(row)
    return rows


def stated_minutes(notebook: dict) -> int | None:
    """The "(about N minutes" of the chapter's first cell."""
    match = re.search(r"\*\*What you will learn\*\* \(about (\d+) minutes", "".join(notebook["cells"][0]["source"]))
    return int(match.group(1)) if match else None


def stated_time(row: dict, language: str = "en") -> str:
    """What goes in the chapter's parenthesis: the measured row as a sentence, in English or Korean."""
    run = math.ceil(row["run"] / 60)
    if language == "ko":
        return (f"약 {row['about']}분: 분당 {WORDS_PER_MINUTE}단어 기준으로 읽기 {row['reading']}분, "
                f"셀 실행 {run}분(실측). 생각하는 시간은 별도입니다")
    return (f"about {row['about']} minutes: {row['reading']} of reading at {WORDS_PER_MINUTE} words a minute "
            f"and {run} of cells running, measured; time to think is extra")


def write_stated_time(path: Path, row: dict, language: str = "en") -> None:
    """Rewrite the chapter's "(about N minutes ...)" (a Korean chapter's "(약 N분 ...)") from the
    measured row, keeping the file's JSON layout."""
    pattern, line = (KOREAN_ABOUT, "**이 장에서 배울 것** (약 N분") if language == "ko" else (
        ABOUT, "**What you will learn** (about N minutes)")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    phrase = stated_time(row, language)
    new, count = pattern.subn(lambda m: f"{m.group(1)}{phrase}{m.group(2)}", "".join(first["source"]))
    if count != 1:
        raise SystemExit(f"{path.name}: its first Markdown cell has no '{line}'")
    first["source"] = new.splitlines(keepends=True)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_stated_times(row: dict, english: Path, korean_folder: Path = KOREAN) -> list[Path]:
    """The measured row into the English chapter and, when there is one, its Korean translation
    (notebooks/ko/, same name): the Korean chapters never state an older time. The files written."""
    write_stated_time(english, row)
    korean = korean_folder / english.name
    if not korean.exists():
        return [english]
    write_stated_time(korean, row, "ko")
    return [english, korean]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the table into README.md and each chapter's stated time")
    parser.add_argument("--words-only", action="store_true", help="count words only; run nothing (no root needed)")
    parser.add_argument("chapter", nargs="*", help="only these chapters (e.g. 03_cgroups); default: all")
    options = parser.parse_args()
    if options.write and options.words_only:
        parser.error("--write writes measured times: drop --words-only")
    paths = [path for path in chapters() if not options.chapter or path.stem in options.chapter]
    rows = []
    for position, path in enumerate(paths, 1):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        words = words_to_read(notebook)
        run = exercises = 0.0
        if not options.words_only:
            print(f"[{position}/{len(paths)}] running {path.name} ...", file=sys.stderr, flush=True)
            run, exercises = measure_run(path)
        reading = reading_minutes(words)
        rows.append({"chapter": path.stem, "words": words, "reading": reading, "run": run, "exercises": exercises,
                     "about": about_minutes(reading, run)})
    print(table(rows))
    if options.write:
        text = README.read_text(encoding="utf-8")
        rows = merged_rows(rows, text)
        head, rest = text.split(TABLE_START, 1)
        tail = rest.split(TABLE_END, 1)[1]
        README.write_text(f"{head}{TABLE_START}\n{table(rows)}\n{TABLE_END}{tail}", encoding="utf-8")
        measured = {path.stem: path for path in paths}
        for row in rows:
            if row["chapter"] in measured:
                write_stated_times(row, measured[row["chapter"]])
        print("README.md and the chapters' stated times (English and Korean) written.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
