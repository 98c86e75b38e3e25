"""The course in a real browser: JupyterLab in Debian's Chromium, driven by python Playwright.

nbval proves that every cell runs; it has no widget manager, so it cannot see what a learner
sees. These tests open each chapter in JupyterLab, press "Run All" as a learner would, check
that every cell ran without an unexpected error, and save a screenshot of the chapter's key
widget or figure under tests/browser/artifacts/ for a human to review.

The cgroups chapter gets the full treatment: move the memory slider with the keyboard, press
Start, watch the live plot change while the container runs, read its final figures, then run
the CPU burner and press Stop, and check that no container or cgroup is left behind.

Assertions are on synced widget traits (label and HTML text, the image's ``src``), never on
pixels: the screenshots are for people.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="python Playwright is missing: pip install playwright (never `playwright install`: we use /usr/bin/chromium)")
expect = sync_api.expect

pytestmark = [pytest.mark.root, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # git-ignored; the lab fixture creates it
CGROUP_ROOT = Path("/sys/fs/cgroup")

# The state of every cell, as JupyterLab's models have it.
CELL_STATES = """() => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  return notebook.widgets.map((cell, index) => {
    const model = cell.model;
    if (model.type !== 'code') { return {index, type: model.type}; }
    return {
      index, type: 'code', count: model.executionCount,
      tags: model.getMetadata('tags') || [],
      errors: model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
    };
  });
}"""

# "Run All" is over when the last code cell has an execution count (cells run in order), or
# when a cell not tagged raises-exception failed and the kernel is idle again: JupyterLab then
# drops the cells still queued. (Queued cells do not all show "[*]" in JupyterLab 4, and the
# kernel is briefly idle between cells, so neither says "finished" on its own.)
RUN_ALL_FINISHED = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
  if (cells[cells.length - 1].model.executionCount !== null) { return true; }
  const failed = cells.some(cell => !(cell.model.getMetadata('tags') || []).includes('raises-exception')
                                    && cell.model.outputs.toJSON().some(o => o.output_type === 'error'));
  return failed && kernel && kernel.status === 'idle';
}"""


def cell_index(notebook: str, marker: str) -> int:
    """Index (among all cells, as in the DOM) of the one cell whose source contains ``marker``."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]  # Lab serves a copy of this file
    found = [i for i, cell in enumerate(cells) if marker in "".join(cell["source"])]
    assert len(found) == 1, f"{notebook}: {len(found)} cells contain {marker!r}; the test needs exactly one"
    return found[0]


def cell(page, notebook: str, marker: str):
    return page.locator(".jp-Notebook .jp-Cell").nth(cell_index(notebook, marker))


def output_of(page, notebook: str, marker: str):
    return cell(page, notebook, marker).locator(".jp-OutputArea")


def run_all(page, timeout: float = 150) -> list[dict]:
    """Press Run All and wait for the end; fail on any error in a cell not tagged raises-exception."""
    # Fire and forget: page.evaluate() has no timeout, and the command's promise resolves only
    # when the last cell has run. We wait on the notebook's state instead.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(RUN_ALL_FINISHED, timeout=timeout * 1000, polling=250)
    states = [state for state in page.evaluate(CELL_STATES) if state["type"] == "code"]
    unexpected = [f"cell {s['index']}: {'; '.join(s['errors'])}" for s in states
                  if s["errors"] and "raises-exception" not in s["tags"]]
    assert not unexpected, "cells failed in JupyterLab:\n" + "\n".join(unexpected)
    not_run = [s["index"] for s in states if s["count"] is None]
    assert not not_run, f"cells that never ran: {not_run}"
    return states


def screenshot(locator, name: str) -> Path:
    """Save ``locator``'s element as artifacts/NAME; the page grows first if the element is taller."""
    page = locator.page
    height = locator.evaluate("node => node.getBoundingClientRect().height")
    viewport = page.viewport_size
    if height + 400 > viewport["height"]:  # else the notebook's scroll area (below the menus) would clip it
        page.set_viewport_size({"width": viewport["width"], "height": int(height) + 400})
    path = ARTIFACTS / name
    locator.screenshot(path=str(path), animations="disabled")
    assert path.stat().st_size > 0
    return path


def kernel_pid_of(lab) -> int:
    """The host PID of the one kernel running now, checked to be the venv's python (sys.executable)."""
    pids = lab.kernel_pids()
    assert len(pids) == 1, f"expected one kernel, found {pids}"
    argv = lab.argv(pids[0])
    assert argv[0] == sys.executable, f"the kernel runs {argv[0]}, not the test's python {sys.executable}"
    return pids[0]


def image_src(widget) -> str:
    return widget.locator(".widget-image").first.get_attribute("src") or ""


def move_slider(slider, presses: int) -> None:
    """Move an ipywidgets slider by ``presses`` steps with the keyboard, as a learner can."""
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")


# ---------------------------------------------------------------------------------------------
# Every chapter, once through, with a screenshot of its key output
# ---------------------------------------------------------------------------------------------

CHAPTERS = {
    # notebook: [(marker of the cell whose output we keep, screenshot name, what must be in it)]
    "00_start_here.ipynb": [("report = doctor()", "00_doctor_table.png", "table"),
                            ("plot_comparison(host, inside)", "00_comparison_plot.png", "img")],
    "01_virtualization.ipynb": [("plot_measurements(m)", "01_measurements_plot.png", "img"),
                                ("plot_apparent_speed(m)", "01_apparent_speed_plot.png", "img"),
                                ("speed_widget(m)", "01_speed_widget.png", ".widget-slider")],
    "02_namespaces.ipynb": [("explorer = isolation_explorer()", "02_isolation_explorer.png", ".widget-image")],
    "04_filesystems.ipynb": [("fs.plot_mounts(", "04_mounts_plot.png", "img"),
                             ("explorer = fs.propagation_explorer()", "04_propagation_widget.png", ".widget-button")],
}


@pytest.mark.parametrize("notebook", sorted(CHAPTERS))
def test_chapter_runs_in_lab(notebook, open_notebook, lab):
    page = open_notebook(notebook)
    kernel_pid_of(lab)
    run_all(page)
    for marker, name, must_have in CHAPTERS[notebook]:
        output = output_of(page, notebook, marker)
        expect(output.locator(must_have).first).to_be_visible()
        for image in output.locator("img").all():  # a figure that failed to render has no size
            assert image.evaluate("img => img.naturalWidth") > 0, f"{notebook}: empty image under {marker!r}"
        screenshot(output, name)
    if notebook == "01_virtualization.ipynb":
        # The job-length slider: moving it must change the sentence the kernel writes under it.
        widget = output_of(page, notebook, "speed_widget(m)")
        sentence = widget.locator(".widget-html").first
        before = sentence.inner_text()
        move_slider(widget.locator(".widget-slider").first, 20)  # 10^0 -> 10^1 s, in steps of 0.05
        expect(widget.locator(".widget-readout").first).to_have_text(re.compile(r"^10(\.0)?$"))
        expect(sentence).not_to_have_text(before)
        screenshot(widget, "01_speed_widget_moved.png")
    assert not page.page_errors, f"JavaScript errors in the page: {page.page_errors}"


# ---------------------------------------------------------------------------------------------
# The cgroup live monitor, by hand
# ---------------------------------------------------------------------------------------------

NB = "03_cgroups.ipynb"
MONITOR_CELL = "monitor = CgroupMonitor()"


def watch_run(monitor, status, seconds: float) -> list[str]:
    """The distinct ``src`` values of the plot while the status says running (at most ``seconds``)."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline and status.inner_text().startswith("running"):
        src = image_src(monitor)
        if src and (not seen or src != seen[-1]):
            seen.append(src)
        time.sleep(0.1)
    return seen


def monitor_id(listed, prefix: str) -> str:
    """The id of the one container ``teachdock runtime list`` shows, checked to be the monitor's."""
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
    assert len(ids) == 1 and ids[0].startswith(prefix), f"expected one container {prefix}*, listed:\n{listed.stdout}"
    return ids[0]


def monitor_cgroups(prefix: str) -> list[str]:
    """teachdock's cgroups whose name starts with ``prefix``: one per controller on v1, one on v2."""
    found = list(CGROUP_ROOT.glob(f"*/teachdock/{prefix}*")) + list(CGROUP_ROOT.glob(f"teachdock/{prefix}*"))
    return sorted(str(path) for path in found)


def test_cgroup_monitor_in_lab(open_notebook, lab):
    page = open_notebook(NB)
    kernel_pid = kernel_pid_of(lab)
    run_all(page)
    # The chapter ends by closing its monitor; what a learner sees there after Run All:
    screenshot(cell(page, NB, MONITOR_CELL), "03_monitor_after_run_all.png")

    # A fresh monitor: run its cell again, as a learner would (Shift+Enter on that cell).
    index = cell_index(NB, MONITOR_CELL)
    before = page.evaluate(f"() => window.jupyterapp.shell.currentWidget.content.widgets[{index}].model.executionCount")
    page.evaluate("""(index) => {
        const notebook = window.jupyterapp.shell.currentWidget.content;
        notebook.activeCellIndex = index;
        notebook.deselectAll();
        window.jupyterapp.commands.execute('notebook:run-cell');
    }""", index)
    page.wait_for_function("([index, before]) => { const model = window.jupyterapp.shell.currentWidget.content"
                           ".widgets[index].model; return model.executionCount !== null && model.executionCount !== before; }",
                           arg=[index, before], timeout=60_000)
    monitor = output_of(page, NB, MONITOR_CELL)
    start = monitor.locator(".widget-button").filter(has_text="Start")
    stop = monitor.locator(".widget-button").filter(has_text="Stop")
    status = monitor.locator(".widget-hbox > .widget-label")  # beside the buttons
    figures = monitor.locator(".widget-html").filter(has_text="exit code")
    expect(start).to_be_enabled(timeout=30_000)
    expect(stop).to_be_disabled()
    expect(monitor.locator(".widget-image")).to_have_count(1)

    # Move the memory slider: 32 MiB -> 48 MiB, two steps of 8. The readout changes in the
    # browser; the plot's preview (limit line) is redrawn by the kernel, so its src changes too.
    memory = monitor.locator(".widget-slider").filter(has_text="memory limit")
    readout = memory.locator(".widget-readout")
    expect(readout).to_have_text("32")
    preview = image_src(monitor)
    assert preview.startswith("blob:") or preview.startswith("data:"), preview
    move_slider(memory, 2)
    expect(readout).to_have_text("48")
    page.wait_for_function("([node, before]) => node.src !== before",
                           arg=[monitor.locator(".widget-image").element_handle(), preview], timeout=15_000)
    screenshot(monitor, "03_monitor_before_start.png")

    # Start the memory hog: the status names the slider's value, the plot changes while it runs.
    start.click()
    expect(status).to_contain_text("running: memory hog · 48 MiB", timeout=15_000)
    expect(stop).to_be_enabled()
    frames = watch_run(monitor, status, seconds=2.5)
    screenshot(monitor, "03_monitor_running.png")
    frames += watch_run(monitor, status, seconds=30)
    assert len(set(frames)) >= 3, f"the live plot changed {len(set(frames))} times while the container ran"

    # Its figures: killed by the kernel at the limit we set.
    expect(status).to_contain_text("OOM-killed, exit code 137; container deleted", timeout=30_000)
    expect(figures).to_contain_text("OOM kill")
    text = figures.inner_text()
    assert "OOM-killed by the kernel" in text and "137 = 128 + 9 (SIGKILL)" in text, text
    assert "limit 48 MiB" in text, text
    peak = float(text.split("peak memory")[1].split("MiB")[0].strip())
    assert 24 < peak <= 48.5, f"peak memory {peak} MiB under a 48 MiB limit"
    screenshot(monitor, "03_monitor_after_oom.png")

    # The CPU burner, stopped by hand.
    monitor.locator(".widget-toggle-button").filter(has_text="CPU burner").click()
    expect(monitor.locator(".widget-html").filter(has_text="busy loop")).to_be_visible()
    start.click()
    expect(status).to_contain_text("running: CPU burner", timeout=15_000)
    # While it runs, the runtime lists it and its cgroup exists: the checks at the end can fail.
    prefix = f"cgmon-{kernel_pid}-"
    listed = lab.teachdock("runtime", "list")
    monitor_id(listed, prefix)
    assert monitor_cgroups(prefix), f"no cgroup named {prefix}* while the CPU burner runs"
    frames = watch_run(monitor, status, seconds=2.0)
    assert len(set(frames)) >= 2, "the live plot did not move while the CPU burner ran"
    stop.click()
    expect(status).to_contain_text("stopped, exit code 137; container deleted", timeout=15_000)
    expect(figures).to_contain_text("stopped by you")
    expect(figures).to_contain_text("throttled")
    expect(start).to_be_enabled()
    expect(stop).to_be_disabled()
    screenshot(monitor, "03_monitor_after_stop.png")

    # Nothing left: no container under our state root, no cgroup named after this kernel's monitor.
    listed = lab.teachdock("runtime", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().splitlines()[1:] == [], f"containers left:\n{listed.stdout}"
    assert not monitor_cgroups(prefix), f"cgroups left behind: {monitor_cgroups(prefix)}"
    assert kernel_pid in lab.kernel_pids(), "the kernel died during the test"
    assert not page.page_errors, f"JavaScript errors in the page: {page.page_errors}"
