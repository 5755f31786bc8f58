"""Reads of objects in the bucket: fixed-size blocks, cached, fetched ahead of a sequential reader.

A read touches whole blocks. Each block comes from memory (recent blocks), then the disk
cache, then one ranged GET, and one fetch serves everyone waiting for the same block. A
random reader fetches only what it touches. A reader that keeps asking for the next bytes
is served ahead, `read_ahead` bytes beyond it, in one of two ways:

- `stream` (the default): one streaming GET from the reader's position, cut into blocks as
  it arrives. One request per sequential pass; servers that read a whole object for every
  ranged GET (moto, some gateways) pay once instead of once per block.
- `ranges`: parallel ranged GETs of the next blocks, which a high-bandwidth service such as
  S3 rewards with more throughput per reader.

Blocks fetched ahead go to the caches and the stream waits for the reader, never filling an
unbounded queue, so memory stays bounded. A sequential read of a whole object is checked at
its end against the object's MD5.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from cachetools import LRUCache

from .. import metrics
from ..storage.base import Archived, IntegrityError, Storage

log = logging.getLogger(__name__)
Runner = Callable[..., Awaitable[Any]]
SEQUENTIAL_AFTER = 2
"""Reads in a row that continue the previous one before readahead starts."""
ARCHIVED_REMEMBERED = 1024
"""Archived object versions remembered, so reading one again fails without asking the service."""


class BlockStore(Protocol):
    """The disk cache as the reader uses it (objfs.cache.blocks.BlockCache)."""

    def get(self, key: str, etag: str, index: int) -> bytes | None: ...

    def put(self, key: str, etag: str, index: int, data: bytes) -> bool: ...


@dataclass(frozen=True)
class ObjectVersion:
    """What a read is of: one version of one object, and how to check it whole."""

    key: str
    etag: str
    size: int
    md5_base64: str | None = None
    """The whole object's MD5 where something vouches for it (see FileSystem.expected_md5)."""


@dataclass
class ReadState:
    """One open handle's reading pattern and its running checksum."""

    next_offset: int = 0
    streak: int = 0
    digest: Any = field(default_factory=hashlib.md5)
    hashed: int = 0
    early: dict[int, bytes] = field(default_factory=dict)
    """Reads that arrived ahead of the hashed position (the kernel sends read-ahead in parallel)."""
    ahead: int = -1
    """The last block index fetched ahead."""
    stream: Stream | None = None
    moved: trio.Event = field(default_factory=trio.Event)
    """Set (and replaced) at every read, so a stream waiting for the reader wakes."""

    def saw(self, offset: int, length: int, slack: int) -> bool:
        """Record a read; True when the reader is sequential.

        The kernel's read-ahead sends several reads at once and they may arrive out of order,
        so a read within `slack` of the furthest one so far still counts as sequential.
        """
        near = self.next_offset - slack <= offset <= self.next_offset + slack
        self.streak = self.streak + 1 if near else 0
        self.next_offset = max(self.next_offset, offset + length) if near else offset + length
        moved, self.moved = self.moved, trio.Event()
        moved.set()
        return self.streak >= SEQUENTIAL_AFTER

    def stop_stream(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.moved.set()
            self.stream = None


@dataclass
class Stream:
    """One streaming GET feeding a sequential reader's blocks into the caches, ahead of it."""

    version: ObjectVersion
    next_index: int
    window: int
    progress: trio.Event = field(default_factory=trio.Event)
    active: bool = True

    def covers(self, index: int) -> bool:
        """Whether block `index` is on its way, so a reader should wait rather than fetch it."""
        return self.active and self.next_index <= index < self.next_index + self.window

    def advanced(self) -> None:
        progress, self.progress = self.progress, trio.Event()
        progress.set()

    def stop(self) -> None:
        self.active = False
        self.advanced()


class BlockReader:
    """Serves reads of any object version; shared by every handle of a mount."""

    def __init__(
        self,
        storage: Storage,
        run: Runner,
        disk: BlockStore | None,
        *,
        block_size: int,
        read_ahead: int,
        memory_bytes: int,
        strategy: str = "stream",
    ) -> None:
        self.storage = storage
        self.run = run
        self.disk = disk
        self.block_size = block_size
        self.read_ahead = read_ahead
        self.strategy = strategy
        self.memory: LRUCache[tuple[str, str, int], bytes] = LRUCache(maxsize=memory_bytes, getsizeof=len)
        self._fetching: dict[tuple[str, str, int], trio.Event] = {}
        self._archived: LRUCache[tuple[str, str], Archived] = LRUCache(maxsize=ARCHIVED_REMEMBERED)
        self.nursery: trio.Nursery | None = None

    async def read(self, version: ObjectVersion, state: ReadState, offset: int, length: int) -> bytes:
        length = max(0, min(length, version.size - offset))
        if length == 0:
            return b""
        archived = self._archived.get((version.key, version.etag))
        if archived is not None:
            raise archived  # known unreadable until restored: no request, no second log line
        first, last = offset // self.block_size, (offset + length - 1) // self.block_size
        if state.saw(offset, length, slack=2 * self.block_size):
            self._read_ahead(version, state, last)
        else:
            state.stop_stream()
        pieces: list[bytes] = []
        start, remaining = offset - first * self.block_size, length
        for index in range(first, last + 1):
            block = await self.block(version, index, state.stream)
            pieces.append(block[start : start + remaining])  # copy the slice, never the whole block
            remaining -= len(pieces[-1])
            start = 0
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._check_whole(version, state, offset, data)
        return data

    async def block(self, version: ObjectVersion, index: int, stream: Stream | None = None) -> bytes:
        """One block, fetched at most once however many readers want it at the same moment."""
        slot = (version.key, version.etag, index)
        while True:
            cached = self.memory.get(slot)
            if cached is not None:
                metrics.CACHE_HITS.labels("memory").inc()
                return cached
            if stream is not None and stream.covers(index):
                await stream.progress.wait()
                continue
            if slot not in self._fetching:
                break
            await self._fetching[slot].wait()
        done = self._fetching[slot] = trio.Event()
        try:
            data = await self._load(version, index)
            self.memory[slot] = data
            return data
        finally:
            del self._fetching[slot]
            done.set()

    async def _load(self, version: ObjectVersion, index: int) -> bytes:
        if self.disk is not None:
            cached = await self.run(self.disk.get, version.key, version.etag, index)
            if cached is not None:
                metrics.CACHE_HITS.labels("disk").inc()
                return cached
        metrics.CACHE_MISSES.inc()
        try:
            data = await self.run(self.storage.read, version.key, index * self.block_size, self.block_size)
        except Archived as exc:
            self._archived[(version.key, version.etag)] = exc
            raise
        if self.disk is not None:
            await self.run(self.disk.put, version.key, version.etag, index, data)
        return data

    def _read_ahead(self, version: ObjectVersion, state: ReadState, last: int) -> None:
        final = (version.size - 1) // self.block_size
        if self.nursery is None or last >= final:
            return
        if self.strategy == "stream":
            if state.stream is None and last + 1 > state.ahead:
                state.ahead = last + 1
                state.stream = Stream(version, last + 1, self._window)
                self.nursery.start_soon(self._stream_unless_cached, state.stream, state)
            return
        horizon = min(final, last + self._window)
        for index in range(max(last + 1, state.ahead + 1), horizon + 1):
            self.nursery.start_soon(self._prefetch, version, index)
        state.ahead = max(state.ahead, horizon)

    @property
    def _window(self) -> int:
        return max(1, self.read_ahead // self.block_size)

    async def _stream_unless_cached(self, stream: Stream, state: ReadState) -> None:
        """Stream on, unless the disk cache has the next block: a warm pass reads the disk ahead."""
        version, index = stream.version, stream.next_index
        if self.disk is not None:
            cached = await self.run(self.disk.get, version.key, version.etag, index)
            if cached is not None:
                self.memory[(version.key, version.etag, index)] = cached
                stream.stop()
                if state.stream is stream:
                    state.stream = None
                return
        await self._run_stream(stream, state)

    async def _run_stream(self, stream: Stream, state: ReadState) -> None:
        try:
            await self.run(self._pump, stream, state)
        except Exception as exc:  # readers fall back to ranged GETs and see any error themselves
            log.debug("stream of %s stopped: %s", stream.version.key, exc)
        finally:
            stream.stop()
            if state.stream is stream:
                state.stream = None

    def _pump(self, stream: Stream, state: ReadState) -> None:
        """In a worker thread: cut the streaming GET into blocks and hand each over in order."""
        index, pending = stream.next_index, bytearray()
        for chunk in self.storage.read_stream(stream.version.key, index * self.block_size):
            pending += chunk
            while len(pending) >= self.block_size:
                if not self._hand_over(stream, state, index, bytes(pending[: self.block_size])):
                    return
                del pending[: self.block_size]
                index += 1
        if pending:
            self._hand_over(stream, state, index, bytes(pending))

    def _hand_over(self, stream: Stream, state: ReadState, index: int, data: bytes) -> bool:
        if self.disk is not None:
            self.disk.put(stream.version.key, stream.version.etag, index, data)
        return trio.from_thread.run(self._delivered, stream, state, index, data)

    async def _delivered(self, stream: Stream, state: ReadState, index: int, data: bytes) -> bool:
        """Publish a streamed block, then hold the stream until the reader is near enough."""
        self.memory[(stream.version.key, stream.version.etag, index)] = data
        stream.next_index = index + 1
        stream.advanced()
        while stream.active and (index + 1) * self.block_size > state.next_offset + self.read_ahead:
            await state.moved.wait()
        return stream.active

    async def _prefetch(self, version: ObjectVersion, index: int) -> None:
        try:
            await self.block(version, index)
        except Exception as exc:  # the reader fetches it again, and sees the error itself
            log.debug("read-ahead of block %d of %s failed: %s", index, version.key, exc)

    def _check_whole(self, version: ObjectVersion, state: ReadState, offset: int, data: bytes) -> None:
        """Hash what a reader reads from byte 0 in order; at the end, compare with the object's MD5."""
        if state.hashed < 0 or offset < state.hashed:
            return
        if offset > state.hashed:
            if sum(map(len, state.early.values())) + len(data) <= 2 * self.block_size:
                state.early[offset] = data  # bounded: a reader that skips ahead goes unchecked
            return
        while data:
            state.digest.update(data)
            state.hashed += len(data)
            data = state.early.pop(state.hashed, b"")
        if state.hashed < version.size:
            return
        expected = version.md5_base64
        actual = base64.b64encode(state.digest.digest()).decode()
        state.hashed = -1  # checked once per pass
        if expected is not None and actual != expected:
            self.forget(version)
            log.error(
                "integrity error: %s (etag %s) has MD5 %s, expected %s",
                version.key,
                version.etag,
                actual,
                expected,
            )
            raise IntegrityError(f"{version.key}: content does not match its checksum", key=version.key)

    def forget(self, version: ObjectVersion) -> None:
        """Drop a version's blocks from memory (after a mismatch, or when the object changed)."""
        for slot in [s for s in self.memory if s[0] == version.key and s[1] == version.etag]:
            self.memory.pop(slot, None)
