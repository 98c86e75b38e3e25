"""Looking inside images: what each layer adds, changes and removes, and what sharing saves.

A layer is a tar file of changes. Three kinds of entry matter:

- a path no lower layer has: the layer **adds** it;
- a path a lower layer has already: the layer **changes** it (the whole file is stored again);
- ``dir/.wh.name``: a *whiteout*, the layer **removes** ``dir/name``; ``dir/.wh..wh..opq``
  (opaque) hides everything the lower layers put in ``dir``.

Directories that exist below and appear again only as the parents of what changed are left
out of the tables: they are how tar files spell paths, not changes a learner made.

The :class:`LayerViewer` widget shows this per image and per layer; ``.rows`` holds the
table of the chosen layer, so it works without a browser. The plots and
:func:`sharing_curve` measure what layers cost on disk, here, with real snapshots.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass, field
from html import escape

from teachdock.image.layers import OPAQUE_MARKER, WHITEOUT_PREFIX
from teachdock.lab.common.language import say
from teachdock.units import human_size

ADDED, CHANGED, REMOVED, EMPTIED = "added", "changed", "removed", "emptied"


@dataclass(frozen=True)
class Change:
    kind: str          # added, changed, removed, emptied (an opaque directory)
    path: str          # as the container sees it: "/bin/ls"
    what: str          # "file, 6 B", "symlink -> busybox", "whiteout .wh.ls" (English: code compares it)
    shown: str = field(default="", compare=False)  # ``what`` in the learner's language, for the table


@dataclass(frozen=True)
class LayerInfo:
    number: int        # 1 is the base layer
    digest: str        # of the blob in the store (compressed)
    diff_id: str       # of the uncompressed tar
    size: int          # bytes of the blob
    created_by: str    # the history line that made it (a Dockerfile step, a commit)
    changes: tuple[Change, ...]

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)


def layer_members(store, digest: str) -> list[tarfile.TarInfo]:
    """The entries of a layer blob in the store, in tar order (gzip or plain tar)."""
    with store.open_blob(digest) as blob, tarfile.open(fileobj=blob, mode="r|*") as tar:
        return list(tar)


def _clean(name: str) -> str:
    """'./bin/ls', 'bin/ls' and '/bin/ls' are the same path in a layer."""
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath("/" + name.lstrip("/"))


def _describe(member: tarfile.TarInfo) -> tuple[str, str]:
    """(what the entry is, in English for code to compare; the same in the learner's language)."""
    if member.isdir():
        return "directory", say("directory")
    if member.issym():
        return f"symlink -> {member.linkname}", say("symlink -> {target}", target=member.linkname)
    if member.islnk():
        target = _clean(member.linkname)
        return f"hardlink to {target}", say("hardlink to {target}", target=target)
    if member.ischr() or member.isblk():
        numbers = f"{member.devmajor},{member.devminor}"
        return f"device {numbers}", say("device {numbers}", numbers=numbers)
    if member.isfifo():
        return "fifo", say("fifo")
    size = human_size(member.size)
    return f"file, {size}", say("file, {size}", size=size)


def kind_label(kind: str) -> str:
    """added/changed/removed/emptied in the learner's language (the kinds themselves stay English)."""
    labels = {ADDED: say("added"), CHANGED: say("changed"), REMOVED: say("removed"), EMPTIED: say("emptied")}
    return labels.get(kind, kind)


def classify(members: list[tarfile.TarInfo], below: set[str]) -> list[Change]:
    """What a layer does to the tree ``below`` (the paths the lower layers left).

    ``below`` is updated in place to the tree this layer leaves, for the next layer.
    """
    changes = []
    seen_here: set[str] = set()
    for member in members:
        path = _clean(member.name)
        parent, name = posixpath.split(path)
        if name == OPAQUE_MARKER:
            changes.append(Change(EMPTIED, parent, f"opaque marker {name}: lower layers' entries hidden",
                                  say("opaque marker {name}: lower layers' entries hidden", name=name)))
            _forget(below, parent, keep_self=True, keep=seen_here)
            continue
        if name.startswith(WHITEOUT_PREFIX):
            hidden = posixpath.join(parent, name[len(WHITEOUT_PREFIX):])
            changes.append(Change(REMOVED, hidden, f"whiteout {name}", say("whiteout {name}", name=name)))
            _forget(below, hidden)
            continue
        seen_here.add(path)
        if path in below:
            if not member.isdir():
                changes.append(Change(CHANGED, path, *_describe(member)))
        else:
            changes.append(Change(ADDED, path, *_describe(member)))
            below.add(path)
    return changes


def _forget(tree: set[str], path: str, *, keep_self: bool = False, keep: set[str] = frozenset()) -> None:
    inside = path.rstrip("/") + "/"
    for entry in [p for p in tree if p.startswith(inside) or (p == path and not keep_self)]:
        if entry not in keep:
            tree.discard(entry)


def image_layers(images, image: str) -> list[LayerInfo]:
    """Every layer of ``image`` (name or id), base first, with what it changes."""
    img = images.get(image)
    made_by = [entry.get("created_by", "") for entry in img.history if not entry.get("empty_layer")]
    if len(made_by) != len(img.layers):
        made_by = [""] * len(img.layers)
    below: set[str] = set()
    layers = []
    for number, (layer, diff_id, created_by) in enumerate(zip(img.layers, img.diff_ids, made_by), 1):
        changes = classify(layer_members(images.store, layer.digest), below)
        layers.append(LayerInfo(number, layer.digest, diff_id, layer.size, created_by, tuple(changes)))
    return layers


def image_names(images) -> list[str]:
    """Every image by the name ``docker images`` would show (the short id when untagged)."""
    names = []
    for img in images.list():
        names += img.repo_tags or [img.short_id]
    return sorted(names)


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _table(header: list[str], rows: list[list[str]], colours: list[str] | None = None) -> str:
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        style = f" style='background:{colours[i]}'" if colours and colours[i] else ""
        cells = "".join(f"<td style='text-align:left'>{escape(cell)}</td>" for cell in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return (f"<div style='max-height:22em;overflow:auto'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


MAX_TABLE_ROWS = 400
KIND_COLOURS = {ADDED: "#e3f4e8", CHANGED: "#fff1cc", REMOVED: "#fbdada", EMPTIED: "#fbdada"}


class LayerViewer:
    """Pick an image, then a layer: the table lists what that layer adds, changes, removes.

    Headless use: ``viewer.image.value = "hello:1"``, ``viewer.layer.value = 2``, then read
    ``viewer.layers`` (every layer of the image) and ``viewer.rows`` (the chosen layer's
    changes as (kind, path, what)). Call :meth:`refresh` after building new images.
    """

    def __init__(self, images, image: str | None = None):
        import ipywidgets as widgets  # noqa: PLC0415

        self.images = images
        self.layers: list[LayerInfo] = []
        self.image = widgets.Dropdown(description=say("image"), layout=widgets.Layout(width="28em"))
        self.layer = widgets.Dropdown(description=say("layer"), layout=widgets.Layout(width="44em"))
        self.refresh_button = widgets.Button(description=say("refresh images"), icon="refresh")
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.image.observe(self._on_image, names="value")
        self.layer.observe(self._on_layer, names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.widget = widgets.VBox([widgets.HBox([self.image, self.refresh_button]), self.summary,
                                    self.layer, self.table])
        self.refresh(image)

    def refresh(self, image: str | None = None) -> None:
        """Read the list of images again (keeps the current choice when it still exists)."""
        names = image_names(self.images)
        wanted = image or self.image.value
        self.image.options = names
        if wanted in names:
            self.image.value = wanted
        self._on_image({"new": self.image.value})

    @property
    def rows(self) -> list[tuple[str, str, str]]:
        """The chosen layer's changes: (kind, path, what)."""
        if not self.layers or self.layer.value is None:
            return []
        return [(c.kind, c.path, c.what) for c in self.layers[self.layer.value - 1].changes]

    def _on_image(self, change) -> None:
        name = change["new"]
        self.layers = image_layers(self.images, name) if name else []
        rows = [[str(info.number), _short(info.diff_id), human_size(info.size), str(info.count(ADDED)),
                 str(info.count(CHANGED)), str(info.count(REMOVED) + info.count(EMPTIED)),
                 info.created_by[:70]] for info in self.layers]
        header = ["#", "diff_id", say("blob"), say("added"), say("changed"), say("removed"), say("created by")]
        self.summary.value = (say("<b>{name}</b>: {count} layers, base first", name=escape(name or say("no image")),
                                  count=len(self.layers)) + _table(header, rows))
        options = [(f"{info.number}: {info.created_by[:60] or _short(info.diff_id)}", info.number)
                   for info in self.layers]
        self.layer.options = options
        self.layer.value = options[-1][1] if options else None     # the top layer first
        self._on_layer({"new": self.layer.value})

    def _on_layer(self, _change) -> None:
        rows = self.rows
        if not rows:
            self.table.value = f"<i>{escape(say('this layer changes nothing'))}</i>" if self.layers else ""
            return
        changes = self.layers[self.layer.value - 1].changes
        shown = changes[:MAX_TABLE_ROWS]   # a big layer (a whole distribution) would make the page crawl
        more = (say("<small>… and {count} more (all of them are in <code>.rows</code>)</small>",
                    count=len(rows) - len(shown)) if len(rows) > len(shown) else "")
        self.table.value = _table([say("change"), say("path"), say("what")],
                                  [[kind_label(c.kind), c.path, c.shown or c.what] for c in shown],
                                  [KIND_COLOURS[c.kind] for c in shown]) + more

    def _ipython_display_(self):
        from IPython.display import display  # noqa: PLC0415

        display(self.widget)


def layer_viewer(images, image: str | None = None) -> LayerViewer:
    """A layer viewer widget for a notebook cell."""
    return LayerViewer(images, image)


# --------------------------------------------------------------------------- overlay, live

def overlay_options(mount_point) -> dict[str, list[str] | str]:
    """The options of the overlay mounted at ``mount_point``, from /proc/self/mountinfo:
    {"lowerdir": [top, ..., base], "upperdir": ..., "workdir": ..., "other": [...]}."""
    from teachdock.lab.filesystems.experiments import read_mounts  # noqa: PLC0415

    for mount in read_mounts():
        if mount.mount_point == str(mount_point) and mount.fs_type == "overlay":
            options: dict = {"other": []}
            for option in mount.super_options:
                key, _, value = option.partition("=")
                if key == "lowerdir":
                    options[key] = value.split(":")
                elif key in ("upperdir", "workdir"):
                    options[key] = value
                else:
                    options["other"].append(option)
            return options
    raise LookupError(say("no overlay is mounted at {mount_point} in this mount namespace", mount_point=mount_point))


def sharing_curve(images, image: str, counts=(1, 2, 4, 8), prefix: str = "share") -> list[dict]:
    """Prepare N snapshots of ``image`` for each N in ``counts`` and ask disk_usage() what
    they cost: {"n", "on_disk", "full_copies", "saved"} in bytes. Every snapshot is released
    before returning, also on failure."""
    made: list[str] = []
    points = []
    try:
        for n in sorted(counts):
            while len(made) < n:
                container_id = f"{prefix}-{len(made)}"
                made.append(container_id)
                images.prepare(image, container_id)
            usage = images.disk_usage()
            ours = [c for c in usage.containers if c.container_id in made]
            shared_layers = {chain for c in ours for chain in images.snapshots.get(c.container_id).chain_ids}
            layers = sum(layer.bytes for layer in usage.layers if layer.chain_id in shared_layers)
            on_disk = layers + sum(c.own_bytes for c in ours)
            full = sum(c.own_bytes + c.shared_bytes for c in ours)
            points.append({"n": n, "on_disk": on_disk, "full_copies": full, "saved": full - on_disk})
    finally:
        for container_id in made:
            images.release(container_id)
    return points


# --------------------------------------------------------------------------- plots

def plot_layer_sizes(images, names: list[str]):
    """One stacked bar per image: its layers' blob sizes, base at the bottom. A layer two
    images share has the same colour (and the same digest) in both bars."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
    colour_of: dict[str, str] = {}
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    for x, name in enumerate(names):
        bottom = 0
        layers = images.get(name).layers
        for layer in layers:
            colour = colour_of.setdefault(layer.digest, palette[len(colour_of) % len(palette)])
            ax.bar(x, layer.size / 1000, bottom=bottom / 1000, color=colour, edgecolor="white", width=0.6)
            if layer.size > 30_000:
                ax.text(x, (bottom + layer.size / 2) / 1000, f"{_short(layer.digest)[:7]}\n{human_size(layer.size)}",
                        ha="center", va="center", fontsize=7, color="white")
            bottom += layer.size
        label = say("1 layer") if len(layers) == 1 else say("{count} layers", count=len(layers))
        ax.text(x, bottom / 1000, label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(say("kB in the store (gzip blobs)"))
    ax.set_title(say("Images as stacks of layers: same colour = the same blob, stored once"))
    ax.margins(y=0.15)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    return fig


def plot_sharing(points: list[dict]):
    """Disk used by N containers of one image: shared layers vs a full copy each."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = fig.subplots()
    ns = [p["n"] for p in points]
    ax.plot(ns, [p["full_copies"] / 1e6 for p in points], "o-", color="#D55E00",
            label=say("a full copy per container"))
    ax.plot(ns, [p["on_disk"] / 1e6 for p in points], "o-", color="#0072B2", label=say("overlay: layers shared"))
    ax.fill_between(ns, [p["on_disk"] / 1e6 for p in points], [p["full_copies"] / 1e6 for p in points],
                    color="#D55E00", alpha=0.12, label=say("saved by sharing"))
    ax.set_xlabel(say("containers of the image"))
    ax.set_ylabel(say("MB on disk"))
    ax.set_xticks(ns)
    ax.set_ylim(bottom=0)
    ax.set_title(say("N containers, one copy of the image's layers (measured here)"))
    ax.legend(frameon=False)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    return fig


def steps_table(result):
    """A build's steps as a table: which hit the cache, which layer each made, how long it took."""
    from teachdock.lab.common.views import TextAndHTML  # noqa: PLC0415

    rows, colours = [], []
    for step in result.steps:
        if step.instruction.startswith("FROM"):
            cache, colour = "-", ""
        elif step.cached:
            cache, colour = say("Using cache"), "#e3f4e8"
        else:
            cache, colour = say("miss"), "#fff1cc"
        layer = _short(step.diff_id) if step.diff_id else say("(config only)")
        rows.append([str(step.number), step.instruction[:60], cache, layer, f"{step.seconds * 1000:.0f} ms"])
        colours.append(colour)
    header = [say("step"), say("instruction"), say("cache"), say("layer (diff_id)"), say("time")]
    text = "\n".join(f"{r[0]:>4}  {r[1]:<45} {r[2]:<12} {r[3]:<14} {r[4]:>7}" for r in [header, *rows])
    return TextAndHTML(_table(header, rows, colours), text)
