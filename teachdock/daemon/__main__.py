"""``teachdockd`` / ``python -m teachdock.daemon``: start the daemon, with dockerd's flags.

    teachdockd -H unix:///run/teachdock/teachdock.sock --data-root /var/lib/teachdock \\
               --exec-root /run/teachdock --pidfile /run/teachdock/teachdockd.pid --cgroup-parent teachdock
    teachdockd -H unix:///run/teachdock/teachdock.sock -H tcp://0.0.0.0:2376 \\
               --tlsverify --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem
    teachdockd -H unix:///run/teachdock/teachdock.sock -H tcp://127.0.0.1:2375 --insecure-tcp   # the lab only
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

from teachdock import paths
from teachdock.daemon.server import HEADER_TIMEOUT
from teachdock.daemon.tls import DEFAULT_SOCKET_GROUP
from teachdock.paths import DEFAULT_EXEC_ROOT, DEFAULT_SOCKET
from teachdock.errors import TeachdockError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachdockd", description="teachdock's daemon: a Docker Engine API subset "
                                                                     "on a Unix socket (and a TLS port)")
    parser.add_argument("-H", "--host", action="append", default=None, metavar="HOST",
                        help=f"where to listen: unix://PATH (default unix://{DEFAULT_SOCKET}); tcp://ADDRESS:PORT "
                             "with --tlsverify (or plain on loopback with --insecure-tcp). Repeat -H for both")
    parser.add_argument("-G", "--group", default=None, metavar="GROUP",
                        help=f"the Unix socket's group, a name or a number (default {DEFAULT_SOCKET_GROUP!r} if that "
                             "group exists): its members can use the API, which makes them root here")
    parser.add_argument("--tlsverify", action="store_true",
                        help="TCP with TLS, and only clients whose certificate --tlscacert signed")
    parser.add_argument("--tls", action="store_true", help="(refused: TLS without --tlsverify lets anyone in)")
    parser.add_argument("--tlscacert", default=None, metavar="FILE",
                        help="the CA that signs the clients' certificates (default $DOCKER_CERT_PATH/ca.pem, "
                             "~/.docker/ca.pem)")
    parser.add_argument("--tlscert", default=None, metavar="FILE", help="the daemon's certificate (default cert.pem)")
    parser.add_argument("--tlskey", default=None, metavar="FILE", help="the daemon's private key (default key.pem)")
    parser.add_argument("--insecure-tcp", action="store_true",
                        help="allow -H tcp://127.0.0.1:PORT without TLS (loopback only): whoever reaches the port "
                             "is root here")
    parser.add_argument("--read-header-timeout", type=float, default=HEADER_TIMEOUT, metavar="SECONDS",
                        help=f"hang up on a client that takes longer to send a request's headers, or a MiB of its "
                             f"body (default {HEADER_TIMEOUT:g})")
    parser.add_argument("--data-root", default=str(paths.data_root()), help="images, container records and logs")
    parser.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="runtime state (a tmpfs such as /run)")
    parser.add_argument("--pidfile", default=None, help="write the daemon's pid here")
    parser.add_argument("--cgroup-parent", default="teachdock", help="cgroup under which containers are placed")
    parser.add_argument("--bridge", "-b", default=None, metavar="NAME",
                        help="the Linux bridge of the default network 'bridge' (default teachdock0, as dockerd's docker0)")
    parser.add_argument("--bip", default=None, metavar="CIDR",
                        help="the default bridge's gateway address and subnet (default 172.29.0.1/16)")
    parser.add_argument("--debug", "-D", action="store_true", help="log every request on stderr")
    return parser


class Refused(Exception):
    """A combination of flags the daemon will not start with (exit status 2)."""


def _tls_file(given: str | None, name: str) -> str:
    """dockerd's defaults: $DOCKER_CERT_PATH/NAME, else ~/.docker/NAME."""
    if given:
        return given
    return os.path.join(os.environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker"), name)


def _doors(args, hosts: list[str]):
    """(socket path, TCP address, TLS context or None) from -H and the TLS flags."""
    from teachdock.daemon.server import parse_tcp_host  # noqa: PLC0415
    from teachdock.daemon.tls import server_context  # noqa: PLC0415

    if args.tls and not args.tlsverify:
        raise Refused("--tls without --tlsverify would let in every client that reaches the port (TLS hides the "
                      "traffic; the client certificate is the login): add --tlsverify and --tlscacert")
    if args.tlsverify and args.insecure_tcp:
        raise Refused("--tlsverify and --insecure-tcp contradict each other: pick one")
    socket_path, tcp_address = None, None
    for host in hosts:
        if host.startswith("unix://") and socket_path is None:
            socket_path = host[len("unix://"):]
        elif host.startswith("tcp://") and tcp_address is None:
            if not (args.tlsverify or args.insecure_tcp):
                raise Refused(f"refusing {host}: a TCP port without TLS hands root on this machine to whoever "
                              "reaches it. Give --tlsverify --tlscacert --tlscert --tlskey (client certificates), "
                              "or --insecure-tcp for a loopback address in the lab")
            tcp_address = parse_tcp_host(host)
            if args.insecure_tcp and not _is_loopback(tcp_address[0]):
                raise Refused(f"refusing {host} with --insecure-tcp: without TLS only a loopback address "
                              "(tcp://127.0.0.1:PORT); use --tlsverify for another")
        else:
            raise Refused(f"cannot listen on {host!r}: give one unix://PATH and/or one tcp://ADDRESS:PORT")
    if (args.tlsverify or args.insecure_tcp) and tcp_address is None:
        raise Refused(f"{'--tlsverify' if args.tlsverify else '--insecure-tcp'} is for a TCP port: "
                      "add -H tcp://ADDRESS:PORT")
    tls = None
    if args.tlsverify:
        tls = server_context(_tls_file(args.tlscacert, "ca.pem"), _tls_file(args.tlscert, "cert.pem"),
                             _tls_file(args.tlskey, "key.pem"))
    elif args.tlscacert or args.tlscert or args.tlskey:
        raise Refused("--tlscacert/--tlscert/--tlskey are used only with --tlsverify: add it")
    return socket_path, tcp_address, tls


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(socket.getaddrinfo(address, None)[0][4][0]).is_loopback


def main(argv=None) -> int:
    from teachdock.daemon.daemon import Daemon  # noqa: PLC0415
    from teachdock.daemon.tls import socket_group_id  # noqa: PLC0415

    args = _parser().parse_args(argv)
    hosts = args.host or [f"unix://{DEFAULT_SOCKET}"]
    try:
        socket_path, tcp_address, tls = _doors(args, hosts)
        # An unprivileged (rootless) daemon's socket is its user's own: a group only when asked for.
        group = args.group if args.group is not None else DEFAULT_SOCKET_GROUP if os.geteuid() == 0 else ""
        gid, warning = socket_group_id(group, explicit=args.group is not None)
        if warning and socket_path:
            print(f"teachdockd: WARNING: {warning}", file=sys.stderr)
        if tcp_address and tls is None:
            print(f"teachdockd: WARNING: the API on tcp://{tcp_address[0]}:{tcp_address[1]} has no TLS and no login",
                  file=sys.stderr)
        daemon = Daemon(socket_path=socket_path, data_root=args.data_root, exec_root=args.exec_root,
                        cgroup_parent=args.cgroup_parent, pidfile=args.pidfile, verbose=args.debug,
                        tcp_address=tcp_address, tls=tls, socket_gid=gid, header_timeout=args.read_header_timeout,
                        **({"bridge": args.bridge} if args.bridge else {}), **({"bip": args.bip} if args.bip else {}))
    except Refused as refusal:
        print(f"teachdockd: {refusal}", file=sys.stderr)
        return 2
    except (TeachdockError, OSError) as error:
        print(f"teachdockd: {error}", file=sys.stderr)
        return 1
    print(f"teachdockd: listening on {' and '.join(hosts)}{' (TLS, client certificates)' if tls else ''}",
          file=sys.stderr, flush=True)
    daemon.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
