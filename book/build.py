"""Build the course as a static site with real outputs: `scripts/book` (as root).

Every chapter (notebooks/NN_*.ipynb, in order) is executed here, one at a time, with nbclient,
in a temporary copy of notebooks/ (so nothing a chapter writes lands in the repository), then
rendered with nbconvert's HTMLExporter through book/templates/teachdock_book. The site is
written into a staging folder beside the target and moved into place only when every chapter
ran: a failed build leaves the previous book as it was, never half of a new one.

Why nbconvert and not Jupyter Book: it is already in the venv (no new dependency, no Sphinx
build), the page template is ours (navigation, the "live in the lab" note, and no asset from a
CDN: require.js, MathJax and mermaid are simply left out), and nbclient is what
scripts/chapter_times.py and nbval already run the chapters with.

Widgets show their last state: nbclient stores the widget state in the notebook, the page
embeds it, and @jupyter-widgets/html-manager's standalone embed.js (vendored once from npm into
book/vendor/, pinned by version and sha512) renders it from disk.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from book.site import (CHAPTER_FILE, Chapter, contents_page, drop_missing_widget_views, link_chapter_mentions,
                       navigation, read_chapter, rewrite_chapter_links)

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPOSITORY / "notebooks"
TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLE = Path(__file__).resolve().parent / "book.css"
VENDOR = Path(__file__).resolve().parent / "vendor"  # git-ignored
DEFAULT_OUT = REPOSITORY / "build" / "book"
CELL_TIMEOUT = 900  # seconds for one cell: generous, for a busy machine (nbval's is 180)

#: The widgets' renderer: html-manager 1.0.x renders ipywidgets 8's state (version_major 2).
HTML_MANAGER = "@jupyter-widgets/html-manager"
HTML_MANAGER_VERSION = "1.0.15"
HTML_MANAGER_SHA512 = "5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="


class BuildFailed(Exception):
    """The book cannot be built; the message says why and what to do."""


def chapters(only: list[str] | None = None) -> list[Path]:
    """The chapters' notebooks in order (all, or those whose stems are in ``only``)."""
    paths = sorted(path for path in NOTEBOOKS.glob("*.ipynb") if CHAPTER_FILE.match(path.name))
    if only:
        unknown = set(only) - {path.stem for path in paths}
        if unknown:
            raise BuildFailed(f"no such chapter: {', '.join(sorted(unknown))}")
        paths = [path for path in paths if path.stem in only]
    return paths


def widget_assets() -> Path:
    """html-manager's dist/ (embed.js and its fonts), vendored once from npm into book/vendor/."""
    target = VENDOR / f"html-manager-{HTML_MANAGER_VERSION}"
    if (target / "embed.js").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise BuildFailed(f"npm is needed once, to fetch {HTML_MANAGER}@{HTML_MANAGER_VERSION} (the widgets' "
                          "renderer) into book/vendor/: apt-get install npm, then run scripts/book again")
    print(f"book: set-up: fetching {HTML_MANAGER}@{HTML_MANAGER_VERSION} from npm into {target}", flush=True)
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=VENDOR) as scratch:
        packed = subprocess.run([npm, "pack", "--json", "--pack-destination", scratch,
                                 f"{HTML_MANAGER}@{HTML_MANAGER_VERSION}"],
                                capture_output=True, text=True, cwd=scratch, timeout=300)
        if packed.returncode != 0:
            raise BuildFailed(f"npm pack {HTML_MANAGER}@{HTML_MANAGER_VERSION} failed:\n{packed.stderr.strip()}")
        tarball = Path(scratch) / json.loads(packed.stdout)[0]["filename"]
        digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != HTML_MANAGER_SHA512:
            raise BuildFailed(f"{tarball.name} has sha512 {digest}, not the pinned {HTML_MANAGER_SHA512}")
        unpacked = Path(scratch) / "dist"
        unpacked.mkdir()
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix("package/dist/")
                # embed.js and the fonts it loads; not the require.js builds, not source maps
                if member.isfile() and member.name.startswith("package/dist/") and "/" not in name \
                        and not name.endswith((".map", "-amd.js")):
                    (unpacked / name).write_bytes(archive.extractfile(member).read())
        unpacked.rename(target)
    return target


def made_on(what: str = "the chapter") -> str:
    """One line saying where and when the outputs were made, for every page."""
    release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            release[key] = value.strip('"')
    except OSError:
        pass
    try:
        from teachdock.runtime.cgroups import detect_version
        cgroup = f"cgroup {detect_version()}"
    except Exception:  # noqa: BLE001 - a line of the page, not worth failing the build for
        cgroup = "cgroups unknown"
    # "-dirty": the chapters or the engine had changes not committed yet when the book was built.
    # safe.directory: root (through sudo) reading a user's clone, which git would refuse as "dubious".
    commit = subprocess.run(["git", "-c", f"safe.directory={REPOSITORY}", "-C", str(REPOSITORY),
                             "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Outputs made on {when} by executing {what} as root on "
            f"{release.get('PRETTY_NAME', platform.system())}, Linux {platform.release()}, "
            f"{os.cpu_count()} CPUs, {cgroup}; teachdock commit {commit}.")


def execute(path: Path, workdir: Path, timeout: int, kernel_log: Path):
    """Run one chapter top to bottom in ``workdir``; return the executed notebook.

    The kernel's own stdout and stderr (its start-up warnings) go to ``kernel_log``, not between
    the progress lines; a failure quotes the log's end.

    Raises BuildFailed naming the chapter, the cell and the error when a cell fails (a cell
    tagged ``raises-exception`` may fail: nbclient lets it), times out or kills the kernel.
    """
    import nbclient
    import nbformat
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    running = {"index": None}

    def started(cell, cell_index, **_):
        running["index"] = cell_index

    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=False,
                                     store_widget_state=True, on_cell_start=started,
                                     resources={"metadata": {"path": str(workdir)}})
    with open(kernel_log, "wb") as log:
        try:
            client.execute(stdout=log, stderr=log, env=kernel_environment())
        except CellExecutionError as error:
            failure = f"{error.ename}: {error.evalue}"
        except Exception as error:  # a cell timeout, a dead kernel, a kernel that did not start
            failure = f"{type(error).__name__}: {error}\n  the kernel's last words:\n{_tail(kernel_log)}"
        else:
            return notebook
    raise BuildFailed(_cell_failure(path, notebook, running["index"], failure))


def kernel_environment() -> dict[str, str]:
    """The kernel imports this repository's teachdock, whatever the venv's editable install points at."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}


def _tail(log: Path, lines: int = 10) -> str:
    return "\n".join(f"    {line}" for line in log.read_text(errors="replace").splitlines()[-lines:])


def _cell_failure(path: Path, notebook, index: int | None, error: str) -> str:
    if index is None:
        return f"{path.name}: the kernel failed before any cell ran: {error}"
    first_line = next((line for line in notebook.cells[index].source.splitlines() if line.strip()), "")
    return (f"{path.name}: cell {index} failed ({first_line.strip()[:70]!r}):\n  {error}\n"
            "The chapter's own clean-up did not run: `teachdock system reset` removes what it left.")


def render(notebook, chapter: Chapter, book: list[Chapter], stamp: str) -> str:
    """A chapter page: links between chapters rewritten, navigation, the widgets' last state."""
    from nbconvert import HTMLExporter

    stems = {other.stem for other in book}
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = link_chapter_mentions(rewrite_chapter_links(cell.source, stems), stems)
    drop_missing_widget_views(notebook)
    notebook.metadata["title"] = chapter.title_text
    exporter = HTMLExporter(template_name="teachdock_book", extra_template_basedirs=[str(TEMPLATES)])
    resources = {"book": {"navigation": navigation(book, book.index(chapter)), "made_on": stamp}}
    page, _ = exporter.from_notebook_node(notebook, resources=resources)
    return page


def build(out: Path, only: list[str] | None = None, timeout: int = CELL_TIMEOUT) -> dict[str, float]:
    """Execute and render every chapter into ``out``; return each chapter's run time in seconds."""
    import nbformat

    paths = chapters(only)
    book = [read_chapter(path.stem, nbformat.read(path, as_version=4)) for path in paths]
    widgets = widget_assets()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-building-", dir=out.parent))
    # A container with a user namespace runs as uid 100000 and must reach its files: 0755.
    workdir = Path(tempfile.mkdtemp(prefix="teachdock-book-"))
    workdir.chmod(0o755)
    seconds: dict[str, float] = {}
    try:
        shutil.copytree(NOTEBOOKS, workdir / "notebooks")
        for position, (path, chapter) in enumerate(zip(paths, book), 1):
            print(f"[{position}/{len(paths)}] {path.stem} … ", end="", flush=True)
            started = time.monotonic()
            try:
                notebook = execute(workdir / "notebooks" / path.name, workdir / "notebooks", timeout,
                                   workdir / f"kernel-{path.stem}.log")
            except BuildFailed:
                print("failed", flush=True)
                raise
            seconds[path.stem] = time.monotonic() - started
            print(f"{seconds[path.stem]:.0f} s", flush=True)
            (staging / chapter.page).write_text(render(notebook, chapter, book, made_on()), encoding="utf-8")
        static = staging / "_static"
        shutil.copytree(widgets, static / "widgets")
        shutil.copy2(STYLE, static / "book.css")
        (staging / "index.html").write_text(contents_page(book, seconds, made_on("every chapter")),
                                            encoding="utf-8")
        staging.chmod(0o755)
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    _give_to_sudo_user(out)
    return seconds


def _replace(out: Path, staging: Path) -> None:
    """Put the finished site at ``out``, the previous one (if any) removed only after."""
    previous = None
    if out.exists():
        previous = out.with_name(f".{out.name}-previous-{os.getpid()}")
        out.rename(previous)
    staging.rename(out)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _give_to_sudo_user(out: Path) -> None:
    """Built through sudo: the book (and the vendored assets) belong to the user who asked for it."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid:
        return
    for top in (out, VENDOR):
        for root, directories, files in os.walk(top):
            for name in [root, *(os.path.join(root, entry) for entry in directories + files)]:
                os.chown(name, int(uid), int(gid), follow_symlinks=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/book", description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", nargs="*", help="only these chapters, e.g. 03_cgroups (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the site goes (default: {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds one cell may take")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("book: error: run this as root: the chapters start real containers (scripts/book uses sudo)",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        seconds = build(options.out.resolve(), options.chapter, options.timeout)
    except BuildFailed as failure:
        print(f"book: error: {failure}\nbook: {options.out} was left as it was (no half-built book)", file=sys.stderr)
        return 1
    print(f"book: {len(seconds)} chapters in {time.monotonic() - started:.0f} s: "
          f"open {options.out.resolve() / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
