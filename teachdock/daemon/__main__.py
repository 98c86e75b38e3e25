"""``teachdockd`` / ``python -m teachdock.daemon``: start the daemon, with dockerd's flags.

    teachdockd -H unix:///run/teachdock/teachdock.sock --data-root /var/lib/teachdock \\
               --exec-root /run/teachdock --pidfile /run/teachdock/teachdockd.pid --cgroup-parent teachdock
    teachdockd -H unix:///run/teachdock/teachdock.sock -H tcp://127.0.0.1:2375 --insecure-tcp
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from teachdock import paths
from teachdock.paths import DEFAULT_EXEC_ROOT, DEFAULT_SOCKET
from teachdock.errors import TeachdockError


def main(argv=None) -> int:
    from teachdock.daemon.daemon import Daemon  # noqa: PLC0415
    from teachdock.daemon.server import parse_tcp_host  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="teachdockd", description="teachdock's daemon: a Docker Engine API subset "
                                                                     "on a Unix socket")
    parser.add_argument("-H", "--host", action="append", default=None, metavar="HOST",
                        help=f"where to listen: unix://PATH (default unix://{DEFAULT_SOCKET}); tcp://127.0.0.1:PORT "
                             "only with --insecure-tcp. Repeat -H to listen on both")
    parser.add_argument("--insecure-tcp", action="store_true",
                        help="allow -H tcp://...: no TLS, no login — whoever reaches the port is root here")
    parser.add_argument("--data-root", default=str(paths.data_root()), help="images, container records and logs")
    parser.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state (a tmpfs such as /run)")
    parser.add_argument("--pidfile", default=None, help="write the daemon's pid here")
    parser.add_argument("--cgroup-parent", default="teachdock", help="cgroup under which containers are placed")
    parser.add_argument("--bridge", "-b", default=None, metavar="NAME",
                        help="the Linux bridge of the default network 'bridge' (default teachdock0, as dockerd's docker0)")
    parser.add_argument("--bip", default=None, metavar="CIDR",
                        help="the default bridge's gateway address and subnet (default 172.29.0.1/16)")
    parser.add_argument("--debug", "-D", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    hosts = args.host or [f"unix://{DEFAULT_SOCKET}"]
    socket_path, tcp_address = None, None
    try:
        for host in hosts:
            if host.startswith("unix://") and socket_path is None:
                socket_path = host[len("unix://"):]
            elif host.startswith("tcp://") and tcp_address is None:
                if not args.insecure_tcp:
                    print(f"teachdockd: refusing {host}: a TCP port without TLS hands root on this machine to "
                          "whoever reaches it. Add --insecure-tcp if you mean it (loopback only is wise)",
                          file=sys.stderr)
                    return 2
                tcp_address = parse_tcp_host(host)
                if not ipaddress.ip_address(socket.gethostbyname(tcp_address[0])).is_loopback:
                    print(f"teachdockd: WARNING: listening on {host}, which is not loopback: anyone on that network "
                          "can run containers as root here", file=sys.stderr)
            else:
                print(f"teachdockd: cannot listen on {host!r}: give one unix://PATH and/or one tcp://ADDRESS:PORT",
                      file=sys.stderr)
                return 2
        if tcp_address:
            print(f"teachdockd: WARNING: the API on tcp://{tcp_address[0]}:{tcp_address[1]} has no TLS and no login",
                  file=sys.stderr)
        daemon = Daemon(socket_path=socket_path, data_root=args.data_root, exec_root=args.exec_root,
                        cgroup_parent=args.cgroup_parent, pidfile=args.pidfile, verbose=args.debug,
                        tcp_address=tcp_address,
                        **({"bridge": args.bridge} if args.bridge else {}), **({"bip": args.bip} if args.bip else {}))
    except (TeachdockError, OSError) as error:
        print(f"teachdockd: {error}", file=sys.stderr)
        return 1
    print(f"teachdockd: listening on {' and '.join(hosts)}", file=sys.stderr, flush=True)
    daemon.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
