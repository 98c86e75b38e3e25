"""The course as a book (scripts/book): built ONCE per test session, every chapter executed as
root, then every page opened from disk (file://) in Debian's Chromium with every other request
aborted, as a reader without a network would open it.

Each page must load with no failed request, no request that tried to leave the disk, no
JavaScript error and no broken image; its links must lead to pages that exist; a chapter must
show real outputs (a cell's printed text), no "Without root this cell is skipped", and its
widgets rendered from their saved state with the "live in the lab" note beside each.

The build takes minutes. To check a book built already (by `scripts/book`), point
TEACHDOCK_BOOK at its folder; without it the session builds one into a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.browser.conftest import ARTIFACTS, launched_chromium, skip_reason

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(path.stem for path in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index", *CHAPTERS]
BUILD_TIMEOUT = 3600  # seconds for the whole book: every chapter runs, on a shared 2-core machine
SKIPPED_BY_GUARD = "Without root this cell is skipped"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def book() -> Path:
    """The built book's folder: TEACHDOCK_BOOK's, or one built here once for the whole session."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    given = os.environ.get("TEACHDOCK_BOOK")
    if given:
        yield Path(given).resolve()
        return
    base = Path(tempfile.mkdtemp(prefix="teachdock-book-test-"))
    try:
        result = subprocess.run([str(REPO / "scripts" / "book"), "--no-setup", "--out", str(base / "book")],
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        assert result.returncode == 0, f"scripts/book failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        yield base / "book"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Visit:
    """What one page did in Chromium."""

    blocked: list[str] = field(default_factory=list)  # requests that tried to leave file://
    failed: list[str] = field(default_factory=list)  # requests that failed
    errors: list[str] = field(default_factory=list)  # uncaught JavaScript errors
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # every href on the page
    navigation: dict = field(default_factory=dict)  # rel -> href of the first navigation bar
    outputs: list[str] = field(default_factory=list)  # text of the cells' printed outputs
    widget_views: int = 0
    widgets_rendered: int = 0
    live_notes: int = 0
    text: str = ""


@pytest.fixture(scope="module")
def visits(book):
    """Every page opened once, in one Chromium, offline; what each did."""
    found = {}
    with launched_chromium() as browser:
        for name in PAGES:
            path = book / f"{name}.html"
            if path.exists():
                found[name] = _visit(browser, path, name)
    return found


def _visit(browser, path: Path, name: str) -> Visit:
    visit = Visit()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)

    def route(request_route):
        if request_route.request.url.startswith("file://"):
            request_route.continue_()
        else:
            visit.blocked.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda request: visit.failed.append(f"{request.url} ({request.failure})"))
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    try:
        page.goto(path.as_uri(), wait_until="load")
        visit.widget_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        if visit.widget_views:
            # html-manager renders on "load", asynchronously: wait until every view has its widget.
            page.wait_for_function(
                """() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
                         .every(s => s.parentElement.querySelector('.lm-Widget, .jupyter-widgets.widget-container, .widget-inline-hbox, .widget-output'))""",
                timeout=60_000)
            visit.widgets_rendered = page.evaluate(
                """() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
                         .filter(s => s.parentElement.querySelector('.lm-Widget, .widget-output')).length""")
        visit.broken_images = page.evaluate(
            "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))")
        visit.links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
        visit.navigation = page.evaluate(
            """() => { const nav = document.querySelector('nav.book-nav'); if (!nav) return {};
                       return Object.fromEntries([...nav.querySelectorAll('a[rel]')].map(a => [a.rel, a.getAttribute('href')])); }""")
        visit.outputs = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output pre')].map(p => p.innerText).filter(t => t.trim())")
        visit.live_notes = page.locator(".book-live-note").count()
        visit.text = page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / f"book_{name}.png"))
    finally:
        page.close()
    return visit


@pytest.mark.parametrize("name", PAGES)
def test_the_page_loads_from_disk_with_nothing_from_outside(visits, name):
    assert name in visits, f"the book has no {name}.html"
    visit = visits[name]
    assert not visit.blocked, f"{name}.html asked for something outside the disk: {visit.blocked[:5]}"
    assert not visit.failed, f"{name}.html: requests failed: {visit.failed[:5]}"
    assert not visit.errors, f"{name}.html: JavaScript errors: {visit.errors[:3]}"
    assert not visit.broken_images, f"{name}.html: broken images: {visit.broken_images[:5]}"


@pytest.mark.parametrize("name", PAGES)
def test_every_link_to_the_book_leads_to_a_page(book, visits, name):
    local = [href for href in visits[name].links if not urlsplit(href).scheme and not href.startswith("#")]
    missing = [href for href in local if not (book / unquote(urlsplit(href).path)).is_file()]
    assert not missing, f"{name}.html links to pages the book does not have: {missing}"
    ipynb = [href for href in visits[name].links if urlsplit(href).path.endswith(".ipynb")]
    assert not ipynb, f"{name}.html still links to notebooks: {ipynb}"


def test_the_contents_page_lists_every_chapter_in_order(visits):
    pages = [href for href in visits["index"].links if href.endswith(".html")]
    assert pages == [f"{chapter}.html" for chapter in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_chapter_has_previous_contents_and_next(visits, chapter):
    position = CHAPTERS.index(chapter)
    expected = {"contents": "index.html"}
    if position > 0:
        expected["prev"] = f"{CHAPTERS[position - 1]}.html"
    if position + 1 < len(CHAPTERS):
        expected["next"] = f"{CHAPTERS[position + 1]}.html"
    assert visits[chapter].navigation == expected


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_chapter_shows_what_its_cells_printed_as_root(visits, chapter):
    visit = visits[chapter]
    assert visit.outputs, f"{chapter}.html shows no printed output: was it executed?"
    assert SKIPPED_BY_GUARD not in visit.text, f"{chapter}.html has cells skipped for want of root"
    assert visit.live_notes == visit.widget_views, "every widget has its 'live in the lab' note"
    assert visit.widgets_rendered == visit.widget_views, \
        f"{chapter}.html: {visit.widget_views - visit.widgets_rendered} widgets not rendered from their state"


def test_the_book_has_widgets_rendered_from_their_saved_state(visits):
    """At least the chapters' widgets (the layer viewer, the monitor, ...) are in the book."""
    assert sum(visit.widget_views for visit in visits.values()) > 0
