"""Fixtures shared by every suite: a moto S3 server, test credentials, and fresh buckets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest
from servers.moto import start_moto

TEST_REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One server for the run: starting one costs a second, and fresh buckets keep tests apart."""
    server = start_moto()
    try:
        yield server.endpoint
    finally:
        server.stop()


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
