"""Helpers the tests of several folders share: a private teachdockd (daemons), a private dockerd
(dockerd), throw-away registries and small images (registry), and what the host sees of a
container (host). Import them as ``from tests.support.daemons import running_daemon``; fixtures
live in each folder's conftest.py."""
