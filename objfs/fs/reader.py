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
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio
from cachetools import LRUCache

from .. import metrics
from ..cache.direct_io import aligned_buffer
from ..storage.base import Archived, IntegrityError, Storage, StorageError

log = logging.getLogger(__name__)
Runner = Callable[..., Awaitable[Any]]
SEQUENTIAL_AFTER = 2
"""Reads in a row that continue the previous one before readahead starts."""
DISK_WRITES_PENDING = 4
"""Streamed blocks on their way to the disk cache at once, each holding one block of memory."""
UNREADABLE_REMEMBERED = 4096
"""Object versions remembered as unreadable, so reading one again fails without a request."""


Block = bytes | memoryview
"""A block's bytes: a view of aligned memory where it was streamed or read from the disk cache."""


class BlockStore(Protocol):
    """The disk cache as the reader uses it (objfs.cache.blocks.BlockCache)."""

    def get(self, key: str, etag: str, index: int) -> Block | None: ...

    def put(self, key: str, etag: str, index: int, data: Block) -> bool: ...

    def invalidate(self, key: str, keep_etag: str | None = None) -> None: ...


@dataclass(frozen=True)
class ObjectVersion:
    """What a read is of: one version of one object, and how to check it whole."""

    key: str
    etag: str
    size: int
    md5_base64: str | None = None
    """The whole object's MD5 where something vouches for it (see FileSystem.expected_md5)."""


def pulse(event: trio.Event) -> trio.Event:
    """Wake everyone waiting on `event`; the fresh event to wait on for the next change."""
    event.set()
    return trio.Event()


@dataclass
class WholeCheck:
    """The MD5 of what one handle reads from byte 0 in order, hashed off the event loop."""

    digest: Any = field(default_factory=hashlib.md5)
    hashed: int = 0
    """Bytes hashed so far; -1 once the pass is judged, or when it is not to be checked."""
    early: dict[int, bytes | memoryview] = field(default_factory=dict)
    """Reads waiting for their turn (the kernel sends read-ahead in parallel, out of order)."""
    hashing: bool = False
    advanced: trio.Event = field(default_factory=trio.Event)

    @property
    def backlog(self) -> int:
        return sum(map(len, self.early.values()))

    def advance(self, length: int) -> None:
        """`length` more bytes hashed: forget reads of bytes now behind, wake waiting readers."""
        self.hashed += length
        for stale in [offset for offset in self.early if offset < self.hashed]:
            del self.early[stale]
        self.wake()

    def wake(self) -> None:
        self.advanced = pulse(self.advanced)


@dataclass
class ReadState:
    """One open handle's reading pattern and its running checksum."""

    next_offset: int = 0
    streak: int = 0
    check: WholeCheck = field(default_factory=WholeCheck)
    ahead: int = -1
    """The last block index fetched ahead."""
    stream: Stream | None = None
    from_disk: bool = False
    """Served ahead from the disk cache rather than by a stream (a warm pass)."""
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
        self.moved = pulse(self.moved)
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
        self.progress = pulse(self.progress)

    def stop(self) -> None:
        self.active = False
        self.advanced()


def last_block(version: ObjectVersion, block_size: int) -> int:
    return max(0, version.size - 1) // block_size


def cut_blocks(chunks: Iterable[bytes], size: int) -> Iterator[Block]:
    """Chunks regrouped into blocks of `size` bytes (the last may be shorter).

    Each block is filled in aligned memory, the one copy a block gets: the disk cache writes it
    from there directly, and reads hand FUSE views of it. The short last block is copied out
    to its own size: the memory cache counts a block by its length, and a few bytes must not
    hold a whole block's memory.
    """
    block, filled = aligned_buffer(size), 0
    for chunk in chunks:
        rest = memoryview(chunk)
        while rest:
            taken = min(len(rest), size - filled)
            block[filled : filled + taken] = rest[:taken]
            filled, rest = filled + taken, rest[taken:]
            if filled == size:
                yield block
                block, filled = aligned_buffer(size), 0
    if filled:
        yield bytes(block[:filled])


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
        self.memory: LRUCache[tuple[str, str, int], Block] = LRUCache(maxsize=memory_bytes, getsizeof=len)
        self._fetching: dict[tuple[str, str, int], trio.Event] = {}
        self._unreadable: LRUCache[tuple[str, str], StorageError] = LRUCache(maxsize=UNREADABLE_REMEMBERED)
        """Archived versions, and versions that failed their whole-object check: reading one
        again fails at once, with no request and no second log line, until the object changes."""
        self._disk_writes = trio.Semaphore(DISK_WRITES_PENDING)
        self.nursery: trio.Nursery | None = None

    async def read(
        self, version: ObjectVersion, state: ReadState, offset: int, length: int
    ) -> bytes | memoryview:
        """Bytes `[offset, offset+length)` of `version`; a view into a cached block where they fit one."""
        length = max(0, min(length, version.size - offset))
        if length == 0:
            return b""
        unreadable = self._unreadable.get((version.key, version.etag))
        if unreadable is not None:
            raise unreadable
        first, last = offset // self.block_size, (offset + length - 1) // self.block_size
        if state.saw(offset, length, slack=2 * self.block_size):
            self._read_ahead(version, state, last)
        elif offset == 0 and last_block(version, self.block_size) > 0 and not self._in_memory(version, 0):
            self._start_stream(version, state, 0)
        else:
            state.stop_stream()
        pieces: list[memoryview] = []
        start, remaining = offset - first * self.block_size, length
        for index in range(first, last + 1):
            block = await self.block(version, index, state.stream)
            pieces.append(memoryview(block)[start : start + remaining])  # FUSE copies it out
            remaining -= len(pieces[-1])
            start = 0
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        await self._check_whole(version, state.check, offset, data)
        return data

    def _in_memory(self, version: ObjectVersion, index: int) -> bool:
        return (version.key, version.etag, index) in self.memory

    async def block(self, version: ObjectVersion, index: int, stream: Stream | None = None) -> Block:
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
        with self._on_its_way(slot):
            data = await self._load(version, index)
            self.memory[slot] = data
            return data

    @contextlib.contextmanager
    def _on_its_way(self, slot: tuple[str, str, int]) -> Iterator[None]:
        """Mark a block as being fetched, so readers that want it wait instead of fetching it too."""
        done = self._fetching[slot] = trio.Event()
        try:
            yield
        finally:
            del self._fetching[slot]
            done.set()

    async def _load(self, version: ObjectVersion, index: int) -> Block:
        if self.disk is not None:
            cached = await self.run(self.disk.get, version.key, version.etag, index)
            if cached is not None:
                metrics.CACHE_HITS.labels("disk").inc()
                return cached
        metrics.CACHE_MISSES.inc()
        try:
            data = await self.run(self.storage.read, version.key, index * self.block_size, self.block_size)
        except Archived as exc:
            self._unreadable[(version.key, version.etag)] = exc
            raise
        if self.disk is not None:
            await self.run(self.disk.put, version.key, version.etag, index, data)
        return data

    def _start_stream(self, version: ObjectVersion, state: ReadState, index: int) -> None:
        """A reader at the start of an object larger than a block gets a stream at once: most go
        on to read it whole, and the stream's first block serves this very read. Until the
        reader proves sequential the stream runs at most a block ahead of it."""
        state.stop_stream()
        state.from_disk = False
        if self.strategy == "stream" and self.nursery is not None:
            state.ahead = index
            state.stream = Stream(version, index, self._window)
            self.nursery.start_soon(self._stream_unless_cached, state.stream, state)

    def _read_ahead(self, version: ObjectVersion, state: ReadState, last: int) -> None:
        final = last_block(version, self.block_size)
        if self.nursery is None or last >= final:
            return
        if self.strategy == "stream" and not state.from_disk:
            if state.stream is None and last + 1 > state.ahead:
                self._start_stream(version, state, last + 1)
            return
        fetch = self._prefetch if self.strategy == "ranges" else self._prefetch_from_disk
        horizon = min(final, last + self._window)
        for index in range(max(last + 1, state.ahead + 1), horizon + 1):
            self.nursery.start_soon(fetch, version, index, state)
        state.ahead = max(state.ahead, horizon)

    def _lead(self, state: ReadState) -> int:
        """How far a stream may run ahead of its reader: a block until the reader is sequential."""
        return self.read_ahead if state.streak >= SEQUENTIAL_AFTER else self.block_size

    @property
    def _window(self) -> int:
        return max(1, self.read_ahead // self.block_size)

    async def _stream_unless_cached(self, stream: Stream, state: ReadState) -> None:
        """Stream on, unless the disk cache has the next block: then the reader is served ahead
        from the disk, several blocks at once, until a block is missing there."""
        if await self._from_disk(stream.version, stream.next_index):
            state.from_disk = True
            stream.stop()
            if state.stream is stream:
                state.stream = None
            return
        await self._run_stream(stream, state)

    async def _prefetch_from_disk(self, version: ObjectVersion, index: int, state: ReadState) -> None:
        """A miss in the disk cache sends the reader back to streaming, from that block on."""
        if not await self._from_disk(version, index):
            state.from_disk = False
            state.ahead = min(state.ahead, index - 1)

    async def _from_disk(self, version: ObjectVersion, index: int) -> bool:
        """Bring a block from the disk cache into memory; False if the disk cache lacks it.

        The block counts as being fetched meanwhile, so a reader that catches up waits for it
        instead of reading the same file again. A block already in memory, or on its way, counts."""
        slot = (version.key, version.etag, index)
        if self.disk is None:
            return False
        if slot in self.memory or slot in self._fetching:
            return True
        with self._on_its_way(slot):
            try:
                cached = await self.run(self.disk.get, version.key, version.etag, index)
            except Exception as exc:  # the reader reads the block itself, and sees any error
                log.debug("read-ahead of block %d of %s from disk failed: %s", index, version.key, exc)
                return False
            if cached is None:
                return False
            self.memory[slot] = cached
            return True

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
        index = stream.next_index
        chunks = self.storage.read_stream(stream.version.key, index * self.block_size)
        for block in cut_blocks(chunks, self.block_size):
            if not trio.from_thread.run(self._delivered, stream, state, index, block):
                return
            index += 1

    async def _delivered(self, stream: Stream, state: ReadState, index: int, data: Block) -> bool:
        """Publish a streamed block, then hold the stream until the reader is near enough.

        The block goes to the disk cache in another thread, so the stream reads on meanwhile;
        blocks waiting for the disk are bounded, and a slow disk holds the stream back.
        """
        version = stream.version
        self.memory[(version.key, version.etag, index)] = data
        stream.next_index = index + 1
        stream.advanced()
        if self.disk is not None and self.nursery is not None:
            await self._disk_writes.acquire()
            self.nursery.start_soon(self._keep, version, index, data)
        while stream.active and (index + 1) * self.block_size > state.next_offset + self._lead(state):
            await state.moved.wait()
        return stream.active

    async def _keep(self, version: ObjectVersion, index: int, data: Block) -> None:
        assert self.disk is not None
        try:
            await self.run(self.disk.put, version.key, version.etag, index, data)
        finally:
            self._disk_writes.release()

    async def _prefetch(self, version: ObjectVersion, index: int, state: ReadState) -> None:
        try:
            await self.block(version, index)
        except Exception as exc:  # the reader fetches it again, and sees the error itself
            log.debug("read-ahead of block %d of %s failed: %s", index, version.key, exc)

    async def _check_whole(
        self, version: ObjectVersion, check: WholeCheck, offset: int, data: bytes | memoryview
    ) -> None:
        """Hash what a reader reads from byte 0 in order; at the end, compare with the object's MD5.

        One read at a time hashes, in a worker thread, every read queued in order behind it;
        each queued read waits for its turn (never for a gap before it), so the hashing keeps
        pace with the reader and memory stays bounded.
        """
        if version.md5_base64 is None or check.hashed < 0 or offset < check.hashed:
            return  # nothing to compare with, judged already, or a re-read of hashed bytes
        if offset > check.hashed and check.backlog + len(data) > 2 * self.block_size:
            return  # a reader that skips ahead goes unchecked
        check.early[offset] = data
        if check.hashing:
            while check.hashing and offset in check.early:
                await check.advanced.wait()
            return
        check.hashing = True
        try:
            while (chunk := check.early.pop(check.hashed, None)) is not None:
                await self.run(check.digest.update, chunk)
                check.advance(len(chunk))
        finally:
            check.hashing = False
            check.wake()
        if check.hashed >= version.size:
            await self._judge(version, check)

    async def _judge(self, version: ObjectVersion, check: WholeCheck) -> None:
        """Compare a whole pass with the expected MD5; a mismatch fails every read of the version."""
        actual = base64.b64encode(check.digest.digest()).decode()
        check.hashed = -1
        if actual == version.md5_base64:
            return
        log.error(
            "integrity error: %s (etag %s) has MD5 %s, expected %s",
            version.key,
            version.etag,
            actual,
            version.md5_base64,
        )
        failure = IntegrityError(f"{version.key}: content does not match its checksum", key=version.key)
        self._unreadable[(version.key, version.etag)] = failure
        self.forget(version)
        if self.disk is not None:
            await self.run(self.disk.invalidate, version.key)
        raise failure

    def forget(self, version: ObjectVersion) -> None:
        """Drop a version's blocks from memory (after a mismatch, or when the object changed)."""
        for slot in [s for s in self.memory if s[0] == version.key and s[1] == version.etag]:
            self.memory.pop(slot, None)
