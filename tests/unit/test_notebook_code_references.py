"""The notebooks tell a learner where the code behind each cell lives: those pointers must be true.

Every backticked ``teachdock/...`` path and every ``package/module.py`` path of a teachdock
package in a notebook's Markdown (and in its code cells' comments) must exist, and a name given
as "`name` in `path.py`" or "`path.py` (`name`, ...)" must be defined in that module.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPOSITORY / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PACKAGES = {path.name for path in (REPOSITORY / "teachdock").iterdir() if (path / "__init__.py").exists()}

PATH = r"[a-z_][a-z0-9_]*(?:/[a-z0-9_]+)*(?:\.py|/)"
NAME = r"[A-Za-z_][A-Za-z0-9_.]*(?:\(\))?"
# `name`, `name` in `path.py`
NAMES_IN_PATH = re.compile(rf"((?:`{NAME}`(?:, | and ))*`{NAME}`) in\s+`({PATH})`")
# `path.py` (`name`, `name`)
PATH_THEN_NAMES = re.compile(rf"`({PATH})` \(((?:`{NAME}`, )*`{NAME}`)\)")
ANY_PATH = re.compile(rf"`({PATH})`")
# `teachdock/client/api.py`, `transport.py`: files beside the first
SIBLINGS = re.compile(rf"`([a-z_][a-z0-9_/]*\.py)`((?:, `[a-z0-9_]+\.py`)+)")


def notebook_text(notebook: dict) -> str:
    """The Markdown cells, and the comments of the code cells."""
    parts = []
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(source)
        elif cell["cell_type"] == "code":
            parts.extend(line.split("#", 1)[1] for line in source.splitlines() if "#" in line)
    return "\n".join(parts)


def teachdock_path(path: str) -> str | None:
    """A notebook's path from the repository's root, or None when it names no teachdock module."""
    if path.startswith("teachdock/"):
        return path
    if path.endswith(".py") and path.split("/")[0] in PACKAGES:
        return "teachdock/" + path
    return None  # `image/overlay2/` is Docker's directory, `spec.py` alone too short to resolve


def module_files(path: str) -> list[Path] | None:
    """The files a notebook's path names ([] if none exists), or None when it names no teachdock module."""
    if teachdock_path(path) is None:
        return None
    target = REPOSITORY / teachdock_path(path)
    if path.endswith("/"):
        return sorted(target.rglob("*.py")) if target.is_dir() else []
    return [target] if target.is_file() else []


@cache
def defined_names(file: Path) -> frozenset[str]:
    """Functions, classes, methods, assigned names and parameters defined in a module."""
    names = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return frozenset(names)


def wrong_references(notebook: dict) -> list[str]:
    """Every path in the notebook that does not exist, every name not defined where it is said to be."""
    text = notebook_text(notebook)
    problems = []
    for path in ANY_PATH.findall(text):
        if module_files(path) == []:
            problems.append(f"`{path}` does not exist")
    for path, siblings in SIBLINGS.findall(text):
        for sibling in re.findall(r"`([^`]+)`", siblings):
            if module_files(path) and not (module_files(path)[0].parent / sibling).is_file():
                problems.append(f"`{sibling}` is not beside `{path}`")
    pairs = [(names, path) for names, path in NAMES_IN_PATH.findall(text)]
    pairs += [(names, path) for path, names in PATH_THEN_NAMES.findall(text)]
    for names, path in pairs:
        files = module_files(path)
        if not files:
            continue  # reported above, or not a path this test can resolve
        defined = set().union(*(defined_names(file) for file in files))
        for name in re.findall(r"`([^`]+)`", names):
            if name.endswith(".py") and path.endswith("/"):  # `teachdock/lab/virtualization/` (`stacks.py`)
                if not (REPOSITORY / teachdock_path(path) / name).is_file():
                    problems.append(f"`{name}` is not in `{path}`")
            elif not all(part in defined for part in name.removesuffix("()").split(".")):
                problems.append(f"`{name}` is not defined in `{path}`")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_code_references_are_true(notebook):
    assert wrong_references(json.loads(notebook.read_text(encoding="utf-8"))) == []


def test_the_notebooks_name_code():
    """Guard against a pattern that matches nothing: the real notebooks give both kinds of pointer."""
    text = "\n".join(notebook_text(json.loads(path.read_text(encoding="utf-8"))) for path in NOTEBOOKS)
    assert len(NAMES_IN_PATH.findall(text)) >= 5
    assert len(PATH_THEN_NAMES.findall(text)) >= 5
    assert len([path for path in ANY_PATH.findall(text) if module_files(path)]) >= 50


def markdown_notebook(*lines: str) -> dict:
    return {"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": list(lines)},
                      {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": None,
                       "source": ["x = 1  # see `teachdock/runtime/nowhere.py`\n"]}]}


def test_wrong_paths_and_names_are_found():
    notebook = markdown_notebook(
        "PID 1 (`_monitor_main` in `teachdock/runtime/container.py`).\n",
        "| the monitor | `runtime/monitor.py` (`monitor_main`, `no_such_function`) |\n",
        "| the doctor | `runtime/host.py` |\n",
        "| the processes | `teachdock/runtime/container.py`, `monitor.py`, `shim.py` |\n",
        "| fine | `teachdock/kernel/` (`unshare`), `make_spec`, `validate` in `teachdock/runtime/spec.py` |\n",
        "| Docker's own | `image/overlay2/`, `/run/docker/` |\n")
    assert wrong_references(notebook) == [
        "`runtime/host.py` does not exist",
        "`teachdock/runtime/nowhere.py` does not exist",
        "`shim.py` is not beside `teachdock/runtime/container.py`",
        "`_monitor_main` is not defined in `teachdock/runtime/container.py`",
        "`no_such_function` is not defined in `runtime/monitor.py`",
    ]
