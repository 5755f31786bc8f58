"""Scheme -> backend class, and the parsing of a SOURCE URL into a backend and a key prefix.

Backends are named by import path and imported only when used, so mounting a local folder
never imports a cloud SDK. Adding a backend is one module and one line in `BACKENDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .base import BadConfiguration, Storage

BACKENDS: dict[str, str] = {
    "memory": "objfs.storage.memory:MemoryStorage",
    "local": "objfs.storage.local:LocalStorage",
    "s3": "objfs.storage.s3:S3Storage",
}


class UnknownScheme(BadConfiguration):
    """The SOURCE names a scheme no backend serves."""


@dataclass(frozen=True)
class Location:
    """What a SOURCE URL names: the bucket's backend and the prefix inside it (no slashes around)."""

    storage: Storage
    prefix: str


def backend_class(scheme: str) -> type[Storage]:
    target = BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise UnknownScheme(f"unknown storage scheme {scheme!r} (known: {known})")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_location(source: str, options: Mapping[str, str] | None = None) -> Location:
    """Build the backend a SOURCE URL names; `options` carries flags like `endpoint_url`.

    `local:///srv/bucket` is a folder; `scheme://bucket/prefix` is a bucket and a prefix.
    """
    parts = urlsplit(source)
    if not parts.scheme:
        raise UnknownScheme(f"{source!r} is not a storage URL; try local:///path or s3://bucket/prefix")
    cls = backend_class(parts.scheme)
    bucket, path = unquote(parts.netloc), unquote(parts.path)
    storage, prefix = cls.from_url(bucket, path, dict(options or {}))
    return Location(storage, prefix.strip("/"))
