"""Azurite, Microsoft's Azure Storage emulator, serving the blob API on a loopback port.

It runs from the npm package scripts/install.sh puts in `.tools/` (or from PATH), in memory, with
telemetry off: Azurite otherwise calls applicationinsights.azure.com, which tests must never do.
The account is Azurite's well-known development account, whose key is published in its docs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

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


def start_azurite(extra: Sequence[str] = ()) -> ServerProcess:
    """Start azurite-blob on a free port; `extra` adds options (`--debug {dir}/debug.log`, `--cert`)."""
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
    return start_server(command, "azurite")


def account_url(server: ServerProcess, scheme: str = "http") -> str:
    """Azurite's path-style account URL: the account is the first path segment."""
    return f"{scheme}://127.0.0.1:{server.port}/{ACCOUNT}"


def _executable() -> str:
    if INSTALLED.exists():
        return str(INSTALLED)
    found = shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError("azurite-blob is not installed: run scripts/install.sh (npm package azurite)")
    return found
