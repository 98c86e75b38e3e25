"""Imports point only down the stack: the rule of DESIGN.md, checked on every run.

teachdock is built in layers, from the kernel up::

    7  teachdock.cli       the command line
    6  teachdock.lab       the notebooks' helpers
    5  teachdock.client    speaks HTTP to the daemon
    4  teachdock.daemon    the Engine API
    3  teachdock.image     store, layers, snapshots, builds, registries
    2  teachdock.runtime   the OCI runtime         teachdock.vm  the teaching VM
    1  teachdock.kernel    the syscalls
    0  teachdock (its __init__), teachdock.errors, .paths, .files, .units

A module may import its own package and the layers below it, never one above, and never a
package of its own level (runtime and vm stay apart). The client asks even less: it speaks to
the daemon over HTTP only, so it imports nothing of the runtime, the images or the daemon. The check reads the source with ``ast``,
so an import inside a function counts as much as one at the top, and ``from . import x`` is
resolved to the module it names. Three more rules: no two modules import each other (directly
or round a longer loop), and no module takes a private ``_name`` from another module.

Imports computed at run time (``importlib.import_module(name)``) are not seen.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "teachdock"

#: The layer of each part of teachdock: its first two name components (``teachdock.image``),
#: or ``teachdock`` alone for the package's own __init__.
LEVELS = {
    "teachdock": 0, "teachdock.errors": 0, "teachdock.paths": 0, "teachdock.files": 0, "teachdock.units": 0,
    "teachdock.kernel": 1,
    "teachdock.runtime": 2, "teachdock.vm": 2,
    "teachdock.image": 3,
    "teachdock.daemon": 4,
    "teachdock.client": 5,
    "teachdock.lab": 6,
    "teachdock.cli": 7,
}
LEVEL_0 = frozenset(unit for unit, level in LEVELS.items() if level == 0)
#: Parts that may import less than their level allows: part -> what it may import besides itself.
NARROWER = {
    "teachdock.client": (LEVEL_0, "the client speaks to the daemon over HTTP only"),
}

# The known violations of today's code, each with why it is still here. Other branches of
# issue 12 remove them; the list may only shrink: an entry that no longer occurs fails the test
# too, so delete it when its import is gone.
#: (importing module, imported module) -> reason
ALLOWED_LAYER_VIOLATIONS: dict[tuple[str, str], str] = {}
#: The modules of an import cycle, sorted -> reason
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}
#: (importing module, imported module, private name) -> reason
ALLOWED_PRIVATE_IMPORTS: dict[tuple[str, str, str], str] = {
}


# --- reading the imports -----------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    """One imported module (and, for ``from M import n``, the name taken), where it is written."""

    importer: str      # the importing module, e.g. "teachdock.runtime.container"
    path: Path         # its file
    line: int
    target: str        # the imported module, e.g. "teachdock.image.busybox"
    name: str | None   # the name taken by ``from target import name``, None for a module
    statement: str     # the source line, for the failure message

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.statement}"


def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__.py)."""
    package = package_dir.name
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def read_imports(package_dir: Path) -> list[Import]:
    """All imports of the package's own modules, at any depth of each module's code."""
    modules = module_names(package_dir)
    package = package_dir.name
    found = []
    for module, path in modules.items():
        source = path.read_text()
        lines = source.splitlines()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(source, str(path))):
            statement = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else ""
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(f"{package}."):
                        found.append(Import(module, path, node.lineno, alias.name, None, statement))
            elif isinstance(node, ast.ImportFrom):
                base = _from_base(module, is_package, node)
                if base != package and not base.startswith(f"{package}."):
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in modules:  # from teachdock.image import busybox: a module
                        found.append(Import(module, path, node.lineno, submodule, None, statement))
                    else:  # from teachdock.image.busybox import find_busybox: a name in a module
                        found.append(Import(module, path, node.lineno, base, alias.name, statement))
    return found


def _from_base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from (``from ..x import y`` resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a module's "." is its package
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


# --- the rules ---------------------------------------------------------------------------------
def unit_of(module: str) -> str:
    """``teachdock.image.layers`` -> ``teachdock.image``; ``teachdock`` -> ``teachdock``."""
    return ".".join(module.split(".")[:2])


def layer_violations(imports: list[Import], levels: dict[str, int],
                     narrower: dict[str, tuple[frozenset, str]] = NARROWER) -> list[tuple[Import, str]]:
    """(import, why it is wrong) for each import that does not point down the stack."""
    wrong = []
    for imp in imports:
        source, target = unit_of(imp.importer), unit_of(imp.target)
        if source == target:
            continue
        if source not in levels:
            wrong.append((imp, f"{source} has no level: add it to LEVELS in {Path(__file__).name}"))
            continue
        if target not in levels:
            wrong.append((imp, f"{target} has no level: add it to LEVELS in {Path(__file__).name}"))
            continue
        if source in narrower and target not in narrower[source][0]:
            allowed, why = narrower[source]
            wrong.append((imp, f"{source} imports {target}; {why}: it may import only {', '.join(sorted(allowed))}"))
            continue
        if levels[target] < levels[source] or levels[source] == levels[target] == 0:
            continue
        below = sorted((unit for unit, level in levels.items() if level < levels[source]), key=levels.get)
        wrong.append((imp, f"{source} (level {levels[source]}) imports {target} (level {levels[target]}); "
                           f"it may import only its own package and lower levels: {', '.join(below) or 'none'}"))
    return wrong


def import_cycles(imports: list[Import]) -> list[tuple[tuple[str, ...], list[Import]]]:
    """Each group of modules that import each other, round a loop (Tarjan's strongly connected
    components with more than one module), with the imports that close it."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:  # recursive: teachdock's graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(tuple(sorted(group)), [imp for imp in imports if imp.importer in group and imp.target in group
                                     and imp.target != imp.importer])
            for group in groups]


def private_imports(imports: list[Import]) -> list[Import]:
    """``from other_module import _name``: a private name taken across modules."""
    return [imp for imp in imports if imp.name and imp.name.startswith("_") and not imp.name.startswith("__")
            and imp.target != imp.importer]


# --- the checks on teachdock -------------------------------------------------------------------
@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return read_imports(PACKAGE_DIR)


def relative(imp: Import) -> str:
    return f"{imp.path.relative_to(PACKAGE_DIR.parent)}:{imp.line}: {imp.statement}"


def stale(allowed: dict, found: set) -> list[str]:
    return [f"{key}: no longer occurs; delete it from the allow-list" for key in allowed if key not in found]


def test_imports_point_only_down_the_stack(imports):
    wrong = layer_violations(imports, LEVELS)
    problems = [f"{relative(imp)}\n    {why}" for imp, why in wrong
                if (imp.importer, imp.target) not in ALLOWED_LAYER_VIOLATIONS]
    problems += stale(ALLOWED_LAYER_VIOLATIONS, {(imp.importer, imp.target) for imp, _ in wrong})
    assert not problems, "imports that do not point down the stack:\n" + "\n".join(problems)


def test_no_import_cycles(imports):
    cycles = import_cycles(imports)
    problems = [f"{' <-> '.join(group)}:\n" + "\n".join(f"    {relative(imp)}" for imp in edges)
                for group, edges in cycles if group not in ALLOWED_CYCLES]
    problems += stale(ALLOWED_CYCLES, {group for group, _ in cycles})
    assert not problems, "modules that import each other (one of them must not):\n" + "\n".join(problems)


def test_no_private_names_imported_across_modules(imports):
    taken = private_imports(imports)
    problems = [f"{relative(imp)}\n    takes {imp.name} from {imp.target}: make it public there, or move the code"
                for imp in taken if (imp.importer, imp.target, imp.name) not in ALLOWED_PRIVATE_IMPORTS]
    problems += stale(ALLOWED_PRIVATE_IMPORTS, {(imp.importer, imp.target, imp.name) for imp in taken})
    assert not problems, "private names imported across modules:\n" + "\n".join(problems)


def test_every_part_of_teachdock_has_a_level():
    units = {unit_of(module) for module in module_names(PACKAGE_DIR)}
    assert units <= set(LEVELS), f"parts of teachdock without a level: {sorted(units - set(LEVELS))}"


# --- the checker itself, on a tiny fake teachdock ----------------------------------------------
def fake_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "teachdock"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return package


CLEAN_TREE = {
    "__init__.py": "",
    "errors.py": "class TeachdockError(Exception): pass\n",
    "paths.py": "from .errors import TeachdockError\n",
    "kernel.py": "from teachdock.errors import TeachdockError\n",
    "runtime/__init__.py": "from .container import run\n",
    "runtime/container.py": "from teachdock import kernel\nfrom . import state\ndef run(): pass\n",
    "runtime/state.py": "from ..paths import TeachdockError\n",
    "image/__init__.py": "",
    "image/build.py": "from teachdock.runtime import run\n",
}


def test_a_clean_tree_passes(tmp_path):
    found = read_imports(fake_package(tmp_path, CLEAN_TREE))
    assert {(imp.importer, imp.target) for imp in found} >= {
        ("teachdock.runtime", "teachdock.runtime.container"),   # from .container import run
        ("teachdock.runtime.container", "teachdock.runtime.state"),  # from . import state: the module
        ("teachdock.runtime.state", "teachdock.paths"),  # from ..paths import ...
    }
    assert layer_violations(found, LEVELS) == []
    assert import_cycles(found) == []
    assert private_imports(found) == []


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    tree = {**CLEAN_TREE, "runtime/state.py": """\
        def default_rootfs():
            from teachdock.image import build  # only when called, but it still points up
            return build
        """}
    package = fake_package(tmp_path, tree)
    [(imp, why)] = layer_violations(read_imports(package), LEVELS)
    assert (imp.importer, imp.target, imp.line) == ("teachdock.runtime.state", "teachdock.image.build", 2)
    assert imp.path == package / "runtime" / "state.py"
    assert imp.statement == "from teachdock.image import build  # only when called, but it still points up"
    assert "teachdock.runtime (level 2) imports teachdock.image (level 3)" in why
    assert "teachdock.kernel" in why and "teachdock.errors" in why  # what it may import instead


def test_a_relative_import_up_a_level_and_between_siblings_is_found(tmp_path):
    tree = {**CLEAN_TREE, "vm/__init__.py": "from ..runtime import container\n",
            "kernel.py": "from .runtime.state import x\n"}
    found = layer_violations(read_imports(fake_package(tmp_path, tree)), LEVELS)
    assert sorted((imp.importer, imp.target) for imp, _ in found) == [
        ("teachdock.kernel", "teachdock.runtime.state"),   # level 1 -> 2: up
        ("teachdock.vm", "teachdock.runtime.container"),   # level 2 -> 2: runtime and vm stay apart
    ]


def test_a_cycle_and_a_private_import_are_found(tmp_path):
    tree = {**CLEAN_TREE, "runtime/state.py": "from .container import _helper\n"}
    found = read_imports(fake_package(tmp_path, tree))
    [(group, edges)] = import_cycles(found)
    assert group == ("teachdock.runtime.container", "teachdock.runtime.state")
    assert {(imp.importer, imp.target) for imp in edges} == {
        ("teachdock.runtime.container", "teachdock.runtime.state"),
        ("teachdock.runtime.state", "teachdock.runtime.container")}
    [private] = private_imports(found)
    assert (private.importer, private.target, private.name) == (
        "teachdock.runtime.state", "teachdock.runtime.container", "_helper")


def test_a_module_without_a_level_is_reported(tmp_path):
    tree = {**CLEAN_TREE, "network/__init__.py": "from teachdock import kernel\n"}
    [(imp, why)] = layer_violations(read_imports(fake_package(tmp_path, tree)), LEVELS)
    assert imp.importer == "teachdock.network" and "has no level" in why


def test_the_client_importing_below_the_wire_is_found(tmp_path):
    tree = {**CLEAN_TREE, "client/__init__.py": "from teachdock.errors import TeachdockError\n",
            "client/cp.py": "def cp():\n    from teachdock.image.build import x\n"}
    [(imp, why)] = layer_violations(read_imports(fake_package(tmp_path, tree)), LEVELS)
    assert (imp.importer, imp.target, imp.line) == ("teachdock.client.cp", "teachdock.image.build", 2)
    assert "over HTTP only" in why and "teachdock.errors" in why
