"""Amazon S3's protocol, spoken by the session's moto server."""

from __future__ import annotations

import pytest


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "s3",
        "S3_ENDPOINT": request.getfixturevalue("moto_endpoint"),
        "S3_REGION": "us-east-1",
        "S3_BUCKET_NAME": request.getfixturevalue("s3_bucket"),
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
    }
