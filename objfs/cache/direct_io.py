"""Block files written and read past the kernel's page cache (O_DIRECT), where the disk allows it.

The page cache holds nothing a cache of data needs: objfs keeps recent blocks in its own
memory, and a block file is written once and read back later, after the page cache has moved
on. Going through it costs the CPU twice for every byte: a copy into freshly allocated page
cache on write, a copy out of it on read. On a 2-core machine where the service, the daemon
and the reader share the CPUs, that copy was the largest single cost of a cold read (41 % of
the daemon's CPU) and of a warm one. Direct I/O lets the disk move the bytes instead.

Direct I/O wants the memory, the length and the file offset aligned to the disk's sector
size. Blocks are therefore made in aligned memory (`aligned_buffer`: the reader cuts its
streams into such blocks, and reads land in one), and written from it as they are; other
bytes are copied into aligned memory first. A file whose length is not a multiple of the
alignment is written padded, then truncated. Small files gain nothing and would pay a disk
round trip each, so they stay buffered. A file system that refuses O_DIRECT (EINVAL at open,
or at the first read or write) is remembered and gets buffered I/O from then on.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

ALIGNMENT = 4096
"""Page size, and a multiple of every sector size in use (512 and 4096)."""
DIRECT_FROM = 128 * 1024
"""Files this large or larger use direct I/O; below it a disk round trip costs more than a copy."""

_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
"""`_new_bytearray(None, size)`: a bytearray of `size` bytes, not zeroed (CPython's C API)."""
_new_bytearray.restype = ctypes.py_object
_new_bytearray.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)


def aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


def aligned_buffer(size: int) -> memoryview:
    """`size` bytes of fresh, writable, uninitialised memory starting on an `ALIGNMENT` boundary.

    A bytearray comes from the heap, whose freed blocks are reused without page faults, where
    an anonymous mapping of its own would be faulted in page by page every time. It is made
    by the C API that leaves it uninitialised (zeroing each 4 MiB block took a tenth of a
    stream's time): callers hand out only the bytes they filled."""
    raw = _new_bytearray(None, size + ALIGNMENT)
    start = -_address(raw) % ALIGNMENT
    return memoryview(raw)[start : start + size]


def _address(buffer: bytearray | memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


def _is_aligned(data: bytes | memoryview) -> bool:
    """Whether `data` is writable memory starting on an alignment boundary (bytes never are)."""
    if not isinstance(data, memoryview) or data.readonly or not data.c_contiguous or not data:
        return False
    return _address(data) % ALIGNMENT == 0


class DirectFiles:
    """Whole-file writes and reads of files up to `largest` bytes, direct where possible. Thread-safe."""

    def __init__(self, largest: int) -> None:
        self.largest = largest
        self.direct = hasattr(os, "O_DIRECT")

    def write_new(self, path: str, data: bytes | memoryview) -> None:
        """Create `path`, which must not exist, holding `data`, readable by the owner only."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with self._opened(path, flags, len(data)) as (fd, direct):
            if direct:
                if self._unless_refused(fd, _write_direct, fd, data):
                    return
                os.ftruncate(fd, 0)  # whatever the refused write left
                os.lseek(fd, 0, os.SEEK_SET)
            _write_all(fd, memoryview(data))

    def read(self, path: str, size: int) -> bytes | memoryview:
        """The bytes of `path`, expected to hold `size`; at most `size + 1`, so a longer file shows.

        A direct read lands in the aligned memory it is returned in: no scratch buffer, no copy."""
        with self._opened(path, os.O_RDONLY, size) as (fd, direct):
            if direct:
                if (data := self._unless_refused(fd, _read_direct, fd, size + 1)) is not None:
                    return data
                os.lseek(fd, 0, os.SEEK_SET)
            return _read_up_to(fd, size + 1)

    def _unless_refused(self, fd: int, io: Callable[..., T], *args: Any) -> T | None:
        """`io(*args)`, or None where the file system refuses direct I/O only once asked for it
        (EINVAL for an alignment it does not accept): `fd` is then switched to buffered I/O."""
        try:
            return io(*args)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        self._refused()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        return None

    def _refused(self) -> None:
        if self.direct:
            log.info("the cache's file system refuses direct I/O; block files go through the page cache")
        self.direct = False

    @contextlib.contextmanager
    def _opened(self, path: str, flags: int, size: int) -> Iterator[tuple[int, bool]]:
        fd, direct = self._open(path, flags, self.direct and DIRECT_FROM <= size <= self.largest)
        try:
            yield fd, direct
        finally:
            os.close(fd)

    def _open(self, path: str, flags: int, direct: bool) -> tuple[int, bool]:
        """`path` opened, for direct I/O if `direct` and the file system allows it; and whether it was."""
        if direct:
            try:
                return os.open(path, flags | os.O_DIRECT, 0o600), True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
            self._refused()
            flags &= ~os.O_EXCL  # Linux refuses O_DIRECT after creating the file
        return os.open(path, flags, 0o600), False


def _write_direct(fd: int, data: bytes | memoryview) -> bool:
    """Write `data` from aligned memory, the tail padded to the alignment, then cut to length."""
    view = data if _is_aligned(data) else _aligned_copy(data)
    whole = len(view) - len(view) % ALIGNMENT
    _write_all(fd, view[:whole])
    if whole < len(view):
        _write_all(fd, _aligned_copy(view[whole:], ALIGNMENT))
        os.ftruncate(fd, len(view))
    return True


def _read_direct(fd: int, limit: int) -> memoryview:
    """At most `limit` bytes, read into aligned memory of their own."""
    view = aligned_buffer(aligned(limit))
    filled = 0
    while filled < len(view) and (count := os.readv(fd, [view[filled:]])):
        filled += count
    return view[: min(filled, limit)]


def _aligned_copy(data: bytes | memoryview, size: int | None = None) -> memoryview:
    """`data` copied into aligned memory of `size` bytes (its own length if None), zero-padded."""
    copy = aligned_buffer(len(data) if size is None else size)
    copy[: len(data)] = data
    copy[len(data) :] = bytes(len(copy) - len(data))
    return copy


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _read_up_to(fd: int, limit: int) -> bytes:
    parts: list[bytes] = []
    while limit > 0 and (chunk := os.read(fd, limit)):
        parts.append(chunk)
        limit -= len(chunk)
    return b"".join(parts)
