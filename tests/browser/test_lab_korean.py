"""`scripts/lab --lang ko` as a learner sees it: JupyterLab's menus in Korean, in Chromium.

One JupyterLab, started as tests/browser/conftest.py starts every lab (copies of notebooks/,
temporary settings, its own process group), with the user setting scripts/lab writes for
``--lang ko``: scripts/lab_language.py's ``write_locale(settings_dir, "ko_KR")``. Its copies include
notebooks/ko/. The page opened is the one scripts/lab opens first, ``ko/00_start_here.ipynb``
(or, while that translation is not merged yet, the glossary beside it). The menu bar must read
파일 · 편집 · 보기 · 실행 · 커널 …, and the server must hand the page the ko_KR language pack.
With a Korean chapter open, its rendered title must be Korean too. A screenshot is saved as
``tests/browser/artifacts/ko_lab.png``.

Then the walkthrough: every Korean chapter opened in that lab (its kernels get
``TEACHDOCK_LANG=ko``, as scripts/lab gives them), and a few of its cells run, chosen because they
are cheap and show what the lab itself says — a prediction box, an exercise's answer box. Their
output must read Korean: Hangul from the lab's message catalogue, not only from the Markdown
around it. Each output of the lab's is saved as ``artifacts/ko_NN_K.png``. The English
walkthrough (test_lab_ui.py) runs whole chapters; the Korean chapters run the same code (the
sync test holds it so), so here the point is the language, not the code.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import urllib.error
from pathlib import Path

import pytest

from tests.browser import conftest as browser
from tests.support.korean import HANGUL, english_left
from tests.support.scripts import load_script

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="python Playwright is missing: pip install playwright (never `playwright install`: we use /usr/bin/chromium)")
expect = sync_api.expect

pytestmark = [pytest.mark.root, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parents[2]
KOREAN = REPOSITORY / "notebooks" / "ko"
FIRST_CHAPTER = "ko/00_start_here.ipynb"  # what scripts/lab --lang ko opens first
MENUS = ["파일", "편집", "보기", "실행", "커널", "설정", "도움말"]  # the pack's File, Edit, View, Run, Kernel, Settings, Help

#: Whether the menu bar's font draws Hangul: two different syllables come out as different pixels.
#: Without a Korean font both are the same empty box (the screenshot then shows no Korean at all).
HANGUL_HAS_GLYPHS = """() => {
  const label = document.querySelector('#jp-MainMenu .lm-MenuBar-itemLabel');
  const canvas = document.createElement('canvas');
  canvas.width = 48; canvas.height = 48;
  const context = canvas.getContext('2d');
  context.font = '32px ' + getComputedStyle(label).fontFamily;
  const pixels = (text) => {
    context.clearRect(0, 0, 48, 48);
    context.fillText(text, 4, 38);
    return Array.from(context.getImageData(0, 0, 48, 48).data).join(',');
  };
  return pixels('파') !== pixels('일');
}"""

lab_language = load_script(REPOSITORY / "scripts" / "lab_language.py")


@pytest.fixture(scope="module")
def korean_lab():
    reason = browser.skip_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="teachdock-browser-ko-"))
    base.chmod(0o755)
    lab = browser.Lab(base, browser.free_port(), secrets.token_hex(24))
    for directory in (lab.root, lab.state_root):
        directory.mkdir()
        directory.chmod(0o755)
    shutil.copytree(KOREAN, lab.root / "ko")
    lab_language.write_locale(base / "lab-settings", "ko_KR")  # the directory the lab fixture's settings live in
    try:
        browser._start(lab, TEACHDOCK_LANG="ko")  # noqa: SLF001 - the same start as every browser test's lab
        yield lab
    finally:
        problems = browser._stop(lab)  # noqa: SLF001
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "; ".join(problems)


def test_the_lab_in_korean_shows_korean_menus(korean_lab):
    chapter = (korean_lab.root / FIRST_CHAPTER).exists()
    opened = FIRST_CHAPTER if chapter else "ko/glossary.md"
    pack = korean_lab.api("GET", "/lab/api/translations/ko_KR", timeout=60)
    assert pack["data"], f"the server has no ko_KR language pack: {pack['message']}"

    with browser.launched_chromium() as chromium:
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{korean_lab.url}/lab/workspaces/ko/tree/{opened}?token={korean_lab.token}")
            menu = page.locator("#jp-MainMenu")
            # the first page of a fresh lab loads the whole bundle: slow on a busy 2-core machine
            expect(menu).to_contain_text("파일", timeout=180_000)
            labels = [label.strip() for label in menu.locator(".lm-MenuBar-itemLabel").all_inner_texts()]
            assert [name for name in MENUS if name not in labels] == [], labels
            assert "File" not in labels and "Kernel" not in labels, labels
            assert page.evaluate(HANGUL_HAS_GLYPHS), (
                "the menus are Korean, but this Chromium draws Hangul as empty boxes: no Korean font "
                "(scripts/setup installs fonts-nanum; fc-list :lang=ko lists what there is)")
            if chapter:
                heading = page.locator(".jp-Notebook .jp-MarkdownOutput h1").first
                expect(heading).to_be_visible(timeout=60_000)
                assert HANGUL.search(heading.inner_text()), heading.inner_text()
            else:
                expect(page.locator(".lm-TabBar-tabLabel", has_text="glossary.md").first).to_be_visible()
            page.screenshot(path=str(browser.ARTIFACTS / "ko_lab.png"))
            assert not errors, errors
        finally:
            if chapter:
                try:
                    korean_lab.shutdown_kernel_of(FIRST_CHAPTER)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass  # Lab is gone: its teardown reports what it had to kill


def shows(marker: str) -> tuple[str, bool]:
    """A cell whose output is the lab's own: it must read Korean (and is saved as a screenshot)."""
    return marker, True


def runs(marker: str) -> tuple[str, bool]:
    """A cell that only prepares (imports, a scratch folder): its output is the code's own prints."""
    return marker, False


#: chapter: the cells to run, in order, each named by a text only its source contains. Each is
#: cheap (no daemon, at most one short container) and leaves nothing behind.
TOURS = {
    "00_start_here.ipynb": [shows("report = doctor()"), shows("startup_guess = Prediction("),
                            shows("launcher = container_launcher("), shows("HTML(launcher.report.value)"),
                            shows("check_ps_count(answer)")],
    "01_virtualization.ipynb": [shows("calls_guess = Prediction(")],
    "02_namespaces.ipynb": [shows("host_pid_guess = Prediction("), shows("check_shared_kinds(answer")],
    "03_cgroups.ipynb": [shows("peak_guess = Prediction(")],
    "04_filesystems.ipynb": [runs("import inspect"), shows("mounts_after_pivot = Prediction("),
                             shows("check_hidden_cpuinfo(options)")],
    "05_images_and_layers.ipynb": [runs("images = Images(workdir"), shows("blob_count = Prediction(")],
    "06_registries.ipynb": [shows("digits_guess = Prediction(")],
    "07_client_and_daemon.ipynb": [runs('prefix="teachdock-07-"'), shows("calls_guess = Prediction(")],
    "08_networks.ipynb": [runs("from teachdock.lab.networks import (BRIDGE"), shows("slowdown_guess = Prediction(")],
    "09_applications.ipynb": [runs('prefix="teachdock-09-"'), shows("calls_guess = Prediction(")],
    "10_security.ipynb": [shows("check_mkdir_filter(my_profile)")],
    "11_build_your_own_container.ipynb": [shows("lines_guess = Prediction(")],
}

KERNEL_IDLE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return Boolean(kernel) && kernel.status === 'idle';
}"""

RUN_CELL = """async (index) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = index;
  await window.jupyterapp.commands.execute('notebook:run-cell');
}"""

CELL_COUNT = "(index) => window.jupyterapp.shell.currentWidget.content.widgets[index].model.executionCount"


def tour_cell(chapter: str, marker: str) -> int:
    """Index among all cells (as in the DOM) of the one cell of the Korean chapter holding ``marker``."""
    cells = json.loads((KOREAN / chapter).read_text())["cells"]
    found = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code" and marker in "".join(cell["source"])]
    assert len(found) == 1, f"ko/{chapter}: {len(found)} code cells contain {marker!r}; the tour needs exactly one"
    return found[0]


def test_the_tour_names_every_chapter():
    assert sorted(TOURS) == sorted(p.name for p in KOREAN.glob("*.ipynb"))
    for chapter, steps in TOURS.items():
        assert any(korean for _, korean in steps), f"{chapter}: the tour shows nothing of the lab's"
        for marker, _ in steps:
            tour_cell(chapter, marker)


def test_every_korean_chapter_shows_korean_output(korean_lab):
    seen = {}
    with browser.launched_chromium() as chromium:
        for chapter, steps in TOURS.items():
            notebook = f"ko/{chapter}"
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                browser.load_notebook(page, korean_lab.page_url(notebook))
                page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=250)
                expect(page.locator("#jp-MainMenu")).to_contain_text("커널")
                title = page.locator(".jp-Notebook .jp-MarkdownOutput h1").first
                expect(title).to_be_visible(timeout=60_000)
                assert HANGUL.search(title.inner_text()), f"{notebook}: title {title.inner_text()!r}"
                for number, (marker, korean) in enumerate(steps):
                    index = tour_cell(chapter, marker)
                    page.evaluate(RUN_CELL, index)
                    page.wait_for_function(f"() => ({CELL_COUNT})({index}) !== null", timeout=120_000, polling=250)
                    page.wait_for_function(KERNEL_IDLE, timeout=120_000, polling=250)
                    output = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")
                    assert "Traceback" not in output.inner_text(), (
                        f"{notebook}: the cell with {marker!r} failed:\n{output.inner_text()}")
                    if korean:
                        expect(output).to_contain_text(HANGUL, timeout=30_000)  # widgets render after the reply
                        seen[f"{chapter} {marker}"] = output.inner_text()
                        output.screenshot(path=str(browser.ARTIFACTS / f"ko_{chapter[:2]}_{number}.png"))
                assert not errors, f"{notebook}: {errors}"
            finally:
                page.close()
                try:
                    korean_lab.shutdown_kernel_of(notebook)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass  # Lab is gone: its teardown reports what it had to kill
    english = {cell: english_left(text) for cell, text in seen.items() if english_left(text)}
    assert not english, f"English prose left in what the lab showed: {english}"
