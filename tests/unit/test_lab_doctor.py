"""teachdock.lab.start_here.doctor: the report drawn as HTML, in and out of IPython."""

import importlib
import re
from dataclasses import replace
from pathlib import Path


from teachdock.lab.start_here.doctor import doctor, render_html
from teachdock.lab.start_here import machine as host
from teachdock.lab.start_here.machine import HostReport, NamespaceProbe

# teachdock.lab re-exports the function doctor(), which hides the module of the same name.
doctor_module = importlib.import_module("teachdock.lab.start_here.doctor")


def _report(**changes) -> HostReport:
    report = HostReport(
        is_root=True,
        kernel="6.1.0-56-amd64",
        namespaces={name: NamespaceProbe(name, True, True, how="directly") for name in host.CLONE_FLAGS},
        userns_settings={},
        cgroup_version="v2",
        cgroup_controllers={"memory": True, "cpu": True, "pids": True},
        cgroup_writable=True,
        overlayfs=True,
        busybox="static",
        base_rootfs=Path("/var/lib/teachdock/rootfs/busybox"),
        base_rootfs_present=True,
        runc="/usr/sbin/runc",
    )
    report = replace(report, **changes)
    report.findings = host.assess(report)
    return report


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", html)


def test_html_has_one_row_per_finding_with_name_value_and_meaning():
    report = _report()
    html = render_html(report)
    body_rows = _rows(html.split("<tbody>", 1)[1])
    assert len(body_rows) == len(report.findings)
    for row, finding in zip(body_rows, report.findings):
        assert f"<b>{finding.name}</b>" in row
        assert finding.value in row
        assert finding.meaning.replace("'", "&#x27;") in row


def test_ready_machine_shows_a_green_verdict():
    html = render_html(_report())
    assert "Ready.</b> Everything the course needs is here." in html
    assert "#00603f" in html.split("<table", 1)[0]  # the verdict box is green


def test_limited_machine_shows_amber_verdict_and_the_fix():
    html = render_html(_report(runc=None))
    verdict_box = html.split("<table", 1)[0]
    assert "Ready, with limits." in verdict_box and "#7a5200" in verdict_box
    runc_row = next(row for row in _rows(html) if "<b>runc</b>" in row)
    assert "▲ warn" in runc_row
    assert "fix: <code>apt-get install runc</code>" in runc_row


def test_blocked_machine_shows_red_verdict_and_missing_rows():
    namespaces = dict(_report().namespaces, mnt=NamespaceProbe("mnt", True, False, error="EPERM"))
    html = render_html(_report(namespaces=namespaces))
    assert "Not ready.</b> Containers cannot start" in html
    mnt_row = next(row for row in _rows(html) if "<b>mnt namespace</b>" in row)
    assert "✘ missing" in mnt_row and "refused (EPERM)" in mnt_row


def test_values_are_html_escaped():
    html = render_html(_report(kernel="6.1<script>"))
    assert "<script>" not in html and "6.1&lt;script&gt;" in html


def test_doctor_outside_ipython_prints_text_and_returns_the_report(capsys, monkeypatch):
    report = _report()
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    assert doctor(report) is report
    printed = capsys.readouterr().out
    assert printed.startswith("teachdock doctor") and "Verdict: Everything the course needs is here." in printed


def test_doctor_in_a_notebook_displays_html(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.get_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    report = _report(overlayfs=False)
    assert doctor(report) is report
    assert len(shown) == 1
    html = shown[0].data
    for finding in report.findings:
        assert f"<b>{finding.name}</b>" in html


def test_doctor_probes_when_given_no_report(monkeypatch):
    probed = _report()
    monkeypatch.setattr(doctor_module, "probe", lambda: probed)
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    assert doctor() is probed


def test_report_repr_is_short():
    text = repr(_report())
    assert len(text) < 120 and "verdict_level='ok'" in text
