"""What the S3-protocol services (S3, OSS, COS, OBS, BOS, TOS) share, whichever SDK speaks to them.

Their SDKs differ, but the services answer alike: the same error codes for the same failures, the
same copy limits and the same UploadPartCopy. So the error tables, the wording of the messages and
the copy strategy live here once, free of any SDK; each backend keeps calling its SDK and reading
its exceptions, and hands this module the code, status and message it found.
"""

from __future__ import annotations

import contextlib
import functools
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from .base import (
    STREAM_CHUNK,
    Archived,
    IntegrityError,
    InvalidKey,
    NotFound,
    ObjectInfo,
    PermissionDenied,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    one_line,
)

COPY_WORKERS = 8
"""Parts of one multipart copy in flight at once; each is a server-side request, so few suffice."""

S3_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    "NoSuchKey": NotFound,
    "NoSuchBucket": NotFound,
    "NoSuchUpload": NotFound,
    "AccessDenied": PermissionDenied,
    "InvalidAccessKeyId": PermissionDenied,
    "SignatureDoesNotMatch": PermissionDenied,
    "PreconditionFailed": PreconditionFailed,
    "BadDigest": IntegrityError,
    "InvalidDigest": IntegrityError,
    "InvalidPart": IntegrityError,
    "InvalidPartOrder": IntegrityError,
    "InvalidObjectState": Archived,
    "RequestTimeout": Unavailable,
}
"""The codes every S3-protocol service answers with, in the same meaning; each vendor extends it."""

AWS_ERRORS_BY_CODE: dict[str, type[StorageError]] = {
    **S3_ERRORS_BY_CODE,
    "NotFound": NotFound,
    "ExpiredToken": PermissionDenied,
    "InvalidToken": PermissionDenied,
    "ConditionalRequestConflict": PreconditionFailed,
    "KeyTooLongError": InvalidKey,
    # throttling arrives as HTTP 400 on some services: transient, so retried
    "SlowDown": Unavailable,
    "Throttling": Unavailable,
    "ThrottlingException": Unavailable,
    "RequestLimitExceeded": Unavailable,
    "TooManyRequestsException": Unavailable,
    "PriorRequestNotComplete": Unavailable,
    "BandwidthLimitExceeded": Unavailable,
}
"""Amazon S3's codes, which S3 itself and services answering in its words (COS) use."""

S3_ERRORS_BY_STATUS: dict[int, type[StorageError]] = {
    403: PermissionDenied,
    404: NotFound,
    412: PreconditionFailed,
    429: Unavailable,
}
"""What an answer without a known code means; a HEAD answer has no body, so no code at all."""

S3_REJECTED_CREDENTIALS = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch"})
"""Codes that mean the credentials themselves are wrong, rather than a policy denying access."""
AWS_REJECTED_CREDENTIALS = S3_REJECTED_CREDENTIALS | {"ExpiredToken", "InvalidToken"}


def error_kind(code: str, status: int, by_code: Mapping[str, type[StorageError]]) -> type[StorageError]:
    """The error an answer stands for: by its code, else its status; any 5xx is worth a retry."""
    kind = by_code.get(code) or S3_ERRORS_BY_STATUS.get(status)
    return kind or (Unavailable if status >= 500 else StorageError)


def byte_range(offset: int, length: int | None) -> str:
    """An HTTP Range (or x-*-copy-source-range) value; `length=None` reads to the end."""
    return f"bytes={offset}-" if length is None else f"bytes={offset}-{offset + length - 1}"


def server_time(date: str | None) -> float:
    """A header date (Date, Last-Modified) in epoch seconds: the service's clock rather than ours,
    so a write's mtime agrees with a later stat's; ours when there is no date the parser reads."""
    try:
        return parsedate_to_datetime(date or "").timestamp()
    except (TypeError, ValueError):
        return time.time()


def copy_parts(
    size: int, part_size: int, max_parts: int, copy_part: Callable[[int, int, int], UploadedPart]
) -> list[UploadedPart]:
    """Copy a `size`-byte source as `copy_part(number, offset, length)` per range, in parallel,
    and list the parts in order.

    Parts grow past `part_size` when the source would need more than `max_parts` of them. On the
    first failure the parts not yet started are cancelled and the running ones awaited, so the
    abort that follows cannot race a part still being written.
    """
    step = max(part_size, -(-size // max_parts))
    pool = ThreadPoolExecutor(max_workers=COPY_WORKERS, thread_name_prefix="objfs-copy")
    try:
        futures = [
            pool.submit(copy_part, number, offset, min(step, size - offset))
            for number, offset in enumerate(range(0, size, step), 1)
        ]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class BodyReads:
    """Reads for SDKs that answer a ranged GET with a response body to read and close.

    The backend gives `_body` (None when the range starts past the end, as S3's InvalidRange
    says) and `_calls` (its SDK's errors as objfs's); `read` and `read_stream` are the same for all.
    """

    @abstractmethod
    def _body(self, key: str, offset: int, length: int | None) -> Any: ...

    @abstractmethod
    def _calls(self, key: str | None = None) -> contextlib.AbstractContextManager[None]: ...

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo: ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            self.stat(key)  # no empty range exists, but a missing key must still be NotFound
            return b""
        with self._calls(key):
            body = self._body(key, offset, length)
            if body is None:
                return b""
            with contextlib.closing(body):
                return body.read()

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        with self._calls(key):
            body = self._body(key, offset, None)
            if body is None:
                return
            with contextlib.closing(body):
                yield from iter(lambda: body.read(STREAM_CHUNK), b"")


class S3FamilyStorage(Storage):
    """A bucket of an S3-protocol service: messages, error typing and the copy strategy.

    A subclass sets `bucket` and `_endpoint` (the address messages name), makes one SDK call per
    `_copy_object` and `_copy_part`, and turns its SDK's error answers into `_answer_error` calls.
    """

    errors_by_code: ClassVar[Mapping[str, type[StorageError]]] = S3_ERRORS_BY_CODE
    rejected_credentials: ClassVar[frozenset[str]] = S3_REJECTED_CREDENTIALS
    archived: ClassVar[str] = "is archived"
    """How a message says an object sits in an archive class, in the service's own words."""
    copy_limit: int = 5 * 1024**3
    """Largest source one CopyObject accepts; bigger sources are copied in parts."""
    copy_part_size: int = 64 * 1024**2
    """Bytes per UploadPartCopy; raised for huge sources so the copy stays within the part count."""

    bucket: str
    _endpoint: str

    def describe(self) -> str:
        return f"{self.scheme}://{self.bucket}"

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Stat first: the size chooses the path, and a replacement must restate the content type.

        Copying onto itself is only legal when replacing, which is how chmod is persisted.
        """
        source = self.stat(src)
        kept = source.metadata if metadata is None else metadata
        kind = content_type or source.content_type
        if source.size > self.copy_limit:
            return self._copy_in_parts(source, dst, kept, kind)
        replace = metadata is not None or content_type is not None or src == dst
        return self._copy_object(source, dst, kept, kind, replace=replace)

    @abstractmethod
    def _copy_object(
        self,
        source: ObjectInfo,
        dst: str,
        metadata: dict[str, str] | None,
        content_type: str | None,
        *,
        replace: bool,
    ) -> ObjectInfo:
        """One CopyObject; `replace` sets `metadata` and `content_type`, else the source's are kept."""

    @abstractmethod
    def _copy_part(
        self, source: ObjectInfo, dst: str, upload_id: str, number: int, offset: int, length: int
    ) -> UploadedPart:
        """One UploadPartCopy of `length` bytes of the source from `offset`."""

    def _copy_in_parts(
        self, source: ObjectInfo, dst: str, metadata: dict[str, str] | None, content_type: str | None
    ) -> ObjectInfo:
        """Copy a source CopyObject refuses as a multipart upload of ranges of it.

        The upload starts with no metadata of its own, so the kept (or given) metadata and content
        type are set when it is created. Any failure aborts it, so no parts are left to be billed.
        """
        upload_id = self.create_multipart(dst, metadata=metadata, content_type=content_type)
        try:
            part = functools.partial(self._copy_part, source, dst, upload_id)
            parts = copy_parts(source.size, self.copy_part_size, self.capabilities.max_part_count, part)
            return self._complete_copy(source, dst, upload_id, parts, metadata, content_type)
        except BaseException:
            with contextlib.suppress(StorageError):  # the copy's own failure is the one to report
                self.abort_multipart(dst, upload_id)
            raise

    def _complete_copy(
        self,
        source: ObjectInfo,
        dst: str,
        upload_id: str,
        parts: list[UploadedPart],
        metadata: dict[str, str] | None,
        content_type: str | None,
    ) -> ObjectInfo:
        """Complete the copy's upload; a service whose answer tells enough skips the stat."""
        return self.complete_multipart(dst, upload_id, parts)

    def _answer_error(
        self, code: str | None, status: int, key: str | None, detail: str | None, request_id: str | None
    ) -> StorageError:
        """The typed error an error answer stands for, named by the code, else the status."""
        code = str(code or status)
        kind = error_kind(code, status, self.errors_by_code)
        return kind(self._explain(kind, code, key, detail), key=key, request_id=request_id or None)

    def _explain(self, kind: type[StorageError], code: str, key: str | None, detail: str | None) -> str:
        """One line a user can act on: which bucket or key, and the service's own error code."""
        if kind is NotFound and (key is None or code == "NoSuchBucket"):
            return f"bucket '{self.bucket}' does not exist at {self._endpoint}"
        if kind is NotFound and code == "NoSuchUpload":
            return f"no multipart upload of {key} with that id"
        if kind is NotFound:
            return f"no such key: {key}"
        if kind is PermissionDenied and code in self.rejected_credentials:
            return f"access denied to bucket '{self.bucket}': the credentials were rejected ({code})"
        if kind is PermissionDenied:
            return f"access denied to {self._where(key)} ({code})"
        if kind is Archived:
            return f"{self._where(key)} {self.archived}; restore it before reading ({code})"
        return f"{self._where(key)}: {one_line(detail or 'request failed')} ({code})"

    def _where(self, key: str | None) -> str:
        return f"{self.scheme}://{self.bucket}/{key}" if key else self.describe()


__all__ = [
    "AWS_ERRORS_BY_CODE",
    "AWS_REJECTED_CREDENTIALS",
    "COPY_WORKERS",
    "S3_ERRORS_BY_CODE",
    "S3_ERRORS_BY_STATUS",
    "S3_REJECTED_CREDENTIALS",
    "S3FamilyStorage",
    "byte_range",
    "copy_parts",
    "error_kind",
    "server_time",
]
