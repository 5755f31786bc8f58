"""Content types: from the name where it tells, else from the first bytes, and the records say which."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from objfs.cache.blobs import BlobRecords
from objfs.storage.memory import MemoryStorage

from .support import Client

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


async def test_a_name_without_extension_is_identified_from_its_bytes(
    vfs: Client, bucket: MemoryStorage
) -> None:
    await vfs.write_file("IMG_0001", PNG)
    await vfs.write_file("scan-2026", PDF)
    assert bucket.stat("IMG_0001").content_type == "image/png"
    assert bucket.stat("scan-2026").content_type == "application/pdf"
    record = vfs.fs.blobs.get("IMG_0001")
    assert record is not None and (record.content_type, record.content_type_from) == ("image/png", "content")


async def test_the_name_wins_where_it_tells(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("notes.txt", PNG)  # a name that says text is taken at its word
    record = vfs.fs.blobs.get("notes.txt")
    assert bucket.stat("notes.txt").content_type == "text/plain"
    assert record is not None and record.content_type_from == "name"


async def test_bytes_that_match_no_signature_leave_the_type_unset(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("README", b"plain words, no magic number\n")
    record = vfs.fs.blobs.get("README")
    assert bucket.stat("README").content_type is None
    assert record is not None and (record.content_type, record.content_type_from) == (None, None)


async def test_records_from_before_the_column_existed_still_open(tmp_path: Path) -> None:
    path = tmp_path / "old-blobs.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE blob_records (key TEXT PRIMARY KEY, content_type TEXT, metadata TEXT NOT NULL,"
        " size INTEGER NOT NULL, checksum TEXT NOT NULL, etag TEXT NOT NULL, created_at REAL NOT NULL,"
        " part_checksums TEXT NOT NULL)"
    )
    db.execute("INSERT INTO blob_records VALUES ('k', NULL, '{}', 1, 'c', 'e', 0, '[]')")
    db.commit()
    db.close()
    records = BlobRecords(str(path))
    record = records.get("k")
    records.close()
    assert record is not None and record.content_type_from is None
