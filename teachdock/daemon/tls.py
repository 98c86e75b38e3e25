"""The daemon's two doors and who may pass: the Unix socket's group, TLS with client certificates.

Whoever can talk to the API is root on this machine: ``docker run --privileged -v /:/host``
needs nothing more. So, as dockerd does,

- the Unix socket is ``0660`` and belongs to a group (``teachdock`` by default, dockerd's
  ``docker``; ``--group``/``-G`` picks another) — membership of that group *is* root;
- a TCP port speaks TLS and lets in only clients whose certificate the daemon's CA signed
  (``--tlsverify --tlscacert --tlscert --tlskey``, dockerd's flags). TLS alone would hide
  the traffic but let anyone in; the client certificate is the login.
"""

from __future__ import annotations

import grp
import os
import ssl

from teachdock.errors import InvalidConfig, NotFound

DEFAULT_SOCKET_GROUP = "teachdock"  # dockerd's is "docker"


def socket_group_id(group: str, *, explicit: bool) -> tuple[int | None, str | None]:
    """(gid, warning) for ``--group``: a name or a number, as dockerd's ``-G``.

    The default group may be missing (the socket then stays root's, with a warning, as
    dockerd does without a ``docker`` group); a group asked for by name must exist.
    An empty ``--group ""`` means: no group, root's only.
    """
    if group == "":
        return None, None
    try:
        return grp.getgrnam(group).gr_gid, None
    except KeyError:
        pass
    if group.isdigit():
        return int(group), None
    if explicit:
        raise NotFound(f"group {group!r} not found (--group): create it (groupadd {group}) or give another")
    return None, (f"no group {group!r} on this machine: the socket stays root's only (0660 root:root). "
                  f"`groupadd {group}` and restart to give its members access (which is root access)")


def give_socket_to_group(socket_path: str, gid: int | None) -> None:
    """chown root:GROUP, mode 0660 (the socket is born 0660: see server.UnixHTTPServer)."""
    if gid is not None:
        os.chown(socket_path, -1, gid)
    os.chmod(socket_path, 0o660)


def server_context(cacert: str, cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2+ that *requires* a client certificate signed by ``cacert`` (dockerd's --tlsverify)."""
    for flag, path in (("--tlscacert", cacert), ("--tlscert", cert), ("--tlskey", key)):
        if not os.path.isfile(path):
            raise NotFound(f"{flag} {path}: no such file (a PEM file: see `openssl req`, or Docker's "
                           "'Protect the Docker daemon socket' guide)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # dockerd's minimum too
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cafile=cacert)
    except (ssl.SSLError, ValueError) as error:
        raise InvalidConfig(f"cannot use the TLS files (--tlscert {cert}, --tlskey {key}, --tlscacert {cacert}): "
                            f"{error}") from None
    return context
