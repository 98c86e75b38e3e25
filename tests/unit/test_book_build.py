"""book/build.py on two tiny chapters of its own (a real kernel, no root, no container): the site
it writes, and a failing chapter that stops the build, names the cell and leaves the previous
book as it was."""

import json
from pathlib import Path

import pytest

from book import build


def chapter(*sources: str, tags: dict[int, list[str]] | None = None) -> dict:
    cells = [{"id": "title", "cell_type": "markdown", "metadata": {}, "source": "# Tiny\n\n**What you will learn**\n\n- one\n- two\n- three\n"}]
    for index, source in enumerate(sources, 1):
        cells.append({"id": f"code-{index}", "cell_type": "code", "metadata": {"tags": (tags or {}).get(index, [])}, "source": source,
                      "outputs": [], "execution_count": None})
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A notebooks/ of our own and a stand-in for the vendored widget renderer."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    widgets = tmp_path / "widgets"
    widgets.mkdir()
    (widgets / "embed.js").write_text("// stand-in\n")
    monkeypatch.setattr(build, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(build, "widget_assets", lambda: widgets)
    return notebooks


def write(notebooks: Path, name: str, notebook: dict) -> None:
    (notebooks / name).write_text(json.dumps(notebook))


def test_a_build_writes_every_chapter_its_contents_and_its_assets(course, tmp_path, capsys):
    write(course, "00_first.ipynb", chapter("print('made here')", "raise ValueError('expected')",
                                            tags={2: ["raises-exception"]}))
    write(course, "01_second.ipynb", chapter("open('scratch.txt', 'w').write('x')"))
    out = tmp_path / "site" / "book"
    seconds = build.build(out)
    assert set(seconds) == {"00_first", "01_second"}
    assert sorted(path.name for path in out.iterdir()) == ["00_first.html", "01_second.html", "_static", "index.html"]
    assert (out / "_static" / "widgets" / "embed.js").is_file() and (out / "_static" / "book.css").is_file()
    first = (out / "00_first.html").read_text()
    assert "made here" in first and "ValueError" in first  # an expected failure is shown, not fatal
    assert not (course / "scratch.txt").exists()  # chapters run in a copy of notebooks/
    assert [path.name for path in out.parent.iterdir()] == ["book"]  # no staging folder left
    progress = capsys.readouterr().out
    assert "[1/2] 00_first … " in progress and "[2/2] 01_second … " in progress


def test_a_failing_chapter_stops_the_build_names_the_cell_and_keeps_the_old_book(course, tmp_path, capsys):
    out = tmp_path / "site" / "book"
    out.mkdir(parents=True)
    (out / "index.html").write_text("the previous book")
    write(course, "00_first.ipynb", chapter("x = 1"))
    write(course, "01_broken.ipynb", chapter("y = 2", "print('before')\n1 / 0", "print('never')"))
    write(course, "02_never.ipynb", chapter("print('not reached')"))
    with pytest.raises(build.BuildFailed) as failure:
        build.build(out)
    message = str(failure.value)
    assert message.startswith("01_broken.ipynb: cell 2 failed (\"print('before')\"):")
    assert "ZeroDivisionError: division by zero" in message
    assert sorted(path.name for path in out.iterdir()) == ["index.html"]
    assert (out / "index.html").read_text() == "the previous book"
    assert [path.name for path in out.parent.iterdir()] == ["book"]
    assert "[2/3] 01_broken … failed" in capsys.readouterr().out
