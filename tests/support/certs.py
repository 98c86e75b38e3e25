"""Certificates for the TLS door, made with ``openssl`` as Docker's guide "Protect the Docker
daemon socket" makes them: a CA, a server certificate for 127.0.0.1 (an IP SAN), a client
certificate (extendedKeyUsage clientAuth) — and a second CA with its own client, an impostor."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """(ca.pem, ca-key.pem) of a new CA called ``name``."""
    key, cert = directory / f"{name}-key.pem", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key.name, "-out", cert.name, "-days", "2", "-subj", f"/CN={name}", cwd=directory)
    return cert, key


def issue(directory: Path, ca: tuple[Path, Path], name: str, *, server: bool) -> tuple[Path, Path]:
    """(cert.pem, key.pem) signed by ``ca``: a server certificate for 127.0.0.1, or a client one."""
    key, request, cert = directory / f"{name}-key.pem", directory / f"{name}.csr", directory / f"{name}-cert.pem"
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1,DNS:localhost\nextendedKeyUsage = serverAuth\n" if server
                          else "extendedKeyUsage = clientAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key.name,
             "-out", request.name, "-subj", f"/CN={name}", cwd=directory)
    _openssl("x509", "-req", "-in", request.name, "-CA", ca[0].name, "-CAkey", ca[1].name, "-CAcreateserial",
             "-out", cert.name, "-days", "2", "-extfile", extensions.name, cwd=directory)
    return cert, key


class Certificates:
    """Everything a test of the TLS door needs, in ``directory``.

    ``ca``, ``server_cert``/``server_key``; ``client_cert``/``client_key`` (signed by ``ca``);
    ``stranger_cert``/``stranger_key`` (signed by another CA); ``client_dir``: a
    DOCKER_CERT_PATH with ca.pem, cert.pem, key.pem, as the docker CLI expects them.
    """

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        ca = make_ca(directory, "ca")
        self.ca = ca[0]
        self.server_cert, self.server_key = issue(directory, ca, "server", server=True)
        self.client_cert, self.client_key = issue(directory, ca, "client", server=False)
        other_ca = make_ca(directory, "other-ca")
        self.other_ca = other_ca[0]
        self.stranger_cert, self.stranger_key = issue(directory, other_ca, "stranger", server=False)
        self.client_dir = directory / "client"
        self.client_dir.mkdir()
        for source, name in ((self.ca, "ca.pem"), (self.client_cert, "cert.pem"), (self.client_key, "key.pem")):
            (self.client_dir / name).write_bytes(source.read_bytes())

    def daemon_flags(self) -> list[str]:
        return ["--tlsverify", "--tlscacert", str(self.ca), "--tlscert", str(self.server_cert),
                "--tlskey", str(self.server_key)]
