"""TLS for conveyor's HTTP ports (``--tls-cert`` / ``--tls-key``, PEM files), and how a client trusts them.

``server_context`` reads the certificate and its key before anything listens, and turns every way they can be
wrong into a ConfigError naming the flag and the fix: a missing or unreadable file, a file that is no PEM, an
encrypted key (conveyor starts unattended: it never asks for a passphrase), a key that is not the certificate's.
A key file other users can open gets a warning.

``pinned_context`` is how the CLI trusts the control API of ``conveyor up``: exactly the certificate that
``up`` serves (recorded in its registry entry), whatever names it covers, since that port is on loopback only.
``verifies`` checks, in memory, that a client with a given trust would accept the served certificate, so a CA
that did not issue it, or a certificate that does not cover the address clients are handed, is said at start.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from conveyor.errors import ConfigError
from conveyor.log import get_logger

log = get_logger(__name__)

_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_END_CERTIFICATE = "-----END CERTIFICATE-----"
_ENCRYPTED = ("-----BEGIN ENCRYPTED PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED")


class _Encrypted(Exception):
    """Raised by the password callback: OpenSSL asked for a passphrase."""


def _read(path: Path, flag: str, what: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: there is no such file; give the path of {what} (PEM).") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} {path} is a directory; give the path of {what} (PEM).") from None
    except OSError as error:
        raise ConfigError(
            f"{flag} {path} cannot be read: {error.strerror or error}. Make it readable by the user conveyor runs as."
        ) from None
    return data.decode("ascii", errors="replace")


def _check_private(path: Path, flag: str) -> None:
    """Warn when other users may open the key file (the key is the server's identity)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "%s %s is open to other users (mode %s): anyone who reads it can pose as this server. "
            "Make it private: chmod 600 %s",
            flag,
            path,
            oct(stat.S_IMODE(mode))[2:].zfill(4),
            path,
        )


def server_context(
    cert: Path, key: Path, *, cert_flag: str = "--tls-cert", key_flag: str = "--tls-key"
) -> ssl.SSLContext:
    """A server context serving ``cert`` (PEM: the certificate, then any intermediates) with ``key`` (PEM, not
    encrypted), TLS 1.2 at least; or a ConfigError naming the flag and the fix."""
    cert_text = _read(cert, cert_flag, "the server's certificate")
    if _CERTIFICATE not in cert_text:
        raise ConfigError(
            f"{cert_flag} {cert} is not a PEM certificate (no '{_CERTIFICATE}' line). Give the certificate in PEM; "
            f"a DER one converts with: openssl x509 -inform der -in {cert.name} -out {cert.stem}.pem"
        )
    key_text = _read(key, key_flag, "the certificate's private key")
    if "PRIVATE KEY-----" not in key_text:
        raise ConfigError(
            f"{key_flag} {key} is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line). Give the key "
            f"in PEM; a DER one converts with: openssl pkey -inform der -in {key.name} -out {key.stem}.pem"
        )
    encrypted = ConfigError(
        f"{key_flag} {key} is encrypted, and conveyor starts unattended: it asks for no passphrase. Write a "
        f"decrypted copy readable by its owner only: (umask 077; openssl pkey -in {key} -out {key.stem}-plain.pem), "
        "and give that file."
    )
    if any(marker in key_text for marker in _ENCRYPTED):
        raise encrypted
    _check_private(key, key_flag)

    def no_passphrase() -> str:
        raise _Encrypted

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=no_passphrase)
    except _Encrypted:
        raise encrypted from None
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error):
            raise ConfigError(
                f"{key_flag} {key} is not the private key of {cert_flag} {cert}: give the key the certificate was "
                f"issued for (openssl x509 -noout -pubkey -in {cert} and openssl pkey -pubout -in {key} print the "
                "same public key when they match)."
            ) from None
        raise ConfigError(
            f"{cert_flag} {cert} with {key_flag} {key} cannot be used: {error.reason or error}. Check that both are "
            "PEM, the certificate first in its file, and that the key is the certificate's."
        ) from None
    return context


def leaf_pem(cert: Path) -> str:
    """The first certificate of a PEM file: the server's own (intermediates follow it)."""
    text = cert.read_text("ascii", errors="replace")
    start = text.index(_CERTIFICATE)
    end = text.index(_END_CERTIFICATE, start) + len(_END_CERTIFICATE)
    return text[start:end] + "\n"


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    """A client context that accepts exactly the certificate ``cert_pem`` (and no other, even one a public CA
    issued), whatever names it covers."""
    context = ssl.create_default_context(cadata=cert_pem)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the server's own certificate is the trust anchor
    context.check_hostname = False  # the pin is the whole check: only this certificate's key can answer
    return context


def ca_context(cafile: Path, flag: str = "--tls-ca") -> ssl.SSLContext:
    """A client context trusting the CA certificates in ``cafile`` (PEM), or a ConfigError naming ``flag``."""
    text = _read(cafile, flag, "the CA certificate that issued the server's")
    if _CERTIFICATE not in text:
        raise ConfigError(f"{flag} {cafile} is not a PEM certificate (no '{_CERTIFICATE}' line); give the CA in PEM.")
    try:
        return ssl.create_default_context(cafile=str(cafile))
    except ssl.SSLError as error:
        raise ConfigError(f"{flag} {cafile} cannot be read as CA certificates: {error.reason or error}.") from None


def verifies(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str | None) -> str | None:
    """None when ``client`` accepts what ``server`` serves (for ``server_hostname`` when given), else why not.
    A TLS handshake in memory: no socket, no port."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    client_side = client.wrap_bio(to_client, to_server, server_hostname=server_hostname)
    done = {"client": False, "server": False}
    for _ in range(10):  # TLS 1.2 and 1.3 finish in fewer round trips
        for name, side in (("client", client_side), ("server", server_side)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as error:
                return str(error.verify_message or error).rstrip(".")
            except ssl.SSLError as error:
                if name == "client":
                    return str(error.reason or error)
                break  # the server's side fails when the client gave up: the client's error says why
        if all(done.values()):
            return None
    return "the handshake did not complete"


def check_served(
    server: ssl.SSLContext,
    cert: Path,
    ca: Path | None,
    address: str,
    *,
    cert_flag: str = "--tls-cert",
    ca_flag: str = "--tls-ca",
) -> None:
    """The processes are handed ``https://ADDRESS``: the certificate must cover ``address``, and the CA given
    (if any) must have issued it. Else a ConfigError with the fix."""
    if ca is not None:
        client = ca_context(ca, ca_flag)
        client.check_hostname = False  # the name is checked below
        why = verifies(server, client, None)
        if why is not None:
            raise ConfigError(
                f"{ca_flag} {ca} does not verify {cert_flag} {cert} ({why}): give the CA certificate that issued it "
                "(with any intermediates in the certificate's file, after it)."
            )
    why = verifies(server, pinned_hostname_context(cert), address)
    if why is not None:
        raise ConfigError(
            f"{cert_flag} {cert} does not cover {address}, where the worker and web processes reach the queue "
            f"({why}): issue it for that address too (subjectAltName IP:{address})."
        )


def pinned_hostname_context(cert: Path) -> ssl.SSLContext:
    """As ``pinned_context``, checking the name too."""
    context = pinned_context(leaf_pem(cert))
    context.check_hostname = True
    return context
