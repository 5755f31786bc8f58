"""The unified storage interface every backend implements.

The filesystem, the cache and the item store talk only to `Storage`; they never see an SDK
type or exception. A backend implements the primitives (the abstract methods below) once,
and the seed's convenience interface (`save`, `load`, `download`, `exists`, `scan`, ...) is
built here on top of them so it behaves the same on every backend.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import os
import socket
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, ClassVar

if TYPE_CHECKING:
    from .settings import SettingNames, Settings

Payload = bytes | BinaryIO
"""What `write` and `upload_part` accept: bytes in memory, or a readable file positioned at 0."""

STREAM_CHUNK = 1024 * 1024
MD5_CHUNK = 5 * 1024 * 1024


class StorageError(Exception):
    """Base of every error a backend raises; `errno` is what a filesystem caller should report."""

    errno: ClassVar[int] = errno.EIO

    def __init__(self, message: str, *, key: str | None = None, request_id: str | None = None):
        super().__init__(message)
        self.key = key
        self.request_id = request_id


class NotFound(StorageError):
    errno = errno.ENOENT


class PermissionDenied(StorageError):
    errno = errno.EACCES


class IntegrityError(StorageError):
    errno = errno.EIO


class Unavailable(StorageError):
    """The service could not be reached or answered with a server-side failure."""

    errno = errno.EIO


class BadConfiguration(StorageError):
    errno = errno.EINVAL


class PreconditionFailed(StorageError):
    """A conditional write lost: the etag changed, or the key exists when absence was required."""

    errno = errno.EEXIST


class Unsupported(StorageError):
    """The backend lacks the operation; its capabilities say so and callers fall back."""

    errno = errno.ENOTSUP


class InvalidKey(StorageError):
    errno = errno.EINVAL


class NoSpace(StorageError):
    """No room for the object or its metadata (a full disk, a quota, an xattr block): retrying
    cannot help, so it is reported at once."""

    errno = errno.ENOSPC


class Archived(StorageError):
    """The object sits in an archive storage class (Glacier, Archive, Cold) and must be restored
    before it can be read. EREMOTE, as s3fs reports it: the data is not here to be read."""

    errno = errno.EREMOTE


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so callers choose a strategy instead of catching `Unsupported`."""

    copy: bool = True
    multipart: bool = True
    conditional_write: bool = False
    metadata_in_listing: bool = False
    ranged_read: bool = True
    min_part_size: int = 5 * 1024 * 1024
    max_part_count: int = 10_000
    max_metadata_bytes: int | None = 2048
    etag_is_md5: bool = False
    """A single-request object's etag is the MD5 of its bytes (S3 without KMS or SSE-C), so a
    whole read can be checked against it."""
    local_disk: bool = False
    """The objects already are files on this host: a disk cache would only copy them again."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object's attributes. `metadata is None` means the source (an S3 listing) did not say."""

    key: str
    size: int
    etag: str
    mtime: float
    content_type: str | None = None
    metadata: dict[str, str] | None = None


@dataclass
class ListPage:
    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True)
class UploadedPart:
    number: int
    etag: str


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: float


def payload_size(data: Payload) -> int:
    if isinstance(data, bytes | bytearray | memoryview):
        return len(data)
    try:
        return os.fstat(data.fileno()).st_size
    except (AttributeError, io.UnsupportedOperation):  # BytesIO has fileno(), but it raises
        return len(data.getvalue())


def payload_bytes(data: Payload) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    data.seek(0)
    return data.read()


def one_line(text: object) -> str:
    """`text` with its white space collapsed: SDK messages span lines, and a log line or an error
    message must stay one line."""
    return " ".join(str(text).split())


def raised_from(exc: BaseException) -> BaseException | None:
    """The next link of an exception chain: what `exc` was raised from, or while handling."""
    return exc.__cause__ or exc.__context__


def unreachable_reason(
    exc: BaseException,
    next_cause: Callable[[BaseException], BaseException | None] = raised_from,
    detail: str | None = None,
) -> str:
    """Why no connection was made, in words a user can act on.

    SDKs wrap the socket error of a failed connection in one or more exceptions of their own, so
    the chain from `exc` is walked (by `next_cause`, for SDKs that keep the cause elsewhere) for a
    refused connection or an unknown host; failing those, `detail` (else `exc`'s text) says it.
    """
    cause: BaseException | None = exc
    while cause is not None:
        reason = socket_reason(cause)
        if reason is not None:
            return reason
        cause = next_cause(cause)
    return f"connection failed ({one_line(exc) if detail is None else detail})"


def socket_reason(exc: BaseException) -> str | None:
    """'connection refused' or 'host name not found' when `exc` is that socket error, else None."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    return None


@contextlib.contextmanager
def absent_fails_if_match(key: str, if_match: str | None) -> Iterator[None]:
    """Turn NotFound from a write conditional on `if_match` into PreconditionFailed.

    Services answer If-Match on an absent key with 404, but to the contract the write lost its
    condition: there is no object with that etag to replace.
    """
    try:
        yield
    except NotFound as exc:
        if if_match is None:
            raise
        message = f"{key} does not exist, so it cannot match etag {if_match}"
        raise PreconditionFailed(message, key=key, request_id=exc.request_id) from exc


def content_md5(data: Payload) -> str:
    """Base64 MD5 as S3's Content-MD5 and the blob records use it; read in 5 MB chunks."""
    digest = hashlib.md5()
    if isinstance(data, bytes | bytearray | memoryview):
        digest.update(data)
    else:
        data.seek(0)
        for chunk in iter(lambda: data.read(MD5_CHUNK), b""):
            digest.update(chunk)
        data.seek(0)
    return base64.b64encode(digest.digest()).decode()


def verify_md5(key: str, data: Payload, md5: str | None, what: str = "the body") -> None:
    """Compare a payload with its MD5 before sending it, for services that check no Content-MD5
    (and for the in-process backends, which stand in for the ones that do)."""
    if md5 is not None and content_md5(data) != md5:
        raise IntegrityError(f"{what} of {key} does not match its MD5", key=key)


class Storage(ABC):
    """One bucket (or container, or folder) of one service.

    Keys are full keys inside the bucket; the mount's prefix is the filesystem's business.
    Every method may block: callers on the trio loop run them in worker threads.
    """

    scheme: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    names: ClassVar[SettingNames]
    flag_names: ClassVar[dict[str, str]] = {}
    """Backend-specific command-line flags and the settings they write, e.g. S3's addressing style."""

    @classmethod
    def url_settings(cls, bucket: str, path: str, variant: str | None = None) -> dict[str, str]:
        """The settings `scheme[+variant]://bucket/path` stands for: the bucket and the prefix."""
        if variant is not None:
            raise BadConfiguration(f"{cls.scheme}+{variant}: the {cls.scheme} scheme has no variants")
        if not bucket:
            raise BadConfiguration(f"a {cls.scheme} URL needs a bucket: {cls.scheme}://bucket/prefix")
        assert cls.names.bucket is not None  # a backend without a bucket setting overrides this
        return {cls.names.bucket: bucket, cls.names.prefix: path}

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Storage:
        """Build from settings (see `objfs.storage.settings`); the prefix is the registry's business.

        Raises `BadConfiguration` naming the setting that is missing or malformed, never its value.
        """

    @abstractmethod
    def describe(self) -> str:
        """A location string for messages, e.g. `s3://bucket`; never contains a secret."""

    @abstractmethod
    def check(self) -> None:
        """Prove the bucket exists and the credentials work, with one cheap request."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo: ...

    @abstractmethod
    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes `[offset, offset+length)`; fewer at the end of the object, none past it."""

    @abstractmethod
    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """The object from `offset` to its end, as one streaming request."""

    @abstractmethod
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
        """Store a whole object in one request; the returned info carries the new etag.

        `md5` (base64) is checked by the service against the bytes it received: a mismatch is
        an `IntegrityError` and nothing is stored.
        """

    @abstractmethod
    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        """One page of the keys under `prefix`, in key order, with sub-prefixes when delimited."""

    @abstractmethod
    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Server-side copy; `metadata` replaces the source's when given, else it is kept."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; deleting an absent key is not an error (as on S3)."""

    @abstractmethod
    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        """Start a multipart upload and return its id."""

    @abstractmethod
    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        """Upload part `number` (1-based); the service verifies the base64 `md5`."""

    @abstractmethod
    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo: ...

    def complete_multipart_if(
        self,
        key: str,
        upload_id: str,
        parts: list[UploadedPart],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        """Complete only over version `if_match` of `key`, or only where there is none (`if_none_match`).

        A retry of bytes whose first upload failed must not overwrite what another writer stored
        meanwhile. Checked with a stat just before completing (see `check_conditions`); a
        backend whose service checks such conditions in the request does both.
        """
        self.check_conditions(key, if_match, if_none_match)
        return self.complete_multipart(key, upload_id, parts)

    @abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None: ...

    @abstractmethod
    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        """Uploads started and neither completed nor aborted, so a restart can clean them."""

    def url(self, key: str, expires: int = 3600) -> str:
        """A URL a browser can fetch; backends with presigning override this."""
        raise Unsupported(f"{self.scheme} has no URLs", key=key)

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release connections; the default has nothing to release."""

    # -- the seed's interface, built once on the primitives -------------------------------

    def save(self, filename: str, data: bytes) -> None:
        self.write(filename, data)

    def load_once(self, filename: str) -> bytes:
        return self.read(filename)

    def load_stream(self, filename: str) -> Iterator[bytes]:
        return self.read_stream(filename)

    def load(self, filename: str, *, stream: bool = False) -> bytes | Iterator[bytes]:
        return self.load_stream(filename) if stream else self.load_once(filename)

    def download(self, filename: str, target_filepath: str) -> None:
        """Stream into a temporary file beside the target, then rename, so no half file is left."""
        tmp = f"{target_filepath}.objfs-part"
        try:
            with open(tmp, "wb") as out:
                for chunk in self.read_stream(filename):
                    out.write(chunk)
            os.replace(tmp, target_filepath)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def exists(self, filename: str) -> bool:
        try:
            self.stat(filename)
        except NotFound:
            return False
        return True

    def iter_objects(self, prefix: str = "", delimiter: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, following pages."""
        token = None
        while True:
            page = self.list(prefix, delimiter=delimiter, token=token)
            yield from page.objects
            token = page.next_token
            if not token:
                return

    def scan(self, path: str, files: bool = True, directories: bool = False) -> list[str]:
        """Paths under `path` relative to it, as the seed's scan returns them."""
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        found: set[str] = set()
        for info in self.iter_objects(prefix):
            rel = info.key[len(prefix) :]
            parts = rel.rstrip("/").split("/")
            if directories:
                found.update("/".join(parts[:i]) for i in range(1, len(parts)))
                if info.key.endswith("/") and rel:
                    found.add(rel.rstrip("/"))
            if files and rel and not info.key.endswith("/"):
                found.add(rel)
        return sorted(found)

    def check_conditions(self, key: str, if_match: str | None, if_none_match: bool) -> None:
        """Write conditions checked with a stat, for services that cannot check them in the write.

        Another writer can land between this check and the write, so a backend using it declares
        `conditional_write=False`; it still stops the common case of a stale or clashing write.
        """
        if if_match is None and not if_none_match:
            return
        try:
            current = self.stat(key).etag
        except NotFound:
            current = None
        if if_none_match and current is not None:
            raise PreconditionFailed(f"{key} already exists", key=key)
        if if_match is not None and current != if_match:
            raise PreconditionFailed(f"{key} changed: its etag is no longer {if_match}", key=key)

    def copy_via_client(
        self, src: str, dst: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> ObjectInfo:
        """Copy by download and upload, for backends whose service has no server-side copy."""
        info = self.stat(src)
        with tempfile.TemporaryFile() as buf:
            for chunk in self.read_stream(src):
                buf.write(chunk)
            buf.seek(0)
            return self.write(
                dst,
                buf,
                metadata=info.metadata if metadata is None else metadata,
                content_type=content_type or info.content_type,
            )


class WithoutMultipart(Storage):
    """A backend whose service has no multipart uploads. It declares `multipart=False`, so the
    filesystem writes each object in one request; these refuse, naming the service."""

    multipart_refusal: ClassVar[str] = ""
    """What follows `<scheme> has no multipart uploads` in the refusal: what bounds one upload."""

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        raise self._no_multipart(key)

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        raise self._no_multipart(key)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        raise self._no_multipart(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        raise self._no_multipart(key)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        """None can be in progress: `create_multipart` never starts one."""
        return []

    def _no_multipart(self, key: str | None) -> Unsupported:
        return Unsupported(f"{self.scheme} has no multipart uploads{self.multipart_refusal}", key=key)


__all__ = [
    "Archived",
    "BadConfiguration",
    "Capabilities",
    "IntegrityError",
    "InvalidKey",
    "ListPage",
    "MultipartUpload",
    "NoSpace",
    "NotFound",
    "ObjectInfo",
    "Payload",
    "PermissionDenied",
    "PreconditionFailed",
    "Storage",
    "StorageError",
    "Unavailable",
    "Unsupported",
    "UploadedPart",
    "WithoutMultipart",
    "absent_fails_if_match",
    "content_md5",
    "one_line",
    "payload_bytes",
    "payload_size",
    "raised_from",
    "socket_reason",
    "unreachable_reason",
    "verify_md5",
]
