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
        self._probes: dict[str, int] = {}

    def fresh(self, path: str) -> dict[str, V] | None:
        found = self._listings.get(path)
        if found is None or time.monotonic() - found[0] >= self.ttl:
            return None
        return found[1]

    def store(self, path: str, entries: dict[str, V]) -> None:
        self._listings[path] = (time.monotonic(), entries)
        self._probes.pop(path, None)

    def worth_listing(self, path: str, small: int, probes: int) -> bool:
        """Whether listing `path` again beats probing names in it one by one.

        True for a directory that was small when last listed, or in which `probes` names
        have already been probed: one LIST then answers every lookup for the TTL.
        """
        previous = self._listings.get(path)
        if previous is not None and len(previous[1]) <= small:
            return True
        self._probes[path] = self._probes.get(path, 0) + 1
        return self._probes[path] > probes

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
