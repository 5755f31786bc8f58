"""Tencent COS's protocol, spoken by moto behind the dialect layer (tests/servers/dialect_cos.py).

The SDK is sent to the server's address (`TENCENT_COS_ENDPOINT=http://127.0.0.1:PORT`, the SDK's
IP/Port) while its Host header stays `<bucket>-<appid>.cos.<region>.myqcloud.com`, from which moto
takes the bucket, so no DNS is involved.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from qcloud_cos import CosConfig, CosS3Client

REGION = "ap-guangzhou"
APPID = "1250000000"
CREDENTIALS = {"TENCENT_COS_SECRET_ID": "testing", "TENCENT_COS_SECRET_KEY": "testing"}


def client(endpoint: str) -> CosS3Client:
    """An SDK client of the test server, for making buckets and looking behind the backend."""
    address = urlsplit(endpoint)
    config = CosConfig(
        Region=REGION,
        SecretId="testing",
        SecretKey="testing",
        Scheme="http",
        IP=address.hostname,
        Port=address.port,
        Timeout=10,
    )
    return CosS3Client(config, retry=0)


def new_bucket(endpoint: str) -> str:
    name = f"objfs-{uuid.uuid4().hex[:16]}-{APPID}"
    client(endpoint).create_bucket(Bucket=name)
    return name


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("dialect_endpoint")
    return {
        "STORAGE_TYPE": "tencent-cos",
        "TENCENT_COS_BUCKET_NAME": new_bucket(endpoint),
        "TENCENT_COS_REGION": REGION,
        "TENCENT_COS_ENDPOINT": endpoint,
        "TENCENT_COS_SCHEME": "http",
        **CREDENTIALS,
    }
