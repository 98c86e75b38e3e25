"""The isolation explorer's pictures: the heat-map (matplotlib) and the table (HTML and text).

Both take an ExplorerResult (teachdock.lab.namespaces.explorer) and only read its rows, so they
live apart from the probing; every word on them goes through ``say``, in the learner's language.
"""

from __future__ import annotations

import io
from html import escape

from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

# --- drawing -------------------------------------------------------------------------------------------
# Okabe-Ito based, as doctor(): amber for shared, bluish green for isolated; symbols too, so the
# meaning never depends on colour alone.
SHARED = {"fill": "#E69F00", "light": "#fff1cc", "text": "#7a5200"}
ISOLATED = {"fill": "#009E73", "light": "#d9f2e6", "text": "#00603f"}
EMPTY = "#f2f2f2"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_matrix(result):
    """The heat-map: one row per kind, a coloured cell under 'shared' or 'isolated', the evidence beside it.

    Built with matplotlib's object API (no pyplot), so a cell that returns it shows it once.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    rows = result.rows
    bottom = len(rows) + 2.55  # title and header take two rows, the footnote half of one
    fig = Figure(figsize=(12, 0.63 * (bottom + 0.1)))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 12)
    ax.set_ylim(bottom, -0.1)
    ax.axis("off")

    asked = ", ".join(result.asked) or "—"
    ax.text(0.05, 0.05, say("What the probe container shares with the host"), fontsize=15, weight="bold", va="top")
    if result.init_host_pid:
        subtitle = say("new namespaces asked for: {kinds}   ·   the probe's PID 1 is PID {pid} on the host",
                       kinds=asked, pid=result.init_host_pid)
    else:
        subtitle = say("new namespaces asked for: {kinds}", kinds=asked)
    ax.text(0.05, 0.62, subtitle, fontsize=10, color="#444444", va="top")

    header_y = 1.45
    columns = {"kind": 0.05, "shared": 2.05, "isolated": 3.75, "evidence": 5.6}
    ax.text(columns["kind"], header_y, say("namespace kind"), fontsize=10, weight="bold", va="center")
    ax.text(columns["shared"] + 0.8, header_y, say("= shared"), fontsize=10, weight="bold", ha="center",
            va="center", color=SHARED["text"])
    ax.text(columns["isolated"] + 0.8, header_y, say("≠ its own"), fontsize=10, weight="bold", ha="center",
            va="center", color=ISOLATED["text"])
    ax.text(columns["evidence"], header_y, say("what the container saw   /   what the host saw"), fontsize=10,
            weight="bold", va="center")

    for index, row in enumerate(rows):
        y = index + 2.0
        if index % 2 == 0:
            ax.add_patch(FancyBboxPatch((0.0, y - 0.02), 12.0, 0.92, boxstyle="square,pad=0", color="#fafafa", zorder=0))
        mark = "☑" if row.asked else "☐"
        ax.text(columns["kind"], y + 0.3, f"{mark} {row.kind}", fontsize=12, weight="bold", va="center")
        note = say("asked for") if row.asked else say("not asked for")
        if row.kind == "mount":
            note = say("always new (pivot_root)")
        if not row.as_asked and row.container_inode is not None:
            note = say("⚠ not as asked!")
        ax.text(columns["kind"] + 0.27, y + 0.66, note, fontsize=8, color="#666666", va="center")
        for column, style, on in (("shared", SHARED, row.shared), ("isolated", ISOLATED, row.isolated)):
            x = columns[column]
            ax.add_patch(FancyBboxPatch((x + 0.05, y + 0.08), 1.5, 0.72, boxstyle="round,pad=0,rounding_size=0.12",
                                        facecolor=style["fill"] if on else EMPTY, edgecolor="none"))
            if on:
                symbol = "=" if column == "shared" else "≠"
                ax.text(x + 0.8, y + 0.33, f"{row.container_inode}", fontsize=9, color="white", weight="bold",
                        ha="center", va="center")
                below = (say("{symbol} host {inode}", symbol=symbol, inode=row.host_inode) if column == "isolated"
                         else say("= the host's"))
                ax.text(x + 0.8, y + 0.62, below, fontsize=7.5, color="white", ha="center", va="center")
        if row.container_inode is None:
            ax.text(columns["shared"] + 1.65, y + 0.44, say("not in this kernel"), fontsize=9, color="#8f1d1d",
                    ha="center", va="center")
        ax.text(columns["evidence"], y + 0.3, _short(row.container_sees, 72), fontsize=10, va="center",
                color=(ISOLATED if row.isolated else SHARED)["text"])
        ax.text(columns["evidence"], y + 0.64, _short(row.host_sees, 80), fontsize=8.5, va="center", color="#555555")
    ax.text(0.05, bottom - 0.1, say("inode numbers from /proc/<pid>/ns/<kind>, read on the host: the same inode "
                                    "means the same namespace"), fontsize=8, color="#666666", va="bottom")
    return fig


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


LEFT = "text-align:left;padding:3px 8px;border-bottom:1px solid #e6e6e6;vertical-align:top"
WRAP = "max-width:18em;overflow-wrap:anywhere"  # long cgroup paths must not push the table off screen


def _verdict(row) -> str:
    if row.container_inode is None:
        return say("not in this kernel")
    return say("≠ isolated") if row.isolated else say("= shared")


def render_table(result) -> TextAndHTML:
    """The same result as a table (HTML for Jupyter, aligned text for a terminal)."""
    rows, text_rows = [], []
    for row in result.rows:
        style = ISOLATED if row.isolated else SHARED
        if row.container_inode is None:
            cell = f'<td style="{LEFT};color:#8f1d1d">{escape(say("not in this kernel"))}</td>'
        else:
            cell = (f'<td style="{LEFT};background:{style["light"]};color:{style["text"]};font-weight:600;'
                    f'white-space:nowrap">{escape(_verdict(row))}</td>')
        asked = "☑" if row.asked else "☐"
        if not row.as_asked and row.container_inode is not None:
            asked += " ⚠"
        rows.append(
            "<tr>"
            f'<td style="{LEFT}"><b>{row.kind}</b></td>'
            f'<td style="{LEFT}">{asked}</td>'
            f"{cell}"
            f'<td style="{LEFT}"><code>{row.host_inode}</code></td>'
            f'<td style="{LEFT}"><code>{row.container_inode}</code></td>'
            f'<td style="{LEFT};{WRAP}">{escape(row.container_sees)}</td>'
            f'<td style="{LEFT};{WRAP};color:#555">{escape(row.host_sees)}</td>'
            "</tr>"
        )
        text_rows.append(f"{row.kind:8} {asked:4} {_verdict(row):12} {row.host_inode!s:>11} {row.container_inode!s:>11}  "
                         f"{row.container_sees}  |  {row.host_sees}")
    head = "".join(f'<th style="{LEFT}">{escape(h)}</th>' for h in
                   (say("namespace kind"), say("asked for"), say("shared or its own"), say("host inode"),
                    say("container inode"), say("the container sees"), say("the host sees")))
    html = (f'<table style="border-collapse:collapse;table-layout:auto;max-width:100%"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
    header = say("kind     asked result       host inode   container  what each side saw")
    text = "\n".join([header] + text_rows)
    return TextAndHTML(html, text)
