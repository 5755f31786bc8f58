"""Blob records: what this host knows each object should hold, kept in the cache directory.

After ActiveStorage's blob table (seed 004): key, filename, content type, metadata, size and an
MD5 checksum (base64, read in 5 MB chunks), plus the etag and, for multipart uploads, each part's
MD5. The checksum lets a whole-object read be verified against what was written, so silent
corruption becomes an integrity error instead of wrong bytes; the records outlive remounts.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from objfs.storage.base import content_md5

from .sqlite import SqliteStore

_COLUMNS = "key, content_type, metadata, size, checksum, etag, created_at, part_checksums, content_type_from"


@dataclass(frozen=True)
class BlobRecord:
    """One object as written or verified. `filename` follows from the key, so a move cannot stale it."""

    key: str
    size: int
    checksum: str
    etag: str
    content_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    part_checksums: list[str] = field(default_factory=list)
    content_type_from: str | None = None
    """"name" or "content" when objfs identified the content type; None when it was given."""
    filename: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", self.key.rstrip("/").rsplit("/", 1)[-1])


class BlobRecords(SqliteStore):
    """SQLite at `path` (the filesystem uses `cache_dir/blobs.sqlite`); safe from any thread."""

    schema = """
    CREATE TABLE IF NOT EXISTS blob_records (
        key TEXT PRIMARY KEY,
        content_type TEXT,
        metadata TEXT NOT NULL,
        size INTEGER NOT NULL,
        checksum TEXT NOT NULL,
        etag TEXT NOT NULL,
        created_at REAL NOT NULL,
        part_checksums TEXT NOT NULL,
        content_type_from TEXT
    );
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        columns = {row[1] for row in self.execute("PRAGMA table_info(blob_records)")}
        if "content_type_from" not in columns:  # a cache directory from before the column existed
            self.execute("ALTER TABLE blob_records ADD COLUMN content_type_from TEXT")

    def put(self, record: BlobRecord) -> None:
        """Record `record`, replacing whatever was known about its key."""
        self.execute(
            f"INSERT OR REPLACE INTO blob_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.key,
                record.content_type,
                json.dumps(record.metadata, sort_keys=True),
                record.size,
                record.checksum,
                record.etag,
                record.created_at,
                json.dumps(record.part_checksums),
                record.content_type_from,
            ),
        )

    def get(self, key: str) -> BlobRecord | None:
        rows = self.execute(f"SELECT {_COLUMNS} FROM blob_records WHERE key = ?", (key,))
        return _record(rows[0]) if rows else None

    def forget(self, key: str) -> None:
        self.execute("DELETE FROM blob_records WHERE key = ?", (key,))

    def move(self, old_key: str, new_key: str, *, etag: str | None = None) -> None:
        """After a rename the record lives under `new_key`, and whatever `new_key` had is gone.

        With no record for `old_key`, `new_key` ends with none: its record described the object the
        rename replaced, and checking reads against it would report corruption that is not there.
        `etag` is the copy's, when it differs from the source's (a copied multipart object's does).
        Each statement is atomic on its own, so a crash between them leaves no wrong record.
        """
        if old_key == new_key:
            return
        self.execute(
            "DELETE FROM blob_records WHERE key = ?"
            " AND NOT EXISTS (SELECT 1 FROM blob_records WHERE key = ?)",
            (new_key, old_key),
        )
        self.execute(
            "UPDATE OR REPLACE blob_records SET key = ?, etag = coalesce(?, etag) WHERE key = ?",
            (new_key, etag, old_key),
        )

    def list(self, prefix: str = "") -> list[BlobRecord]:
        """Records whose key starts with `prefix`, by key; compared literally (no LIKE wildcards)."""
        rows = self.execute(
            f"SELECT {_COLUMNS} FROM blob_records WHERE key >= ? AND substr(key, 1, ?) = ? ORDER BY key",
            (prefix, len(prefix), prefix),
        )
        return [_record(row) for row in rows]


def md5_base64_of_file(source: str | os.PathLike[str] | BinaryIO) -> str:
    """The seed's checksum of a file, read in 5 MB chunks; a file object is hashed from its start."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as opened:
            return content_md5(opened)
    return content_md5(source)


def checksum_matches(record: BlobRecord, checksum: str) -> bool:
    """Whether data whose base64 MD5 is `checksum` is what `record` says the object holds."""
    return record.checksum == checksum


def _record(row: tuple[Any, ...]) -> BlobRecord:
    key, content_type, metadata, size, checksum, etag, created_at, parts, content_type_from = row
    return BlobRecord(
        key=key,
        size=size,
        checksum=checksum,
        etag=etag,
        content_type=content_type,
        metadata=json.loads(metadata),
        created_at=created_at,
        part_checksums=json.loads(parts),
        content_type_from=content_type_from,
    )


__all__ = ["BlobRecord", "BlobRecords", "checksum_matches", "md5_base64_of_file"]
