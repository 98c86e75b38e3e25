"""``teachdock doctor``: what this machine offers for the course, for a person or a script.

    teachdock doctor            the kernel's features, explained, with the fix for each problem
    teachdock doctor --json     the same findings as one JSON object
    teachdock doctor --room     the room check: one `OK|WARN|MISSING name value` line per requirement
                                of the whole course; exit 1 when a chapter cannot run
    teachdock doctor --room --json   the room check as JSON (requirements, chapters, cannot_run)
    teachdock doctor --lang ko  the verdicts and explanations in Korean (TEACHDOCK_LANG decides without it)
"""

from __future__ import annotations

import argparse
import json
import os

from teachdock.lab.common.language import LANGUAGES, language_of, speaking

DESCRIPTION = """\
Check what this machine offers for the course.

Without options: the kernel's features the course uses (namespaces, cgroups, overlayfs, a static
busybox, runc), what each one's absence would cost, and how to fix it. Exits 0.

--room is the check an instructor runs on every learner machine (or asks a learner to run and
paste): one line per requirement of the whole course -- the kernel's features and the tools,
libraries and disk the chapters need --, `OK|WARN|MISSING <requirement> <value>`, then the
chapters that are limited and those that cannot run. Exit status 0: every chapter can run
(WARN lines say what is skipped or slower); 1: at least one chapter cannot. Run it as root, as
the lab runs (`sudo .venv/bin/teachdock doctor --room`).

--lang ko writes the verdicts, explanations and fixes in Korean (--lang en: English). Without
--lang, the environment variable TEACHDOCK_LANG decides, as it does for the lab's kernels
(`TEACHDOCK_LANG=ko teachdock doctor`); unset, English; naming another language, refused. The
--room lines keep their `OK|WARN|MISSING <requirement>` words in English, and --json is always
English, whatever the language: scripts read it.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="teachdock doctor", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--room", action="store_true",
                   help="check every chapter's requirements; exit 1 when a chapter cannot run")
    p.add_argument("--lang", choices=sorted(LANGUAGES),
                   help="the language of the report: en or ko (default: TEACHDOCK_LANG, else English); "
                        "--json stays English")
    return p


def main(argv: list[str]) -> int:
    arguments = parser().parse_args(argv)  # --help prints and exits 0; an unknown flag or language exits 2
    setting = os.environ.get("TEACHDOCK_LANG", "").strip()
    unknown = setting and language_of(setting) is None
    if unknown and arguments.lang is None and not arguments.json:  # refused as scripts/lab refuses it
        known = " or ".join(LANGUAGES)
        parser().error(f"TEACHDOCK_LANG={setting!r} is not a language of the course: use {known}")
    # JSON is for scripts: its sentences never change language.
    with speaking("en" if arguments.json else arguments.lang):  # for this command only
        return report(arguments)


def report(arguments: argparse.Namespace) -> int:
    if arguments.room:
        from teachdock.lab.start_here.room import format_room, probe_room, room_json  # noqa: PLC0415

        room = probe_room()
        print(json.dumps(room_json(room), indent=2) if arguments.json else format_room(room))
        return room.exit_status
    from teachdock.lab.start_here.machine import probe, report_json  # noqa: PLC0415

    machine = probe()
    print(json.dumps(report_json(machine), indent=2) if arguments.json else machine.format())
    return 0
