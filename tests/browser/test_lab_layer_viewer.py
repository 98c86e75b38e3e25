"""The layer viewer (teachdock.lab.images.layers_view, chapter 05) in JupyterLab, in Chromium.

The test builds a small image into a data root of its own (FROM busybox; COPY adds a file;
RUN removes /bin/ls, changes that file and adds two more), writes a scratch notebook whose
one code cell shows ``layer_viewer`` on that data root, runs it in Lab, and then works the
widget as a learner would: pick the image in the first dropdown, pick a layer in the second,
and read the table of files the browser shows. The table must be exactly that layer's
added / changed / removed entries as the store has them (read again here, in the test's
process, from the layer blobs), and must change when another layer is picked.

Assertions are on the synced widgets' DOM (select options, table rows), with waits on
selectors, never on sleeps. The Lab server, its kernel and the data root are removed
at the end (the ``lab`` fixture stops the server by its process group).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="python Playwright is missing: pip install playwright (never `playwright install`: we use /usr/bin/chromium)")
expect = sync_api.expect

pytestmark = [pytest.mark.root, pytest.mark.slow]

NOTEBOOK = "layer_viewer_scratch.ipynb"
IMAGE = "viewer-test:1"
DOCKERFILE = """FROM busybox
COPY greeting /srv/greeting
RUN rm /bin/ls && echo again >> /srv/greeting && echo new > /srv/new-file && mkdir /srv/cache
"""


@pytest.fixture
def data_root(lab):
    """A data root with busybox and the test image; removed afterwards (nothing may stay mounted)."""
    from teachdock.image.images import Images  # noqa: PLC0415
    from teachdock.image.overlay import mount_points  # noqa: PLC0415

    root = Path(tempfile.mkdtemp(prefix="teachdock-viewer-"))
    root.chmod(0o755)
    try:
        images = Images(root / "data", state_root=lab.state_root)
        images.bootstrap_busybox()
        context = root / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "greeting").write_text("hello\n")
        images.build(context, tags=[IMAGE])
        yield root / "data"
    finally:
        left = [point for point in mount_points() if point.startswith(f"{root}/")]
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"mounts left under the viewer's data root: {left}"


def scratch_notebook(lab, data_root: Path) -> str:
    source = ("from teachdock.image.images import Images\n"
              "from teachdock.lab.images.layers_view import layer_viewer\n"
              f"viewer = layer_viewer(Images({str(data_root)!r}), 'busybox:latest')\n"
              "viewer")
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "The layer viewer, alone."},
            {"cell_type": "code", "id": "viewer", "metadata": {}, "execution_count": None, "outputs": [],
             "source": source},
        ],
    }
    (lab.root / NOTEBOOK).write_text(json.dumps(notebook))
    return NOTEBOOK


def store_rows(data_root: Path, image: str, number: int) -> list[tuple[str, str]]:
    """(kind, path) of every change of layer ``number`` (1 = base), read from the store here."""
    from teachdock.image.images import Images  # noqa: PLC0415
    from teachdock.lab.images.layers_view import image_layers  # noqa: PLC0415

    layer = image_layers(Images(data_root), image)[number - 1]
    return [(change.kind, change.path) for change in layer.changes]


def shown_rows(table) -> list[tuple[str, str]]:
    """(kind, path) of each row of the change table the browser shows."""
    rows = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(row => Array.from(row.cells).map(cell => cell.textContent))")
    return [(row[0], row[1]) for row in rows]


def test_picking_an_image_and_a_layer_shows_that_layers_files(lab, open_notebook, data_root):
    page = open_notebook(scratch_notebook(lab, data_root))
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")  # fire and forget
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.executionCount"
                           " !== null", timeout=60_000, polling=250)
    errors = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.outputs.toJSON()"
                           ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)")
    assert not errors, errors

    viewer = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea .widget-vbox").first
    image_select = viewer.get_by_label("image", exact=True)   # the dropdowns' <label>s
    layer_select = viewer.get_by_label("layer", exact=True)
    table = viewer.locator(".widget-html").nth(1)          # [0] is the per-layer summary

    # Opened on busybox: one layer, the whole busybox tree added.
    expect(image_select).to_have_value("busybox:latest", timeout=30_000)
    expect(table).to_contain_text("/bin/busybox")
    expect(image_select.locator("option")).to_have_text(["busybox:latest", IMAGE])

    # Pick the built image: the viewer shows its top layer, the RUN step's changes.
    image_select.select_option(label=IMAGE)
    expect(layer_select.locator("option")).to_have_count(3)
    expect(table).to_contain_text("/srv/new-file")
    top = store_rows(data_root, IMAGE, 3)
    assert {("removed", "/bin/ls"), ("changed", "/srv/greeting"), ("added", "/srv/new-file"),
            ("added", "/srv/cache")} <= set(top), top
    assert shown_rows(table) == top
    expect(viewer.locator(".widget-html").first).to_contain_text(f"{IMAGE}: 3 layers")

    # Pick layer 2 (the COPY): the table changes to that layer's one added file.
    layer_select.select_option(index=1)
    expect(table).not_to_contain_text("/srv/new-file")
    expect(table).to_contain_text("/srv/greeting")
    copy = store_rows(data_root, IMAGE, 2)
    assert ("added", "/srv/greeting") in copy and all(kind == "added" for kind, _path in copy), copy
    assert shown_rows(table) == copy
    assert "/bin/ls" not in table.inner_text()

    # And back to layer 3: the RUN's whiteout is shown as a removal again.
    layer_select.select_option(index=2)
    expect(table.locator("tbody tr").filter(has_text="/bin/ls")).to_contain_text("removed")
    assert shown_rows(table) == top
    assert not page.page_errors, page.page_errors
    screenshot = lab.artifacts / "05_layer_viewer.png"
    viewer.screenshot(path=str(screenshot), animations="disabled")
    assert screenshot.stat().st_size > 0
    assert os.path.exists(lab.root / NOTEBOOK)
