"""What this cache directory has started and not yet finished, so a crash loses nothing.

A multipart upload left behind by a crash holds billed, invisible parts. Each upload id is
written here before its first part and removed when it completes or is aborted, so the next
mount aborts exactly the uploads this cache started, never another client's.

Staged files are journalled the same way: which key each holds, the version it was derived
from, and whether its close was owed. The next mount uploads what a close owed (only if the
object is still that version) and sets aside what was never closed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import NamedTuple

from .sqlite import SqliteStore

OPEN = "open"
"""Staged bytes of a file still open: never closed, so never acknowledged as stored."""
CLOSING = "closing"
"""Staged bytes whose close or fsync was under way, or failed: owed to the bucket."""


class JournalledUpload(NamedTuple):
    key: str
    upload_id: str
    started: float


@dataclass(frozen=True)
class StagedFile:
    path: str
    key: str
    base_etag: str | None
    state: str
    metadata: dict[str, str]
    content_type: str | None


class Journal(SqliteStore):
    schema = """
    CREATE TABLE IF NOT EXISTS multipart_uploads (
        upload_id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        started REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS staged_files (
        path TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        base_etag TEXT,
        state TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        content_type TEXT
    );
    """

    def upload_started(self, key: str, upload_id: str) -> None:
        self.execute(
            "INSERT OR REPLACE INTO multipart_uploads VALUES (?, ?, ?)", (upload_id, key, time.time())
        )

    def upload_ended(self, upload_id: str) -> None:
        self.execute("DELETE FROM multipart_uploads WHERE upload_id = ?", (upload_id,))

    def unfinished_uploads(self) -> list[JournalledUpload]:
        """Every upload started here and never completed or aborted, oldest first."""
        rows = self.execute("SELECT key, upload_id, started FROM multipart_uploads ORDER BY started")
        return [JournalledUpload(*row) for row in rows]

    def staged(self, path: str, key: str, base_etag: str | None) -> None:
        """A staging file now holds `key`'s bytes, derived from the version `base_etag` (None: new)."""
        self.execute(
            "INSERT OR REPLACE INTO staged_files (path, key, base_etag, state) VALUES (?, ?, ?, ?)",
            (path, key, base_etag, OPEN),
        )

    def closing(self, path: str, metadata: dict[str, str], content_type: str | None) -> None:
        self.execute(
            "UPDATE staged_files SET state = ?, metadata = ?, content_type = ? WHERE path = ?",
            (CLOSING, json.dumps(metadata), content_type, path),
        )

    def stored(self, path: str, etag: str | None) -> None:
        """The bytes are in the bucket as `etag`; later writes derive from that version."""
        self.execute("UPDATE staged_files SET state = ?, base_etag = ? WHERE path = ?", (OPEN, etag, path))

    def moved(self, path: str, key: str) -> None:
        self.execute("UPDATE staged_files SET key = ? WHERE path = ?", (key, path))

    def unstaged(self, path: str) -> None:
        self.execute("DELETE FROM staged_files WHERE path = ?", (path,))

    def staged_files(self) -> list[StagedFile]:
        rows = self.execute("SELECT path, key, base_etag, state, metadata, content_type FROM staged_files")
        return [StagedFile(p, k, e, s, json.loads(m), c) for p, k, e, s, m, c in rows]
