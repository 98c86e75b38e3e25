#!/usr/bin/env python3
"""Login cards for a room of teachdock VMs: a CSV of logins in, one printable HTML page out.

    python3 classroom/cards.py logins.csv -o cards.html     (then print it: 8 cards per A4 page)

The CSV has a header and one row per VM: ``host,user,password,token,port``, as classroom/README.md
collects it (the host from the cloud's listing, the rest from each VM's /root/teachdock-login.csv).
Each card says how to open the lab: the SSH tunnel, the password, the address with the token.
The page is self-contained (no fonts, scripts or images from anywhere), so it prints offline.
Only the standard library: it runs on the instructor's laptop, without teachdock installed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from html import escape

COLUMNS = ("host", "user", "password", "token", "port")

STYLE = """
body { font-family: sans-serif; margin: 0; }
.cards { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; padding: 8mm; }
.card { border: 1px dashed #555; padding: 4mm 5mm; break-inside: avoid; page-break-inside: avoid; }
.card h2 { margin: 0 0 2mm 0; font-size: 14pt; }
.card p { margin: 1.5mm 0; font-size: 10pt; }
.card code { font-size: 10pt; word-break: break-all; background: #f2f2f2; padding: 0 1mm; }
.step { color: #333; }
@media print { .cards { padding: 0; } }
"""


class CardError(ValueError):
    """A CSV that cannot become cards; the message names the line."""


def read_logins(lines) -> list[dict[str, str]]:
    """The CSV's rows as dicts, checked: every column there, a port that is a number, no empty field."""
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        raise CardError("the CSV is empty: it needs the header " + ",".join(COLUMNS))
    missing = [name for name in COLUMNS if name not in reader.fieldnames]
    if missing:
        raise CardError(f"line 1: the header lacks {', '.join(missing)} (it needs {','.join(COLUMNS)})")
    logins = []
    for row in reader:
        line = reader.line_num
        empty = [name for name in COLUMNS if not (row.get(name) or "").strip()]
        if empty:
            raise CardError(f"line {line}: no {', '.join(empty)}")
        login = {name: row[name].strip() for name in COLUMNS}
        if not login["port"].isdigit() or not 0 < int(login["port"]) < 65536:
            raise CardError(f"line {line}: port {login['port']!r} is not a port number")
        logins.append(login)
    if not logins:
        raise CardError("the CSV has a header but no VM")
    return logins


def card(number: int, login: dict[str, str]) -> str:
    host, user, port = (escape(login[k]) for k in ("host", "user", "port"))
    url = escape(f"http://127.0.0.1:{login['port']}/lab?token={login['token']}")
    return (
        '<div class="card">'
        f"<h2>teachdock lab #{number}: {host}</h2>"
        f'<p class="step">1. In a terminal: <code>ssh -L {port}:127.0.0.1:{port} {user}@{host}</code></p>'
        f'<p class="step">2. Password: <code>{escape(login["password"])}</code> (keep the terminal open)</p>'
        f'<p class="step">3. In a browser on your computer: <code>{url}</code></p>'
        "</div>"
    )


def render(logins: list[dict[str, str]], title: str = "teachdock: login cards") -> str:
    cards = "\n".join(card(number, login) for number, login in enumerate(logins, 1))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body><div class=\"cards\">\n{cards}\n</div></body></html>\n"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Turn a CSV of VM logins (host,user,password,token,port) "
                                                 "into a printable HTML page of login cards.")
    parser.add_argument("csv", help="the logins, with a header; - for standard input")
    parser.add_argument("-o", "--output", help="the HTML file to write (default: standard output)")
    arguments = parser.parse_args(argv)
    try:
        if arguments.csv == "-":
            logins = read_logins(sys.stdin)
        else:
            with open(arguments.csv, newline="") as f:
                logins = read_logins(f)
    except (OSError, CardError) as error:
        print(f"cards: {error}", file=sys.stderr)
        return 1
    page = render(logins)
    if arguments.output:
        with open(arguments.output, "w") as f:
            f.write(page)
        print(f"cards: {len(logins)} cards in {arguments.output}", file=sys.stderr)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
