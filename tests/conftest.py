"""Fixtures shared by every suite: a moto S3 server, test credentials, and fresh buckets.

Every module of `servers/` is loaded as a plugin, so a loopback server's session fixture is
one new module there (`process` is their common part and the `dialect_*` modules are parts of
the dialect server, so neither is a plugin).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest

TEST_REGION = "us-east-1"
pytest_plugins = sorted(
    f"servers.{path.stem}"
    for path in (Path(__file__).parent / "servers").glob("*.py")
    if path.stem != "process" and not path.stem.startswith(("_", "dialect_"))
)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake credentials through boto3's standard chain, with nothing from the developer's ~/.aws.

    Returns the variables, so a test can hand them to a subprocess such as a mount.
    """
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": TEST_REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def s3_bucket(moto_endpoint: str, s3_env: dict[str, str]) -> str:
    """A new, empty bucket on the session's moto server."""
    name = f"objfs-test-{uuid.uuid4().hex[:16]}"
    client = boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name=TEST_REGION)
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()
    return name
