"""Fixtures for real mounts of a local folder and of an S3 bucket on the session's moto server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from mounting import Mount, mounted


@pytest.fixture
def bucket_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bucket"
    folder.mkdir()
    return folder


@pytest.fixture
def local_mount(tmp_path: Path, bucket_dir: Path) -> Iterator[Mount]:
    with mounted(f"local://{bucket_dir}", tmp_path, {}) as mount:
        yield mount


@pytest.fixture
def s3_client(moto_endpoint: str, s3_env: dict[str, str]):
    client = boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    yield client
    client.close()


@pytest.fixture
def s3_mount(tmp_path: Path, moto_endpoint: str, s3_env: dict[str, str], s3_bucket: str) -> Iterator[Mount]:
    with mounted(f"s3://{s3_bucket}/some/prefix", tmp_path, s3_env, "--endpoint-url", moto_endpoint) as mount:
        yield mount
