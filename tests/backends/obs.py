"""Huawei OBS through its own SDK, against moto's S3 app on loopback.

The server is reached on 127.0.0.1, so the SDK goes path-style and signs v2: this covers OBS's
AWS-compatible dialect (`x-amz-*`), not the native `x-obs-*` one (see objfs.storage.obs).

The server is `dialect_endpoint` (moto's S3 app alone; no dialect claims `x-amz-*` requests, so they
reach moto untranslated) rather than plain `moto_server`: that one guesses the service by splitting
the Authorization header on "/", and a v2 signature with exactly four "/" in its base64 is taken
for a SigV4 scope naming some other service, a 500 for about one request in a thousand.
"""

from __future__ import annotations

import uuid

import pytest
from obs import ObsClient

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("dialect_endpoint")
    bucket = f"objfs-obs-{uuid.uuid4().hex[:16]}"
    create_bucket(endpoint, bucket)
    return {
        "STORAGE_TYPE": "huawei-obs",
        "HUAWEI_OBS_BUCKET_NAME": bucket,
        "HUAWEI_OBS_SERVER": endpoint,
        "HUAWEI_OBS_ACCESS_KEY": ACCESS_KEY,
        "HUAWEI_OBS_SECRET_KEY": SECRET_KEY,
    }


def create_bucket(endpoint: str, bucket: str) -> None:
    client = ObsClient(
        access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, server=endpoint, max_retry_count=0
    )
    try:
        response = client.createBucket(bucket)
    finally:
        client.close()
    assert response.status < 300, f"cannot create {bucket}: {response.status} {response.errorCode}"
