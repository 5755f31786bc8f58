"""`objfs blobs`, `objfs verify` and `objfs gc` on buckets written through a real mount."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from mounting import mounted, objfs

from objfs.errors import EXIT_INTEGRITY
from objfs.storage.local import LocalStorage

pytestmark = pytest.mark.fuse


def _written(tmp_path: Path, bucket_dir: Path) -> Path:
    """A bucket with two files written through a mount; returns its cache directory."""
    with mounted(f"local://{bucket_dir}", tmp_path, {}) as mount:
        (mount.path / "docs").mkdir()
        (mount.path / "docs" / "a.txt").write_text("alpha\n")
        (mount.path / "docs" / "b.bin").write_bytes(os.urandom(7 * 1024 * 1024))
        return mount.cache_dir


def test_blobs_lists_the_records_of_what_was_written(tmp_path: Path, bucket_dir: Path) -> None:
    cache = _written(tmp_path, bucket_dir)
    result = objfs("blobs", f"local://{bucket_dir}", "docs", "--cache-dir", str(cache), "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["key"] for r in records] == ["docs/a.txt", "docs/b.bin"]
    first = records[0]
    assert (first["filename"], first["byte_size"], first["content_type"]) == ("a.txt", 6, "text/plain")
    assert first["checksum"] == base64.b64encode(hashlib.md5(b"alpha\n").digest()).decode()
    assert first["created_at"].startswith(time.strftime("%Y-", time.gmtime()))
    table = objfs("blobs", f"local://{bucket_dir}", "--cache-dir", str(cache))
    assert first["checksum"] in table.stdout and "docs/b.bin" in table.stdout


def test_verify_reports_a_corrupted_object(tmp_path: Path, bucket_dir: Path) -> None:
    cache = _written(tmp_path, bucket_dir)
    source = f"local://{bucket_dir}"
    clean = objfs("verify", source, "--cache-dir", str(cache))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.count("ok") == 2

    with open(bucket_dir / "docs" / "b.bin", "r+b") as target:
        target.seek(4 * 1024 * 1024)
        target.write(b"\0corrupt")
    os.unlink(bucket_dir / "docs" / "a.txt")
    result = objfs("verify", source, "--cache-dir", str(cache))
    assert result.returncode == EXIT_INTEGRITY
    lines = sorted(result.stdout.splitlines())
    assert lines[0].startswith("mismatch docs/b.bin: MD5 ")
    assert lines[1] == "missing  docs/a.txt: recorded, but not in the bucket"


def test_verify_a_file_through_its_mount(tmp_path: Path, bucket_dir: Path) -> None:
    with mounted(f"local://{bucket_dir}", tmp_path, {}) as mount:
        (mount.path / "kept.txt").write_text("kept\n")
        result = objfs("verify", str(mount.path / "kept.txt"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("ok")


def test_gc_lists_an_abandoned_upload_and_removes_it_only_with_delete(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str, s3_env: dict[str, str], s3_client
) -> None:
    s3_client.create_multipart_upload(Bucket=s3_bucket, Key="stale/part.bin")
    source = f"s3://{s3_bucket}"
    args = ["--endpoint", moto_endpoint, "--cache-dir", str(tmp_path / "cache"), "--all"]
    listed = objfs("gc", source, *args, "--older-than", "0s", env=s3_env)
    assert listed.returncode == 0, listed.stderr
    assert "found    upload" in listed.stdout and "stale/part.bin" in listed.stdout
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")

    removed = objfs("gc", source, *args, "--older-than", "0s", "--delete", env=s3_env)
    assert removed.returncode == 0, removed.stderr
    assert "removed  upload" in removed.stdout
    assert not s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


def test_gc_finds_old_conflict_copies_and_orphaned_staging(tmp_path: Path, bucket_dir: Path) -> None:
    storage = LocalStorage(bucket_dir)
    storage.write("report.txt.objfs-conflict-20200101T000000", b"old bytes")
    storage.write("report.txt", b"current")
    cache = tmp_path / "cache"
    (cache / "staging").mkdir(parents=True)
    (cache / "staging" / "orphan").write_bytes(b"no journal entry")
    source = f"local://{bucket_dir}"
    result = objfs("gc", source, "--cache-dir", str(cache), "--delete")
    assert result.returncode == 0, result.stderr
    assert "conflict" in result.stdout and "staging" in result.stdout
    assert sorted(os.listdir(bucket_dir)) == [".objfs", "report.txt"]
    assert not (cache / "staging" / "orphan").exists()
