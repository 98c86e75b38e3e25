"""The workshop decks, built and shown the way a room sees them: in Chromium, with the network cut.

The decks are built once per session by scripts/build_slides.py (executed as root: real figures),
into a temporary directory, unless slides/build/ already holds a build of the current decks
(``sudo scripts/slides`` made it; manifest.json says from what), which is then reused: a full
build takes minutes. Each built deck is opened from disk with every request that is not file://
or 127.0.0.1 aborted and recorded, stepped through with Reveal.next() to its last slide, and
must show no console error, no uncaught exception, no failed or outside request and no image
that did not load. Its PDF handout must be a PDF with one page per slide.

One Korean deck (00, built by ``scripts/slides --lang ko``'s code into a temporary directory, or
slides/build/ko/ when that holds it built from the current deck: a few seconds) must say
``<html lang="ko">``, show its Korean title drawn in a font with Hangul (the font Chromium really
used, asked through the DevTools protocol: NanumGothic or Noto Sans CJK KR, not a box), and embed
that font in its PDF handout.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, REPO, launched_chromium, skip_reason
from tests.support.scripts import load_script

SCRIPT = REPO / "scripts" / "build_slides.py"


builder = load_script(SCRIPT)
DECKS = builder.decks()


@pytest.fixture(scope="session")
def built_slides():
    """A directory holding every deck built (HTML, PDF, reveal.js): slides/build/ if current, else a fresh build."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if builder.up_to_date(builder.BUILD, DECKS):
        yield builder.BUILD
        return
    base = Path(tempfile.mkdtemp(prefix="teachdock-slides-test-"))
    try:
        out = base / "build"
        try:
            builder.build(DECKS, out)
        except builder.SetupMissing as missing:
            pytest.fail(f"the decks cannot be built here: {missing}")
        yield out
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def built_korean_deck():
    """slides/build/ko/ if it holds deck 00 built from the current Korean deck, else a fresh build of that deck."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    korean = builder.language("ko")
    deck = [deck for deck in builder.decks(korean.folder) if deck.number == "00"]
    if builder.up_to_date(korean.out, deck):
        yield korean.out, deck[0]
        return
    base = Path(tempfile.mkdtemp(prefix="teachdock-slides-ko-test-"))
    try:
        out = base / "ko"
        try:
            builder.build(deck, out, lang=korean)
        except builder.SetupMissing as missing:
            pytest.fail(f"the Korean deck cannot be built here: {missing}")
        yield out, deck[0]
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def offline_chromium(built_slides, built_korean_deck):
    """Chromium for the built pages, launched only after both builds: a build prints its PDFs with
    Playwright's sync API, which cannot start while another sync Playwright runs in this thread."""
    if skip_reason():
        pytest.skip(skip_reason())
    with launched_chromium() as browser:
        yield browser


def allowed(url: str) -> bool:
    """Only what is on this machine: files, data: URLs, and loopback."""
    return url.startswith(("file://", "data:", "blob:", "about:")) or bool(
        re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/", url))


def test_allowed_urls():
    assert allowed("file:///tmp/build/reveal.js/dist/reveal.js")
    assert allowed("data:image/png;base64,AAAA")
    assert allowed("http://127.0.0.1:8888/x")
    assert not allowed("https://unpkg.com/reveal.js@4.0.2/dist/reveal.js")
    assert not allowed("https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js")
    assert not allowed("http://127.0.0.1.example.com/")


@pytest.mark.slow
@pytest.mark.parametrize("deck", DECKS, ids=[deck.number for deck in DECKS])
def test_deck_shows_every_slide_offline(deck, built_slides, offline_chromium):
    page = offline_chromium.new_page(viewport={"width": 1280, "height": 720})
    page.set_default_timeout(30_000)
    outside, failed, console_errors, page_errors = [], [], [], []

    def route(request_route):
        if allowed(request_route.request.url):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        page.goto((built_slides / f"{deck.name}.slides.html").as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        total = page.evaluate("Reveal.getTotalSlides()")
        seen, broken = 1, []
        while True:
            page.wait_for_function("() => [...document.querySelectorAll('.reveal section.present img')]"
                                   ".every(img => img.complete)")
            broken += page.evaluate("[...document.querySelectorAll('.reveal section.present img')]"
                                    ".filter(img => img.naturalWidth === 0).map(img => img.src.slice(0, 80))")
            if page.evaluate("Reveal.isLastSlide()"):
                break
            page.evaluate("Reveal.next()")
            seen += 1
            assert seen <= total + 20, "Reveal.next() never reached the last slide"
        page.screenshot(path=str(ARTIFACTS / f"slides_{deck.name}_last.png"))
        figures = page.evaluate("[...document.images].filter(img => img.naturalWidth > 0).length")
        fonts = page.evaluate("document.fonts.status")
    finally:
        page.close()
    assert not outside, f"requests to outside this machine: {outside}"
    assert not failed, f"failed requests: {failed}"
    assert not console_errors, f"console errors: {console_errors}"
    assert not page_errors, f"uncaught errors: {page_errors}"
    assert not broken, f"images that did not load: {broken}"
    assert seen >= 5, f"only {seen} slides: a deck has the idea, the picture, the commands and the exercise"
    assert seen >= total, f"stepped through {seen} of {total} slides"
    assert fonts == "loaded"
    assert figures >= 1, "no figure in the deck: the picture the build makes is missing"


@pytest.mark.parametrize("deck", DECKS, ids=[deck.number for deck in DECKS])
def test_deck_has_a_pdf_handout(deck, built_slides):
    pdf = (built_slides / f"{deck.name}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    slides = sum(1 for cell in json.loads(deck.path.read_text())["cells"]
                 if cell["metadata"].get("slideshow", {}).get("slide_type") == "slide")
    assert pages == slides, f"{pages} pages in the PDF for {slides} slides: a slide that spills over a page " \
                            "is too full for the projector as well"
    assert b"/Subtype /Image" in pdf, "no figure in the handout"


def test_index_links_every_deck(built_slides, offline_chromium):
    page = offline_chromium.new_page()
    try:
        page.route("**/*", lambda r: r.continue_() if allowed(r.request.url) else r.abort())
        page.goto((built_slides / "index.html").as_uri())
        links = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
    finally:
        page.close()
    for deck in DECKS:
        assert f"{deck.name}.slides.html" in links and f"{deck.name}.pdf" in links


def test_jupyterlab_lists_rise():
    """The decks can be presented live in JupyterLab: jupyterlab-rise is installed and enabled."""
    jupyter = Path(sys.executable).parent / "jupyter"
    listed = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert re.search(r"jupyterlab-rise v\S+ enabled OK", text), text


@pytest.mark.slow
def test_rise_presents_a_built_deck_in_jupyterlab(built_slides, lab, offline_chromium):
    """The other way to present: a built deck (outputs included) as a RISE slideshow inside JupyterLab.

    RISE's own page logs errors of its own on JupyterLab 4.6 (its bundled widget manager finds no
    @jupyterlab/console; a RangeError from its bundle) that change nothing a room sees, so this
    test looks at what is shown: every slide, the figure loaded, nothing from outside."""
    deck = next(deck for deck in DECKS if deck.number == "03")
    shutil.copy2(built_slides / f"{deck.name}.ipynb", lab.root / f"deck_{deck.name}.ipynb")
    notebook = f"deck_{deck.name}.ipynb"
    page = offline_chromium.new_page(viewport={"width": 1400, "height": 900})
    outside = []
    page.route("**/*", lambda route: route.continue_() if allowed(route.request.url)
               else (outside.append(route.request.url), route.abort()))
    try:
        page.goto(lab.page_url(notebook))
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=180_000)
        page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.context.ready; }")
        page.evaluate("window.jupyterapp.commands.execute('RISE:preview')")
        shown = _what_rise_shows(page)
    finally:
        page.close()
        lab.shutdown_kernel_of(notebook)
    expected = sum(1 for cell in json.loads(deck.path.read_text())["cells"]
                   if cell["metadata"].get("slideshow", {}).get("slide_type") == "slide")
    assert shown["slides"] == expected, f"RISE shows {shown['slides']} slides of {expected}"
    assert shown["loaded"] >= 1, "the OOM figure did not load in RISE"
    assert "03 · cgroups" in shown["text"] and "OOM-killed: True" in shown["text"]
    assert not outside, f"requests to outside this machine: {outside}"


def _what_rise_shows(page) -> dict:
    page.wait_for_function("() => [...document.querySelectorAll('iframe')].some(f => f.src.includes('/rise/'))",
                           timeout=60_000)
    for _ in range(300):  # the iframe's element comes first, its document a moment later
        frame = next((frame for frame in page.frames if "/rise/" in frame.url), None)
        if frame is not None:
            break
        page.wait_for_timeout(200)
    assert frame is not None, "RISE's slideshow never loaded in its frame"
    frame.wait_for_function("() => document.querySelectorAll('.reveal .slides > section').length > 0", timeout=60_000)
    frame.wait_for_function("() => [...document.images].length > 0 && [...document.images].every(i => i.complete)")
    page.screenshot(path=str(ARTIFACTS / "slides_rise_03.png"))
    return {"slides": frame.evaluate("document.querySelectorAll('.reveal .slides > section').length"),
            "loaded": frame.evaluate("[...document.images].filter(i => i.naturalWidth > 0).length"),
            "text": frame.evaluate("document.querySelector('.reveal').textContent")}


def platform_fonts(page, selector: str) -> list[str]:
    """The fonts Chromium drew an element's own text with, as the DevTools protocol reports them."""
    session = page.context.new_cdp_session(page)
    try:
        session.send("DOM.enable")
        session.send("CSS.enable")
        document = session.send("DOM.getDocument", {"depth": -1})
        node = session.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": selector})
        assert node["nodeId"], f"nothing matches {selector}"
        return [font["familyName"] for font in session.send("CSS.getPlatformFontsForNode",
                                                             {"nodeId": node["nodeId"]})["fonts"]]
    finally:
        session.detach()


KOREAN_FONTS = ("NanumGothic", "Noto Sans CJK KR")


def test_a_korean_deck_shows_hangul_in_a_korean_font(built_korean_deck, offline_chromium):
    out, deck = built_korean_deck
    page = offline_chromium.new_page(viewport={"width": 1280, "height": 720})
    page.set_default_timeout(30_000)
    outside, errors = [], []
    page.route("**/*", lambda route: route.continue_() if allowed(route.request.url)
               else (outside.append(route.request.url), route.abort()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto((out / f"{deck.name}.slides.html").as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady() && document.fonts.status === 'loaded'")
        language = page.evaluate("document.documentElement.lang")
        title = page.inner_text(".reveal section.present h1")
        fonts = platform_fonts(page, ".reveal section.present h1")
        stack = page.evaluate("getComputedStyle(document.querySelector('.reveal section.present h1')).fontFamily")
        total = page.evaluate("Reveal.getTotalSlides()")
        page.screenshot(path=str(ARTIFACTS / f"slides_ko_{deck.name}_first.png"))
    finally:
        page.close()
    assert language == "ko"
    assert title.startswith("00 · ") and re.search("[가-힣]", title), title
    families = [family.strip().strip("'\"") for family in stack.split(",")]
    assert families[:2] == list(KOREAN_FONTS), f"the template's font stack for Korean: {stack}"
    assert any(font.startswith(KOREAN_FONTS) for font in fonts), (
        f"the Korean title was drawn in {fonts}: no font with Hangul (scripts/setup installs fonts-nanum)")
    slides = sum(1 for cell in json.loads(deck.path.read_text())["cells"]
                 if cell["metadata"].get("slideshow", {}).get("slide_type") == "slide")
    assert total == slides and not outside and not errors, (total, slides, outside, errors)
    pdf = (out / f"{deck.name}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and re.search(rb"/BaseFont\s*/[A-Z]{6}\+(NanumGothic|NotoSansCJKkr)", pdf), (
        "the handout embeds no font with Hangul")
    assert (out / "index.html").read_text().startswith('<!DOCTYPE html>\n<html lang="ko">')
