"""Throwaway certificates for the TLS tests, made with the openssl command (no Python package
needed): a CA with a server certificate (127.0.0.1, localhost) and a client certificate, and a
client certificate from another CA that servers must refuse."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _issue(cwd: Path, name: str, ca: str, ext: str) -> None:
    """``name``.key/.crt: an EC key and a certificate signed by ``ca``.key/.crt."""
    _openssl(cwd, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    (cwd / f"{name}.ext").write_text(ext + "\n")
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext")


def make_pki(d: Path) -> Path:
    """ca.crt, server.crt/.key, client.crt/.key and stranger.crt/.key (of other-ca) in ``d``."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command: apt-get install openssl")
    for ca in ("ca", "other-ca"):
        _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1",
                 "-subj", f"/CN=mlapi test {ca}")
    _issue(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                              "extendedKeyUsage=serverAuth")
    _issue(d, "client", "ca", "extendedKeyUsage=clientAuth")
    _issue(d, "stranger", "other-ca", "extendedKeyUsage=clientAuth")
    return d
