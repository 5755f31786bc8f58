"""Multipart uploads that run while a large file is still being written.

A sequential writer fills parts in order; each full part is uploaded in the background as
soon as it is complete, so `close` waits only for the last parts. A write into a part
already sent marks it for sending again. The part size grows with the part number, so a file
of unknown size never runs past the 10,000-part limit, and parts in flight are bounded, so
memory stays bounded whatever the file size.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import trio

from ..storage.base import ObjectInfo, Storage, StorageError, UploadedPart, content_md5
from .handles import Staging

log = logging.getLogger(__name__)
T = TypeVar("T")
Runner = Callable[..., Awaitable[Any]]
PARTS_PER_TIER = 1000


@dataclass(frozen=True)
class PartLayout:
    """Part n (1-based) is `base << tier` bytes, the tier growing every 1,000 parts.

    With 8 MiB parts the first 1,000 parts cover 8 GiB and 10,000 parts cover about 8 TiB,
    beyond S3's 5 TiB object limit.
    """

    base: int

    def _tier_start(self, tier: int) -> int:
        return self.base * PARTS_PER_TIER * ((1 << tier) - 1)

    def bounds(self, number: int) -> tuple[int, int]:
        tier, index = divmod(number - 1, PARTS_PER_TIER)
        size = self.base << tier
        start = self._tier_start(tier) + index * size
        return start, start + size

    def number_at(self, offset: int) -> int:
        tier = 0
        while self._tier_start(tier + 1) <= offset:
            tier += 1
        return tier * PARTS_PER_TIER + (offset - self._tier_start(tier)) // (self.base << tier) + 1

    def count(self, size: int) -> int:
        """Parts needed for `size` bytes (an empty object is one empty part)."""
        return self.number_at(size - 1) if size else 1


@dataclass
class StreamingUpload:
    """One multipart upload of one staging file, fed part by part while the file is written."""

    storage: Storage
    run: Runner
    layout: PartLayout
    slots: trio.Semaphore
    key: str
    metadata: dict[str, str]
    content_type: str | None
    on_start: Callable[[str, str], None]
    on_end: Callable[[str], None]
    upload_id: str | None = None
    sent: dict[int, UploadedPart] = field(default_factory=dict)
    md5s: dict[int, str] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    sending: set[int] = field(default_factory=set)
    drained: trio.Event = field(default_factory=trio.Event)
    starting: trio.Lock = field(default_factory=trio.Lock)
    start_failure: StorageError | None = None

    def touched(self, start: int, end: int) -> None:
        """Bytes [start, end) changed: parts sent with the old bytes must be sent again."""
        for number in range(self.layout.number_at(start), self.layout.number_at(max(start, end - 1)) + 1):
            self.versions[number] = self.versions.get(number, 0) + 1
            self.sent.pop(number, None)

    def full_parts(self, size: int) -> list[int]:
        """Parts complete below `size` that are neither sent nor on their way."""
        last_full = self.layout.number_at(size) - 1 if size else 0
        return [n for n in range(1, last_full + 1) if n not in self.sent and n not in self.sending]

    async def send_ready(self, staging: Staging, nursery: trio.Nursery) -> None:
        """Start background uploads of the parts the writer has completed."""
        for number in self.full_parts(staging.size):
            self.sending.add(number)
            nursery.start_soon(self._send_quietly, staging, number)

    async def _send_quietly(self, staging: Staging, number: int) -> None:
        try:
            await self._send(staging, number)
        except (StorageError, OSError) as exc:
            # finish() sends the part again and reports a failure there, where the writer sees it
            log.warning("background upload of part %d of %s failed: %s", number, self.key, exc)

    async def _ensure_started(self) -> str:
        """Create the upload once, however many parts are ready at the same moment.

        A failed creation fails every part waiting for it at once, instead of each part
        spending the whole retry deadline on it again; `finish` tries once more.
        """
        async with self.starting:
            if self.start_failure is not None:
                raise self.start_failure
            if self.upload_id is None:
                try:
                    self.upload_id = await self.run(
                        self.storage.create_multipart,
                        self.key,
                        metadata=self.metadata,
                        content_type=self.content_type,
                    )
                except StorageError as exc:
                    self.start_failure = exc
                    raise
                self.on_start(self.key, self.upload_id)
            return self.upload_id

    async def _send(self, staging: Staging, number: int) -> None:
        try:
            async with self.slots:
                upload_id = await self._ensure_started()
                version = self.versions.get(number, 0)
                start, end = self.layout.bounds(number)
                data = await self.run(staging.read, start, end - start)
                md5 = await self.run(content_md5, data)
                part = await self.run(self.storage.upload_part, self.key, upload_id, number, data, md5)
                if self.versions.get(number, 0) == version:
                    self.sent[number] = part
                    self.md5s[number] = md5
        finally:
            self.sending.discard(number)
            if not self.sending:
                self.drained.set()

    async def finish(self, staging: Staging, conditions: dict[str, Any] | None = None) -> ObjectInfo:
        """Send whatever is missing, in parallel, and complete; abort on any failure.

        With `conditions` (see `Storage.complete_multipart_if`) the upload completes only over
        the version they name; otherwise it fails with PreconditionFailed, aborted.
        """
        try:
            while self.sending:
                self.drained = trio.Event()
                await self.drained.wait()
            self.start_failure = None
            size = staging.size
            await self._send_all(
                staging, [n for n in range(1, self.layout.count(size) + 1) if n not in self.sent]
            )
            parts = [self.sent[n] for n in range(1, self.layout.count(size) + 1)]
            upload_id = await self._ensure_started()
            if conditions:
                complete = partial(self.storage.complete_multipart_if, **conditions)
                info = await self.run(complete, self.key, upload_id, parts)
            else:
                info = await self.run(self.storage.complete_multipart, self.key, upload_id, parts)
        except BaseException:
            await self.abort()
            raise
        self.on_end(self.upload_id or "")
        return info

    async def _send_all(self, staging: Staging, numbers: list[int]) -> None:
        """Send parts in parallel; the first failure is raised as itself, not as a group of them."""
        failures: list[StorageError] = []

        async def send(number: int) -> None:
            try:
                await self._send(staging, number)
            except StorageError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            for number in numbers:
                nursery.start_soon(send, number)
        if failures:
            raise failures[0]

    def part_md5s(self) -> list[str]:
        """Each sent part's MD5 (base64), in part order, for the blob record."""
        return [self.md5s[n] for n in sorted(self.sent)]

    async def abort(self) -> None:
        """Drop the upload so no parts linger in the bucket (billed, invisible)."""
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        self.sent.clear()
        with trio.CancelScope(shield=True):
            try:
                await self.run(self.storage.abort_multipart, self.key, upload_id)
            except StorageError as exc:
                log.warning(
                    "could not abort upload %s of %s (cleaned at next mount): %s", upload_id, self.key, exc
                )
                return
        self.on_end(upload_id)
