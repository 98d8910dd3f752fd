"""Certificates made per test with ``trustme``: a CA of the test's own and a server certificate it issued for
127.0.0.1 and localhost, written as the PEM files ``--tls-cert``, ``--tls-key`` and ``--tls-ca`` take.

Without trustme the TLS tests skip outside CI and fail under CI (it is a dev dependency: ``make`` installs it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def _trustme() -> Any:
    try:
        import trustme
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("trustme is missing; under CI the TLS tests must run (it is a dev dependency)")
        pytest.skip("trustme is missing: the TLS tests skip outside CI (pip install trustme)")
    return trustme


@dataclass(frozen=True)
class TlsFiles:
    #: The CA's certificate: what clients trust (AWS_CA_BUNDLE, boto3's verify=, --tls-ca).
    ca: Path
    #: The server's certificate, then the chain up to the CA.
    cert: Path
    #: The certificate's private key, 0600.
    key: Path
    #: Another CA, which issued nothing the server serves.
    other_ca: Path


def make_tls_files(folder: Path) -> TlsFiles:
    trustme = _trustme()
    folder.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem", folder / "other-ca.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    files.cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(issued.private_key_pem.bytes())
    return files
