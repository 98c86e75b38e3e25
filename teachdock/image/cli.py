"""`teachdock image ...`: image commands on the command line.

For now one command builds the base rootfs offline:

    teachdock image bootstrap busybox [--data-root DIR] [--force] [--busybox PATH]

The top-level `teachdock` CLI hands everything after `image` to main(). Until then, or
without installing the console script, run `python -m teachdock.image.cli ...`.
Heavy imports stay inside the functions so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teachdock image", description="Build and manage teachdock images."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bootstrap = commands.add_parser(
        "bootstrap", help="build a base image offline from what the host has",
        description="Build a base image offline from what the host has.",
    )
    bases = bootstrap.add_subparsers(dest="base", required=True, metavar="BASE")
    busybox = bases.add_parser(
        "busybox", help="a rootfs made of the host's static busybox",
        description="Build <data root>/rootfs/busybox from the host's static busybox "
        "(Debian package busybox-static). Does nothing if it is already up to date.",
    )
    busybox.add_argument(
        "--data-root", metavar="DIR", type=Path,
        help="teachdock's data root (default: $TEACHDOCK_DATA_ROOT or /var/lib/teachdock)",
    )
    busybox.add_argument("--force", action="store_true", help="rebuild even if up to date")
    busybox.add_argument(
        "--busybox", metavar="PATH", type=Path,
        help="the static busybox binary to use (default: /bin/busybox, then $PATH)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `teachdock image` command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    from teachdock.errors import TeachdockError  # lazy: keeps --help fast

    try:
        if args.command == "bootstrap" and args.base == "busybox":
            return _bootstrap_busybox(args)
    except TeachdockError as error:
        print(f"teachdock: error: {error}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"teachdock: error: {error} (run as root, or choose --data-root)", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args}")  # argparse only accepts known ones


def _bootstrap_busybox(args: argparse.Namespace) -> int:
    from teachdock.image import busybox

    if args.data_root is not None:
        dest = args.data_root.absolute() / "rootfs" / "busybox"
    else:
        dest = busybox.default_rootfs_path()
    path = busybox.build_busybox_rootfs(
        dest, args.busybox, force=args.force, progress=lambda line: print(f"  {line}")
    )
    marker = busybox.read_marker(path) or {}
    print(
        f"busybox rootfs: {path}\n"
        f"  BusyBox v{marker.get('busybox_version', '?')}, "
        f"{marker.get('applets', '?')} applets, {_human_size(_tree_size(path))}"
    )
    return 0


def _tree_size(root: Path) -> int:
    """Bytes of every file, link and directory under root (what `du --apparent-size` counts)."""
    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


if __name__ == "__main__":
    sys.exit(main())
