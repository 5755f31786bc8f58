"""Azurite, Microsoft's Azure Storage emulator, serving the blob API on a loopback port.

It runs from the npm package scripts/install.sh puts in `.tools/` (or from PATH), in memory, with
telemetry off: Azurite otherwise calls applicationinsights.azure.com, which tests must never do.
The account is Azurite's well-known development account, whose key is published in its docs.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers.process import ServerProcess, start_server

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's public development key: a fixture value, not a secret."""
INSTALLED = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="session")
def azurite_endpoint() -> Iterator[str]:
    """One Azurite for the run, as the account URL; fresh containers keep tests apart."""
    server = start_azurite()
    try:
        yield account_url(server)
    finally:
        server.stop()


class HttpsAzurite(NamedTuple):
    endpoint: str
    """The https account URL."""
    ca_bundle: str
    """The PEM certificate it serves, which is its own CA."""
    debug_log: str
    """Azurite's `--debug` log, one line per request with its headers."""


@pytest.fixture(scope="session")
def azurite_https() -> Iterator[HttpsAzurite]:
    """A second Azurite serving HTTPS with a self-signed certificate for 127.0.0.1 and localhost.

    Azurite needs no `--oauth` for HTTPS (OAuth needs HTTPS, not the other way round). It logs
    request headers, which is how tests see what reached it.
    """
    cert_dir = Path(tempfile.mkdtemp(prefix="objfs-azurite-tls-"))
    try:
        cert, key = self_signed_certificate(cert_dir)
        server = start_azurite(
            ["--cert", str(cert), "--key", str(key), "--debug", "{dir}/debug.log"], tls=True
        )
        try:
            yield HttpsAzurite(account_url(server), str(cert), str(server.log_dir / "debug.log"))
        finally:
            server.stop()
    finally:
        shutil.rmtree(cert_dir, ignore_errors=True)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A P-256 key and a one-day certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "objfs test Azurite")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_azurite(extra: Sequence[str] = (), *, tls: bool = False) -> ServerProcess:
    """Start azurite-blob on a free port; `extra` adds options (`--debug {dir}/debug.log`, `--cert`),
    and `tls` says the options make it serve HTTPS."""
    command = [
        _executable(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        "{port}",
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        "--disableTelemetry",
        *extra,
    ]
    return start_server(command, "azurite", tls=tls)


def account_url(server: ServerProcess) -> str:
    """Azurite's path-style account URL: the account is the first path segment."""
    return f"{server.endpoint}/{ACCOUNT}"


def _executable() -> str:
    if INSTALLED.exists():
        return str(INSTALLED)
    found = shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError("azurite-blob is not installed: run scripts/install.sh (npm package azurite)")
    return found
