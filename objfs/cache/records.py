"""A persistent record of each object's user metadata, valid for one etag.

S3-style listings carry size, etag and last-modified but no user metadata, so `ls -l` would
need a HEAD per entry to show mode, owner and mtime. Whatever this host wrote or looked up
is remembered here, keyed by key and etag: a listing entry whose etag matches its record
gets its attributes with no request, across remounts; a changed etag makes the record moot.
"""

from __future__ import annotations

import json

from .sqlite import SqliteStore


class MetadataRecords(SqliteStore):
    schema = """
    CREATE TABLE IF NOT EXISTS meta_records (
        key TEXT PRIMARY KEY,
        etag TEXT NOT NULL,
        metadata TEXT NOT NULL
    );
    """

    def get(self, key: str, etag: str) -> dict[str, str] | None:
        rows = self.execute("SELECT metadata FROM meta_records WHERE key = ? AND etag = ?", (key, etag))
        return json.loads(rows[0][0]) if rows else None

    def put(self, key: str, etag: str, metadata: dict[str, str]) -> None:
        self.execute(
            "INSERT OR REPLACE INTO meta_records (key, etag, metadata) VALUES (?, ?, ?)",
            (key, etag, json.dumps(metadata, sort_keys=True)),
        )

    def forget(self, key: str) -> None:
        self.execute("DELETE FROM meta_records WHERE key = ?", (key,))
