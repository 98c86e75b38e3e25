"""The book's pure parts (book/site.py) and its page template (book/build.py's render), without
executing a chapter: titles and bullets, links between chapters, navigation, the contents page,
widgets without a saved model, and a page that asks for nothing outside the disk."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from book.build import chapters, render
from book.site import (Chapter, contents_page, drop_missing_widget_views, learning_bullets, link_chapter_mentions,
                       navigation, read_chapter, rewrite_chapter_links, summary_line)

REPO = Path(__file__).resolve().parents[2]
STEMS = {"00_start_here", "03_cgroups", "04_filesystems"}
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import\s+url\(\s*["']?(?:https?:)?//""", re.IGNORECASE)

FIRST_CELL = """# 03 · cgroups: limits the kernel enforces

Namespaces decide what a process can *see*. Control groups decide how much it can *use*.

**What you will learn** (about 30 minutes)

- tell cgroup v1 from cgroup v2, and find a container's cgroup under `/sys/fs/cgroup`;
- read the exact files a runtime writes for `--memory`, and say how
  much swap `--memory` alone allows;
- stop a fork bomb with `pids.max`.

**No root?** Reading works for every user.
"""


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


# --- titles, bullets and summaries -------------------------------------------------------------

def test_a_chapter_reads_its_title_and_its_bullets_joined_across_wrapped_lines():
    chapter = read_chapter("03_cgroups", notebook(markdown(FIRST_CELL)))
    assert chapter.title == "03 · cgroups: limits the kernel enforces"
    assert chapter.learn == [
        "tell cgroup v1 from cgroup v2, and find a container's cgroup under `/sys/fs/cgroup`;",
        "read the exact files a runtime writes for `--memory`, and say how much swap `--memory` alone allows;",
        "stop a fork bomb with `pids.max`.",
    ]
    assert chapter.summary == "Namespaces decide what a process can *see*."
    assert chapter.page == "03_cgroups.html"


def test_bullets_follow_a_heading_whose_stated_time_wraps_onto_the_next_line():
    text = ("# 06 · Registries: the HTTP behind `docker pull`\n\nA registry is a web server.\n\n"
            "**What you will learn** (about 20 minutes to read: 3,800 words at 200 a minute, while the\n"
            "cells run in seconds; then the three exercises)\n\n- compute a **digest**;\n- start a registry.\n\n"
            "**No root?** It runs.\n")
    chapter = read_chapter("06_registries", notebook(markdown(text)))
    assert chapter.learn == ["compute a **digest**;", "start a registry."]
    assert chapter.title_html == "06 · Registries: the HTTP behind <code>docker pull</code>"
    assert chapter.title_text == "06 · Registries: the HTTP behind docker pull"


def test_a_list_of_another_section_is_not_taken_for_the_learning_list():
    assert learning_bullets("**What you will learn** by doing.\n\n## 1. Set up\n\n- a step\n") == []


def test_without_a_learning_list_the_summary_is_the_first_sentence():
    text = "# 11 · Capstone\n\nBuild a small platform of your own. It has levels.\n\n## Level 1\n"
    chapter = read_chapter("11_capstone", notebook(markdown(text)))
    assert chapter.learn == [] and chapter.summary == "Build a small platform of your own."
    assert learning_bullets(text) == []
    assert summary_line("# Title only\n") == ""


def test_every_chapter_of_the_course_has_a_numbered_title_and_something_to_say():
    paths = chapters()
    assert [path.stem for path in paths] == sorted(path.stem for path in paths) and len(paths) >= 11
    for path in paths:
        content = json.loads(path.read_text(encoding="utf-8"))
        chapter = read_chapter(path.stem, content)
        assert chapter.title.startswith(path.stem[:2] + " "), (path.name, chapter.title)
        if "**What you will learn**" in "".join(content["cells"][0]["source"]):
            assert len(chapter.learn) >= 3, (path.name, chapter.learn)
        else:
            assert chapter.summary, path.name


def test_an_unknown_chapter_is_refused_by_name():
    from book.build import BuildFailed

    with pytest.raises(BuildFailed, match="no such chapter: 99_nothing"):
        chapters(["03_cgroups", "99_nothing"])


# --- links between chapters --------------------------------------------------------------------

@pytest.mark.parametrize("before, after", [
    ("see [chapter 3](03_cgroups.ipynb).", "see [chapter 3](03_cgroups.html)."),
    ("see [the OOM part](03_cgroups.ipynb#3.-Memory).", "see [the OOM part](03_cgroups.html#3.-Memory)."),
    ("[here](./04_filesystems.ipynb)", "[here](04_filesystems.html)"),
    ('<a href="00_start_here.ipynb">start</a>', '<a href="00_start_here.html">start</a>'),
    ("[start]: 00_start_here.ipynb", "[start]: 00_start_here.html"),
])
def test_a_link_to_a_chapter_of_the_book_points_at_its_page(before, after):
    assert rewrite_chapter_links(before, STEMS) == after


@pytest.mark.parametrize("text", [
    "[later](12_not_in_the_book.ipynb)",  # not a chapter of this book: left for the test to catch
    "[upstream](https://example.org/notebooks/03_cgroups.ipynb)",
    "Open `03_cgroups.ipynb` in the lab.",  # a file name in the text, not a link
    "[guide](../README.md)",
])
def test_other_links_and_file_names_are_left_alone(text):
    assert rewrite_chapter_links(text, STEMS) == text


def test_a_chapters_file_name_in_the_text_becomes_a_link_to_its_page():
    text = "Chapter 03 (`03_cgroups.ipynb`) limits it.\n```\nopen `04_filesystems.ipynb`\n```\nThen `04_filesystems.ipynb`."
    assert link_chapter_mentions(text, STEMS) == (
        "Chapter 03 ([`03_cgroups.ipynb`](03_cgroups.html)) limits it.\n"
        "```\nopen `04_filesystems.ipynb`\n```\n"  # code in a fence stays code
        "Then [`04_filesystems.ipynb`](04_filesystems.html).")


@pytest.mark.parametrize("text", [
    "[`03_cgroups.ipynb`](03_cgroups.html)",  # already a link's text
    "`12_not_in_the_book.ipynb`",
    "`open 03_cgroups.ipynb`",  # more than the file name
])
def test_a_mention_that_is_a_link_already_or_no_chapter_stays(text):
    assert link_chapter_mentions(text, STEMS) == text


# --- widgets without their model ---------------------------------------------------------------

def test_a_widget_view_whose_model_was_not_saved_falls_back_to_its_text():
    kept = {"application/vnd.jupyter.widget-view+json": {"model_id": "saved", "version_major": 2},
            "text/plain": "Button()"}
    lost = {"application/vnd.jupyter.widget-view+json": {"model_id": "gone", "version_major": 2},
            "text/plain": "Slider()"}
    book = notebook({"cell_type": "code", "outputs": [{"output_type": "display_data", "data": kept},
                                                      {"output_type": "display_data", "data": lost}]})
    book["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"saved": {}}}}
    assert drop_missing_widget_views(book) == 1
    assert "application/vnd.jupyter.widget-view+json" in kept
    assert lost == {"text/plain": "Slider()"}


# --- navigation and the contents page ----------------------------------------------------------

BOOK = [Chapter("00_start_here", "00 · Start here", ["check the machine;"]),
        Chapter("03_cgroups", "03 · cgroups <limits>", ["read `/proc/<pid>/cgroup`;", "stop a fork bomb."]),
        Chapter("04_filesystems", "04 · Filesystems", [], "A container's files are a directory.")]


class Links(HTMLParser):
    """Every <a>'s rel and href, in order (attribute order and quoting as the page has them)."""

    def __init__(self, page: str):
        super().__init__()
        self.found: list[tuple[str | None, str]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and "href" in attributes:
            self.found.append((attributes.get("rel"), attributes["href"]))


def links_of(page: str) -> dict[str, str]:
    return {rel: href for rel, href in Links(page).found if rel}


def test_navigation_has_previous_contents_and_next_where_they_exist():
    assert links_of(navigation(BOOK, 0)) == {"contents": "index.html", "next": "03_cgroups.html"}
    assert links_of(navigation(BOOK, 1)) == {"prev": "00_start_here.html", "contents": "index.html",
                                             "next": "04_filesystems.html"}
    assert links_of(navigation(BOOK, 2)) == {"prev": "03_cgroups.html", "contents": "index.html"}
    assert "03 · cgroups &lt;limits&gt; →" in navigation(BOOK, 0)


def test_the_contents_page_lists_the_chapters_in_order_with_what_they_teach():
    page = contents_page(BOOK, {"00_start_here": 2.4, "03_cgroups": 61.0}, "Outputs made here.")
    assert re.findall(r'<h2><a href="([^"]+)">', page) == ["00_start_here.html", "03_cgroups.html",
                                                          "04_filesystems.html"]
    assert "<li>read <code>/proc/&lt;pid&gt;/cgroup</code>;</li>" in page  # Markdown rendered, HTML escaped
    assert "03 · cgroups &lt;limits&gt;" in page
    assert "<p>A container's files are a directory.</p>" in page  # the summary where there are no bullets
    assert "top to bottom in 61 s" in page and "top to bottom in 2 s" in page and page.count("top to bottom in") == 2
    assert "Outputs made here." in page
    assert not OUTSIDE.search(page)


# --- a chapter page, rendered (no kernel: outputs written by hand) ------------------------------

def test_a_chapter_page_has_navigation_the_live_note_and_no_outside_asset():
    node = nbformat.v4.new_notebook()
    node.cells = [
        nbformat.v4.new_markdown_cell("# 03 · cgroups\n\nSee [the filesystems](04_filesystems.ipynb#top)."),
        nbformat.v4.new_code_cell("print('hello')", outputs=[nbformat.v4.new_output("stream", text="hello\n")]),
        nbformat.v4.new_code_cell("slider", outputs=[nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2, "version_minor": 0},
            "text/plain": "IntSlider(value=3)"})]),
        nbformat.v4.new_code_cell("gone", outputs=[nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "m2", "version_major": 2, "version_minor": 0},
            "text/plain": "Button(description='Gone')"})]),
    ]
    node.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"m1": {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
                         "model_module_version": "2.0.0", "state": {"value": 3}}}}}
    page = render(node, BOOK[1], BOOK, "Outputs made on a test.")
    found = Links(page).found
    assert found.count(("prev", "00_start_here.html")) == 2  # above and below the chapter
    assert found.count(("contents", "index.html")) == 2
    assert found.count(("next", "04_filesystems.html")) == 2
    assert (None, "04_filesystems.html#top") in found and ".ipynb" not in page
    assert page.count("live in the lab") == 1  # the saved widget; the lost one is text
    assert "Button(description=&#39;Gone&#39;)" in page or "Button(description='Gone')" in page
    assert re.search(r'<script src="_static/widgets/embed.js">\s*</script>', page)
    assert "Outputs made on a test." in page and "<title>03 · cgroups &lt;limits&gt;</title>" in page
    assert not OUTSIDE.search(page), OUTSIDE.search(page).group(0)
    assert "require.js" not in page and "MathJax" not in page.replace("mathjax", "")
