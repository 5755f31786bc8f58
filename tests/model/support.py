"""Storage doubles and a kernel-like driver for testing the filesystem model without FUSE.

The doubles are real `MemoryStorage` subclasses, so every test runs the backend's own code;
they only count requests, hide listing metadata as S3 does, or fail on purpose.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
import trio

from objfs.fs.config import FsConfig
from objfs.fs.handles import Handle
from objfs.fs.inodes import ROOT_INO, Node
from objfs.fs.model import FileSystem
from objfs.storage.base import ListPage, Payload, Storage, Unavailable
from objfs.storage.memory import MemoryStorage

REQUESTS = ("stat", "read", "read_stream", "write", "list", "copy", "delete")
"""The storage calls the model makes, each one request to a real service."""

UID, GID = os.getuid(), os.getgid()


class CountingStorage(MemoryStorage):
    """A memory bucket that counts requests per method, and the most of each in flight at once.

    `delay` makes each request take that long, so requests that can overlap do.
    """

    def __init__(self, bucket: str, *, delay: float = 0.0) -> None:
        super().__init__(bucket)
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self._running: Counter[str] = Counter()
        self._counter_lock = threading.Lock()

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        with self._counter_lock:
            self.calls[name] += 1
            self._running[name] += 1
            self.peak[name] = max(self.peak[name], self._running[name])
        try:
            time.sleep(self.delay)
            yield
        finally:
            with self._counter_lock:
                self._running[name] -= 1

    def reset(self) -> None:
        with self._counter_lock:
            self.calls.clear()
            self.peak.clear()


def _counted(name: str) -> Callable[..., Any]:
    inner = getattr(MemoryStorage, name)

    @functools.wraps(inner)
    def method(self: CountingStorage, *args: Any, **kwargs: Any) -> Any:
        with self.request(name):
            return inner(self, *args, **kwargs)

    return method


for _name in REQUESTS:
    setattr(CountingStorage, _name, _counted(_name))


class S3ListingStorage(CountingStorage):
    """Listings without user metadata, as S3's ListObjectsV2 returns them; `listed` records the
    prefix of every page asked for."""

    def __init__(self, bucket: str, *, delay: float = 0.0) -> None:
        super().__init__(bucket, delay=delay)
        self.listed: list[str] = []

    def list(
        self, prefix: str = "", delimiter: str | None = "/", token: str | None = None, limit: int = 1000
    ) -> ListPage:
        self.listed.append(prefix)
        page = super().list(prefix, delimiter, token, limit)
        page.objects = [replace(info, metadata=None) for info in page.objects]
        return page


class FlakyStorage(CountingStorage):
    """A bucket whose next `failures` writes fail as an unreachable service would."""

    def __init__(self, bucket: str, *, failures: int = 1) -> None:
        super().__init__(bucket)
        self.failures = failures

    def write(self, key: str, data: Payload, **options: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable(f"injected failure writing {key}", key=key)
        return super().write(key, data, **options)


@contextmanager
def expect_errno(code: int) -> Iterator[None]:
    """The block raises OSError with errno `code`, as the caller of the syscall would see."""
    with pytest.raises(OSError) as caught:
        yield
    assert caught.value.errno == code, f"errno {errno.errorcode.get(caught.value.errno)}"


class Client:
    """Drives a FileSystem by path as the kernel and the FUSE adapter do, counting lookups."""

    def __init__(self, fs: FileSystem, storage: CountingStorage) -> None:
        self.fs = fs
        self.storage = storage

    async def lookup(self, path: str) -> Node:
        node = self.fs.inodes[ROOT_INO]
        for name in filter(None, path.split("/")):
            node = await self.fs.lookup(node.ino, name)
            self.fs.count_lookup(node)
        return node

    async def parent(self, path: str) -> tuple[int, str]:
        head, _, name = path.rpartition("/")
        return (await self.lookup(head)).ino, name

    async def create(self, path: str, mode: int = 0o644, flags: int = os.O_WRONLY) -> Handle:
        parent, name = await self.parent(path)
        handle, node = await self.fs.create(parent, name, mode, flags, UID, GID)
        self.fs.count_lookup(node)
        return handle

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> Node:
        """Create, write, close: afterwards the object holds `data` (close-to-open)."""
        handle = await self.create(path, mode)
        await self.fs.write(handle.fh, 0, data)
        await self.close(handle)
        return self.fs.node(handle.ino)

    async def open(self, path: str, flags: int = os.O_RDONLY) -> Handle:
        return await self.fs.open((await self.lookup(path)).ino, flags)

    async def close(self, handle: Handle) -> None:
        await self.fs.flush(handle.fh)
        await self.fs.release(handle.fh)

    async def read_all(self, handle: Handle, chunk: int = 4096) -> bytes:
        data = b""
        while piece := await self.fs.read(handle.fh, len(data), chunk):
            data += piece
        return data

    async def read_file(self, path: str) -> bytes:
        handle = await self.open(path)
        try:
            return await self.read_all(handle)
        finally:
            await self.fs.release(handle.fh)

    async def listdir_ino(self, ino: int) -> dict[str, Node]:
        fh = await self.fs.opendir(ino)
        try:
            entries = dict(await self.fs.readdir(fh, 0))
        finally:
            self.fs.releasedir(fh)
        for node in entries.values():
            self.fs.count_lookup(node)
        return entries

    async def listdir(self, path: str = "") -> dict[str, Node]:
        return await self.listdir_ino((await self.lookup(path)).ino)

    async def mkdir(self, path: str, mode: int = 0o755) -> Node:
        parent, name = await self.parent(path)
        node = await self.fs.mkdir(parent, name, mode, UID, GID)
        self.fs.count_lookup(node)
        return node

    async def rmdir(self, path: str) -> None:
        await self.fs.rmdir(*await self.parent(path))

    async def unlink(self, path: str) -> None:
        await self.fs.unlink(*await self.parent(path))

    async def rename(self, old: str, new: str, flags: int = 0) -> None:
        await self.fs.rename(*await self.parent(old), *await self.parent(new), flags)

    async def symlink(self, path: str, target: str) -> Node:
        parent, name = await self.parent(path)
        node = await self.fs.symlink(parent, name, target, UID, GID)
        self.fs.count_lookup(node)
        return node

    async def setattr(self, path: str, **changes: Any) -> Node:
        return await self.fs.setattr((await self.lookup(path)).ino, **changes)


class Mounts:
    """FileSystems on one test's bucket, started in the test's nursery (see conftest)."""

    def __init__(self, bucket: str, cache_root: str) -> None:
        self.bucket = bucket
        self.cache_root = cache_root
        self.nursery: trio.Nursery | None = None
        self._unstarted: list[FileSystem] = []

    def mount(self, storage: CountingStorage | None = None, cache: str = "cache", **config: Any) -> Client:
        """A new FileSystem, as a fresh mount; `cache` names its cache directory."""
        storage = storage if storage is not None else CountingStorage(self.bucket)
        config.setdefault("metadata_delay", 0.05)
        fs = FileSystem(storage, FsConfig(cache_dir=os.path.join(self.cache_root, cache), **config))
        if self.nursery is None:
            self._unstarted.append(fs)
        else:
            self.nursery.start_soon(fs.start, self.nursery)
        return Client(fs, storage)

    async def start(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        for fs in self._unstarted:
            await fs.start(nursery)
        self._unstarted.clear()


def seed(bucket: Storage, keys: dict[str, bytes], **options: Any) -> None:
    """Write objects straight into the bucket, as another tool would."""
    for key, data in keys.items():
        bucket.write(key, data, **options)
