"""The repository keeps its promises: pip and conda install the same dependencies, the
notebooks are committed clean, CI runs the README's test command, and the scripts run."""

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# conda-forge names that differ from the PyPI name of the same package.
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}


def read_environment_yml(path: Path) -> dict:
    """Read the small YAML subset environment.yml uses: top-level `key: value` or `key:` with
    a list of `- item`, where one item may be `pip:` with its own list. (PyYAML is not a
    dependency of teachdock, so the test must not need it.)"""
    result: dict = {}
    key = None
    pip_list = None
    pip_indent = -1
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.split(" #")[0].rstrip()
        if not line:
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == 0 and not text.startswith("- "):
            key, _, value = text.partition(":")
            result[key] = value.strip() if value.strip() else []
            pip_list = None
        elif text.startswith("- ") and key is not None:
            value = text[2:].strip()
            if pip_list is not None and indent > pip_indent:
                pip_list.append(value)
            elif value == "pip:":
                pip_list, pip_indent = [], indent
                result[key].append({"pip": pip_list})
            else:
                pip_list = None
                result[key].append(value)
        else:
            raise ValueError(f"{path}:{number}: not understood by this little reader: {raw!r}")
    return result


def requirement_name(spec: str) -> str:
    """'jupyterlab>=4.2,<5' -> 'jupyterlab'; names normalised as in PEP 503."""
    name = re.match(r"[A-Za-z0-9._-]+", spec.strip()).group()
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PYPI.get(name, name)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment() -> dict:
    return read_environment_yml(REPO / "environment.yml")


def test_the_little_yaml_reader_agrees_with_pyyaml(environment):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; nothing to compare with")
    assert environment == yaml.safe_load((REPO / "environment.yml").read_text())


def test_conda_and_pip_install_the_same_dependencies(pyproject, environment):
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    conda_names = {requirement_name(spec) for spec in conda} - {"python", "pip"}
    pip_names = {requirement_name(spec) for spec in pyproject["project"]["dependencies"]}
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}"
    )


def test_environment_yml_installs_teachdock_itself_from_conda_forge(pyproject, environment):
    assert environment["channels"] == ["conda-forge", "nodefaults"]
    dependencies = environment["dependencies"]
    assert "pip" in dependencies
    pip_sections = [item["pip"] for item in dependencies if isinstance(item, dict)]
    assert pip_sections == [["-e ."]]
    assert "python" + pyproject["project"]["requires-python"] in dependencies


def test_the_five_required_packages_are_dependencies(pyproject):
    names = {requirement_name(spec) for spec in pyproject["project"]["dependencies"]}
    assert {"jupyterlab", "ipywidgets", "matplotlib", "pyroute2", "nbval"} <= names


def committed_notebooks() -> list:
    found = sorted(
        path for path in (REPO / "notebooks").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in path.parts
    )
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no notebooks in notebooks/ yet"))]
    return [pytest.param(path, id=str(path.relative_to(REPO))) for path in found]


@pytest.mark.parametrize("notebook", committed_notebooks())
def test_notebook_is_committed_clean_with_the_standard_kernel(notebook):
    content = json.loads(notebook.read_text())
    kernel = content.get("metadata", {}).get("kernelspec", {}).get("name")
    assert kernel == "python3", (
        f"{notebook.name}: kernelspec name is {kernel!r}; it must be 'python3' so JupyterLab "
        "and nbval open it without asking which kernel"
    )
    dirty = [
        index for index, cell in enumerate(content["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert dirty == [], (
        f"{notebook.name}: cells {dirty} have outputs or execution counts; clear them before "
        "committing (JupyterLab: Edit > Clear Outputs of All Cells, then save)"
    )
    assert "widgets" not in content.get("metadata", {}), f"{notebook.name}: saved widget state"


def test_ci_runs_exactly_the_readme_test_command():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    commands = [line.strip() for line in lines[1:] if line.strip() and not line.strip().startswith("#")]
    assert commands[-1] == "scripts/test"
    assert all(command.startswith(("set ", "cd ")) for command in commands[:-1]), commands


def test_readme_gives_the_two_commands_in_code_blocks():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", readme, flags=re.S)
    lines = {line.strip() for block in blocks for line in block.splitlines()}
    # as root, with no sudo in front: a fresh Debian installed with a root password has no sudo
    assert "scripts/lab" in lines
    assert "scripts/test" in lines


@pytest.mark.parametrize("script", ["scripts/setup", "scripts/lab", "scripts/test", ".ci/run"])
def test_script_is_executable_and_parses(script):
    path = REPO / script
    assert path.stat().st_mode & 0o111 == 0o111, f"{script} is not executable (chmod +x)"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if shutil.which("git") and (REPO / ".git").exists():
        staged = subprocess.run(["git", "-C", str(REPO), "ls-files", "-s", script],
                                capture_output=True, text=True).stdout
        if staged:  # committed or staged: git must carry the executable bit too
            assert staged.startswith("100755"), f"git stores {script} without +x: {staged}"
