"""teachdock.client: talk to teachdockd (the Engine API) from Python and from the ``teachdock`` CLI.

    from teachdock.client import Client
    client = Client()                       # -H / $TEACHDOCK_HOST / current context / default socket
    client.run("busybox", ["echo", "hi"], remove=True).stdout   # 'hi\\n'
    client.trace                            # the HTTP requests that took
    Client("tcp://127.0.0.1:2376", tls=TLSConfig(ca="ca.pem", cert="cert.pem", key="key.pem"))

Modules: transport (HTTP/1.1 by hand on a socket, the hijack, the multiplexed stream),
hosts (which daemon; named contexts), autostart (start a daemon when none answers),
api (the Client), flags + commands* (the CLI verbs).
"""

from teachdock.client.api import Client, RunOutput
from teachdock.client.transport import (APIError, BadRequestError, ConflictError, DaemonUnavailable,
                                        ImageNotFoundError, NotFoundError, Response, TLSConfig, TraceEntry)

__all__ = ["APIError", "BadRequestError", "Client", "ConflictError", "DaemonUnavailable", "EmbeddedDaemon",
           "ImageNotFoundError", "NotFoundError", "Response", "RunOutput", "TLSConfig", "TraceEntry", "start_daemon"]


def __getattr__(name):
    """start_daemon and EmbeddedDaemon are loaded on first use: they need subprocess, and
    ``teachdock run`` (which imports this package) should not pay for it."""
    if name in ("start_daemon", "EmbeddedDaemon"):
        from teachdock.client import autostart  # noqa: PLC0415

        return getattr(autostart, name)
    raise AttributeError(f"module 'teachdock.client' has no attribute {name!r}")
