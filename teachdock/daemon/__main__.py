"""``teachdockd`` / ``python -m teachdock.daemon``: start the daemon, with dockerd's flags.

    teachdockd -H unix:///run/teachdock/teachdock.sock --data-root /var/lib/teachdock \\
               --exec-root /run/teachdock --pidfile /run/teachdock/teachdockd.pid --cgroup-parent teachdock
"""

from __future__ import annotations

import argparse
import sys

from teachdock import paths
from teachdock.errors import TeachdockError


def main(argv=None) -> int:
    from teachdock.daemon.daemon import DEFAULT_EXEC_ROOT, DEFAULT_SOCKET, Daemon  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="teachdockd", description="teachdock's daemon: a Docker Engine API subset "
                                                                     "on a Unix socket")
    parser.add_argument("-H", "--host", default=f"unix://{DEFAULT_SOCKET}", help="unix://PATH to listen on")
    parser.add_argument("--data-root", default=str(paths.data_root()), help="images, container records and logs")
    parser.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state (a tmpfs such as /run)")
    parser.add_argument("--pidfile", default=None, help="write the daemon's pid here")
    parser.add_argument("--cgroup-parent", default="teachdock", help="cgroup under which containers are placed")
    parser.add_argument("--debug", "-D", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    if not args.host.startswith("unix://"):
        print("teachdockd: only unix://PATH is supported for -H (TCP would expose root to the network)", file=sys.stderr)
        return 2
    try:
        daemon = Daemon(socket_path=args.host[len("unix://"):], data_root=args.data_root, exec_root=args.exec_root,
                        cgroup_parent=args.cgroup_parent, pidfile=args.pidfile, verbose=args.debug)
    except TeachdockError as error:
        print(f"teachdockd: {error}", file=sys.stderr)
        return 1
    print(f"teachdockd: listening on {args.host}", file=sys.stderr, flush=True)
    daemon.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
