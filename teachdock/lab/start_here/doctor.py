"""doctor(): the machine check, as a table a learner can read at a glance.

The probing lives in teachdock.lab.start_here.machine (so the CLI can print the same report); this
module only draws it: one row per finding, a coloured status, what it means for the course,
and the fix when something is wrong. It works without a browser: under nbval the HTML is
simply recorded, and outside IPython the plain-text report is printed instead.
"""

from __future__ import annotations

from html import escape

from teachdock.lab.common.language import say
from teachdock.lab.start_here.machine import MISSING, OK, WARN, HostReport, finding_title, probe

# Colour-blind-safe pairs (background, text) from the Okabe-Ito palette.
STATUS_STYLE = {
    OK: ("#d9f2e6", "#00603f"),
    WARN: ("#fff1cc", "#7a5200"),
    MISSING: ("#fbdada", "#8f1d1d"),
}
VERDICT_STYLE = {
    "ok": ("#d9f2e6", "#00603f"),
    "limited": ("#fff1cc", "#7a5200"),
    "blocked": ("#fbdada", "#8f1d1d"),
}


def status_label(status: str) -> str:
    """The status column: a symbol, so the status never depends on colour alone, and a word."""
    return {OK: say("✔ ok"), WARN: say("▲ warn"), MISSING: say("✘ missing")}[status]


def verdict_title(level: str) -> str:
    return {"ok": say("Ready."), "limited": say("Ready, with limits."), "blocked": say("Not ready.")}[level]


def column_titles() -> tuple[str, ...]:
    return say("status"), say("check"), say("seen here"), say("what it means")


# JupyterLab right-aligns table cells by default; text reads better from the left.
LEFT = "text-align:left"


def render_html(report: HostReport) -> str:
    """The report as one self-contained HTML fragment (inline styles: no CSS file needed)."""
    rows = []
    for f in report.findings:
        background, colour = STATUS_STYLE[f.status]
        label = status_label(f.status)
        meaning = escape(f.meaning)
        if f.fix:
            fix = say("fix: {fix}", fix=f"<code>{escape(f.fix)}</code>")
            meaning += f'<br><span style="color:#444">{fix}</span>'
        rows.append(
            "<tr>"
            f'<td style="{LEFT};background:{background};color:{colour};font-weight:600;white-space:nowrap">{label}</td>'
            f'<td style="{LEFT};white-space:nowrap"><b>{escape(finding_title(f.name))}</b></td>'
            f'<td style="{LEFT}"><code>{escape(f.value)}</code></td>'
            f'<td style="{LEFT}">{meaning}</td>'
            "</tr>"
        )
    background, colour = VERDICT_STYLE[report.verdict_level]
    title = verdict_title(report.verdict_level)
    head = "".join(f'<th style="{LEFT}">{h}</th>' for h in column_titles())
    return (
        '<div class="teachdock-doctor">'
        f'<div style="background:{background};color:{colour};border-left:6px solid {colour};'
        f'padding:8px 12px;margin-bottom:8px"><b>{title}</b> {escape(report.verdict)}</div>'
        f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
        "</div>"
    )


def doctor(report: HostReport | None = None) -> HostReport:
    """Check this machine, show the verdict and the table, and return the report.

    Pass a report to redraw it without probing again.
    """
    report = report if report is not None else probe()
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        print(report.format())
        return report
    if get_ipython() is None:  # a plain Python script: the terminal gets text
        print(report.format())
    else:
        display(HTML(render_html(report)))
    return report
