"""A persistent record of each object's user metadata, valid for one etag.

S3-style listings carry size, etag and last-modified but no user metadata, so `ls -l` would
need a HEAD per entry to show mode, owner and mtime. Whatever this host wrote or looked up
is remembered here, keyed by key and etag: a listing entry whose etag matches its record
gets its attributes with no request, across remounts; a changed etag makes the record moot.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta_records (
    key TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    metadata TEXT NOT NULL
)
"""


class MetadataRecords:
    """SQLite in the cache directory; safe to call from the loop and from worker threads."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, key: str, etag: str) -> dict[str, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT metadata FROM meta_records WHERE key = ? AND etag = ?", (key, etag)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, etag: str, metadata: dict[str, str]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta_records (key, etag, metadata) VALUES (?, ?, ?)",
                (key, etag, json.dumps(metadata, sort_keys=True)),
            )

    def forget(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM meta_records WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
