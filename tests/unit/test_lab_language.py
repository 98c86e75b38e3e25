"""`scripts/lab --lang ko`: JupyterLab in Korean, opening the Korean chapters.

- scripts/lab_language.py writes the setting JupyterLab reads its interface language from
  (``locale`` of ``@jupyterlab/translation-extension:plugin``), and JupyterLab's own settings
  reader gets ``ko_KR`` back from what it wrote;
- the Korean language pack is installed where the lab runs (the entry point JupyterLab looks
  for), and is a dependency in pyproject.toml; scripts/setup installs a Korean font (fonts-nanum);
- scripts/lab refuses an unknown language, from ``--lang`` or ``TEACHDOCK_LANG``, naming the
  languages it has, and ``--help`` explains the option;
- a run of scripts/lab itself, in a copy of the repository whose ``scripts/setup`` does nothing
  and whose ``jupyter`` only records how it was called: the setting lands in the user-settings
  directory, and JupyterLab is started on notebooks/ with ``ko/00_start_here.ipynb`` as the page
  to open. (The real JupyterLab in Korean, in Chromium: tests/browser/test_lab_korean.py.)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.scripts import load_script

REPOSITORY = Path(__file__).resolve().parents[2]
LAB = REPOSITORY / "scripts" / "lab"
PLUGIN = "@jupyterlab/translation-extension:plugin"

lab_language = load_script(REPOSITORY / "scripts" / "lab_language.py")


def locale_jupyterlab_reads(settings_dir: Path) -> str:
    """The locale JupyterLab's server would hand the page, read by jupyterlab_server itself."""
    from jupyterlab_server.settings_utils import get_settings  # noqa: PLC0415

    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    result, _warnings = get_settings("", str(schemas), str(settings_dir), schema_name=PLUGIN, overrides={})
    return result["settings"].get("locale", "default")


def test_the_written_setting_selects_korean(tmp_path):
    path = lab_language.write_locale(tmp_path, "ko_KR")
    assert path == tmp_path / "@jupyterlab" / "translation-extension" / "plugin.jupyterlab-settings"
    assert json.loads(path.read_text()) == {"locale": "ko_KR"}
    assert locale_jupyterlab_reads(tmp_path) == "ko_KR"


def test_english_undoes_korean_and_other_keys_stay(tmp_path):
    path = lab_language.settings_file(tmp_path)
    path.parent.mkdir(parents=True)
    # as JupyterLab writes it: JSON5, with a comment
    path.write_text('{\n    // Language\n    "locale": "ko_KR",\n    "displayStringsPrefix": true,\n}\n')
    lab_language.write_locale(tmp_path, "en")
    assert json.loads(path.read_text()) == {"locale": "en", "displayStringsPrefix": True}
    assert locale_jupyterlab_reads(tmp_path) == "en"


def test_without_a_setting_jupyterlab_uses_its_default(tmp_path):
    assert locale_jupyterlab_reads(tmp_path) == "default"  # so the test above can tell


def test_the_korean_language_pack_is_installed_and_a_dependency():
    pack = importlib.metadata.distribution("jupyterlab-language-pack-ko-kr")  # raises if missing
    entry_points = [point.name for point in pack.entry_points if point.group == "jupyterlab.languagepack"]
    assert entry_points == ["ko_KR"]
    from jupyterlab_server.translation_utils import get_language_packs  # noqa: PLC0415

    packs, message = get_language_packs()
    assert "ko_KR" in packs, message
    dependencies = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"jupyterlab-language-pack-ko-kr\b", spec, re.IGNORECASE) for spec in dependencies)


@pytest.mark.parametrize("distribution", ["debian", "ubuntu"])
def test_setup_installs_a_korean_font(tmp_path, distribution):
    """Without a font that has Hangul, Chromium draws the Korean menus as boxes (tests/browser/test_lab_korean.py)."""
    release = tmp_path / "os-release"
    release.write_text(f"ID={distribution}\n")
    result = subprocess.run([str(REPOSITORY / "scripts" / "setup"), "--print-packages"], capture_output=True,
                            text=True, env={**os.environ, "TEACHDOCK_OS_RELEASE": str(release)}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "fonts-nanum" in result.stdout.split()


def run_lab(*args: str, env: dict | None = None, script: Path = LAB, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else {k: v for k, v in os.environ.items() if k != "TEACHDOCK_LANG"})


def test_help_teaches_the_languages():
    result = run_lab("--help")
    assert result.returncode == 0, result.stderr
    for needed in ("--lang LANGUAGE", "TEACHDOCK_LANG", "en  English", "ko  한국어", "notebooks/ko/",
                   "jupyterlab-language-pack-ko-kr", "scripts/lab --lang ko"):
        assert needed in result.stdout


@pytest.mark.parametrize("args, variable, source", [
    (["--lang", "fr"], None, "--lang"),
    (["--lang=ko_KR"], None, "--lang"),
    ([], "fr", "TEACHDOCK_LANG"),
    (["--lang", ""], None, "--lang"),
])
def test_an_unknown_language_is_refused_with_the_ones_there_are(args, variable, source):
    env = {k: v for k, v in os.environ.items() if k != "TEACHDOCK_LANG"}
    if variable is not None:
        env["TEACHDOCK_LANG"] = variable
    result = run_lab(*args, env=env)
    assert result.returncode == 1
    assert re.fullmatch(rf"lab: error: unknown language '[^']*' \(from {source}\); available: en ko\n", result.stderr)
    assert result.stdout == ""


def test_lang_needs_a_value():
    result = run_lab("--lang")
    assert result.returncode == 1 and "--lang needs a language: en ko" in result.stderr


# --- scripts/lab itself, in a stand-in repository -------------------------------------------------

RECORDING_JUPYTER = """#!/usr/bin/env bash
# Stands in for jupyter: records how scripts/lab called it, starts nothing.
{{ printf '%s\\n' "$@"; }} > "{record}/argv"
pwd > "{record}/cwd"
[[ -n ${{JUPYTER_TOKEN:-}} ]] && echo yes > "{record}/token"
echo "${{TEACHDOCK_LANG:-}}" > "{record}/lang"
"""


@pytest.fixture
def stand_in(tmp_path):
    """A copy of the repository's scripts/lab beside a no-op setup, a venv whose `python` is ours and
    whose `jupyter` records its arguments, and notebooks/ with a Korean first chapter."""
    if os.geteuid() != 0:
        pytest.skip("scripts/lab runs itself with sudo when not root; this test runs it as root")
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("lab", "lab_language.py"):
        shutil.copy2(REPOSITORY / "scripts" / name, repo / "scripts" / name)
    setup = repo / "scripts" / "setup"
    setup.write_text("#!/usr/bin/env bash\necho setup: stand-in\n")
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nexec "{sys.executable}" "$@"\n')
    record = tmp_path / "record"
    record.mkdir()
    (bin_dir / "jupyter").write_text(RECORDING_JUPYTER.format(record=record))
    for script in (setup, bin_dir / "python", bin_dir / "jupyter"):
        script.chmod(0o755)
    (repo / "notebooks" / "ko").mkdir(parents=True)
    (repo / "notebooks" / "ko" / "00_start_here.ipynb").write_text("{}")
    env = {k: v for k, v in os.environ.items() if k != "TEACHDOCK_LANG"}
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "user-settings")
    return repo, record, env


@pytest.mark.parametrize("how", ["option", "variable"])
def test_scripts_lab_in_korean_writes_ko_KR_and_opens_the_korean_chapter(stand_in, how):
    repo, record, env = stand_in
    args = ["--lang", "ko"] if how == "option" else []
    if how == "variable":
        env["TEACHDOCK_LANG"] = "ko"
    result = run_lab(*args, "--ServerApp.shutdown_no_activity_timeout=5", env=env, script=repo / "scripts" / "lab")
    assert result.returncode == 0, result.stderr
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"])
    assert json.loads(lab_language.settings_file(settings).read_text()) == {"locale": "ko_KR"}
    assert locale_jupyterlab_reads(settings) == "ko_KR"
    argv = (record / "argv").read_text().splitlines()
    assert argv[0] == "lab"
    assert f"--ServerApp.root_dir={repo / 'notebooks'}" in argv  # all of notebooks/: ../ links reach English
    assert "--LabApp.default_url=/lab/tree/ko/00_start_here.ipynb" in argv
    assert argv[-1] == "--ServerApp.shutdown_no_activity_timeout=5"  # the rest goes to jupyter lab
    assert "--lang" not in argv
    assert (record / "cwd").read_text().strip() == str(repo / "notebooks")
    assert (record / "token").read_text().strip() == "yes"
    assert (record / "lang").read_text().strip() == "ko"  # the kernels know the language too
    assert re.search(r"http://127\.0\.0\.1:\d+/lab/tree/ko/00_start_here\.ipynb\?token=[0-9a-f]{48}", result.stdout)
    assert "Interface language: ko_KR" in result.stdout


def test_scripts_lab_in_english_resets_the_language(stand_in):
    repo, record, env = stand_in
    lab_language.write_locale(Path(env["JUPYTERLAB_SETTINGS_DIR"]), "ko_KR")  # a Korean lab ran before
    result = run_lab(env=env, script=repo / "scripts" / "lab")
    assert result.returncode == 0, result.stderr
    assert locale_jupyterlab_reads(Path(env["JUPYTERLAB_SETTINGS_DIR"])) == "en"
    assert "--LabApp.default_url=/lab" in (record / "argv").read_text().splitlines()
    assert (record / "lang").read_text().strip() == "en"
    assert re.search(r"http://127\.0\.0\.1:\d+/lab\?token=", result.stdout)


def test_scripts_lab_refuses_korean_without_its_language_pack(stand_in):
    repo, record, env = stand_in
    # a python in whose eyes no distribution is installed: importlib.metadata finds nothing on an empty path
    (repo / ".venv" / "bin" / "python").write_text(
        f'#!/usr/bin/env bash\nPYTHONPATH= exec "{sys.executable}" -I -S "$@"\n')
    result = run_lab("--lang", "ko", env=env, script=repo / "scripts" / "lab")
    assert result.returncode == 1
    assert "jupyterlab-language-pack-ko-kr) is not installed" in result.stderr
    assert not (record / "argv").exists()
