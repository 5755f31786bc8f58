"""An in-process bucket: the reference backend for tests of the layers above storage."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from .base import (
    Capabilities,
    IntegrityError,
    ListPage,
    MultipartUpload,
    NotFound,
    ObjectInfo,
    Payload,
    PreconditionFailed,
    Storage,
    UploadedPart,
    payload_bytes,
    verify_md5,
)
from .listing import page_of_keys
from .settings import SettingNames, Settings


@dataclass
class _Object:
    info: ObjectInfo
    body: bytes


@dataclass
class _Upload:
    meta: MultipartUpload
    metadata: dict[str, str] | None
    content_type: str | None
    parts: dict[int, tuple[str, bytes]]


class MemoryStorage(Storage):
    """Objects in a dict, behaving as S3 does (etag = MD5 hex, multipart etag with a part count).

    Buckets (objects and uploads in progress) are shared by name within a process, so a test
    can mount `memory://name` twice, or look at what a mount left behind.
    """

    scheme = "memory"
    names = SettingNames(bucket="MEMORY_BUCKET_NAME")
    capabilities = Capabilities(
        conditional_write=True, metadata_in_listing=True, min_part_size=1, etag_is_md5=True
    )
    _buckets: dict[str, dict[str, _Object]] = {}
    _bucket_uploads: dict[str, dict[str, _Upload]] = {}
    _bucket_locks: dict[str, threading.Lock] = {}
    _ids = itertools.count(1)

    def __init__(self, bucket: str = "default") -> None:
        self.bucket = bucket
        self._objects = self._buckets.setdefault(bucket, {})
        self._uploads = self._bucket_uploads.setdefault(bucket, {})
        self._lock = self._bucket_locks.setdefault(bucket, threading.Lock())

    @classmethod
    def url_settings(cls, bucket: str, path: str, variant: str | None = None) -> dict[str, str]:
        """`memory://` alone is the bucket named `default`."""
        return super().url_settings(bucket or "default", path, variant)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        return cls(settings.get("MEMORY_BUCKET_NAME", "default"))

    def describe(self) -> str:
        return f"memory://{self.bucket}"

    def check(self) -> None:
        """A memory bucket always exists."""

    def stat(self, key: str) -> ObjectInfo:
        return self._get(key).info

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        body = self._get(key).body
        end = len(body) if length is None else offset + length
        return body[offset:end]

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        body = self._get(key).body
        yield body[offset:]

    def write(
        self,
        key: str,
        data: Payload,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        md5: str | None = None,
    ) -> ObjectInfo:
        body = payload_bytes(data)
        verify_md5(key, body, md5)
        with self._lock:
            self._check_condition(key, if_match, if_none_match)
            return self._store(key, body, hashlib.md5(body).hexdigest(), metadata, content_type)

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        with self._lock:
            snapshot = {k: o.info for k, o in self._objects.items() if k.startswith(prefix)}
        return page_of_keys(snapshot, prefix, delimiter, token, limit)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        with self._lock:
            source = self._get(src)
            return self._store(
                dst,
                source.body,
                source.info.etag,
                source.info.metadata if metadata is None else metadata,
                content_type or source.info.content_type,
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        upload_id = f"upload-{next(self._ids)}"
        with self._lock:
            self._uploads[upload_id] = _Upload(
                MultipartUpload(key, upload_id, time.time()), metadata, content_type, {}
            )
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        body = payload_bytes(data)
        verify_md5(key, body, md5, f"part {number}")
        etag = hashlib.md5(body).hexdigest()
        with self._lock:
            self._upload(key, upload_id).parts[number] = (etag, body)
        return UploadedPart(number, etag)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        with self._lock:
            upload = self._upload(key, upload_id)
            chunks = []
            for part in parts:
                stored = upload.parts.get(part.number)
                if stored is None or stored[0] != part.etag:
                    raise IntegrityError(f"part {part.number} of {key} was not uploaded", key=key)
                chunks.append(stored[1])
            digest = hashlib.md5(b"".join(bytes.fromhex(part.etag) for part in parts))
            del self._uploads[upload_id]
            etag = f"{digest.hexdigest()}-{len(parts)}"
            return self._store(key, b"".join(chunks), etag, upload.metadata, upload.content_type)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        with self._lock:
            return [u.meta for u in self._uploads.values() if u.meta.key.startswith(prefix)]

    # -- helpers -------------------------------------------------------------------------

    def _get(self, key: str) -> _Object:
        found = self._objects.get(key)
        if found is None:
            raise NotFound(f"no such key: {key}", key=key)
        return found

    def _upload(self, key: str, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.meta.key != key:
            raise NotFound(f"no such upload {upload_id} for {key}", key=key)
        return upload

    def _check_condition(self, key: str, if_match: str | None, if_none_match: bool) -> None:
        current = self._objects.get(key)
        if if_none_match and current is not None:
            raise PreconditionFailed(f"{key} already exists", key=key)
        if if_match is not None and (current is None or current.info.etag != if_match):
            raise PreconditionFailed(f"{key} changed since etag {if_match}", key=key)

    def _store(
        self,
        key: str,
        body: bytes,
        etag: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
    ) -> ObjectInfo:
        info = ObjectInfo(key, len(body), etag, time.time(), content_type, dict(metadata or {}))
        self._objects[key] = _Object(info, body)
        return replace(info)
