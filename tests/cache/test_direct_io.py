"""Block files past the page cache: the bytes written are the bytes read, whatever their length
or alignment, and a file system that refuses direct I/O still gets them."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

import pytest

from objfs.cache.blocks import BlockCache, block_name
from objfs.cache.direct_io import ALIGNMENT, DIRECT_FROM, DirectFiles, aligned_buffer

LARGEST = 1024 * 1024

SIZES = [10, DIRECT_FROM - 1, DIRECT_FROM, DIRECT_FROM + 3, LARGEST - ALIGNMENT + 1, LARGEST]


def pattern(size: int) -> bytes:
    """Bytes that differ at every offset a misplaced sector would land on."""
    return (os.urandom(251) * (size // 251 + 1))[:size]


def in_aligned_memory(data: bytes) -> memoryview:
    block = aligned_buffer(len(data))
    block[:] = data
    return block


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("source", [bytes, in_aligned_memory], ids=["bytes", "aligned"])
def test_what_is_written_is_read_back(size: int, source: object, tmp_path: Path) -> None:
    files, data = DirectFiles(LARGEST), pattern(size)
    path = tmp_path / "block"
    files.write_new(str(path), source(data))  # type: ignore[operator]

    assert path.read_bytes() == data  # through the page cache, as any other program sees it
    assert path.stat().st_mode & 0o777 == 0o600
    assert files.read(str(path), size) == data


def test_a_longer_file_than_expected_shows(tmp_path: Path) -> None:
    """Reading stops one byte past the expected size, so a grown file fails its size check."""
    path = tmp_path / "block"
    path.write_bytes(pattern(3 * DIRECT_FROM))
    assert len(DirectFiles(LARGEST).read(str(path), DIRECT_FROM)) == DIRECT_FROM + 1


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "block"
    path.write_bytes(b"already here")
    with pytest.raises(FileExistsError):
        DirectFiles(LARGEST).write_new(str(path), pattern(DIRECT_FROM))
    assert path.read_bytes() == b"already here"


def test_a_file_system_refusing_direct_io_gets_buffered_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_open = os.open

    def refuse_direct(path: str, flags: int, mode: int = 0o777) -> int:
        """As Linux refuses O_DIRECT where a file system lacks it: after creating the file."""
        if flags & os.O_DIRECT:
            if flags & os.O_CREAT:
                os.close(real_open(path, flags & ~os.O_DIRECT, mode))
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refuse_direct)
    files, data = DirectFiles(LARGEST), pattern(DIRECT_FROM + 3)
    with caplog.at_level(logging.INFO):
        for name in ("a", "b"):
            files.write_new(str(tmp_path / name), data)
            assert files.read(str(tmp_path / name), len(data)) == data
    assert not files.direct
    assert sum("refuses direct I/O" in record.getMessage() for record in caplog.records) == 1


def test_a_block_damaged_through_the_page_cache_is_caught(tmp_path: Path) -> None:
    """A change another program writes (into the page cache) is what a direct read sees."""
    size = 2 * DIRECT_FROM
    with BlockCache(str(tmp_path), capacity=4 * size, block_size=size) as cache:
        data = pattern(size)
        assert cache.put("big", "e", 0, data)
        assert cache.get("big", "e", 0) == data
        with open(tmp_path / "blocks" / block_name(("big", "e", 0)), "r+b") as damaged:
            damaged.seek(size // 2)
            damaged.write(b"\0" * 16)
        assert cache.get("big", "e", 0) is None


def test_a_short_block_in_aligned_memory_round_trips(tmp_path: Path) -> None:
    """How the reader hands over streamed blocks: aligned memory, the last one short."""
    size = 2 * DIRECT_FROM
    with BlockCache(str(tmp_path), capacity=4 * size, block_size=size) as cache:
        data = pattern(size - 5)
        assert cache.put("big", "e", 1, in_aligned_memory(data))
        assert cache.get("big", "e", 1) == data


def test_a_file_system_refusing_direct_writes_after_open_gets_buffered_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Some file systems accept O_DIRECT at open, then refuse the alignment of the first write."""
    real_write = os.write

    def refuse_direct(fd: int, data: bytes) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            real_write(fd, bytes(data)[:ALIGNMENT])  # as if part got through before the refusal
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refuse_direct)
    files, data = DirectFiles(LARGEST), pattern(DIRECT_FROM + 3)
    with caplog.at_level(logging.INFO):
        files.write_new(str(tmp_path / "block"), data)
    assert (tmp_path / "block").read_bytes() == data
    assert files.read(str(tmp_path / "block"), len(data)) == data
    assert not files.direct
    assert sum("refuses direct I/O" in record.getMessage() for record in caplog.records) == 1


def test_a_file_system_refusing_direct_reads_gets_buffered_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, data = DirectFiles(LARGEST), pattern(DIRECT_FROM + 3)
    files.write_new(str(tmp_path / "block"), data)
    real_readv = os.readv

    def refuse_direct(fd: int, buffers: list[memoryview]) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_readv(fd, buffers)

    monkeypatch.setattr(os, "readv", refuse_direct)
    assert files.read(str(tmp_path / "block"), len(data)) == data
    assert not files.direct
