"""Aliyun OSS's dialect (oss2, v4 signatures), spoken by moto behind the session's dialect server."""

from __future__ import annotations

import uuid

import oss2
import pytest

REGION = "us-east-1"
"""moto reads the region from the v4 signature's scope and creates buckets only in us-east-1 without
a location constraint, which oss2 does not send."""


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("dialect_endpoint")
    name = f"objfs-test-{uuid.uuid4().hex[:16]}"
    oss2.Bucket(oss2.AuthV4("testing", "testing"), endpoint, name, region=REGION).create_bucket()
    return {
        "STORAGE_TYPE": "aliyun-oss",
        "ALIYUN_OSS_ENDPOINT": endpoint,
        "ALIYUN_OSS_REGION": REGION,
        "ALIYUN_OSS_AUTH_VERSION": "v4",
        "ALIYUN_OSS_BUCKET_NAME": name,
        "ALIYUN_OSS_ACCESS_KEY": "testing",
        "ALIYUN_OSS_SECRET_KEY": "testing",
    }
