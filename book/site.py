"""The book's pages that do not need a kernel: chapter titles and summaries, links between
chapters, the navigation bar and the contents page. Pure functions of the notebooks' JSON, so
that the unit tests can check them without executing anything (book/build.py executes).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import mistune

#: A chapter of the course: notebooks/NN_name.ipynb.
CHAPTER_FILE = re.compile(r"^\d\d_[A-Za-z0-9_-]+\.ipynb$")
#: A link target that names a chapter's notebook, bare or as ./NN_name.ipynb, with an optional #anchor.
#: It follows the opening of an inline Markdown link, an HTML href, or a reference definition.
CHAPTER_LINK = re.compile(
    r"""(?P<opening>\]\(\s*<?|\bhref\s*=\s*["']|^[ ]{0,3}\[[^\]\n]+\]:[ \t]*<?)"""
    r"""(?:\./)?(?P<stem>\d\d_[A-Za-z0-9_-]+)\.ipynb(?P<anchor>\#[^)\s"'>]*)?""",
    re.MULTILINE)
#: A chapter's file name alone in a code span, as the text names one: (`08_networks.ipynb`).
CHAPTER_MENTION = re.compile(r"(?<![\[`])`(?P<stem>\d\d_[A-Za-z0-9_-]+)\.ipynb`(?![\]`])")
FENCE = re.compile(r"^[ ]{0,3}(```|~~~)", re.MULTILINE)
LEARN_HEADING = re.compile(r"\*\*What you will learn\*\*[^\n]*\n")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

_markdown = mistune.create_markdown(escape=True)  # the contents page shows text, never raw HTML


@dataclass(frozen=True)
class Chapter:
    """What the contents page and the navigation say about one chapter."""

    stem: str  # "03_cgroups"
    title: str  # "03 · cgroups: limits the kernel enforces"
    learn: list[str] = field(default_factory=list)  # the "What you will learn" bullets, as Markdown
    summary: str = ""  # the first sentence after the title, for a chapter without bullets

    @property
    def page(self) -> str:
        return f"{self.stem}.html"

    @property
    def title_html(self) -> str:
        """The title with its Markdown (`docker pull` in code) as HTML, for links and headings."""
        return _inline(self.title)

    @property
    def title_text(self) -> str:
        """The title as plain text, for the page's <title>."""
        return self.title.replace("`", "")


def read_chapter(stem: str, notebook: dict) -> Chapter:
    """A chapter's title (its first heading), bullets and one-line summary, from its first Markdown cell."""
    first = next((_source(cell) for cell in notebook["cells"] if cell["cell_type"] == "markdown"), "")
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", first, re.MULTILINE)
    return Chapter(stem=stem, title=heading.group(1) if heading else stem, learn=learning_bullets(first),
                   summary=summary_line(first))


def learning_bullets(markdown: str) -> list[str]:
    """The bullets of the list under "**What you will learn**", each joined onto one line."""
    found = LEARN_HEADING.search(markdown)
    if not found:
        return []
    bullets: list[str] = []
    lines = markdown[found.end():].splitlines()
    # The heading's "(about N minutes ...)" may wrap onto more lines: the list starts at the first bullet.
    start = next((index for index, line in enumerate(lines) if re.match(r"[-*] ", line)), len(lines))
    if any(line.startswith(("#", "**")) for line in lines[:start]):
        return []  # another section came first: this chapter has no list under its heading
    for line in lines[start:]:
        if re.match(r"[-*] ", line):
            bullets.append(line[2:].strip())
        elif bullets and line.startswith((" ", "\t")) and line.strip():
            bullets[-1] += " " + line.strip()  # a bullet wrapped onto the next line
        else:
            break
    return bullets


def summary_line(markdown: str) -> str:
    """The first sentence of the first paragraph after the title (one line)."""
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", markdown) if part.strip()]
    for paragraph in paragraphs:
        if not paragraph.startswith(("#", "-", "*", "|", "<", ">")):
            text = " ".join(paragraph.split())
            sentence = re.match(r"(.+?[.!?])(\s|$)", text)
            return sentence.group(1) if sentence else text
    return ""


def rewrite_chapter_links(markdown: str, stems: set[str]) -> str:
    """Links to a chapter's notebook point at its page: `03_cgroups.ipynb#x` -> `03_cgroups.html#x`.

    Only chapters in ``stems`` (those in the book) are rewritten; other links are left alone.
    """
    def page(match: re.Match) -> str:
        if match["stem"] not in stems:
            return match.group(0)
        return f"{match['opening']}{match['stem']}.html{match['anchor'] or ''}"

    return CHAPTER_LINK.sub(page, markdown)


def link_chapter_mentions(markdown: str, stems: set[str]) -> str:
    """A chapter's file name in a code span becomes a link to its page, its text kept.

    In the lab a learner opens `08_networks.ipynb` from the file browser; in the book, one click.
    Fenced code blocks and the text of an existing link are left alone.
    """
    def link(match: re.Match) -> str:
        return f"[{match.group(0)}]({match['stem']}.html)" if match["stem"] in stems else match.group(0)

    parts = FENCE.split(markdown)
    # split() with one group alternates: text, fence, code, fence, text ... Only text outside fences changes.
    inside, changed = False, []
    for index, part in enumerate(parts):
        if index % 2 == 1:  # a fence marker
            inside = not inside
            changed.append(part)
        else:
            changed.append(part if inside else CHAPTER_MENTION.sub(link, part))
    return "".join(changed)


def drop_missing_widget_views(notebook: dict) -> int:
    """Remove widget views whose model the stored widget state lacks; return how many.

    The page renders a widget from the state saved when the chapter ran. A view with no model
    there would render as nothing (or an error), so its output falls back to what else it
    carries (the text/plain repr the kernel sent with it).
    """
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    dropped = 0
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None and view.get("model_id") not in state:
                del output["data"][WIDGET_VIEW]
                dropped += 1
    return dropped


def navigation(chapters: list[Chapter], index: int) -> str:
    """Previous / contents / next, for the chapter at ``index`` (HTML)."""
    previous = chapters[index - 1] if index > 0 else None
    following = chapters[index + 1] if index + 1 < len(chapters) else None

    def link(chapter: Chapter | None, rel: str, arrow: str) -> str:
        if chapter is None:
            return f'<span class="book-nav-{rel} book-nav-none"></span>'
        text = f"{arrow} {chapter.title_html}" if rel == "prev" else f"{chapter.title_html} {arrow}"
        return f'<a class="book-nav-{rel}" rel="{rel}" href="{chapter.page}">{text}</a>'

    return ('<nav class="book-nav">'
            f'{link(previous, "prev", "←")}'
            '<a class="book-nav-contents" rel="contents" href="index.html">Contents</a>'
            f'{link(following, "next", "→")}'
            '</nav>')


def contents_page(chapters: list[Chapter], seconds: dict[str, float], made_on: str) -> str:
    """index.html: every chapter with what it teaches and how long its cells ran here."""
    items = []
    for chapter in chapters:
        what = (_markdown("\n".join(f"- {bullet}" for bullet in chapter.learn)) if chapter.learn
                else f"<p>{_inline(chapter.summary)}</p>")
        ran = seconds.get(chapter.stem)
        timing = (f'<p class="book-ran">Executed top to bottom in {ran:.0f} s on the machine that built this book.</p>'
                  if ran is not None else "")
        items.append(f'<li class="book-chapter"><h2><a href="{chapter.page}">{chapter.title_html}</a></h2>'
                     f"{what}{timing}</li>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>teachdock: the course, with real outputs</title>
<link rel="stylesheet" href="_static/book.css">
</head>
<body class="book-contents">
<main>
<h1>teachdock: the course, with real outputs</h1>
<p>teachdock teaches how Docker works by running real containers: a small container engine in
Python and the notebooks of this course. Each page here is one chapter, <strong>executed</strong>
from top to bottom as root when this book was built, so every output, table and figure is what
the chapter printed on that machine. The widgets show their last state; in the lab they are
live.</p>
<p class="book-made-on">{html.escape(made_on)}</p>
<p>To run the chapters yourself, on a Linux machine: <code>scripts/lab</code> (the README says how
to set it up). Your numbers will differ from these: they are measured, not pasted.</p>
<h2 class="book-contents-title">Contents</h2>
<ol class="book-chapters">
{"".join(items)}
</ol>
</main>
</body>
</html>
"""


def _inline(text: str) -> str:
    """One line of Markdown as HTML, without the paragraph around it."""
    rendered = _markdown(text).strip()
    return rendered[3:-4] if rendered.startswith("<p>") and rendered.endswith("</p>") else rendered


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source
