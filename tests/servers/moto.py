"""A real moto S3 server in a subprocess: boto3 goes through HTTP exactly as against AWS, and a
mounted filesystem in another process can share the same endpoint."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.process import ServerProcess, start_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One server for the run: starting one costs a second, and fresh buckets keep tests apart."""
    server = start_moto()
    try:
        yield server.endpoint
    finally:
        server.stop()


def start_moto(auth: bool = False) -> ServerProcess:
    """Start `moto_server` on a free loopback port and wait until it answers HTTP.

    With `auth`, moto checks every request's signature against its IAM users, of which there
    are none, so any access key is rejected (InvalidAccessKeyId, or a bare 403 for HEAD).
    """
    env = dict(os.environ)
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", "{port}"]
    return start_server(command, "moto", env=env, probe_path="/moto-api/")
