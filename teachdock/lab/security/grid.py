"""The grid of chapter 10: every attempt in every configuration, and which layer stopped it.

A configuration is a list of ``docker run`` flags, each removing one protection of the default
(``--cap-add SYS_ADMIN``, ``--security-opt seccomp=unconfined``, ``--privileged``, the daemon's
socket mounted in). ``try_configuration`` runs one container with the probe script of attempts.py
through the real docker CLI; ``run_grid`` runs them all. ``try_in_user_namespace`` runs the same
script with teachdock's runtime, with every protection off *but* a user namespace: the next wall.
The verdicts come from layers.py; the grid draws them (``Grid.plot()``) and prints them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML
from teachdock.lab.security.attempts import (CAPABILITY_NAMES, MARKER_ENV, SOCKET_INSIDE, Attempt, Facts, Outcome,
                                             attempts, host_refusals, parse_run, probe_script)
from teachdock.lab.security.layers import LAYERS, THROUGH, UNEXPLAINED, Verdict, decide

#: One colour per layer (and for "got through" / "unexplained"), for the picture and the table.
COLOURS = {
    "seccomp": "#56B4E9", "capabilities": "#009E73", "devices": "#E69F00", "masked": "#CC79A7",
    "read-only": "#0072B2", "namespaces": "#999999", "user namespace": "#F0E442", "kernel": "#dddddd",
    "host": "#bbbbbb", THROUGH: "#D55E00", UNEXPLAINED: "#000000",
}


@dataclass(frozen=True)
class Configuration:
    name: str
    flags: tuple[str, ...]
    removes: str


def cli_binds(binary: str) -> list[str]:
    """``-v`` flags that bring a dynamically linked program and its libraries (``ldd``) into a
    container, read-only: how the socket attempt gets a docker CLI into busybox."""
    binds = [f"{binary}:/usr/local/bin/docker:ro"]
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0] if words and words[0].startswith("/") else None
        if path and path.startswith("/"):
            binds.append(f"{path}:{path}:ro")
    return [flag for bind in binds for flag in ("-v", bind)]


def configurations(socket_path: str | os.PathLike, docker_binary: str) -> tuple[Configuration, ...]:
    """Docker's default, then one protection removed at a time."""
    return (
        Configuration("default", (), "nothing: Docker's defaults"),
        Configuration("--cap-add SYS_ADMIN", ("--cap-add", "SYS_ADMIN"), "one capability's limit"),
        Configuration("seccomp=unconfined", ("--security-opt", "seccomp=unconfined"), "the system-call filter"),
        Configuration("--privileged", ("--privileged",), "all of them at once"),
        Configuration("socket mounted", ("-v", f"{socket_path}:{SOCKET_INSIDE}", *cli_binds(docker_binary)),
                      "nothing in the container: it is handed the daemon"),
    )


@dataclass
class Column:
    """One configuration's container: its facts, each attempt's outcome and verdict."""

    configuration: str
    facts: Facts
    outcomes: dict[str, Outcome]
    verdicts: dict[str, Verdict]
    problem: str = ""                   # the daemon's error, when the container did not run


def column(configuration: str, chosen: tuple[Attempt, ...], stdout: str, *, privileged: bool = False,
           problem: str = "") -> Column:
    """Facts, outcomes and verdicts from one run of the probe script."""
    facts, outcomes = parse_run(stdout, chosen, privileged=privileged, host_refuses=host_refusals(chosen))
    verdicts = {attempt.key: decide(attempt, facts, outcomes[attempt.key], configuration)
                for attempt in chosen if attempt.key in outcomes}
    return Column(configuration, facts, outcomes, verdicts, problem)


def try_configuration(host: str, configuration: Configuration, chosen: tuple[Attempt, ...], *,
                      marker: str | os.PathLike = "/nonexistent", timeout: float = 90) -> Column:
    """Run the probe script once in ``docker run --rm FLAGS busybox`` against ``host``."""
    from teachdock.lab.client_and_daemon import run_docker

    done = run_docker(host, "run", "--rm", "-e", f"{MARKER_ENV}={marker}", *configuration.flags, "busybox",
                      "sh", "-c", probe_script(chosen), timeout=timeout)
    problem = "" if "attempt\t" in done.stdout else (
        done.stderr.strip() or say("docker run exited with {code}", code=done.returncode))
    return column(configuration.name, chosen, done.stdout, privileged="--privileged" in configuration.flags,
                  problem=problem)


#: every capability the runtime knows, for "privileged, but in a user namespace"
ALL_CAPABILITIES = tuple(CAPABILITY_NAMES)


def try_in_user_namespace(chosen: tuple[Attempt, ...], rootfs=None) -> Column:
    """The probe script with teachdock's runtime: every capability, no seccomp filter, nothing
    masked or read-only — but in a user namespace (root inside maps to an unused uid outside;
    without root, to your own uid: a rootless container). The shared busybox root stays read-only."""
    from teachdock.runtime import run
    from teachdock.runtime.spec import DEFAULT_NAMESPACES

    result = run(["sh", "-c", probe_script(chosen)], rootfs, namespaces=(*DEFAULT_NAMESPACES, "user"),
                 capabilities=list(ALL_CAPABILITIES), seccomp=None, masked_paths=[], readonly_paths=[],
                 timeout=60)
    problem = "" if "attempt\t" in result.stdout else (result.stderr.strip() or f"exit {result.exit_code}")
    return column(say("user namespace, all else off"), chosen, result.stdout, problem=problem)


def try_rootless_without_filter(chosen: tuple[Attempt, ...], rootfs=None) -> Column:
    """teachdock's rootless container (a user namespace, Docker's default capabilities, masked
    and read-only paths) with one layer taken away: no seccomp filter. Chapter 10's exercise 5."""
    from teachdock.runtime import run
    from teachdock.runtime.spec import DEFAULT_NAMESPACES

    result = run(["sh", "-c", probe_script(chosen)], rootfs, namespaces=(*DEFAULT_NAMESPACES, "user"),
                 seccomp=None, timeout=60)
    problem = "" if "attempt\t" in result.stdout else (result.stderr.strip() or f"exit {result.exit_code}")
    return column(say("user namespace, default capabilities, no filter"), chosen, result.stdout, problem=problem)


@dataclass
class Grid:
    """Attempts down, configurations across; each cell a Verdict."""

    attempts: tuple[Attempt, ...]
    columns: list[Column] = field(default_factory=list)

    def cell(self, attempt: str, configuration: str) -> Verdict | None:
        for col in self.columns:
            if col.configuration == configuration:
                return col.verdicts.get(attempt)
        return None

    def through(self, configuration: str) -> list[str]:
        """The attempts that got through in ``configuration``."""
        return [a.key for a in self.attempts if (v := self.cell(a.key, configuration)) and v.layer == THROUGH]

    def table(self) -> TextAndHTML:
        """The grid as an HTML table (coloured by layer) and as text."""
        heads = "".join(f"<th>{escape(col.configuration)}</th>" for col in self.columns)
        attempt_head = say("attempt")
        rows, text = [], [f"{attempt_head:44}" + "".join(f"{col.configuration[:20]:>22}" for col in self.columns)]
        for attempt in self.attempts:
            cells, line = [], f"{attempt.title[:44]:44}"
            for col in self.columns:
                verdict = col.verdicts.get(attempt.key)
                label = verdict.label if verdict else say("(no answer)")
                colour = COLOURS.get(verdict.layer, "#ffffff") if verdict else "#ffffff"
                ink = "#ffffff" if verdict and verdict.layer in (THROUGH, UNEXPLAINED, "read-only") else "#000000"
                title = escape(col.outcomes[attempt.key].output[:200]) if attempt.key in col.outcomes else ""
                cells.append(f"<td style='background:{colour};color:{ink}' title='{title}'>{escape(label)}"
                             f"<br><small>{escape(verdict.errno if verdict else '')}</small></td>")
                line += f"{label[:20]:>22}"
            rows.append(f"<tr><td style='text-align:left'>{escape(attempt.title)}</td>{''.join(cells)}</tr>")
            text.append(line)
        problems = [f"{col.configuration}: {col.problem}" for col in self.columns if col.problem]
        html = (f"<table><thead><tr><th style='text-align:left'>{escape(attempt_head)}</th>{heads}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>"
                + "".join(f"<p><b>{escape(problem)}</b></p>" for problem in problems))
        return TextAndHTML(html, "\n".join(text + problems))

    def plot(self, title: str | None = None):
        """The grid as a matplotlib figure: one coloured cell per attempt and configuration."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch, Rectangle

        rows, cols = len(self.attempts), len(self.columns)
        fig = Figure(figsize=(2.0 + 1.9 * cols, 0.9 + 0.55 * rows), layout="constrained")
        ax = fig.subplots()
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        for j, col in enumerate(self.columns):
            for i, attempt in enumerate(self.attempts):
                verdict = col.verdicts.get(attempt.key)
                layer = verdict.layer if verdict else UNEXPLAINED
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=COLOURS[layer], edgecolor="white", linewidth=2))
                ink = "white" if layer in (THROUGH, UNEXPLAINED, "read-only") else "black"
                ax.text(j + 0.5, i + 0.5, verdict.label if verdict else say("no answer"), ha="center", va="center",
                        fontsize=8, color=ink)
        ax.set_xticks([j + 0.5 for j in range(cols)], [col.configuration for col in self.columns], fontsize=8)
        ax.xaxis.tick_top()
        ax.set_yticks([i + 0.5 for i in range(rows)], [a.title for a in self.attempts], fontsize=8)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        used = {v.layer for col in self.columns for v in col.verdicts.values()}
        names = {**{key: value[0] for key, value in LAYERS.items()}, THROUGH: say("got through"),
                 UNEXPLAINED: say("unexplained")}
        ax.legend(handles=[Patch(facecolor=COLOURS[key], label=names[key]) for key in COLOURS if key in used],
                  loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
        ax.set_title(title or say("Which layer stopped each attempt (this machine)"), fontsize=10, pad=28)
        return fig


def write_marker(directory: str | os.PathLike) -> tuple[Path, str]:
    """A file on the host with a random token: what the socket attempt proves it can read."""
    token = f"host-secret-{secrets.token_hex(6)}"
    path = Path(directory) / "host-secret.txt"
    path.write_text(token + "\n")
    return path, token


def run_grid(host: str, socket_path: str | os.PathLike, marker: str | os.PathLike, *,
             chosen: tuple[Attempt, ...] | None = None, configurations_to_try=None, progress=None) -> Grid:
    """Every configuration against ``host`` (a daemon at ``socket_path``); ``progress(name)`` before each."""
    from teachdock.lab.client_and_daemon import docker_cli

    chosen = chosen or attempts()
    grid = Grid(chosen)
    for configuration in configurations_to_try or configurations(socket_path, docker_cli() or "/usr/bin/docker"):
        if progress is not None:
            progress(configuration.name)
        grid.columns.append(try_configuration(host, configuration, chosen, marker=marker))
    return grid


def facts_rows(columns: list[Column]) -> list[tuple[str, list[str]]]:
    """What each container was allowed, side by side: (question, one answer per column: a number,
    or ✔/✘ for yes/no)."""
    def masked(col):
        return sorted(point for point, _root, _options, kind in col.facts.mounts
                      if kind != "proc" and point.startswith("/proc/"))

    def read_only(col):
        return sorted(point for point, _root, options, kind in col.facts.mounts
                      if kind == "proc" and "ro" in options.split(",") and point != "/proc")

    yes, no = "✔", "✘"   # the same in every language
    return [
        (say("capabilities (effective)"), [str(len(col.facts.capabilities)) for col in columns]),
        ("CAP_SYS_ADMIN", [yes if "CAP_SYS_ADMIN" in col.facts.capabilities else no for col in columns]),
        (say("seccomp filter"), [yes if col.facts.seccomp == 2 else no for col in columns]),
        (say("paths masked under /proc"), [str(len(masked(col))) for col in columns]),
        (say("read-only paths under /proc"), [str(len(read_only(col))) for col in columns]),
        (say("all devices allowed"), [yes if col.facts.privileged else no for col in columns]),
        (say("root is root on the host"), [no if col.facts.user_namespace else yes for col in columns]),
    ]


def facts_table(columns: list[Column]) -> TextAndHTML:
    """``facts_rows`` as a table."""
    rows = facts_rows(columns)
    heads = "".join(f"<th>{escape(col.configuration)}</th>" for col in columns)
    body = "".join(f"<tr><td style='text-align:left'>{escape(question)}</td>"
                   + "".join(f"<td>{escape(answer)}</td>" for answer in answers) + "</tr>" for question, answers in rows)
    text = "\n".join([f"{'':30}" + "".join(f"{col.configuration[:20]:>22}" for col in columns)]
                     + [f"{question:30}" + "".join(f"{answer:>22}" for answer in answers) for question, answers in rows])
    return TextAndHTML(f"<table><thead><tr><th></th>{heads}</tr></thead><tbody>{body}</tbody></table>", text)
