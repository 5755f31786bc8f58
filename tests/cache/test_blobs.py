"""Blob records: a persistent SQLite table of what each object should hold (seed 004)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from objfs.cache.blobs import BlobRecord, BlobRecords, checksum_matches, md5_base64_of_file
from objfs.storage.base import MD5_CHUNK


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "cache" / "blobs.sqlite")


@pytest.fixture
def records(db_path: str) -> Iterator[BlobRecords]:
    opened = BlobRecords(db_path)
    yield opened
    opened.close()


def _record(key: str, **changes: object) -> BlobRecord:
    fields: dict = {"size": 3, "checksum": md5_base64_of_file(io.BytesIO(b"abc")), "etag": "e1"}
    fields.update(changes)
    return BlobRecord(key=key, **fields)


def test_round_trip_keeps_every_field(records: BlobRecords) -> None:
    record = _record(
        "photos/2024/cat.jpeg",
        content_type="image/jpeg",
        metadata={"mode": "0644", "width": 512, "analyzed": True},
        created_at=1_700_000_000.5,
        part_checksums=["XUFAKrxLKna5cZ2REBfFkg==", "rL0Y20zC+Fzt72VPzMSk2A=="],
    )
    records.put(record)
    assert records.get("photos/2024/cat.jpeg") == record
    assert record.filename == "cat.jpeg"
    assert records.get("photos/2024/dog.jpeg") is None


def test_put_replaces_the_record_of_a_key(records: BlobRecords) -> None:
    records.put(_record("k", etag="old"))
    records.put(_record("k", etag="new", part_checksums=[]))
    found = records.get("k")
    assert found is not None
    assert (found.etag, found.part_checksums) == ("new", [])


def test_records_survive_reopening(db_path: str) -> None:
    first = BlobRecords(db_path)
    first.put(_record("a/b", metadata={"uid": "1000"}))
    first.close()
    second = BlobRecords(db_path)
    try:
        found = second.get("a/b")
        assert found is not None
        assert found.metadata == {"uid": "1000"}
    finally:
        second.close()


def test_move_keeps_the_record_under_the_new_key(records: BlobRecords) -> None:
    records.put(_record("dir/old.txt", etag="mine"))
    records.put(_record("dir/new.txt", etag="replaced"))
    records.move("dir/old.txt", "dir/new.txt")
    moved = records.get("dir/new.txt")
    assert records.get("dir/old.txt") is None
    assert moved is not None
    assert (moved.etag, moved.filename) == ("mine", "new.txt")


def test_move_can_take_the_copys_etag(records: BlobRecords) -> None:
    records.put(_record("big.iso", etag="abc-3", part_checksums=["p1", "p2", "p3"]))
    records.move("big.iso", "renamed.iso", etag="whole-md5")
    moved = records.get("renamed.iso")
    assert moved is not None
    assert (moved.etag, moved.part_checksums) == ("whole-md5", ["p1", "p2", "p3"])


def test_moving_an_unrecorded_key_leaves_no_stale_record(records: BlobRecords) -> None:
    records.put(_record("target", etag="stale"))
    records.move("unrecorded", "target")
    assert records.get("target") is None


def test_move_onto_itself_keeps_the_record(records: BlobRecords) -> None:
    records.put(_record("same"))
    records.move("same", "same")
    assert records.get("same") is not None


def test_forget(records: BlobRecords) -> None:
    records.put(_record("gone"))
    records.forget("gone")
    records.forget("never-there")
    assert records.get("gone") is None


def test_list_by_prefix_is_sorted_and_literal(records: BlobRecords) -> None:
    for key in ("b/2", "a/1", "b/1", "b_/x", "b%/y", "bb/z"):
        records.put(_record(key))
    assert [r.key for r in records.list("b/")] == ["b/1", "b/2"]
    assert [r.key for r in records.list("b_")] == ["b_/x"]
    assert [r.key for r in records.list()] == ["a/1", "b%/y", "b/1", "b/2", "b_/x", "bb/z"]
    assert records.list("zz") == []


def test_records_are_safe_from_many_threads(records: BlobRecords) -> None:
    def put_many(thread: int) -> None:
        for n in range(50):
            records.put(_record(f"t{thread}/{n:02d}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put_many, range(8)))
    assert len(records.list()) == 400
    assert [r.key for r in records.list("t3/")] == [f"t3/{n:02d}" for n in range(50)]


def test_md5_of_a_12_mb_file_in_chunks_equals_the_whole_file_md5(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(12 * 1024 * 1024)
    assert len(data) > 2 * MD5_CHUNK  # three chunks, the last one partial
    path.write_bytes(data)
    expected = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert md5_base64_of_file(path) == expected
    assert md5_base64_of_file(str(path)) == expected
    with open(path, "rb") as opened:
        opened.seek(100)
        assert md5_base64_of_file(opened) == expected  # hashed from the start, and rewound
        assert opened.tell() == 0


def test_md5_matches_the_seed_example() -> None:
    """The seed's example: MD5 of 'hello' in base64 is XUFAKrxLKna5cZ2REBfFkg==."""
    checksum = md5_base64_of_file(io.BytesIO(b"hello"))
    assert checksum == "XUFAKrxLKna5cZ2REBfFkg=="
    record = _record("greeting", size=5, checksum=checksum)
    assert checksum_matches(record, checksum)
    assert not checksum_matches(record, md5_base64_of_file(io.BytesIO(b"hellO")))
