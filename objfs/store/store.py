"""The item store of the seed (Store/BaseStore) over any objfs backend, browsable through a mount.

Items are files (`PREFIX/ns1/ns2/KEY.json`, see `names`) holding their value as JSON, with the
timestamps in the object's metadata (see `items`). Every write is one object, so writers of
different items never meet. Two writers of one item: the last write wins, whole (value and
timestamps), unless the caller asks for a conditional write (`if_match=item.etag`, or
`conflict="error"`), which fails with `StoreConflict` instead of overwriting. Backends with
atomic conditional writes (S3, local folders, memory, ...) make that check exact; the others
check with a stat just before the write (see their capabilities).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from ..cli.options import default_cache_dir
from ..storage.base import NotFound, ObjectInfo, PreconditionFailed, Storage, content_md5
from ..storage.registry import open_location
from .index import ItemIndex
from .items import (
    CONTENT_TYPE,
    CorruptItem,
    Item,
    StoreConflict,
    check_count,
    check_key,
    check_namespace,
    check_put_key,
    decode_value,
    encode_value,
    item_of,
    now_ms,
    stamp,
    timestamps,
)
from .names import Namespace, item_path, namespace_path, parse_item_path
from .query import Sort, check_filter, check_sort, matches, ordered

INDEX_FILE = "store-index.sqlite"
log = logging.getLogger(__name__)
PARALLEL = 16
"""Objects fetched (or deleted) at once: a cold search is bound by round trips, not bandwidth."""


@dataclass(frozen=True)
class SearchResult:
    items: list[Item]
    total: int
    """How many items matched, before `offset` and `limit`."""


class Store:
    """`Store(storage_or_url, prefix=..., cache_dir=...)`; close it (or use `with`) when done.

    A URL is opened as `objfs mount` opens its SOURCE (its prefix comes before `prefix`); the
    store then owns that storage and closes it. `cache_dir` holds the search index (default: the
    directory a mount of the same source uses, so `objfs store` and the API share one index).
    """

    def __init__(self, backend_or_url: Storage | str, prefix: str = "", cache_dir: str | None = None) -> None:
        if isinstance(backend_or_url, str):
            location = open_location(backend_or_url, base=os.environ)
            self.storage, base, self._owned = location.storage, location.prefix, True
        else:
            self.storage, base, self._owned = backend_or_url, "", False
        self.prefix = "/".join(part for part in (base, prefix.strip("/")) if part)
        self._base = f"{self.prefix}/" if self.prefix else ""
        source = self.storage.describe()
        self.cache_dir = cache_dir or default_cache_dir(f"{source}/{self.prefix}".rstrip("/"))
        self._index = ItemIndex(os.path.join(self.cache_dir, INDEX_FILE), source)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._index.close()
        if self._owned:
            self.storage.close()

    # -- the seed's operations -------------------------------------------------------------

    def put_item(
        self,
        namespace: Sequence[str],
        key: str,
        value: Mapping[str, Any],
        *,
        if_match: str | None = None,
        conflict: Literal["overwrite", "error"] = "overwrite",
    ) -> Item:
        """Insert or update; an update keeps `created_at`. Returns the item with its new etag.

        `if_match`: write only over that version of the item (an `Item.etag`). `conflict="error"`:
        write only over the version this put finds (or only if it finds none), so a writer landing
        in between makes this put fail rather than be silently overwritten or overwrite it.
        """
        namespace, key = check_namespace(namespace), check_put_key(key)
        if conflict not in ("overwrite", "error"):
            raise ValueError("conflict must be 'overwrite' or 'error'")
        body = encode_value(value)
        object_key = self._object_key(namespace, key)
        current = self._stat(object_key)
        if if_match is not None and (current is None or current.etag != if_match):
            found = "it no longer exists" if current is None else f"it is now version {current.etag}"
            raise _conflict(namespace, key, f"expected version {if_match}, but {found}")
        created_at, updated_at = _next_times(current)
        expected = if_match or (current.etag if conflict == "error" and current is not None else None)
        try:
            info = self.storage.write(
                object_key,
                body,
                metadata=stamp(body, created_at, updated_at),
                content_type=CONTENT_TYPE,
                md5=content_md5(body),
                if_match=expected,
                if_none_match=conflict == "error" and current is None,
            )
        except PreconditionFailed:
            reason = "another writer " + ("created it meanwhile" if expected is None else "changed it")
            raise _conflict(namespace, key, reason) from None
        item = Item(namespace, key, decode_value(body, object_key), created_at, updated_at, info.etag)
        self._index.put([(object_key, info.etag, item)])
        return item

    def get_item(self, namespace: Sequence[str], key: str) -> Item | None:
        """One HEAD when the index knows this version; a HEAD and a GET otherwise."""
        namespace, key = check_namespace(namespace), check_key(key)
        object_key = self._object_key(namespace, key)
        info = self._stat(object_key)
        if info is None:
            return None
        known = self._index.get(object_key, info.etag)
        if known is not None:
            return known
        got = self._download(info)
        if got is None:
            return None
        item = self._item(*got)
        self._index.put([(object_key, item.etag, item)])
        return item

    def delete_item(self, namespace: Sequence[str], key: str) -> bool:
        """Whether the item existed (a HEAD, since a DELETE does not say)."""
        namespace, key = check_namespace(namespace), check_key(key)
        object_key = self._object_key(namespace, key)
        existed = self._stat(object_key) is not None
        if existed:
            self.storage.delete(object_key)
        self._index.forget([object_key])
        return existed

    def search_items(
        self,
        namespace_prefix: Sequence[str] = (),
        *,
        filter: Mapping[str, Any] | None = None,
        query: str | None = None,
        sort: Sort = None,
        offset: int = 0,
        limit: int = 10,
    ) -> SearchResult:
        """Items under `namespace_prefix` (whole segments) that match; see `query` for the rules."""
        namespace = check_namespace(namespace_prefix, "namespace_prefix")
        conditions, order = check_filter(filter), check_sort(sort)
        offset, limit = check_count("offset", offset), check_count("limit", limit)
        if query is not None and not isinstance(query, str):
            raise ValueError("query must be a string")
        found = [item for item in self._refresh(namespace) if matches(item, conditions, query)]
        return SearchResult(ordered(found, order)[offset : offset + limit], len(found))

    def list_namespaces(
        self,
        prefix: Sequence[str] = (),
        suffix: Sequence[str] = (),
        max_depth: int | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[Namespace]:
        """Namespaces holding items, in order, each cut to `max_depth` segments (duplicates merged).

        Costs listings only: a namespace is known from object keys alone.
        """
        prefix, suffix = check_namespace(prefix, "prefix"), check_namespace(suffix, "suffix")
        depth = None if max_depth is None else check_count("max_depth", max_depth)
        offset, limit = check_count("offset", offset), check_count("limit", limit)
        found = {
            namespace[:depth]
            for _, (namespace, _) in self._listed(prefix)
            if not suffix or namespace[-len(suffix) :] == suffix
        }
        return sorted(found)[offset : offset + limit]

    def clear(self) -> int:
        """Delete every item under the prefix (other objects stay); returns how many there were."""
        keys = [info.key for info, _ in self._listed(())]
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(self.storage.delete, keys))
        self._index.forget(self._index.etags_under(self._base))
        return len(keys)

    def size(self) -> int:
        """Objects named as items (listings only: a broken body is counted, and skipped by search)."""
        return sum(1 for _ in self._listed(()))

    def is_empty(self) -> bool:
        return next(self._listed(()), None) is None

    # -- objects ---------------------------------------------------------------------------

    def _root(self, namespace: Namespace) -> str:
        return self._base + namespace_path(namespace)

    def _object_key(self, namespace: Namespace, key: str) -> str:
        return self._base + item_path(namespace, key)

    def _stat(self, object_key: str) -> ObjectInfo | None:
        try:
            return self.storage.stat(object_key)
        except NotFound:
            return None

    def _listed(self, namespace: Namespace) -> Iterator[tuple[ObjectInfo, tuple[Namespace, str]]]:
        """Every item object under `namespace`, with the namespace and key its name stores."""
        for info in self.storage.iter_objects(self._root(namespace)):
            parsed = parse_item_path(info.key[len(self._base) :])
            if parsed is not None:
                yield info, parsed

    def _download(self, info: ObjectInfo) -> tuple[ObjectInfo, Mapping[str, str] | None, bytes] | None:
        """The object's info, metadata and body; None if it was deleted meanwhile.

        Without metadata (an S3 listing has none) a stat comes first, then the GET: if the object
        changes between the two, the index holds the older etag with the newer body, and the
        next listing's etag makes the next search fetch it again.
        """
        try:
            if info.metadata is None:
                info = self.storage.stat(info.key)
            return info, info.metadata, self.storage.read(info.key)
        except NotFound:
            return None

    def _item(self, info: ObjectInfo, metadata: Mapping[str, str] | None, body: bytes) -> Item:
        namespace, key = parse_item_path(info.key[len(self._base) :]) or ((), "")
        return item_of(namespace, key, info, metadata, body)

    def _index_row(self, info: ObjectInfo) -> tuple[str, str, Item | None] | None:
        """A search's row for a listed object; a broken body is recorded as None (so it is not
        fetched again until it changes) and skipped with a warning rather than failing the search."""
        got = self._download(info)
        if got is None:
            return None
        try:
            item: Item | None = self._item(*got)
        except CorruptItem as exc:
            log.warning("skipping %s", exc)
            item = None
        return got[0].key, got[0].etag, item

    def _refresh(self, namespace: Namespace) -> list[Item]:
        """Bring the index up to date with a listing of `namespace`, then read the items from it."""
        root = self._root(namespace)
        known = self._index.etags_under(root)
        listed = {info.key: info for info, _ in self._listed(namespace)}
        stale = [info for key, info in listed.items() if known.get(key) != info.etag]
        with ThreadPoolExecutor(PARALLEL) as pool:
            self._index.put([row for row in pool.map(self._index_row, stale) if row is not None])
        self._index.forget(key for key in known if key not in listed)
        return self._index.items_under(root)


def _next_times(current: ObjectInfo | None) -> tuple[int, int]:
    """(created_at, updated_at) of a put: an update keeps created_at, and its updated_at is
    strictly later than the last one, even within the same millisecond."""
    now = now_ms()
    if current is None:
        return now, now
    created_at, updated_at = timestamps(current, current.metadata, None)
    return created_at, max(now, updated_at + 1)


def _conflict(namespace: Namespace, key: str, reason: str) -> StoreConflict:
    name = "/".join([*namespace, key])
    return StoreConflict(f"conflict on item {name}: {reason}; get it again and retry", key=name)
