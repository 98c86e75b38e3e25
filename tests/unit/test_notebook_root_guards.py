"""Every cell tagged needs-root guards itself, so a learner without root never meets a traceback.

The tag tells a reader (and the sidebar) that the cell needs root; the guard is what makes the
notebook run top to bottom without it: ``if has_root("..."):`` prints one sentence of what the
cell would show. tests/integration/test_notebooks_without_root.py runs the chapters as nobody;
this test finds a cell that lost its guard without running anything.
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def unguarded_root_cells(notebook: Path) -> list[int]:
    """Indexes of code cells tagged needs-root whose source never calls has_root(...)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [index for index, cell in enumerate(cells)
            if cell["cell_type"] == "code" and "needs-root" in cell.get("metadata", {}).get("tags", [])
            and "has_root(" not in "".join(cell["source"])]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_needs_root_cell_guards_itself(notebook):
    assert unguarded_root_cells(notebook) == [], (
        f"{notebook.name}: these cells are tagged needs-root but do not start with "
        "`if has_root(\"...\"):` (from teachdock.lab import has_root)")


def test_an_unguarded_cell_is_found(tmp_path):
    notebook = tmp_path / "99.ipynb"
    cells = [{"cell_type": "code", "metadata": {"tags": ["needs-root"]}, "source": ["run(['true'])\n"]},
             {"cell_type": "code", "metadata": {"tags": ["needs-root"]},
              "source": ["if has_root(\"starts a container\"):\n", "    run(['true'])\n"]},
             {"cell_type": "code", "metadata": {}, "source": ["print(1)\n"]}]
    notebook.write_text(json.dumps({"cells": cells}))
    assert unguarded_root_cells(notebook) == [0]
