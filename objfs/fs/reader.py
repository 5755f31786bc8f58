"""Reads of objects in the bucket: fixed-size blocks, cached, fetched ahead of a sequential reader.

A read touches whole blocks. Each block comes from memory (recent blocks), then the disk
cache, then one ranged GET, and one fetch serves everyone waiting for the same block. A
reader that keeps asking for the next bytes gets the following blocks fetched in parallel
before it asks (`read_ahead` bytes of them); a random reader fetches only what it touches.
Blocks fetched ahead go to the caches, never to an unbounded queue, so memory stays bounded.
A sequential read of a whole object is checked at its end against the object's MD5.
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

from ..storage.base import IntegrityError, Storage

log = logging.getLogger(__name__)
Runner = Callable[..., Awaitable[Any]]
SEQUENTIAL_AFTER = 2
"""Reads in a row that continue the previous one before readahead starts."""


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
    ahead: int = -1
    """The last block index fetched ahead."""

    def saw(self, offset: int, length: int) -> bool:
        """Record a read; True when the reader is sequential."""
        self.streak = self.streak + 1 if offset == self.next_offset else 0
        self.next_offset = offset + length
        return self.streak >= SEQUENTIAL_AFTER


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
    ) -> None:
        self.storage = storage
        self.run = run
        self.disk = disk
        self.block_size = block_size
        self.read_ahead = read_ahead
        self.memory: LRUCache[tuple[str, str, int], bytes] = LRUCache(maxsize=memory_bytes, getsizeof=len)
        self._fetching: dict[tuple[str, str, int], trio.Event] = {}
        self.nursery: trio.Nursery | None = None

    async def read(self, version: ObjectVersion, state: ReadState, offset: int, length: int) -> bytes:
        length = max(0, min(length, version.size - offset))
        if length == 0:
            return b""
        first, last = offset // self.block_size, (offset + length - 1) // self.block_size
        if state.saw(offset, length):
            self._read_ahead(version, state, last)
        blocks = [await self.block(version, index) for index in range(first, last + 1)]
        start = offset - first * self.block_size
        data = b"".join(blocks)[start : start + length]
        self._check_whole(version, state, offset, data)
        return data

    async def block(self, version: ObjectVersion, index: int) -> bytes:
        """One block, fetched at most once however many readers want it at the same moment."""
        slot = (version.key, version.etag, index)
        while True:
            cached = self.memory.get(slot)
            if cached is not None:
                return cached
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
                return cached
        data = await self.run(self.storage.read, version.key, index * self.block_size, self.block_size)
        if self.disk is not None:
            await self.run(self.disk.put, version.key, version.etag, index, data)
        return data

    def _read_ahead(self, version: ObjectVersion, state: ReadState, last: int) -> None:
        if self.nursery is None:
            return
        final = (version.size - 1) // self.block_size
        horizon = min(final, last + max(1, self.read_ahead // self.block_size))
        for index in range(max(last + 1, state.ahead + 1), horizon + 1):
            self.nursery.start_soon(self._prefetch, version, index)
        state.ahead = max(state.ahead, horizon)

    async def _prefetch(self, version: ObjectVersion, index: int) -> None:
        try:
            await self.block(version, index)
        except Exception as exc:  # the reader fetches it again, and sees the error itself
            log.debug("read-ahead of block %d of %s failed: %s", index, version.key, exc)

    def _check_whole(self, version: ObjectVersion, state: ReadState, offset: int, data: bytes) -> None:
        """Hash what a reader reads from byte 0 in order; at the end, compare with the object's MD5."""
        if offset != state.hashed:
            return
        state.digest.update(data)
        state.hashed += len(data)
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
