"""teachdockd: the daemon — Docker's Engine API (a subset) on a Unix socket.

One module per concern, in the order a request meets them:

- ``server.py``          HTTP/1.1 on a Unix socket: keep-alive, chunked bodies, streams, the 101 hijack
- ``routes.py``          the route table and the ``/v1.NN`` version prefix
- ``api_system.py``      ``/_ping``, ``/version``, ``/info``
- ``api_containers.py``  create, start, attach (stdin too), wait, logs, stop, kill, rm, inspect, ps
- ``api_images.py``      images, pull, image inspect, tag, rmi
- ``api_events.py``      the ``docker events`` stream (``events.py`` keeps the events)
- ``container_config.py`` the create body checked and completed from the image
- ``containers.py``      container records on disk, supervision, recovery after a restart
- ``oci.py``             a container record -> the OCI spec the runtime runs (pure; dockerd's oci_linux.go)
- ``execs.py``           ``docker exec`` instances
- ``volumes.py``, ``networks.py``  named volumes and -v/--mount; none, host and user bridges
- ``logs.py``            the json-file log: a writer process per container, readers
- ``daemon.py``          makes each manager once and hands them in; ``__main__.py`` is the ``teachdockd`` command

This package is imported by the tiny log-writer process too, so it imports nothing here.
"""
