"""The S3 server becomes unreachable in the middle of a large upload: close reports EIO within
the retry deadline, nothing half-written ever shows in the bucket, the staged data is stored
once the server is back, and the upload the outage stranded is aborted by the next mount."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from mounting import mounted
from servers.proxy import CuttableProxy

MIB = 1024 * 1024


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[CuttableProxy]:
    cuttable = CuttableProxy(urlsplit(moto_endpoint).port or 80)
    try:
        yield cuttable
    finally:
        cuttable.close()


def wait_for_a_part(client: Any, bucket: str) -> bool:
    """Cut only once a part has landed: the upload id is then known to objfs and journalled.

    (An upload whose creation reply the outage swallowed has an id objfs never learnt; no
    client can tell it from another's, and a bucket lifecycle rule is what reclaims those.)
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            parts = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            if parts.get("Parts"):
                return True
        time.sleep(0.05)
    return False


def object_exists(client: Any, bucket: str, key: str) -> bool:
    return any(o["Key"] == key for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_an_upload_cut_off_midway_is_never_half_visible(
    tmp_path: Path, proxy: CuttableProxy, s3_env: dict[str, str], s3_bucket: str, s3_client: Any
) -> None:
    data = os.urandom(40 * MIB)
    options = ("--endpoint-url", proxy.endpoint, "--retry-deadline", "2")
    with mounted(f"s3://{s3_bucket}", tmp_path, s3_env, *options) as mount:
        writer = os.open(mount.path / "big.bin", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(writer, data[: 24 * MIB])  # past the multipart threshold: parts are on their way
        assert wait_for_a_part(s3_client, s3_bucket)
        proxy.cut()
        os.write(writer, data[24 * MIB :])
        started = time.monotonic()
        with pytest.raises(OSError) as failed:
            os.close(writer)
        assert failed.value.errno == errno.EIO
        assert time.monotonic() - started < 30
        assert not object_exists(s3_client, s3_bucket, "big.bin")
        proxy.restore()
    # the unmount stored the staged bytes whole once the server answered again
    assert s3_client.get_object(Bucket=s3_bucket, Key="big.bin")["Body"].read() == data
    with mounted(f"s3://{s3_bucket}", tmp_path, s3_env, *options) as again:
        assert (again.path / "big.bin").stat().st_size == len(data)
        deadline = time.monotonic() + 10
        while (
            s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads") and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
