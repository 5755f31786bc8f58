"""Directory listings kept for a short time, so names need no request while they are fresh.

A fresh listing answers `ls` again without a LIST, and answers a lookup of a name it does
not hold with "absent" without a HEAD: that is what makes `cp -r` into a new directory cost
one PUT per file and nothing else. The mount's own changes edit the cached listings as they
happen; changes made by others are seen once a listing is older than the TTL.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

V = TypeVar("V")


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


class ListingCache(Generic[V]):
    """Directory path -> {name: entry}, each listing trusted for `ttl` seconds after it was taken."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._listings: dict[str, tuple[float, dict[str, V]]] = {}

    def fresh(self, path: str) -> dict[str, V] | None:
        found = self._listings.get(path)
        if found is None or time.monotonic() - found[0] >= self.ttl:
            return None
        return found[1]

    def store(self, path: str, entries: dict[str, V]) -> None:
        self._listings[path] = (time.monotonic(), entries)

    def added(self, path: str, entry: V) -> None:
        """The mount created `path`: a cached listing of its parent now holds it."""
        parent, name = _split(path)
        if parent in self._listings:
            self._listings[parent][1][name] = entry

    def removed(self, path: str) -> None:
        """The mount removed `path`: drop it from its parent's listing and forget listings below it."""
        parent, name = _split(path)
        if parent in self._listings:
            self._listings[parent][1].pop(name, None)
        lead = path + "/"
        for cached in [p for p in self._listings if p == path or p.startswith(lead)]:
            del self._listings[cached]
