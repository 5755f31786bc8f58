"""An object in an archive storage class reads as EREMOTE with one log line, never as EIO
retried for half a minute, and the rest of the mount goes on working."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from mounting import mounted

pytestmark = pytest.mark.fuse


def test_reading_a_glacier_object_is_eremote(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str, s3_env: dict[str, str], s3_client
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="cold.bin", Body=b"frozen", StorageClass="GLACIER")
    s3_client.put_object(Bucket=s3_bucket, Key="warm.txt", Body=b"warm")
    with mounted(f"s3://{s3_bucket}", tmp_path, s3_env, "--endpoint", moto_endpoint) as mount:
        assert (mount.path / "cold.bin").stat().st_size == 6  # listing and stat work
        with pytest.raises(OSError) as caught:
            (mount.path / "cold.bin").read_bytes()
        assert caught.value.errno == errno.EREMOTE
        assert (mount.path / "warm.txt").read_bytes() == b"warm"
        lines = [line for line in mount.log().splitlines() if "cold.bin" in line]
    assert len(lines) == 1, lines
    assert "archived" in lines[0] and "restore it" in lines[0]
