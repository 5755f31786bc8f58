"""RetryingStorage: one retry policy for every backend, on a real memory bucket and a real moto server.

`ScriptedStorage` is a real `MemoryStorage` whose methods first raise the errors queued for them, so
the tests see what a flaky service does: a request that fails, an answer that is lost after the
object was stored, a stream that breaks half way.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator

import boto3
import pytest
from servers.moto import start_moto

from objfs.storage import registry
from objfs.storage.base import (
    BadConfiguration,
    IntegrityError,
    InvalidKey,
    NotFound,
    ObjectInfo,
    Payload,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
    Unavailable,
    Unsupported,
    UploadedPart,
    content_md5,
)
from objfs.storage.memory import MemoryStorage
from objfs.storage.retrying import RetryingStorage
from objfs.storage.settings import Settings

STREAM_PIECE = 4


class ScriptedStorage(MemoryStorage):
    """A memory bucket that fails on cue and counts every call it receives."""

    def __init__(self) -> None:
        super().__init__(f"retries-{uuid.uuid4().hex}")
        self.queued: defaultdict[str, list[StorageError]] = defaultdict(list)
        self.calls: Counter[str] = Counter()
        self.sent: list[bytes] = []
        self.lost_answers = 0
        self.stream_breaks: list[int] = []
        self.stream_offsets: list[int] = []

    def fail(self, op: str, error: StorageError, times: int = 1) -> None:
        self.queued[op].extend([error] * times)

    def _called(self, op: str) -> None:
        self.calls[op] += 1
        if self.queued[op]:
            raise self.queued[op].pop(0)

    def _received(self, data: Payload) -> bytes:
        """The body as a network client would send it: from wherever the file stands, to its end."""
        body = data if isinstance(data, bytes) else data.read()
        self.sent.append(body)
        return body

    def check(self) -> None:
        self._called("check")

    def stat(self, key: str) -> ObjectInfo:
        self._called("stat")
        return super().stat(key)

    def delete(self, key: str) -> None:
        self._called("delete")
        super().delete(key)

    def write(self, key: str, data: Payload, **options: object) -> ObjectInfo:
        body = self._received(data)
        self._called("write")
        info = super().write(key, body, **options)  # type: ignore[arg-type]
        if self.lost_answers:
            self.lost_answers -= 1
            raise Unavailable("read timed out after the object was stored", key=key)
        return info

    def upload_part(self, key: str, upload_id: str, number: int, data: Payload, md5: str) -> UploadedPart:
        body = self._received(data)
        self._called("upload_part")
        return super().upload_part(key, upload_id, number, body, md5)

    def read_stream(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """Small pieces; breaks once at each absolute position in `stream_breaks` it reaches."""
        self.stream_offsets.append(offset)
        self._called("read_stream")
        body = super().read(key, offset)
        for start in range(0, len(body), STREAM_PIECE):
            if self.stream_breaks and offset + start >= self.stream_breaks[0]:
                self.stream_breaks.pop(0)
                raise Unavailable("connection reset by peer", key=key)
            yield body[start : start + STREAM_PIECE]


def _retrying(inner: ScriptedStorage, attempts: int = 4, deadline: float = 5.0) -> RetryingStorage:
    """Tiny waits, so a test of six retries takes milliseconds."""
    return RetryingStorage(inner, attempts=attempts, deadline=deadline, backoff=0.001, max_backoff=0.002)


@pytest.fixture
def inner() -> ScriptedStorage:
    return ScriptedStorage()


def test_transient_failures_are_retried_to_success(inner: ScriptedStorage) -> None:
    inner.write("k", b"data")
    inner.fail("stat", Unavailable("503 SlowDown"), times=3)
    assert _retrying(inner, attempts=4).stat("k").size == 4
    assert inner.calls["stat"] == 4


def test_gives_up_after_the_attempts_limit(inner: ScriptedStorage, caplog: pytest.LogCaptureFixture) -> None:
    inner.fail("stat", Unavailable("503 Service Unavailable", key="k"), times=10)
    with caplog.at_level(logging.WARNING, logger="objfs.storage.retrying"), pytest.raises(Unavailable):
        _retrying(inner, attempts=3).stat("k")
    assert inner.calls["stat"] == 3
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.WARNING, logging.ERROR]
    assert all(
        record.getMessage().startswith("stat k: 503 Service Unavailable;") for record in caplog.records
    )
    assert caplog.records[-1].getMessage().endswith("giving up after 3 attempts in 0.0 s")


def test_gives_up_at_the_deadline(inner: ScriptedStorage) -> None:
    inner.fail("stat", Unavailable("connection refused"), times=100_000)
    storage = RetryingStorage(inner, attempts=100_000, deadline=0.3, backoff=0.02, max_backoff=0.02)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        storage.stat("k")
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6
    assert 1 < inner.calls["stat"] < 100


@pytest.mark.parametrize(
    "error",
    [
        NotFound,
        PermissionDenied,
        PreconditionFailed,
        IntegrityError,
        BadConfiguration,
        InvalidKey,
        Unsupported,
    ],
)
def test_answers_are_not_retried(inner: ScriptedStorage, error: type[StorageError]) -> None:
    inner.fail("delete", error("an answer, not a failure"), times=5)
    with pytest.raises(error):
        _retrying(inner).delete("k")
    assert inner.calls["delete"] == 1


def test_check_fails_fast_without_retrying(inner: ScriptedStorage) -> None:
    inner.fail("check", Unavailable("connection refused"), times=5)
    with pytest.raises(Unavailable):
        _retrying(inner).check()
    assert inner.calls["check"] == 1


def test_the_wrapper_mirrors_the_backend(inner: ScriptedStorage) -> None:
    storage = _retrying(inner)
    assert (storage.scheme, storage.capabilities, storage.describe()) == (
        inner.scheme,
        inner.capabilities,
        inner.describe(),
    )
    with pytest.raises(TypeError):
        RetryingStorage.from_settings(Settings())


def test_a_file_payload_is_sent_whole_on_every_attempt(inner: ScriptedStorage) -> None:
    inner.fail("write", Unavailable("connection reset"), times=2)
    payload = io.BytesIO(b"0123456789" * 100)
    _retrying(inner).write("k", payload)
    assert inner.sent == [payload.getvalue()] * 3
    assert inner.read("k") == payload.getvalue()


def test_a_file_part_is_sent_whole_on_every_attempt(inner: ScriptedStorage) -> None:
    inner.fail("upload_part", Unavailable("connection reset"))
    storage = _retrying(inner)
    body = b"part one " * 50
    upload_id = storage.create_multipart("k")
    part = storage.upload_part("k", upload_id, 1, io.BytesIO(body), content_md5(body))
    storage.complete_multipart("k", upload_id, [part])
    assert inner.sent == [body, body]
    assert inner.read("k") == body


def test_a_retry_that_finds_its_own_earlier_write_succeeds(inner: ScriptedStorage) -> None:
    inner.lost_answers = 1
    info = _retrying(inner).write("k", io.BytesIO(b"mine"), if_none_match=True)
    assert (info.size, info.etag) == (4, hashlib.md5(b"mine").hexdigest())
    assert inner.calls["write"] == 2


def test_a_retry_that_finds_another_writers_object_fails(inner: ScriptedStorage) -> None:
    inner.write("k", b"theirs")
    inner.fail("write", Unavailable("read timed out"))
    with pytest.raises(PreconditionFailed):
        _retrying(inner).write("k", b"mine", if_none_match=True)
    assert inner.read("k") == b"theirs"


def test_a_lost_condition_without_a_retry_is_not_second_guessed(inner: ScriptedStorage) -> None:
    inner.write("k", b"mine")
    with pytest.raises(PreconditionFailed):
        _retrying(inner).write("k", b"mine", if_none_match=True)
    assert inner.calls["stat"] == 0


def test_an_if_match_write_finds_its_own_earlier_write(inner: ScriptedStorage) -> None:
    before = inner.write("k", b"old")
    inner.lost_answers = 1
    info = _retrying(inner).write("k", b"new!", if_match=before.etag)
    assert info.etag == hashlib.md5(b"new!").hexdigest()


def test_a_broken_stream_resumes_where_it_broke(inner: ScriptedStorage) -> None:
    body = bytes(range(50))
    inner.write("k", body)
    inner.stream_breaks = [5, 13]
    chunks = list(_retrying(inner).read_stream("k", offset=2))
    assert b"".join(chunks) == body[2:]
    assert inner.stream_offsets == [2, 6, 14]


def test_a_stream_that_makes_progress_outlasts_the_attempts_limit(inner: ScriptedStorage) -> None:
    """Each chunk renews the budget: the limits bound a stall, not the length of a download."""
    body = bytes(range(40))
    inner.write("k", body)
    inner.stream_breaks = [4, 8, 12, 16, 20]
    assert b"".join(_retrying(inner, attempts=2).read_stream("k")) == body


def test_a_stream_that_cannot_be_opened_gives_up(inner: ScriptedStorage) -> None:
    inner.write("k", b"data")
    inner.fail("read_stream", Unavailable("connection refused"), times=10)
    with pytest.raises(Unavailable):
        list(_retrying(inner, attempts=3).read_stream("k"))
    assert inner.stream_offsets == [0, 0, 0]


def test_a_missing_key_stream_is_not_retried(inner: ScriptedStorage) -> None:
    with pytest.raises(NotFound):
        list(_retrying(inner).read_stream("absent"))
    assert inner.stream_offsets == [0]


def test_a_stopped_s3_server_gives_eio_within_the_deadline(s3_env: dict[str, str]) -> None:
    """A real moto server over HTTP: works, then is stopped; reads must fail in time, never hang."""
    server = start_moto()
    try:
        bucket = f"objfs-retry-{uuid.uuid4().hex[:12]}"
        client = boto3.session.Session().client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        client.close()
        options = {"endpoint": server.endpoint, "region": "us-east-1"}
        storage = RetryingStorage(registry.open_location(f"s3://{bucket}", options).storage, deadline=3)
        storage.write("k", b"alive")
        assert storage.read("k") == b"alive"
    finally:
        server.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        storage.read("k")
    elapsed = time.monotonic() - started
    storage.close()
    print(f"gave up after {elapsed:.2f} s")
    assert elapsed < 3 + 2
