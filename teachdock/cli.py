"""``teachdock``: one command, docker-like verbs grouped by the layer that does the work.

    teachdock runtime ...   the OCI runtime (runc's verbs): run a bundle
    teachdock image ...     images: build, pull, push, save, load, ls, rm, bootstrap busybox
    teachdock daemon ...    run teachdockd in the foreground (same flags as dockerd)
    teachdock doctor        what this machine offers for the course

Each group lives in its own module and is imported only when used, so that starting a
container from the shell does not pay for the rest.
"""

from __future__ import annotations

import sys

USAGE = """\
usage: teachdock COMMAND [ARGS...]

A small, real container engine for learning how Docker works.

commands:
  runtime   run OCI bundles with runc's verbs (run, create, start, state, kill, delete, list)
  image     images: build, pull, push, save, load, ls, inspect, history, tag, rm,
            bootstrap busybox
  daemon    run the daemon, teachdockd (-H unix://PATH --data-root DIR ...), in the foreground
  doctor    check what this machine offers: namespaces, cgroups, overlayfs, busybox

Run `teachdock COMMAND --help` for the details of one command.
"""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "runtime":
        from teachdock.runtime.cli import main as runtime_main  # noqa: PLC0415

        return runtime_main(rest)
    if command == "image":
        from teachdock.image.cli import main as image_main  # noqa: PLC0415

        return image_main(rest)
    if command == "daemon":
        from teachdock.daemon.__main__ import main as daemon_main  # noqa: PLC0415

        return daemon_main(rest)
    if command == "doctor":
        from teachdock.runtime.host import probe  # noqa: PLC0415

        print(probe().format())
        return 0
    if command in ("--version", "version"):
        from teachdock import __version__  # noqa: PLC0415

        print(f"teachdock {__version__}")
        return 0
    print(f"teachdock: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
