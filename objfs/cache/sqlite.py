"""The one way the cache's small SQLite stores open their database and share it between threads."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any


class SqliteStore:
    """A database file in the cache directory, used from the trio loop and from worker threads.

    WAL with synchronous=NORMAL: a crash may lose the last records but never corrupts the file,
    and a write costs no fsync, which matters because records are written on every upload.
    """

    schema: str = ""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(self.schema)
        self._lock = threading.Lock()

    def execute(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
