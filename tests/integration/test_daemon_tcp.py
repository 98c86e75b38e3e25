"""teachdockd on TCP: refused without --insecure-tcp, loopback by default, with a warning."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.support.daemons import DOCKER, DaemonProcess

pytestmark = [pytest.mark.root]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tcp_without_the_explicit_flag_is_refused(tmp_path):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "teachdock.daemon", "-H", f"tcp://127.0.0.1:{port}",
                             "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing tcp://127.0.0.1" in result.stderr and "--insecure-tcp" in result.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_an_unknown_scheme_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "teachdock.daemon", "-H", "fd://", "--data-root",
                             str(tmp_path / "data"), "--exec-root", str(tmp_path / "exec")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "cannot listen on 'fd://'" in result.stderr


def test_with_the_flag_it_serves_both_the_socket_and_a_loopback_port():
    port = free_port()
    daemon = DaemonProcess()
    daemon.extra_args = ["-H", f"tcp://:{port}", "--insecure-tcp"]  # besides the Unix socket DaemonProcess gives
    try:
        daemon.start()
        assert "has no TLS and no login" in daemon.log()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/v1.45/version")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["ApiVersion"] == "1.45"
        connection.close()
        assert daemon.request("GET", "/_ping")[0] == 200  # the Unix socket still answers
        address = _a_non_loopback_address()
        if address is not None:  # `tcp://:PORT` means loopback, not every interface
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()
        if DOCKER:
            env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_CONFIG": "/nonexistent"}
            result = subprocess.run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=env,
                                    capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
    finally:
        assert daemon.close() == []


def _a_non_loopback_address() -> str | None:
    for name in os.listdir("/sys/class/net"):
        if name == "lo":
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                import fcntl  # noqa: PLC0415
                import struct  # noqa: PLC0415

                packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
                return socket.inet_ntoa(packed[20:24])
        except OSError:
            continue
    return None
