"""An item: what the store keeps, how it is checked on the way in, and how it sits in an object.

The object's body is the value alone, as JSON a person reads (indent 2, sorted keys, a final
newline), so `cat` shows it and `echo '{...}' > KEY.json` writes one. The timestamps, epoch
milliseconds as the seed's StoreItem keeps them, live in the object's metadata with the MD5 of
the body they describe: a tool that rewrites the body but keeps the metadata (a mount does)
leaves a mismatch, and the item's `updated_at` is then the object's own modification time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..storage.base import IntegrityError, ObjectInfo, PreconditionFailed, content_md5
from .names import Namespace

CREATED_AT = "objfs-created-at"
UPDATED_AT = "objfs-updated-at"
VALUE_MD5 = "objfs-value-md5"
CONTENT_TYPE = "application/json"


class StoreConflict(PreconditionFailed):
    """A conditional put lost: the item changed (or appeared, or vanished) since the caller saw it."""


class CorruptItem(IntegrityError):
    """An item's object does not hold a JSON object, e.g. a file half-written by hand."""


@dataclass(frozen=True)
class Item:
    namespace: Namespace
    key: str
    value: dict[str, Any]
    created_at: int
    """Epoch milliseconds, as the seed's StoreItem."""
    updated_at: int
    etag: str
    """The object's etag: pass it to `put_item(..., if_match=)` to update only this version."""

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "etag": self.etag,
        }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- validation, with the seed's BaseStore messages -------------------------------------------


def check_namespace(namespace: object, name: str = "namespace") -> Namespace:
    """A namespace as a tuple of segments; a string is refused, since iterating it gives letters."""
    if namespace is None:
        raise ValueError(f"{name} cannot be null")
    if isinstance(namespace, str | bytes) or not isinstance(namespace, Sequence):
        raise ValueError(f"{name} must be a list of strings")
    if not all(isinstance(segment, str) for segment in namespace):
        raise ValueError(f"{name} segments must be strings")
    return tuple(namespace)


def check_put_key(key: object) -> str:
    """putItem's one message for a missing or blank key."""
    if key is not None and not isinstance(key, str):
        raise ValueError("key must be a string")
    if key is None or not key.strip():
        raise ValueError("key cannot be null or empty")
    return key


def check_key(key: object) -> str:
    """getItem's and deleteItem's two messages, one for a missing key and one for a blank key."""
    if key is None:
        raise ValueError("key cannot be null")
    if not isinstance(key, str):
        raise ValueError("key must be a string")
    if not key.strip():
        raise ValueError("key cannot be empty")
    return key


def check_count(name: str, number: object) -> int:
    """An offset, limit or depth: a whole number, not negative (True is not a number here)."""
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValueError(f"{name} must be an integer")
    if number < 0:
        raise ValueError(f"{name} cannot be negative")
    return number


# -- the object: body and metadata ------------------------------------------------------------


def encode_value(value: object) -> bytes:
    if value is None:
        raise ValueError("value cannot be null")
    if not isinstance(value, Mapping):
        raise ValueError("value must be a mapping (a JSON object)")
    try:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value is not JSON-serialisable: {exc}") from None
    return (text + "\n").encode()


def decode_value(body: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptItem(f"{where} is not JSON: {exc}", key=where) from None
    if not isinstance(value, dict):
        raise CorruptItem(f"{where} holds JSON that is not an object", key=where)
    return value


def stamp(body: bytes, created_at: int, updated_at: int) -> dict[str, str]:
    return {CREATED_AT: str(created_at), UPDATED_AT: str(updated_at), VALUE_MD5: content_md5(body)}


def _millis(metadata: Mapping[str, str], name: str) -> int | None:
    text = metadata.get(name, "")
    return int(text) if text.isdigit() else None


def timestamps(info: ObjectInfo, metadata: Mapping[str, str] | None, body: bytes | None) -> tuple[int, int]:
    """(created_at, updated_at) of a stored object.

    Without objfs's metadata (an object a tool wrote) both are its modification time. `updated_at`
    is trusted only while the body is the one it was stamped with (or when the body is not at hand,
    as before a put, where only `created_at` matters); otherwise the body was edited by a tool, at
    the object's modification time.
    """
    mtime = int(info.mtime * 1000)
    metadata = metadata or {}
    created, updated = _millis(metadata, CREATED_AT), _millis(metadata, UPDATED_AT)
    same_body = body is None or metadata.get(VALUE_MD5) == content_md5(body)
    created = mtime if created is None else created
    # a service's mtime may be whole seconds: an edit can never seem older than the creation
    return created, updated if updated is not None and same_body else max(mtime, created)


def item_of(
    namespace: Namespace, key: str, info: ObjectInfo, metadata: Mapping[str, str] | None, body: bytes
) -> Item:
    created_at, updated_at = timestamps(info, metadata, body)
    return Item(namespace, key, decode_value(body, info.key), created_at, updated_at, info.etag)


def item_from_json(data: Mapping[str, Any]) -> Item:
    """The inverse of `Item.to_json`, as the index stores items."""
    return Item(
        tuple(data["namespace"]),
        data["key"],
        data["value"],
        data["created_at"],
        data["updated_at"],
        data["etag"],
    )
