"""One retry policy for every backend: a `Storage` that wraps another and retries transient failures.

Backends map timeouts, resets, 5xx and throttling to `Unavailable` and make one attempt per call (the
S3 client is built with `max_attempts=1`), so retrying lives here once, with the same backoff, limits
and logging whichever service is behind it. Every other error is an answer and is raised at once.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from .. import metrics
from .base import (
    ListPage,
    MultipartUpload,
    NotFound,
    ObjectInfo,
    Payload,
    PreconditionFailed,
    Storage,
    StorageError,
    Unavailable,
    UploadedPart,
    content_md5,
    one_line,
    payload_size,
)

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


class RetryingStorage(Storage):
    """Retries `Unavailable` with exponential backoff and full jitter, within attempts AND a deadline.

    A call is tried at most `attempts` times; before retry n it sleeps a random time in
    [0, min(max_backoff, backoff * 2**(n-1))], clamped so no sleep runs past `deadline` seconds from
    the call's start; the last attempt starts by then. Then the last `Unavailable` is raised (EIO).

    Worst case with the defaults (6 attempts, 30 s deadline, 0.5 s first window, 8 s cap): a backend
    that stays down and refuses connections gives EIO within 16 s (the windows 0.5+1+2+4+8 s, plus the
    failed requests); one that accepts connections and never answers gives EIO within 30 s plus one
    request's own timeout, since an attempt in flight is never interrupted.

    A retried write can find its own earlier success: the first attempt stored the object but the
    answer was lost, and the condition then fails. See `write` for how that case is told apart.
    """

    def __init__(
        self,
        inner: Storage,
        *,
        attempts: int = 6,
        deadline: float = 30.0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if attempts < 1 or deadline <= 0:
            raise ValueError("attempts must be at least 1 and the deadline positive")
        self.inner = inner
        self.attempts = attempts
        self.deadline = deadline
        self.scheme = inner.scheme  # instance attributes that mirror whichever backend is wrapped
        self.capabilities = inner.capabilities
        self.names = inner.names
        self._backoff = wait_random_exponential(multiplier=backoff, max=max_backoff)

    @classmethod
    def from_settings(cls, settings: Settings) -> NoReturn:
        """Not a backend of its own: wrap an opened one, `RetryingStorage(open_location(url).storage)`."""
        raise TypeError("RetryingStorage wraps an opened backend; it is not built from settings")

    def describe(self) -> str:
        return self.inner.describe()

    def check(self) -> None:
        """Straight through, never retried: a mount-time check must fail fast on a wrong endpoint."""
        self.inner.check()

    def close(self) -> None:
        self.inner.close()

    def url(self, key: str, expires: int = 3600) -> str:
        return self._retry(self.inner.url, key, expires)

    def stat(self, key: str) -> ObjectInfo:
        return self._retry(self.inner.stat, key)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self._retry(self.inner.read, key, offset, length)
        metrics.BYTES_DOWNLOADED.inc(len(data))
        return data

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """Resume a broken stream from the first byte not yet yielded, so no byte is lost or repeated.

        Establishing the stream and each chunk after a break are tried under the same policy as any
        call; a chunk that arrives renews the budget, so the limits bound a stall, not the length of
        a long download.
        """
        stream = _ResumableStream(self.inner, key, offset)
        try:
            while (chunk := self._run("read_stream", key, stream.next_chunk, metered=False)) is not None:
                metrics.BYTES_DOWNLOADED.inc(len(chunk))
                yield chunk
        finally:
            stream.close()

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
        """Send the whole payload on every attempt; a conditional write may succeed on its own retry.

        When a condition fails on a retry, an earlier attempt may have been the one that stored the
        object. It is taken as ours when the object's size equals the payload's and its etag, where it
        is a plain MD5, equals the payload's MD5; under `if_match` a plain-MD5 etag is required, since
        the object existed before and a size alone proves nothing. Otherwise the failure is raised.
        """
        tries = 0

        def attempt() -> ObjectInfo:
            nonlocal tries
            tries += 1
            return self.inner.write(
                key,
                _rewound(data),
                metadata=metadata,
                content_type=content_type,
                if_match=if_match,
                if_none_match=if_none_match,
                md5=md5,
            )

        try:
            stored = self._run("write", key, attempt)
        except PreconditionFailed:
            own = self._earlier_write(key, data, strict=if_match is not None) if tries > 1 else None
            if own is None:
                raise
            log.warning("write %s: a retry found the object an earlier attempt stored; success", key)
            stored = own
        metrics.BYTES_UPLOADED.inc(payload_size(data))
        return stored

    def list(
        self,
        prefix: str = "",
        delimiter: str | None = "/",
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        return self._retry(self.inner.list, prefix, delimiter, token, limit)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        return self._retry(self.inner.copy, src, dst, metadata=metadata, content_type=content_type)

    def delete(self, key: str) -> None:
        self._retry(self.inner.delete, key)

    def create_multipart(
        self, key: str, *, metadata: dict[str, str] | None = None, content_type: str | None = None
    ) -> str:
        return self._retry(self.inner.create_multipart, key, metadata=metadata, content_type=content_type)

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        part = self._run(
            "upload_part", key, lambda: self.inner.upload_part(key, upload_id, number, _rewound(data), md5)
        )
        metrics.BYTES_UPLOADED.inc(payload_size(data))
        return part

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        return self._retry(self.inner.complete_multipart, key, upload_id, parts)

    def complete_multipart_if(
        self,
        key: str,
        upload_id: str,
        parts: list[UploadedPart],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> ObjectInfo:
        return self._retry(
            self.inner.complete_multipart_if,
            key,
            upload_id,
            parts,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._retry(self.inner.abort_multipart, key, upload_id)

    def list_multipart(self, prefix: str = "") -> list[MultipartUpload]:
        return self._retry(self.inner.list_multipart, prefix)

    # -- the policy, written once ---------------------------------------------------------

    def _retry(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a bound method of the inner backend under the policy; its first argument names the key."""
        key = str(args[0]) if args else ""
        return self._run(method.__name__, key, lambda: method(*args, **kwargs))

    def _run(self, op: str, key: str, call: Callable[[], T], *, metered: bool = True) -> T:
        """Try `call` until it succeeds, fails for good, or the attempts or the deadline run out."""
        what = f"{op} {key}" if key else op
        retrying = Retrying(
            retry=retry_if_exception_type(Unavailable),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.deadline),
            wait=self._wait,
            before_sleep=lambda state: _log_retry(what, self.attempts, state),
            reraise=True,
        )
        started = time.monotonic()
        try:
            return retrying(_metered(op, call) if metered else call)
        except Unavailable as exc:
            tries, elapsed = retrying.statistics.get("attempt_number", 1), time.monotonic() - started
            log.error(
                "%s: %s%s; giving up after %d attempts in %.1f s",
                what,
                one_line(exc),
                _request_id(exc),
                tries,
                elapsed,
            )
            raise
        except StorageError as exc:
            if not isinstance(exc, NotFound | PreconditionFailed):  # answers, not failures, to callers
                log.warning("%s: %s%s", what, one_line(exc), _request_id(exc))
            raise

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter backoff, never sleeping past the deadline (then one last attempt is made)."""
        remaining = self.deadline - (state.seconds_since_start or 0.0)
        return max(0.0, min(self._backoff(state), remaining))

    def _earlier_write(self, key: str, data: Payload, *, strict: bool) -> ObjectInfo | None:
        """The object as stored if it holds exactly `data`, as far as size and etag can tell."""
        try:
            info = self._retry(self.inner.stat, key)
        except NotFound:
            return None
        if info.size != payload_size(data):
            return None
        if _PLAIN_MD5.fullmatch(info.etag):
            return info if info.etag == base64.b64decode(content_md5(data)).hex() else None
        return None if strict else info


class _ResumableStream:
    """The inner stream, reopened at the first byte not yet handed out whenever it breaks."""

    def __init__(self, inner: Storage, key: str, offset: int) -> None:
        self._inner = inner
        self._key = key
        self._position = offset
        self._stream: Iterator[bytes] | None = None

    def next_chunk(self) -> bytes | None:
        """The next chunk, or None at the end; an `Unavailable` drops the stream so the retry reopens it."""
        if self._stream is None:
            metrics.BACKEND_REQUESTS.labels("read_stream").inc()
            self._stream = self._inner.read_stream(self._key, self._position)
        try:
            chunk = next(self._stream)
        except StopIteration:
            return None
        except Unavailable:
            self.close()
            raise
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
        self._stream = None


def _rewound(data: Payload) -> Payload:
    """The payload back at its start: a failed attempt may have sent part or all of a file."""
    if not isinstance(data, bytes | bytearray | memoryview):
        data.seek(0)
    return data


def _metered(op: str, call: Callable[[], T]) -> Callable[[], T]:
    """One attempt, counted and timed as one request to the service."""

    def attempt() -> T:
        metrics.BACKEND_REQUESTS.labels(op).inc()
        with metrics.timed(metrics.BACKEND_SECONDS, op):
            try:
                return call()
            except StorageError as exc:
                metrics.BACKEND_ERRORS.labels(op, type(exc).__name__).inc()
                raise

    return attempt


def _request_id(exc: BaseException | None) -> str:
    request_id = getattr(exc, "request_id", None)
    return f" (request id {request_id})" if request_id else ""


def _log_retry(what: str, attempts: int, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "%s: %s%s; retry %d of up to %d in %.2f s",
        what,
        one_line(error),
        _request_id(error),
        state.attempt_number,
        attempts - 1,
        sleep,
    )


__all__ = ["RetryingStorage"]
