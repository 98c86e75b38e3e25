"""`scripts/lab --lang ko` as a learner sees it: JupyterLab's menus in Korean, in Chromium.

One JupyterLab, started as tests/browser/conftest.py starts every lab (copies of notebooks/,
temporary settings, its own process group), with the user setting scripts/lab writes for
``--lang ko``: scripts/lab_language.py's ``write_locale(settings_dir, "ko_KR")``. Its copies include
notebooks/ko/. The page opened is the one scripts/lab opens first, ``ko/00_start_here.ipynb``
(or, while that translation is not merged yet, the glossary beside it). The menu bar must read
파일 · 편집 · 보기 · 실행 · 커널 …, and the server must hand the page the ko_KR language pack.
With a Korean chapter open, its rendered title must be Korean too. A screenshot is saved as
``tests/browser/artifacts/ko_lab.png``.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import urllib.error
from pathlib import Path

import pytest

from tests.browser import conftest as browser
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
        browser._start(lab)  # noqa: SLF001 - the same start as every browser test's lab
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
                assert browser_has_hangul(heading.inner_text()), heading.inner_text()
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


def browser_has_hangul(text: str) -> bool:
    return any("가" <= character <= "힣" for character in text)
