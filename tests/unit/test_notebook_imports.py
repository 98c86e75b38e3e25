"""Every teachdock import line of every notebook resolves, without running the notebook.

Running a notebook takes minutes and root; a renamed module or a name a chapter package stopped
exporting would only show there, in the middle of a chapter. Here each code cell's
``from teachdock… import …`` and ``import teachdock…`` statements are executed on their own.
"""

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def teachdock_imports(notebook: Path) -> list[str]:
    """The import statements of the notebook's code cells that import from teachdock, as source."""
    statements = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            i += 1
            if not line.startswith(("from teachdock", "import teachdock")):
                continue
            while line.count("(") > line.count(")") and i < len(lines):  # a parenthesised name list
                line += " " + lines[i].strip()
                i += 1
            statements.append(line)
    return statements


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_teachdock_import_of_the_notebook_resolves(notebook):
    statements = teachdock_imports(notebook)
    assert statements, f"{notebook.name} imports nothing from teachdock: is the parser still right?"
    for statement in statements:
        tree = ast.parse(statement)  # a line that is not one whole import statement fails here
        assert isinstance(tree.body[0], (ast.Import, ast.ImportFrom)), statement
        try:
            exec(compile(tree, notebook.name, "exec"), {})
        except ImportError as error:
            pytest.fail(f"{notebook.name}: {statement!r} fails: {error}")


def test_a_broken_import_line_is_caught(tmp_path):
    notebook = tmp_path / "99_broken.ipynb"
    cell = {"cell_type": "code", "source": ["from teachdock.lab.namespaces import (\n", "    no_such_name,\n", ")\n"]}
    notebook.write_text(json.dumps({"cells": [cell]}))
    [statement] = teachdock_imports(notebook)
    with pytest.raises(ImportError):
        exec(statement, {})
