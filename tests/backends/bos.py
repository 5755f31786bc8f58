"""Baidu BOS's protocol (bce-python-sdk), spoken by moto behind the session's dialect server."""

from __future__ import annotations

import uuid

import pytest
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.bce_client_configuration import BceClientConfiguration
from baidubce.retry.retry_policy import NoRetryPolicy
from baidubce.services.bos.bos_client import BosClient

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def client(endpoint: str) -> BosClient:
    """The SDK as a test uses it directly: no retries, a short timeout."""
    credentials = BceCredentials(ACCESS_KEY, SECRET_KEY)
    config = BceClientConfiguration(
        credentials=credentials,
        endpoint=endpoint,
        retry_policy=NoRetryPolicy(),
        connection_timeout_in_mills=10_000,
        under_line_headers=False,
    )
    return BosClient(config)


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("dialect_endpoint")
    bucket = f"objfs-bos-{uuid.uuid4().hex[:16]}"
    client(endpoint).create_bucket(bucket)
    return {
        "STORAGE_TYPE": "baidu-obs",
        "BAIDU_OBS_ENDPOINT": endpoint,
        "BAIDU_OBS_BUCKET_NAME": bucket,
        "BAIDU_OBS_ACCESS_KEY": ACCESS_KEY,
        "BAIDU_OBS_SECRET_KEY": SECRET_KEY,
    }
