"""`teachdock store ...`: the image store on this machine, without a daemon, with docker's verbs.

Like containerd's ``ctr images`` / ``ctr content``, these commands read and write the
store under the data root directly; ``teachdock images`` and ``teachdock image ...`` ask
the daemon instead (teachdock.client.commands_images).

    teachdock store ls [-q] [--no-trunc] [--digests]
    teachdock store inspect IMAGE...
    teachdock store rm [-f] IMAGE...
    teachdock store tag SOURCE TARGET
    teachdock store history [--no-trunc] [-q] IMAGE
    teachdock store build -t NAME [-f Dockerfile] [--build-arg K=V] [--no-cache] [-q] CONTEXT
    teachdock store pull [--platform OS/ARCH] [-q] NAME
    teachdock store push [-q] NAME
    teachdock store save [-o FILE] IMAGE...          (to stdout when it is not a terminal)
    teachdock store load [-i FILE] [-q]              (from stdin without -i)
    teachdock store bootstrap busybox [--force] [--busybox PATH]
    teachdock store prune [--build-cache]
    teachdock store df

Every command takes ``--data-root DIR`` (default: $TEACHDOCK_DATA_ROOT or /var/lib/teachdock)
and ``--storage-driver overlay|copy|auto``, before or after the command name.

Progress: on a terminal, pull, push, load and save show one rich progress bar per layer
(keyed by the layer's short digest, as docker shows it) and build shows a bar of its
steps; otherwise pull and push print one line per change of a layer's status, and load
and save print no progress at all, as docker does. Errors are one line on stderr and exit
status 1. Heavy imports (rich, the store, the runtime) stay inside the functions so that
`--help` answers at once.
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

    parser = argparse.ArgumentParser(
        prog="teachdock store", parents=[common],
        description="The image store on this machine, read and written directly, without a daemon (like "
        "containerd's `ctr images`); `teachdock images` and `teachdock image ...` ask the daemon instead.")
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

    pull = command("pull", "download an image from a registry")
    pull.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                      help="which platform's image to take from a multi-platform index (default: this host's)")
    pull.add_argument("-q", "--quiet", action="store_true", help="print only the image's name")
    pull.add_argument("name", metavar="NAME[:TAG|@DIGEST]")

    push = command("push", "upload an image to a registry (tag it with the registry's host first)")
    push.add_argument("-q", "--quiet", action="store_true", help="print only the manifest digest")
    push.add_argument("name", metavar="NAME[:TAG]")

    save = command("save", "write images to a tar archive (docker-archive and OCI layout in one)")
    save.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    save.add_argument("images", nargs="+", metavar="IMAGE")

    load = command("load", "read images from a tar archive (docker save, podman, skopeo, OCI layout)")
    load.add_argument("-i", "--input", metavar="FILE",
                      help="read from FILE (a tar, a gzipped tar or a directory) instead of stdin")
    load.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

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
    """Run one `teachdock store` command; returns the process exit status."""
    args = build_parser().parse_args(argv)
    from teachdock.errors import TeachdockError  # lazy: keeps --help fast

    try:
        handler = {"ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm, "rmi": _rm, "tag": _tag,
                   "history": _history, "build": _build, "pull": _pull, "push": _push, "save": _save,
                   "load": _load, "bootstrap": _bootstrap, "prune": _prune, "df": _df}[args.command]
        return handler(args)
    except TeachdockError as error:
        print(f"teachdock: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"teachdock: error: {error} (run as root, or choose --data-root)", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`teachdock store save x | head`): say so once, quietly exit.
        _silence_stdout()
        print("teachdock: error: the output pipe was closed before everything was written", file=sys.stderr)
        return 1
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"teachdock: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("teachdock: interrupted", file=sys.stderr)
        return 130


def _one_line(error: Exception) -> str:
    """The error as one line. A failed RUN's output was shown already (or, with -q, just
    before), so only its first line, the reason, is repeated."""
    from teachdock.image.build import BuildStepFailed

    lines = str(error).splitlines() or [type(error).__name__]
    if isinstance(error, BuildStepFailed):
        return lines[0]
    return "; ".join(line.strip() for line in lines if line.strip())


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush does not fail a second time."""
    import os

    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())


def _images(args):
    from teachdock.image.images import Images

    return Images(getattr(args, "data_root", None), driver=getattr(args, "storage_driver", "auto"))


def _store(args):
    """Just the content store (pull, push, save, load need no snapshots or builder)."""
    from teachdock import paths
    from teachdock.image.store import ImageStore

    data_root = getattr(args, "data_root", None) or paths.data_root()
    return ImageStore(Path(data_root).absolute() / "images")


# ---------------------------------------------------------------------------- commands

def _ls(args) -> int:
    engine = _images(args)
    images = engine.list()
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
            rows.append(row + [image_id, _ago(image.created), _size(engine.store.unpacked_size(image))])
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
    images = _images(args)
    try:
        with _BuildLog(quiet=args.quiet) as progress:
            result = images.build(args.context, tags=args.tag, dockerfile=args.file, build_args=build_args,
                                  no_cache=args.no_cache, progress=progress)
    except BuildStepFailed as error:
        if args.quiet and error.output:
            print(error.output, file=sys.stderr)
        raise
    if args.quiet:
        print(result.id)
    return 0


def _pull(args) -> int:
    from teachdock.image.reference import parse_reference
    from teachdock.image.registry import pull
    from teachdock.image.store import ImageNotFound

    typed = parse_reference(args.name, default_tag=None)     # an invalid name fails here, before any work
    ref = parse_reference(args.name)
    store = _store(args)
    try:
        before = store.resolve(str(ref)).manifest_digest
    except ImageNotFound:
        before = None
    if not args.quiet:
        if typed.tag is None and typed.digest is None:
            print("Using default tag: latest", flush=True)
        print(f"{ref.tag or ref.digest}: Pulling from {ref.path}", flush=True)
    with _Transfer(sys.stdout, quiet=args.quiet, lines=True) as progress:
        image = pull(store, args.name, platform=args.platform, progress=progress)
    if not args.quiet:
        fresh = image.manifest_digest != before
        print(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {ref.familiar}")
    print(str(ref))
    return 0


def _push(args) -> int:
    from teachdock.image.reference import parse_reference
    from teachdock.image.registry import push

    typed = parse_reference(args.name, default_tag=None)
    ref = parse_reference(args.name)
    store = _store(args)
    store.resolve(args.name)                 # "No such image" before saying anything about a push
    if not args.quiet:
        if typed.tag is None and typed.digest is None:
            print("Using default tag: latest", flush=True)
        print(f"The push refers to repository [{ref.name}]", flush=True)
    with _Transfer(sys.stdout, quiet=args.quiet, lines=True) as progress:
        digest = push(store, args.name, progress=progress)
    if args.quiet:
        print(digest)
    return 0


def _save(args) -> int:
    from teachdock.errors import InvalidConfig
    from teachdock.image.archive import save

    if args.output is None and sys.stdout.isatty():
        raise InvalidConfig("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    store = _store(args)
    # docker save prints nothing but the archive: bars go to stderr, and only on a terminal.
    with _Transfer(sys.stderr, lines=False) as progress:
        if args.output is not None:
            save(store, args.images, args.output, progress=progress)
        else:
            sys.stdout.flush()
            save(store, args.images, sys.stdout.buffer, progress=progress)
            sys.stdout.buffer.flush()
    return 0


def _load(args) -> int:
    from teachdock.errors import InvalidConfig
    from teachdock.image.archive_load import load

    if args.input is None and sys.stdin.isatty():
        raise InvalidConfig("requested load from stdin, but stdin is a terminal: use -i FILE or redirect")
    source = args.input if args.input is not None else sys.stdin.buffer
    with _Transfer(sys.stdout, quiet=args.quiet, lines=False) as progress:
        loaded = load(_store(args), source, progress=progress)
    for name in loaded:
        print(f"Loaded image ID: {name}" if name.startswith("sha256:") else f"Loaded image: {name}")
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


# ---------------------------------------------------------------------------- progress

class _Transfer:
    """Shows ``ProgressEvent``s (pull, push, load, save) like docker does.

    On a terminal: one rich progress bar per blob, keyed by ``event.id`` (the blob's short
    digest), its description the blob's status ("Downloading", "Pull complete", ...).
    Otherwise, with ``lines``, one line each time a blob's status changes (docker's output
    when piped); without, nothing. Final messages ("Digest: ...") are printed unless quiet.
    rich is imported only when there is a terminal to draw on.
    """

    def __init__(self, stream, *, quiet: bool = False, lines: bool = True):
        self.stream, self.quiet, self.lines = stream, quiet, lines
        self.bars = None
        self.tasks: dict[str, int] = {}
        self.shown: dict[str, str] = {}

    def __enter__(self):
        if not self.quiet and _is_terminal(self.stream):
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self.bars = Progress(TextColumn("{task.fields[blob]}: {task.fields[status]:<20}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(),
                                 console=Console(file=self.stream, highlight=False))
            self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if "digest:" in event.status.lower():             # "Digest: sha256:..", "1: digest: sha256:.. size: N"
            self._message(event.status)
            return
        if self.bars is None:
            if self.lines and self.shown.get(event.id) != event.status:
                self.shown[event.id] = event.status
                print(f"{event.id}: {event.status}", file=self.stream, flush=True)
            return
        total = event.total if event.total is not None else (event.current or None)
        task = self.tasks.get(event.id)
        if task is None:
            task = self.tasks[event.id] = self.bars.add_task("", total=total, blob=event.id, status=event.status)
        self.bars.update(task, total=total, completed=event.current, status=event.status)

    def _message(self, text: str) -> None:
        if self.bars is not None:
            self.bars.console.print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)


class _BuildLog:
    """The builder's lines, printed as they come; on a terminal, with a bar of the steps
    below them ("Step 3/6"), which disappears when the build ends."""

    def __init__(self, *, quiet: bool):
        self.quiet = quiet
        self.bars = None
        self.task = None

    def __enter__(self):
        if self.quiet:
            return None
        if _is_terminal(sys.stdout):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(TextColumn("building"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                                 TimeElapsedColumn(), console=Console(highlight=False), transient=True)
            self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, line: str) -> None:
        if self.bars is None:
            print(line, flush=True)
            return
        self.bars.console.out(line, highlight=False)
        if line.startswith("Step ") and " : " in line:
            number, _, total = line[5:line.index(" : ")].partition("/")
            if number.isdigit() and total.isdigit():
                if self.task is None:
                    self.task = self.bars.add_task("", total=int(total))
                self.bars.update(self.task, completed=int(number) - 1)
        elif line.startswith("Successfully built") and self.task is not None:
            self.bars.update(self.task, completed=self.bars.tasks[0].total)


def _is_terminal(stream) -> bool:
    import os

    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


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
    from teachdock.units import human_size

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

    from teachdock.units import human_duration

    if not seconds:
        return "N/A"
    return f"{human_duration(max(0, time.time() - seconds))} ago"
