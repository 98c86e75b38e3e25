"""Build the workshop decks: slides/NN_name.ipynb -> slides/build/ (HTML for the projector, PDF handouts).

    sudo scripts/slides                 # every deck (scripts/slides is this file, run as root)
    sudo scripts/slides 03 05           # only these decks
    sudo scripts/slides --no-pdf        # HTML only
    sudo scripts/slides --lang ko       # the Korean decks: slides/ko/ -> slides/build/ko/

A language is a folder of decks and a folder of its build: English is slides/ -> slides/build/,
Korean (한국어) slides/ko/ -> slides/build/ko/. A deck's kernel gets TEACHDOCK_LANG set to the
language, so what the lab prints and draws in it (teachdock.lab's ``say``) is in that language
too, and the pages say which language they are in (``<html lang="ko">``: the template then picks
a font with Hangul). Building one language leaves the other's build where it is.

For each deck, in order: execute a copy in a scratch directory with nbclient (as root, so the
figures come from real containers on this machine), export it with nbconvert's SlidesExporter
through the template in slides/template/teachdock (reveal.js from a local copy, nothing from a
CDN), and print it to PDF with Debian's Chromium in reveal's print mode (``?print-pdf``).
The build goes to a scratch directory first and replaces slides/build/ only when every deck
built, so a failed build never leaves half a folder behind. slides/build/ also gets the
executed notebooks (to present live with outputs, through RISE in JupyterLab), reveal.js
itself, an index.html and manifest.json (what was built from what).

Needs no network: reveal.js comes from slides/node_modules, which scripts/setup fills with npm.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SLIDES = REPOSITORY / "slides"
BUILD = SLIDES / "build"
TEMPLATES = SLIDES / "template"
TEMPLATE = "teachdock"
REVEAL = SLIDES / "node_modules" / "reveal.js"
REVEAL_FILES = ["dist", "plugin/notes", "LICENSE"]  # what a built deck loads, and reveal's licence
REVEAL_PREFIX = "reveal.js"  # the decks' relative URL of that copy
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CELL_TIMEOUT = 300  # seconds; the slowest figure (chapter 10's grid of attempts) takes about a minute
#: Fonts with Hangul, the first that is installed wins: fonts-nanum (scripts/setup), then Noto's.
KOREAN_FONTS = "'NanumGothic','Noto Sans CJK KR'"
#: The reveal.js page size: 16:9, what projectors show today.
WIDTH, HEIGHT = 1280, 720


@dataclass(frozen=True)
class Language:
    """One language of the decks: where they are, where they are built, and the index page's words."""
    code: str
    name: str
    folder: Path
    out: Path
    index_title: str
    index_heading: str
    handout: str
    built_by: str


LANGUAGES = {
    "en": Language("en", "English", SLIDES, BUILD, "teachdock decks", "teachdock: the workshop decks",
                   "PDF handout", "Built from real runs on this machine by <code>scripts/slides</code>. "
                   "Keys: → next, Esc overview, S speaker notes."),
    "ko": Language("ko", "한국어", SLIDES / "ko", BUILD / "ko", "teachdock 슬라이드", "teachdock: 워크숍 슬라이드",
                   "PDF 유인물", "이 컴퓨터에서 실제로 실행한 결과로 <code>scripts/slides --lang ko</code>가 "
                   "만들었습니다. 키: → 다음, Esc 전체 보기, S 발표자 노트."),
}


def language(code: str) -> Language:
    """The language ``code`` names ('en', 'ko'); an unknown one is refused, naming those there are."""
    try:
        return LANGUAGES[code]
    except KeyError:
        there = ", ".join(f"{known.code} ({known.name})" for known in LANGUAGES.values())
        raise ValueError(f"unknown language {code!r}: the decks exist in {there}") from None


class SetupMissing(Exception):
    """Something scripts/setup installs is not there."""


@dataclass(frozen=True)
class Deck:
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def title(self) -> str:
        """The first heading of the first cell, e.g. '03 · cgroups: limits you can watch'."""
        notebook = json.loads(self.path.read_text())
        for line in "".join(notebook["cells"][0]["source"]).splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
        return self.name


def decks(folder: Path = SLIDES) -> list[Deck]:
    """Every deck, in chapter order: slides/NN_name.ipynb."""
    return [Deck(path) for path in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]


def select(available: list[Deck], wanted: list[str]) -> list[Deck]:
    """The decks named by number ('03') or name ('03_cgroups'); all of them when none is named."""
    if not wanted:
        return available
    chosen = [deck for deck in available if deck.number in wanted or deck.name in wanted]
    unknown = set(wanted) - {deck.number for deck in chosen} - {deck.name for deck in chosen}
    if unknown:
        names = ", ".join(deck.number for deck in available)
        raise SystemExit(f"slides: error: no deck {', '.join(sorted(unknown))} (there are: {names})")
    return chosen


def fingerprint(deck: Deck) -> str:
    """What the built deck depends on in this repository: the deck and the template."""
    digest = hashlib.sha256(deck.path.read_bytes())
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def up_to_date(build: Path, wanted: list[Deck], *, pdf: bool = True) -> bool:
    """True when ``build`` holds every deck of ``wanted`` built from its current source."""
    try:
        manifest = json.loads((build / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    built = manifest.get("decks", {})
    for deck in wanted:
        entry = built.get(deck.name)
        if not entry or entry.get("source") != fingerprint(deck):
            return False
        outputs = [entry.get("html")] + ([entry.get("pdf")] if pdf else [])
        if not all(name and (build / name).is_file() for name in outputs):
            return False
    return True


def check_setup(*, pdf: bool) -> None:
    """Raise SetupMissing, saying what to run, when the set-up this build needs was not done."""
    if not (REVEAL / "dist" / "reveal.js").is_file():
        raise SetupMissing(f"reveal.js is not installed in {REVEAL.parent}: run scripts/setup "
                           "(it runs `npm ci` in slides/; needs Debian's npm: apt-get install npm)")
    try:
        import nbclient  # noqa: F401, PLC0415
        import nbconvert  # noqa: F401, PLC0415
    except ImportError as missing:
        raise SetupMissing(f"{missing.name} is missing from the virtualenv: run scripts/setup") from None
    if pdf and not CHROMIUM.exists():
        raise SetupMissing(f"Debian's Chromium is missing at {CHROMIUM} (apt-get install chromium), "
                           "or build without handouts: scripts/slides --no-pdf")
    if pdf and importlib.util.find_spec("playwright") is None:
        raise SetupMissing("python Playwright is missing from the virtualenv (it prints the handouts with "
                           "Debian's Chromium): run scripts/setup, or build without handouts: scripts/slides --no-pdf")


def print_url(page: Path) -> str:
    """The deck in reveal's print mode: every slide a page of its own."""
    return page.resolve().as_uri() + "?print-pdf"


def progress_line(index: int, total: int, deck: Deck, steps: dict[str, float]) -> str:
    """'slides: [ 3/11] 03_cgroups  executed 21.4 s · html 0.8 s · pdf 2.1 s'."""
    width = len(str(total))
    done = " · ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items())
    return f"slides: [{index:>{width}}/{total}] {deck.name:30} {done}"


def index_page(entries: list[dict], lang: Language = LANGUAGES["en"]) -> str:
    """The build's index.html, in the decks' language: one line per deck, with its slides and its handout."""
    rows = []
    for entry in entries:
        handout = f' · <a href="{html.escape(entry["pdf"])}">{lang.handout}</a>' if entry.get("pdf") else ""
        rows.append(f'<li><a href="{html.escape(entry["html"])}">{html.escape(entry["title"])}</a>{handout}</li>')
    fonts = "sans-serif" if lang.code == "en" else f"{KOREAN_FONTS},sans-serif"
    return (f"<!DOCTYPE html>\n<html lang=\"{lang.code}\"><head><meta charset=\"utf-8\"><title>{lang.index_title}</title>"
            f"<style>body{{font-family:{fonts};font-size:22px;margin:2em}}li{{margin:.4em 0}}</style></head>\n"
            f"<body><h1>{lang.index_heading}</h1>\n<ul>\n" + "\n".join(rows) + "\n</ul>\n"
            f"<p>{lang.built_by}</p></body></html>\n")


def execute(deck: Deck, scratch: Path, lang: str = "en"):
    """Run every cell of a copy of the deck in ``scratch``, the lab speaking ``lang``; return the executed notebook."""
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415

    from jupyter_client import KernelManager  # noqa: PLC0415

    notebook = nbformat.read(deck.path, as_version=4)
    # IPC sockets in the scratch directory, not TCP ports on loopback: nothing listens where
    # another user of the machine could connect, and the kernel has no reason to warn about it.
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(scratch / "kernel"))
    client = NotebookClient(notebook, km=kernel, timeout=CELL_TIMEOUT, store_widget_state=False,
                            resources={"metadata": {"path": str(scratch)}})
    try:
        client.execute(env=kernel_environment(lang))
    finally:
        if kernel.has_kernel:  # a kernel we made is ours to stop (nbclient stops only its own)
            kernel.shutdown_kernel()
    return notebook


def kernel_environment(lang: str) -> dict[str, str]:
    """The environment of a deck's kernel: this one, with the lab's language (TEACHDOCK_LANG) set."""
    return {**os.environ, "TEACHDOCK_LANG": lang}


def export(notebook, out: Path, lang: str = "en") -> None:
    """The executed notebook -> reveal.js HTML, with the local reveal.js and code cells hidden where tagged."""
    from nbconvert.exporters import SlidesExporter  # noqa: PLC0415
    from traitlets.config import Config  # noqa: PLC0415

    config = Config()
    config.SlidesExporter.reveal_url_prefix = REVEAL_PREFIX
    config.SlidesExporter.reveal_theme = "white"
    config.SlidesExporter.reveal_width = str(WIDTH)
    config.SlidesExporter.reveal_height = str(HEIGHT)
    config.SlidesExporter.reveal_number = "c/t"
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    config.SlidesExporter.language_code = lang  # <html lang="ko">: the template's Korean fonts apply
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    config.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    exporter = SlidesExporter(config=config, template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    body, _resources = exporter.from_notebook_node(notebook)
    out.write_text(body)


def print_pdf(page: Path, pdf: Path) -> None:
    """Print the deck to ``pdf`` with Debian's Chromium, in reveal's print mode.

    Not ``chromium --headless --print-to-pdf``: it prints when its virtual time runs out, which
    on a busy machine was before reveal had laid out the pages (a blank page, 3 times in 9). Driven
    through the DevTools protocol (python Playwright, which never downloads a browser here), the
    print waits for reveal's own "pdf-ready" event and for the fonts. Nothing from outside loads.
    """
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            tab.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                      else route.abort())
            tab.add_init_script("window.pdfReady = false;"
                                "document.addEventListener('pdf-ready', () => { window.pdfReady = true; });")
            tab.goto(print_url(page))
            tab.wait_for_function("() => window.pdfReady && document.fonts.status === 'loaded'", timeout=60_000)
            tab.pdf(path=str(pdf), width=f"{WIDTH}px", height=f"{HEIGHT}px", print_background=True)
        finally:
            browser.close()
    if not pdf.is_file() or not pdf.read_bytes().startswith(b"%PDF"):
        raise RuntimeError(f"slides: error: Chromium did not print {page.name}")


def copy_reveal(build: Path) -> None:
    for part in REVEAL_FILES:
        source, target = REVEAL / part, build / REVEAL_PREFIX / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
        else:
            shutil.copy2(source, target)


def keep_nested_builds(old: Path, new: Path) -> None:
    """Move the builds inside ``old`` (slides/build/ko/ in slides/build/) into ``new``, which replaces it:
    building the English decks must not throw the Korean ones away."""
    for child in old.iterdir():
        if child.is_dir() and (child / "manifest.json").is_file() and not (new / child.name).exists():
            child.rename(new / child.name)


def build(wanted: list[Deck], out: Path, *, pdf: bool = True, say=print, lang: Language = LANGUAGES["en"]) -> dict:
    """Build ``wanted`` (decks in ``lang``) into ``out`` (made or replaced); return the manifest."""
    import nbformat  # noqa: PLC0415

    check_setup(pdf=pdf)
    # The kernels import this checkout's teachdock (the venv may be shared with another checkout).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".slides-", dir=out.parent))
    entries = []
    try:
        copy_reveal(staging)
        for index, deck in enumerate(wanted, start=1):
            steps: dict[str, float] = {}
            scratch = Path(tempfile.mkdtemp(prefix=f"teachdock-slides-{deck.number}-"))
            scratch.chmod(0o755)  # a container's user must be able to walk down to what a deck makes here
            try:
                started = time.monotonic()
                try:
                    executed = execute(deck, scratch, lang.code)
                except Exception as error:
                    raise RuntimeError(f"slides: error: {deck.name} failed while running:\n{error}") from None
                steps["executed"] = time.monotonic() - started
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            nbformat.write(executed, staging / f"{deck.name}.ipynb")
            started = time.monotonic()
            page = staging / f"{deck.name}.slides.html"
            export(executed, page, lang.code)
            steps["html"] = time.monotonic() - started
            entry = {"title": deck.title, "html": page.name, "notebook": f"{deck.name}.ipynb",
                     "source": fingerprint(deck), "seconds": round(steps["executed"], 1)}
            if pdf:
                started = time.monotonic()
                print_pdf(page, staging / f"{deck.name}.pdf")
                steps["pdf"] = time.monotonic() - started
                entry["pdf"] = f"{deck.name}.pdf"
            entries.append(entry)
            say(progress_line(index, len(wanted), deck, steps))
        manifest = {"built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": os.uname().nodename,
                    "language": lang.code,
                    "decks": {Path(entry["html"]).name.removesuffix(".slides.html"): entry for entry in entries}}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (staging / "index.html").write_text(index_page(entries, lang))
        staging.chmod(0o755)
        if out.exists():
            keep_nested_builds(out, staging)
            shutil.rmtree(out)
        staging.rename(out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def language_argument(code: str) -> Language:
    """--lang's type: argparse prints the refusal as ``scripts/slides: error: argument --lang: unknown …``."""
    try:
        return language(code)
    except ValueError as unknown:
        raise argparse.ArgumentTypeError(str(unknown)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/slides", description=__doc__.split("\n\n")[0],
                                     epilog="examples:\n" + __doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decks", nargs="*", help="deck numbers or names (default: all)")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF handouts")
    parser.add_argument("--lang", type=language_argument, default=LANGUAGES["en"], metavar="LANGUAGE",
                        help="the decks' language: " + "; ".join(
                            f"{known.code} ({known.name}): {known.folder.relative_to(REPOSITORY)}/ -> "
                            f"{known.out.relative_to(REPOSITORY)}/" for known in LANGUAGES.values())
                        + ". The lab's outputs in the decks follow it (TEACHDOCK_LANG). Default: en")
    parser.add_argument("--out", type=Path, help=f"where to build (default: {BUILD}, or its language's "
                                                  "folder in it: slides/build/ko/)")
    args = parser.parse_args(argv)
    lang = args.lang
    out = args.out or lang.out
    wanted = select(decks(lang.folder), args.decks)
    if not wanted:
        print(f"slides: error: no decks in {lang.folder}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("slides: warning: not root: the figures that need root are replaced by a sentence saying so "
              "(sudo scripts/slides builds them for real)", file=sys.stderr)
    started = time.monotonic()
    try:
        build(wanted, out, pdf=not args.no_pdf, lang=lang)
    except SetupMissing as missing:
        print(f"slides: error: {missing}", file=sys.stderr)
        return 2
    except RuntimeError as failed:
        print(failed, file=sys.stderr)
        return 1
    print(f"slides: {len(wanted)} decks in {out} ({time.monotonic() - started:.0f} s); "
          f"open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
