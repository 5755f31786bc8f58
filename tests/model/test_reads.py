"""Reads of stored objects: by blocks, fetched once, ahead of sequential readers, and checked."""

from __future__ import annotations

import base64
import ctypes
import errno
import hashlib
import os

import pytest
import trio

from objfs.cache.direct_io import ALIGNMENT
from objfs.fs.reader import cut_blocks
from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, expect_errno, seed

BLOCK = 64 * 1024


def small_blocks(mounts: Mounts, strategy: str = "ranges") -> Client:
    return mounts.mount(
        block_size=BLOCK, read_ahead=4 * BLOCK, memory_cache=64 * BLOCK, read_strategy=strategy
    )


async def test_random_reads_fetch_only_the_blocks_they_touch(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts)
    body = os.urandom(BLOCK * 20)
    seed(bucket, {"big": body})
    handle = await vfs.open("big")
    vfs.storage.reset()
    for offset in (BLOCK * 13 + 5, BLOCK * 2, BLOCK * 17 - 10):
        assert await vfs.fs.read(handle.fh, offset, 100) == body[offset : offset + 100]
    assert vfs.storage.calls["read"] == 4  # the last read spans two blocks


async def test_a_sequential_reader_is_served_ahead(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts)
    body = os.urandom(BLOCK * 7)  # the read-ahead window reaches the last block: no fetch after
    seed(bucket, {"big": body})
    handle = await vfs.open("big")
    for offset in range(0, 3 * BLOCK, BLOCK):
        await vfs.fs.read(handle.fh, offset, BLOCK)
    with trio.fail_after(5):
        while vfs.storage.calls["read"] < 7:  # blocks 3..6 are fetched before the reader asks
            await trio.sleep(0.01)
    vfs.storage.reset()
    assert await vfs.fs.read(handle.fh, 3 * BLOCK, BLOCK) == body[3 * BLOCK : 4 * BLOCK]
    assert "read" not in vfs.storage.calls


async def test_readers_of_one_block_share_one_fetch(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts)
    vfs.storage.delay = 0.05
    seed(bucket, {"shared": os.urandom(BLOCK)})
    handles = [await vfs.open("shared") for _ in range(5)]
    vfs.storage.reset()
    async with trio.open_nursery() as nursery:
        for handle in handles:
            nursery.start_soon(vfs.fs.read, handle.fh, 0, 100)
    assert vfs.storage.calls["read"] == 1


async def test_a_corrupted_object_is_an_eio_not_wrong_bytes(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts)
    body = os.urandom(BLOCK * 3)
    seed(bucket, {"rotten": body})
    bucket._objects["rotten"].body = body[:100] + b"X" + body[101:]  # bit rot behind the same etag
    handle = await vfs.open("rotten")
    with expect_errno(errno.EIO):
        await vfs.read_all(handle, chunk=BLOCK)


@pytest.mark.parametrize("strategy", ["stream", "ranges"])
async def test_a_remount_reads_from_the_disk_cache(
    mounts: Mounts, bucket: MemoryStorage, strategy: str
) -> None:
    body = os.urandom(BLOCK * 12 + 7)
    seed(bucket, {"kept": body})
    first = small_blocks(mounts, strategy)
    assert await first.read_file("kept") == body
    again = small_blocks(mounts, strategy)
    assert await again.read_file("kept") == body
    assert not {"read", "read_stream"} & set(again.storage.calls)


async def test_uploads_leave_a_blob_record_and_a_checksum_attribute(
    vfs: Client, bucket: MemoryStorage
) -> None:
    body = b"hello, blob\n" * 1000
    await vfs.mkdir("notes")
    node = await vfs.write_file("notes/hello.txt", body)
    record = vfs.fs.blobs.get("notes/hello.txt")
    expected = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert record is not None
    assert (record.filename, record.size, record.checksum, record.content_type) == (
        "hello.txt",
        len(body),
        expected,
        "text/plain",
    )
    assert record.etag == bucket.stat("notes/hello.txt").etag
    assert bucket.stat("notes/hello.txt").metadata["md5chksum"] == expected
    assert await vfs.fs.getxattr(node.ino, "user.objfs.checksum") == expected.encode()


async def test_a_streamed_pass_costs_one_streaming_get(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts, strategy="stream")
    body = os.urandom(BLOCK * 12 + 99)
    seed(bucket, {"movie": body})
    handle = await vfs.open("movie")
    vfs.storage.reset()
    assert await vfs.read_all(handle, chunk=16 * 1024) == body
    assert dict(vfs.storage.calls) == {"read_stream": 1}  # from the first read at byte 0


async def test_a_stream_stops_when_the_reader_jumps_or_closes(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts, strategy="stream")
    body = os.urandom(BLOCK * 40)
    seed(bucket, {"movie": body})
    handle = await vfs.open("movie")
    for offset in range(0, 3 * BLOCK, BLOCK):
        await vfs.fs.read(handle.fh, offset, BLOCK)
    assert await vfs.fs.read(handle.fh, 30 * BLOCK, 10) == body[30 * BLOCK : 30 * BLOCK + 10]
    assert handle.reading.stream is None
    await vfs.close(handle)


async def test_out_of_order_read_ahead_is_still_checked_whole(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = small_blocks(mounts, strategy="stream")
    body = os.urandom(BLOCK * 4)
    seed(bucket, {"rotten": body})
    bucket._objects["rotten"].body = body[:-1] + b"X"
    handle = await vfs.open("rotten")
    chunk = BLOCK // 2
    offsets = list(range(0, len(body), chunk))
    offsets[2], offsets[3] = offsets[3], offsets[2]  # as the kernel's parallel read-ahead delivers them
    with expect_errno(errno.EIO):
        for offset in offsets:
            await vfs.fs.read(handle.fh, offset, chunk)


async def test_a_version_that_failed_its_check_fails_every_read_after(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    """The kernel retries a failed read on its own; the retry must not return the bad bytes."""
    vfs = small_blocks(mounts)
    body = os.urandom(BLOCK * 3)
    seed(bucket, {"rotten": body})
    bucket._objects["rotten"].body = body[:100] + b"X" + body[101:]
    handle = await vfs.open("rotten")
    with expect_errno(errno.EIO):
        await vfs.read_all(handle, chunk=BLOCK)
    vfs.storage.reset()
    again = await vfs.open("rotten")
    with expect_errno(errno.EIO):
        await vfs.fs.read(again.fh, 0, 100)
    assert not {"read", "read_stream"} & set(vfs.storage.calls)


async def test_a_reader_of_the_first_bytes_costs_at_most_two_blocks(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    """`file` or `head` reads the start of a large object: its stream waits a block ahead."""
    vfs = small_blocks(mounts, strategy="stream")
    body = os.urandom(BLOCK * 40)
    seed(bucket, {"movie": body})
    handle = await vfs.open("movie")
    vfs.storage.reset()
    assert await vfs.fs.read(handle.fh, 0, 100) == body[:100]
    await trio.sleep(0.2)
    fetched = [index for key, _, index in vfs.fs.reader.memory if key == "movie"]
    assert sorted(fetched) == [0, 1]
    assert dict(vfs.storage.calls) == {"read_stream": 1}
    await vfs.close(handle)


async def test_a_warm_pass_streams_again_where_the_disk_cache_ends(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    body = os.urandom(BLOCK * 16)
    seed(bucket, {"half": body})
    first = small_blocks(mounts, "stream")
    handle = await first.open("half")
    for offset in range(0, 6 * BLOCK, BLOCK):
        await first.fs.read(handle.fh, offset, BLOCK)
    await first.close(handle)
    again = small_blocks(mounts, "stream")
    assert await again.read_file("half") == body
    assert again.storage.calls["read_stream"] >= 1
    assert "read" not in again.storage.calls  # no block fetched by a ranged GET


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10_000, 3 * 4096])
def test_streamed_chunks_are_cut_into_whole_blocks_in_aligned_memory(chunk: int) -> None:
    """However the service's stream is chunked, blocks hold the right bytes, ready for direct I/O."""
    data = os.urandom(5 * 4096 + 123)
    chunks = [data[start : start + chunk] for start in range(0, len(data), chunk)]
    cut = list(cut_blocks(chunks, 2 * 4096))
    assert [len(block) for block in cut] == [8192, 8192, 4096 + 123]
    assert b"".join(cut) == data
    assert all(ctypes.addressof(ctypes.c_char.from_buffer(block)) % ALIGNMENT == 0 for block in cut[:-1])
    assert isinstance(cut[-1], bytes)  # its own few bytes, not a view holding a whole block's memory
