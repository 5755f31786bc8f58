"""OpenDAL's s3 service against the session's moto server; the bucket is made with boto3 (by the
`s3_bucket` fixture), since OpenDAL cannot create buckets."""

from __future__ import annotations

import pytest


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "opendal",
        "OPENDAL_SCHEME": "s3",
        "OPENDAL_S3_ENDPOINT": request.getfixturevalue("moto_endpoint"),
        "OPENDAL_S3_REGION": "us-east-1",
        "OPENDAL_S3_BUCKET": request.getfixturevalue("s3_bucket"),
        "OPENDAL_S3_ACCESS_KEY_ID": "testing",
        "OPENDAL_S3_SECRET_ACCESS_KEY": "testing",
    }
