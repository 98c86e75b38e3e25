"""`teachdock image ...`: images on the command line, with docker's verbs and flag names.

    teachdock image ls [-q] [--no-trunc] [--digests]
    teachdock image inspect IMAGE...
    teachdock image rm [-f] IMAGE...
    teachdock image tag SOURCE TARGET
    teachdock image history [--no-trunc] [-q] IMAGE
    teachdock image build -t NAME [-f Dockerfile] [--build-arg K=V] [--no-cache] [-q] CONTEXT
    teachdock image bootstrap busybox [--force] [--busybox PATH]
    teachdock image prune [--build-cache]
    teachdock image df

Every command takes ``--data-root DIR`` (default: $TEACHDOCK_DATA_ROOT or /var/lib/teachdock)
and ``--storage-driver overlay|copy|auto``, before or after the command name. This works
without a daemon; the daemon will route the same commands through its API.
Heavy imports stay inside the functions so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-root", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                        help="teachdock's data root (default: $TEACHDOCK_DATA_ROOT or /var/lib/teachdock)")
    common.add_argument("--storage-driver", choices=("auto", "overlay", "copy"), default=argparse.SUPPRESS,
                        help="how container root filesystems are made (default: auto = overlay where it works)")

    parser = argparse.ArgumentParser(prog="teachdock image", parents=[common],
                                     description="Build and manage teachdock images.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, aliases=()):
        return commands.add_parser(name, parents=[common], help=help, description=help[0].upper() + help[1:] + ".",
                                   aliases=list(aliases))

    ls = command("ls", "list images", aliases=["list"])
    ls.add_argument("-a", "--all", action="store_true", help="accepted for docker compatibility (no intermediates)")
    ls.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    ls.add_argument("--no-trunc", action="store_true", help="don't truncate ids")
    ls.add_argument("--digests", action="store_true", help="show manifest digests")

    inspect = command("inspect", "show images' details as JSON")
    inspect.add_argument("images", nargs="+", metavar="IMAGE")

    rm = command("rm", "remove images (refused while a container uses one)", aliases=["rmi"])
    rm.add_argument("-f", "--force", action="store_true", help="remove even with several names or while in use")
    rm.add_argument("images", nargs="+", metavar="IMAGE")

    tag = command("tag", "give an image another name")
    tag.add_argument("source", metavar="SOURCE_IMAGE")
    tag.add_argument("target", metavar="TARGET_IMAGE")

    history = command("history", "show the steps that made an image")
    history.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    history.add_argument("--no-trunc", action="store_true", help="don't truncate the output")
    history.add_argument("image", metavar="IMAGE")

    build = command("build", "build an image from a Dockerfile")
    build.add_argument("-t", "--tag", action="append", default=[], metavar="NAME", help="name:tag (repeatable)")
    build.add_argument("-f", "--file", metavar="PATH", help="the Dockerfile (default: CONTEXT/Dockerfile)")
    build.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="set a build-time variable (repeatable); KEY alone takes it from the environment")
    build.add_argument("--no-cache", action="store_true", help="do not use the cache")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    build.add_argument("context", metavar="CONTEXT", help="the build context directory")

    bootstrap = command("bootstrap", "build a base image offline from what the host has")
    bases = bootstrap.add_subparsers(dest="base", required=True, metavar="BASE")
    busybox = bases.add_parser(
        "busybox", parents=[common], help="busybox:latest from the host's static busybox",
        description="Build <data root>/rootfs/busybox from the host's static busybox (Debian package "
        "busybox-static) and import it as the one-layer image busybox:latest. Rebuilding gives the same digest.",
    )
    busybox.add_argument("--force", action="store_true", help="rebuild the rootfs even if up to date")
    busybox.add_argument("--busybox", metavar="PATH", type=Path,
                         help="the static busybox binary to use (default: /bin/busybox, then $PATH)")

    prune = command("prune", "remove untagged unused images and unpacked layers nothing needs")
    prune.add_argument("--build-cache", action="store_true", help="also drop the build cache's layers")
    prune.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility (no prompt)")

    command("df", "show the disk used by layers and containers, and what sharing saves")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `teachdock image` command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    from teachdock.errors import TeachdockError  # lazy: keeps --help fast

    try:
        handler = {"ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm, "rmi": _rm, "tag": _tag,
                   "history": _history, "build": _build, "bootstrap": _bootstrap, "prune": _prune,
                   "df": _df}[args.command]
        return handler(args)
    except TeachdockError as error:
        print(f"teachdock: error: {error}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"teachdock: error: {error} (run as root, or choose --data-root)", file=sys.stderr)
        return 1


def _images(args):
    from teachdock.image.images import Images

    return Images(getattr(args, "data_root", None), driver=getattr(args, "storage_driver", "auto"))


# ---------------------------------------------------------------------------- commands

def _ls(args) -> int:
    images = _images(args).list()
    if args.quiet:
        for image in images:
            print(image.id if args.no_trunc else image.short_id)
        return 0
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    rows = []
    for image in images:
        image_id = image.id if args.no_trunc else image.short_id
        tags = [ref for ref in image.references if ref.tag] or [None]
        for ref in tags:
            row = [ref.familiar_name if ref else "<none>", ref.tag if ref else "<none>"]
            if args.digests:
                row.append(image.manifest_digest)
            rows.append(row + [image_id, _ago(image.created), _size(image.size)])
    _print_table(headers, rows)
    return 0


def _inspect(args) -> int:
    images = _images(args)
    print(json.dumps([images.inspect(name) for name in args.images], indent=4))
    return 0


def _rm(args) -> int:
    images = _images(args)
    failed = 0
    from teachdock.errors import TeachdockError

    for name in args.images:
        try:
            for item in images.remove(name, force=args.force):
                for kind, value in item.items():
                    print(f"{kind}: {value}")
        except TeachdockError as error:
            print(f"teachdock: error: {error}", file=sys.stderr)
            failed = 1
    return failed


def _tag(args) -> int:
    _images(args).tag(args.source, args.target)
    return 0


def _history(args) -> int:
    rows = _images(args).history(args.image)
    if args.quiet:
        for row in rows:
            print(row["Id"] if args.no_trunc or row["Id"] == "<missing>" else row["Id"][7:19])
        return 0
    table = []
    for row in rows:
        image_id = row["Id"] if args.no_trunc or row["Id"] == "<missing>" else row["Id"][7:19]
        created_by = " ".join(row["CreatedBy"].split()) if not args.no_trunc else row["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append([image_id, _ago_unix(row["Created"]), created_by, _size(row["Size"]), row["Comment"]])
    _print_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], table)
    return 0


def _build(args) -> int:
    import os

    from teachdock.image.build import BuildStepFailed

    build_args = {}
    for item in args.build_arg:
        key, equals, value = item.partition("=")
        if not equals:
            if key not in os.environ:
                continue                       # docker skips a KEY that is not in the environment
            value = os.environ[key]
        build_args[key] = value
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = _images(args).build(args.context, tags=args.tag, dockerfile=args.file, build_args=build_args,
                                     no_cache=args.no_cache, progress=progress)
    except BuildStepFailed as error:
        if args.quiet and error.output:
            print(error.output, file=sys.stderr)
        raise
    if args.quiet:
        print(result.id)
    return 0


def _bootstrap(args) -> int:
    from teachdock.image import busybox

    images = _images(args)
    image = images.bootstrap_busybox(force=args.force, busybox=args.busybox,
                                     progress=lambda line: print(f"  {line}"))
    path = images.data_root / "rootfs" / "busybox"
    marker = busybox.read_marker(path) or {}
    print(
        f"busybox rootfs: {path}\n"
        f"  BusyBox v{marker.get('busybox_version', '?')}, "
        f"{marker.get('applets', '?')} applets, {_binary_size(_tree_size(path))}\n"
        f"image busybox:latest: {image.id} ({_size(image.size)} compressed)"
    )
    return 0


def _prune(args) -> int:
    result = _images(args).prune(build_cache=args.build_cache)
    for item in result["images"]:
        for kind, value in item.items():
            print(f"{kind}: {value}")
    for digest in result["build_cache"]:
        print(f"Deleted build cache layer: {digest}")
    for chain in result["snapshots"]:
        print(f"Deleted unpacked layer: {chain}")
    return 0


def _df(args) -> int:
    print(_images(args).disk_usage())
    return 0


# ---------------------------------------------------------------------------- formatting

def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns like docker's (Go tabwriter: min width 10, padding 3)."""
    widths = [max([10, len(header) + 3] + [len(str(row[i])) + 3 for row in rows]) for i, header in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths)] + [str(row[-1])]
        print("".join(cells).rstrip())


def _tree_size(root: Path) -> int:
    """Bytes of every file, link and directory under root (what `du --apparent-size` counts)."""
    import os

    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _binary_size(size: float) -> str:
    """du-style sizes (KiB, MiB) for the rootfs tree."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _size(size: float) -> str:
    from teachdock.image.snapshots import human_size

    return human_size(size)


def _ago(created: str) -> str:
    """An image config's RFC 3339 time (Go writes up to nanoseconds) as 'N units ago'."""
    import datetime
    import re

    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", created or "")
    if not match:
        return "N/A"
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    return _ago_unix(int(datetime.datetime.fromisoformat(match.group(1) + zone).timestamp()))


def _ago_unix(seconds: int) -> str:
    """Docker's HumanDuration: '5 minutes ago', 'About an hour ago', '3 weeks ago'."""
    import time

    if not seconds:
        return "N/A"
    delta = max(0, time.time() - seconds)
    minutes, hours = delta / 60, delta / 3600
    if delta < 1:
        text = "Less than a second"
    elif delta < 60:
        text = f"{int(delta)} seconds"
    elif minutes < 2:
        text = "About a minute"
    elif minutes < 60:
        text = f"{int(minutes)} minutes"
    elif hours < 2:
        text = "About an hour"
    elif hours < 48:
        text = f"{int(hours)} hours"
    elif hours < 24 * 7 * 2:
        text = f"{int(hours / 24)} days"
    elif hours < 24 * 30 * 2:
        text = f"{int(hours / 24 / 7)} weeks"
    elif hours < 24 * 365 * 2:
        text = f"{int(hours / 24 / 30)} months"
    else:
        text = f"{int(hours / 24 / 365)} years"
    return f"{text} ago"


if __name__ == "__main__":
    sys.exit(main())
