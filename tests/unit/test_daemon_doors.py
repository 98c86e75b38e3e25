"""The daemon's doors without a daemon: the socket's group, which -H/TLS flag combinations
teachdockd refuses, the client's choice of TLS (flags, $DOCKER_TLS_VERIFY, $DOCKER_CERT_PATH),
and the watchdog that hangs up on slow clients."""

import socket
import time

import pytest

from teachdock.client.hosts import TLSFlags, resolve_tls
from teachdock.client.transport import TLSConfig
from teachdock.daemon.__main__ import Refused, _doors, _parser
from teachdock.daemon.deadlines import Watchdog
from teachdock.daemon.tls import server_context, socket_group_id
from teachdock.errors import InvalidConfig, NotFound


def test_socket_group_by_name_number_or_none():
    assert socket_group_id("root", explicit=True) == (0, None)
    assert socket_group_id("4321", explicit=True) == (4321, None)
    assert socket_group_id("", explicit=True) == (None, None)


def test_a_missing_default_group_warns_and_a_missing_named_group_is_refused():
    gid, warning = socket_group_id("no-such-group-td", explicit=False)
    assert gid is None and "stays root's only" in warning and "groupadd no-such-group-td" in warning
    with pytest.raises(NotFound, match="group 'no-such-group-td' not found"):
        socket_group_id("no-such-group-td", explicit=True)


def doors(*argv):
    args = _parser().parse_args(list(argv))
    return _doors(args, args.host or ["unix:///tmp/x.sock"])


@pytest.mark.parametrize("argv, message", [
    (["-H", "tcp://127.0.0.1:2375"], "a TCP port without TLS hands root"),
    (["-H", "tcp://0.0.0.0:2375", "--insecure-tcp"], "without TLS only a loopback address"),
    (["-H", "tcp://127.0.0.1:2376", "--tls"], "--tls without --tlsverify would let in every client"),
    (["-H", "tcp://127.0.0.1:2376", "--tlsverify", "--insecure-tcp"], "contradict"),
    (["--tlsverify"], "--tlsverify is for a TCP port"),
    (["-H", "unix:///tmp/a.sock", "--tlscacert", "ca.pem"], "used only with --tlsverify"),
    (["-H", "fd://"], "cannot listen on 'fd://'"),
], ids=["plain-tcp", "insecure-not-loopback", "tls-without-verify", "both", "verify-without-tcp", "files-alone",
        "scheme"])
def test_refused_combinations(argv, message):
    with pytest.raises(Refused, match=message):
        doors(*argv)


def test_insecure_tcp_on_loopback_is_allowed():
    assert doors("-H", "tcp://127.0.0.1:2375", "--insecure-tcp") == (None, ("127.0.0.1", 2375), None)


def test_missing_tls_files_are_named(tmp_path):
    with pytest.raises(NotFound, match=r"--tlscacert .*/ca.pem: no such file"):
        server_context(str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("not a certificate\n")
    with pytest.raises(InvalidConfig, match="cannot use the TLS files"):
        server_context(str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))


@pytest.fixture
def cert_path(tmp_path, monkeypatch):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-\n")
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_client_tls_from_the_environment_as_the_docker_cli(cert_path, monkeypatch):
    assert resolve_tls("tcp://127.0.0.1:2376") is None
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(cert_path))
    tls = resolve_tls("tcp://127.0.0.1:2376")
    assert (tls.verify, tls.ca, tls.cert, tls.key) == (True, str(cert_path / "ca.pem"), str(cert_path / "cert.pem"),
                                                        str(cert_path / "key.pem"))
    assert resolve_tls("unix:///run/teachdock/teachdock.sock") is None  # ignored there, as by the docker CLI


def test_client_tls_flags(cert_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CERT_PATH", str(cert_path / "empty"))
    tls = resolve_tls("tcp://127.0.0.1:2376", TLSFlags(verify=True, ca=str(cert_path / "ca.pem")))
    assert tls.verify and tls.cert is None  # no default cert.pem there: none is sent
    unverified = resolve_tls("tcp://127.0.0.1:2376", TLSFlags(tls=True))
    assert not unverified.verify and unverified.ca is None
    with pytest.raises(InvalidConfig, match="are for tcp:// hosts"):
        resolve_tls("unix:///tmp/x.sock", TLSFlags(verify=True))
    with pytest.raises(NotFound, match="--tlsverify needs the CA"):
        resolve_tls("tcp://127.0.0.1:2376", TLSFlags(verify=True))
    with pytest.raises(NotFound, match="nope.pem: no such file"):
        resolve_tls("tcp://127.0.0.1:2376", TLSFlags(verify=True, ca=str(cert_path / "nope.pem")))
    with pytest.raises(InvalidConfig, match="need --tlsverify"):
        resolve_tls("tcp://127.0.0.1:2376", TLSFlags(cert=str(cert_path / "cert.pem")))
    with pytest.raises(InvalidConfig, match="together"):
        TLSConfig(verify=False, cert="cert.pem")


def test_the_cli_takes_the_global_tls_flags_only_for_client_verbs(capsys):
    from teachdock.cli import main

    assert main(["--tlsverify", "doctor"]) == 125
    assert "the TLS flags are for the client verbs" in capsys.readouterr().err
    assert main(["--tlscacert"]) == 125
    assert "--tlscacert needs a value" in capsys.readouterr().err


def test_the_watchdog_hangs_up_on_a_slow_reader_and_spares_a_disarmed_one():
    slow, slow_peer = socket.socketpair()
    fine, fine_peer = socket.socketpair()
    watchdog = Watchdog()
    try:
        watchdog.arm(slow, 0.2)
        watchdog.arm(fine, 0.2)
        watchdog.disarm(fine)
        started = time.monotonic()
        assert slow.recv(1) == b""  # woken by the shutdown, not by data
        assert 0.15 < time.monotonic() - started < 5
        fine_peer.sendall(b"x")
        assert fine.recv(1) == b"x"
        assert watchdog.armed() == 0
    finally:
        for sock in (slow, slow_peer, fine, fine_peer):
            sock.close()
