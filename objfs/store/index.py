"""The local index that makes a search cost listings, not a GET per item.

A row is one object version: its key, its etag, and the item it held (NULL for an object that
is not a JSON object, so a broken file is not fetched again on every search). A search lists
the namespace prefix and fetches only objects whose etag differs from their row; rows of keys
the listing no longer shows are dropped. A row is only ever a copy of what an etag names, so a
lost or stale index costs requests, never a wrong answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..cache.sqlite import SqliteStore
from .items import Item, item_from_json

TOP = "\U0010ffff"
"""Sorts after every character, so [prefix, prefix + TOP) is every key starting with prefix."""
UNDER = "source = ? AND object_key >= ? AND object_key < ?"


class ItemIndex(SqliteStore):
    schema = """
    CREATE TABLE IF NOT EXISTS store_items (
        source TEXT NOT NULL,
        object_key TEXT NOT NULL,
        etag TEXT NOT NULL,
        item TEXT,
        PRIMARY KEY (source, object_key)
    ) WITHOUT ROWID;
    """

    def __init__(self, path: str, source: str) -> None:
        super().__init__(path)
        self.source = source
        """The bucket (`storage.describe()`), so one cache directory can serve several."""

    def etags_under(self, prefix: str) -> dict[str, str]:
        rows = self.execute(
            f"SELECT object_key, etag FROM store_items WHERE {UNDER}", (self.source, prefix, prefix + TOP)
        )
        return dict(rows)

    def items_under(self, prefix: str) -> list[Item]:
        rows = self.execute(
            f"SELECT item FROM store_items WHERE {UNDER} AND item IS NOT NULL",
            (self.source, prefix, prefix + TOP),
        )
        return [item_from_json(json.loads(row[0])) for row in rows]

    def get(self, object_key: str, etag: str) -> Item | None:
        rows = self.execute(
            "SELECT item FROM store_items WHERE source = ? AND object_key = ? AND etag = ?"
            " AND item IS NOT NULL",
            (self.source, object_key, etag),
        )
        return item_from_json(json.loads(rows[0][0])) if rows else None

    def put(self, rows: Iterable[tuple[str, str, Item | None]]) -> None:
        """Record (object key, etag, item or None) rows in one transaction."""
        values = [
            (self.source, key, etag, None if item is None else json.dumps(item.to_json()))
            for key, etag, item in rows
        ]
        self._in_transaction("INSERT OR REPLACE INTO store_items VALUES (?, ?, ?, ?)", values)

    def forget(self, object_keys: Iterable[str]) -> None:
        values = [(self.source, key) for key in object_keys]
        self._in_transaction("DELETE FROM store_items WHERE source = ? AND object_key = ?", values)

    def _in_transaction(self, sql: str, values: list[tuple[str | None, ...]]) -> None:
        """One commit for many rows: a cold search of 10,000 items is one write, not 10,000."""
        if not values:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, values)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
