"""S3 copies of sources CopyObject refuses (over 5 GiB) go through a multipart copy.

The limit and part size are lowered on the instance so a 13 MiB object takes the multipart
path against the real moto server: three parts of 5, 5 and 3 MiB.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from objfs.storage import registry
from objfs.storage.base import NotFound, Unavailable, UploadedPart
from objfs.storage.s3 import S3Storage
from objfs.storage.s3_family import copy_parts

MIB = 1024 * 1024
METADATA = {"mode": "33188", "color": "blue"}
CONTENT_TYPE = "application/x-test"


@pytest.fixture
def s3(moto_endpoint: str, s3_bucket: str) -> Iterator[S3Storage]:
    options = {"endpoint": moto_endpoint, "region": "us-east-1"}
    storage = registry.open_location(f"s3://{s3_bucket}", options).storage
    assert isinstance(storage, S3Storage)
    storage.copy_limit = 6 * MIB
    storage.copy_part_size = 5 * MIB
    yield storage
    storage.close()


@pytest.fixture
def large(s3: S3Storage) -> bytes:
    data = os.urandom(13 * MIB)
    s3.write("big", data, metadata=METADATA, content_type=CONTENT_TYPE)
    return data


def test_large_copy_keeps_metadata_and_content_type(s3: S3Storage, large: bytes) -> None:
    info = s3.copy("big", "dir/copy")

    assert info.etag.endswith("-3"), "three parts: the multipart path was taken"
    assert (info.size, info.metadata, info.content_type) == (len(large), METADATA, CONTENT_TYPE)
    assert s3.read("dir/copy") == large
    stored = s3.stat("dir/copy")
    assert (stored.etag, stored.size, stored.metadata) == (info.etag, len(large), METADATA)
    assert stored.content_type == CONTENT_TYPE


def test_large_copy_onto_itself_replaces_metadata(s3: S3Storage, large: bytes) -> None:
    info = s3.copy("big", "big", metadata={"mode": "33152"})

    assert info.etag.endswith("-3")
    assert s3.read("big") == large
    stored = s3.stat("big")
    assert stored.metadata == info.metadata == {"mode": "33152"}
    assert stored.content_type == CONTENT_TYPE
    assert s3.list_multipart("") == []


def test_failed_part_aborts_the_upload(s3: S3Storage, large: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    real = s3._client.upload_part_copy

    def fail_after_first(**kwargs: Any) -> Any:
        if kwargs["PartNumber"] > 1:
            error = {"Error": {"Code": "InternalError", "Message": "injected"}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 500}}, "UploadPartCopy")
        return real(**kwargs)

    monkeypatch.setattr(s3._client, "upload_part_copy", fail_after_first)

    with pytest.raises(Unavailable, match="injected"):
        s3.copy("big", "dir/copy")
    assert s3.list_multipart("") == []
    assert not s3.exists("dir/copy")
    assert s3.read("big") == large


def test_source_deleted_mid_copy_aborts(s3: S3Storage, large: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    real_stat = s3.stat

    def stat_then_delete(key: str) -> Any:
        info = real_stat(key)
        s3.delete(key)
        return info

    monkeypatch.setattr(s3, "stat", stat_then_delete)

    with pytest.raises(NotFound):
        s3.copy("big", "dir/copy")
    monkeypatch.undo()
    assert s3.list_multipart("") == []
    assert not s3.exists("dir/copy")


def test_small_copy_is_one_request(s3: S3Storage) -> None:
    s3.write("small", b"x" * MIB, metadata=METADATA, content_type=CONTENT_TYPE)

    info = s3.copy("small", "small", metadata={"mode": "33152"})

    assert "-" not in info.etag
    assert s3.read("small") == b"x" * MIB
    assert s3.stat("small").metadata == {"mode": "33152"}


def test_part_size_grows_to_fit_the_part_count(s3: S3Storage, large: bytes) -> None:
    """A source too big for the part count at `copy_part_size` gets larger parts, not more of them."""
    s3.capabilities = dataclasses.replace(S3Storage.capabilities, max_part_count=2)

    info = s3.copy("big", "dir/copy")

    assert info.etag.endswith("-2")
    assert s3.read("dir/copy") == large


def test_every_s3_family_backend_lists_copied_parts_in_order() -> None:
    """The shared loop: parts run in parallel, yet complete in number order; a failure is raised."""

    def part(number: int, offset: int, length: int) -> UploadedPart:
        if length < 5:
            raise Unavailable("injected")
        return UploadedPart(number, f"{offset}+{length}")

    assert copy_parts(10, 5, 100, part) == [UploadedPart(1, "0+5"), UploadedPart(2, "5+5")]
    assert [p.number for p in copy_parts(500, 5, 10, part)] == list(range(1, 11))
    with pytest.raises(Unavailable, match="injected"):
        copy_parts(13, 5, 100, part)
