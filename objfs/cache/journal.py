"""What this cache directory has started in the bucket and not yet finished.

A multipart upload left behind by a crash holds billed, invisible parts. Each upload id is
written here before its first part and removed when it completes or is aborted, so the next
mount aborts exactly the uploads this cache started, never another client's.
"""

from __future__ import annotations

import time

from .sqlite import SqliteStore


class Journal(SqliteStore):
    schema = """
    CREATE TABLE IF NOT EXISTS multipart_uploads (
        upload_id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        started REAL NOT NULL
    );
    """

    def upload_started(self, key: str, upload_id: str) -> None:
        self.execute(
            "INSERT OR REPLACE INTO multipart_uploads VALUES (?, ?, ?)", (upload_id, key, time.time())
        )

    def upload_ended(self, upload_id: str) -> None:
        self.execute("DELETE FROM multipart_uploads WHERE upload_id = ?", (upload_id,))

    def unfinished_uploads(self) -> list[tuple[str, str]]:
        """(key, upload id) of every upload started here and never completed or aborted."""
        return [
            (key, upload_id)
            for key, upload_id in self.execute(
                "SELECT key, upload_id FROM multipart_uploads ORDER BY started"
            )
        ]
