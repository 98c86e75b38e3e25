"""The daemon's doors for real: the socket's group and mode, the TLS port with client
certificates (the docker CLI's --tlsverify flags, teachdock's own, the Python Client; a
client without a certificate or with one from another CA is refused)."""

from __future__ import annotations

import grp
import os
import socket
import ssl
import subprocess
import sys

import pytest

from teachdock.client import Client, DaemonUnavailable, TLSConfig
from tests.support.certs import Certificates
from tests.support.daemons import DOCKER, DaemonProcess

pytestmark = [pytest.mark.root]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_daemon(certs):
    daemon = DaemonProcess()
    daemon.bootstrap_busybox()
    daemon.port = free_port()
    daemon.extra_args = ["-H", f"tcp://127.0.0.1:{daemon.port}", *certs.daemon_flags(), "--group", "docker",
                         "--read-header-timeout", "5"]
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.remove_all()
        assert daemon.close() == []


def test_the_socket_is_0660_and_belongs_to_the_group(tls_daemon):
    status = os.stat(tls_daemon.socket_path)
    assert oct(status.st_mode & 0o777) == "0o660"
    assert status.st_gid == grp.getgrnam("docker").gr_gid


def test_a_missing_named_group_stops_the_daemon(tmp_path):
    result = subprocess.run([sys.executable, "-m", "teachdock.daemon", "-H", f"unix://{tmp_path}/d.sock",
                             "--group", "no-such-group-td", "--data-root", str(tmp_path / "data"),
                             "--exec-root", str(tmp_path / "exec")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "group 'no-such-group-td' not found" in result.stderr
    assert not (tmp_path / "d.sock").exists()


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")
def test_the_docker_cli_with_its_tls_flags(tls_daemon, certs, tmp_path):
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path), "DOCKER_CLI_HINTS": "false"}
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        env.pop(name, None)
    host = ["-H", f"tcp://127.0.0.1:{tls_daemon.port}"]
    flags = ["--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.client_cert),
             "--tlskey", str(certs.client_key)]
    done = subprocess.run([DOCKER, *host, *flags, "run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo ran"],
                          env=env, input="piped\n", capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "piped\nran\n"), done.stderr
    by_env = {**env, "DOCKER_HOST": f"tcp://127.0.0.1:{tls_daemon.port}", "DOCKER_TLS_VERIFY": "1",
              "DOCKER_CERT_PATH": str(certs.client_dir)}
    done = subprocess.run([DOCKER, "version", "--format", "{{.Server.APIVersion}}"], env=by_env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1.45"), done.stderr
    stranger = [*host, "--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.stranger_cert),
                "--tlskey", str(certs.stranger_key), "version"]
    done = subprocess.run([DOCKER, *stranger], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "error during connect" in done.stderr  # (a TLS alert or a broken pipe)
    assert "CERTIFICATE_VERIFY_FAILED" in tls_daemon.log()
    plain = subprocess.run([DOCKER, *host, "version"], env=env, capture_output=True, text=True, timeout=60)
    assert plain.returncode != 0 and "Client sent an HTTP request to an HTTPS server" in plain.stderr


def test_teachdock_cli_with_flags_and_with_the_environment(tls_daemon, certs):
    host = f"tcp://127.0.0.1:{tls_daemon.port}"
    env = {**os.environ, "TEACHDOCK_AUTOSTART": "0"}
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "TEACHDOCK_HOST"):
        env.pop(name, None)
    td = [sys.executable, "-m", "teachdock.cli", "-H", host]
    done = subprocess.run([*td, "--tlsverify", "--tlscacert", str(certs.ca), "--tlscert", str(certs.client_cert),
                           "--tlskey", str(certs.client_key), "run", "--rm", "busybox", "echo", "over tls"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "over tls\n"), done.stderr
    done = subprocess.run([*td, "run", "--rm", "-i", "busybox", "cat"], input="stdin over tls\n",
                          env={**env, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs.client_dir)},
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "stdin over tls\n"), done.stderr
    done = subprocess.run([*td, "--tlsverify", "--tlscacert", str(certs.ca), "ps"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "refuses this client's certificate, or none was sent" in done.stderr


def test_the_python_client_and_the_refusals(tls_daemon, certs):
    host = f"tcp://127.0.0.1:{tls_daemon.port}"
    good = TLSConfig(ca=str(certs.ca), cert=str(certs.client_cert), key=str(certs.client_key))
    with Client(host, tls=good) as client:
        assert client.run("busybox", ["echo", "hi"], remove=True).stdout == "hi\n"
    impostor = TLSConfig(ca=str(certs.other_ca), cert=str(certs.client_cert), key=str(certs.client_key))
    with pytest.raises(DaemonUnavailable, match="certificate verify failed"):  # the daemon is not who we trust
        Client(host, tls=impostor).version()
    for cert, key in ((None, None), (certs.stranger_cert, certs.stranger_key)):
        context = ssl.create_default_context(cafile=str(certs.ca))
        if cert:
            context.load_cert_chain(str(cert), str(key))
        with socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLError):
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as wrapped:
                    wrapped.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                    wrapped.recv(100)  # TLS 1.3: the refusal arrives as an alert on the first read
    log = tls_daemon.log()
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in log and "CERTIFICATE_VERIFY_FAILED" in log
    assert tls_daemon.request("GET", "/_ping")[0] == 200  # and the socket keeps answering


def test_a_client_that_never_starts_the_handshake_is_hung_up_and_holds_up_nobody(tls_daemon, certs):
    good = TLSConfig(ca=str(certs.ca), cert=str(certs.client_cert), key=str(certs.client_key))
    silent = [socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=30) for _ in range(10)]
    try:
        with Client(f"tcp://127.0.0.1:{tls_daemon.port}", tls=good) as client:
            assert client.version()["ApiVersion"] == "1.45"  # while ten connections sit silent
        for sock in silent:
            assert sock.recv(1) == b""  # the daemon hung up (after --read-header-timeout 5)
    finally:
        for sock in silent:
            sock.close()
