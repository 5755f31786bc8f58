"""Volcengine TOS's dialect, spoken by moto behind the session's dialect server.

TOS addresses buckets only by virtual host (`bucket.tos-cn-beijing.volces.com`), which resolves
nowhere here, so every request goes through STORAGE_PROXY to the dialect server, which serves the
bucket named in the Host header. Region us-east-1, because moto refuses to create buckets elsewhere
without a location constraint.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
import tos

ENDPOINT = "http://tos-cn-beijing.volces.com"
REGION = "us-east-1"


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """A fresh bucket; `http_proxy` is set too, so a presigned URL can be fetched the way a
    browser behind the same proxy would fetch it."""
    proxy = request.getfixturevalue("dialect_endpoint")
    request.getfixturevalue("monkeypatch").setenv("http_proxy", proxy)
    bucket = f"objfs-test-{uuid.uuid4().hex[:16]}"
    create_bucket(proxy, bucket)
    return {
        "STORAGE_TYPE": "volcengine-tos",
        "VOLCENGINE_TOS_ENDPOINT": ENDPOINT,
        "VOLCENGINE_TOS_REGION": REGION,
        "VOLCENGINE_TOS_BUCKET_NAME": bucket,
        "VOLCENGINE_TOS_ACCESS_KEY": "testing",
        "VOLCENGINE_TOS_SECRET_KEY": "testing",
        "STORAGE_PROXY": proxy,
    }


def sdk_client(proxy: str) -> tos.TosClientV2:
    """The SDK itself, for tests that look at the server behind the backend's back."""
    address = urlsplit(proxy)
    return tos.TosClientV2(
        "testing",
        "testing",
        ENDPOINT,
        REGION,
        proxy_host=address.hostname,
        proxy_port=address.port,
        max_retry_count=0,
        dns_cache_time=0,
    )


def create_bucket(proxy: str, bucket: str) -> None:
    client = sdk_client(proxy)
    try:
        client.create_bucket(bucket)
    finally:
        client.close()
