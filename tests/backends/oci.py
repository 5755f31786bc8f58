"""OCI's S3 compatibility API, spoken by the session's moto server in an OCI region."""

from __future__ import annotations

import uuid

import boto3
import pytest

REGION = "us-ashburn-1"


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("s3_env")
    bucket = f"objfs-oci-{uuid.uuid4().hex[:16]}"
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)
    try:
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    finally:
        client.close()
    return {
        "STORAGE_TYPE": "oci-storage",
        "OCI_ENDPOINT": endpoint,
        "OCI_REGION": REGION,
        "OCI_BUCKET_NAME": bucket,
        "OCI_ACCESS_KEY": "testing",
        "OCI_SECRET_KEY": "testing",
    }
