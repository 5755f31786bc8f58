"""Large files: uploaded in parts while written, completed at close, never left half-done."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pytest
import trio

from objfs.cache.journal import Journal
from objfs.fs.upload import PartLayout
from objfs.storage.base import ObjectInfo, Unavailable, UploadedPart, content_md5
from objfs.storage.memory import MemoryStorage

from .support import Client, CountingStorage, Mounts, expect_errno

PART = 1024
SMALL_PARTS = {"part_size": PART, "multipart_threshold": 4 * PART}


class PartCountingStorage(CountingStorage):
    """Counts parts as they arrive, and can fail the next completion."""

    def __init__(self, bucket: str, *, fail_completions: int = 0) -> None:
        super().__init__(bucket)
        self.parts_sent = 0
        self.fail_completions = fail_completions

    def upload_part(self, key: str, upload_id: str, number: int, data: Any, md5: str) -> UploadedPart:
        self.parts_sent += 1
        return super().upload_part(key, upload_id, number, data, md5)

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> ObjectInfo:
        if self.fail_completions:
            self.fail_completions -= 1
            raise Unavailable("completion refused for the test", key=key)
        return super().complete_multipart(key, upload_id, parts)


def parted(mounts: Mounts, **options: Any) -> Client:
    return mounts.mount(PartCountingStorage(mounts.bucket, **options), **SMALL_PARTS)


async def write_in_chunks(vfs: Client, path: str, data: bytes, chunk: int = 512) -> Any:
    handle = await vfs.create(path)
    for offset in range(0, len(data), chunk):
        await vfs.fs.write(handle.fh, offset, data[offset : offset + chunk])
    return handle


async def failed_close(mounts: Mounts, path: str, data: bytes) -> tuple[Client, Any]:
    """A large file whose completion failed: EIO at close, its handle still open, bytes staged."""
    vfs = parted(mounts, fail_completions=1)
    handle = await write_in_chunks(vfs, path, data)
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    return vfs, handle


async def test_parts_are_sent_while_the_file_is_written(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = parted(mounts)
    data = os.urandom(10 * PART + 100)
    handle = await write_in_chunks(vfs, "big.bin", data)
    with trio.fail_after(5):  # the full parts go up in the background, before close
        while vfs.storage.parts_sent < 10:
            await trio.sleep(0.01)
    await vfs.close(handle)
    assert vfs.storage.parts_sent == 11
    assert bucket.read("big.bin") == data
    assert bucket.stat("big.bin").etag.endswith("-11")
    assert bucket.list_multipart() == []
    assert vfs.fs.journal.unfinished_uploads() == []


async def test_rewriting_a_sent_part_sends_it_again(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = parted(mounts)
    data = bytearray(os.urandom(8 * PART))
    handle = await write_in_chunks(vfs, "edited.bin", bytes(data))
    await vfs.fs.write(handle.fh, 10, b"REWRITTEN")
    data[10:19] = b"REWRITTEN"
    await vfs.close(handle)
    assert bucket.read("edited.bin") == bytes(data)


async def test_small_files_take_one_put(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = parted(mounts)
    await vfs.write_file("small.bin", b"x" * (2 * PART))
    assert vfs.storage.parts_sent == 0
    assert bucket.stat("small.bin").etag.count("-") == 0


async def test_failed_completion_aborts_reports_eio_and_keeps_the_data(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    data = os.urandom(6 * PART)
    vfs, handle = await failed_close(mounts, "retry.bin", data)
    assert not bucket.exists("retry.bin")
    assert bucket.list_multipart() == []
    await vfs.fs.flush(handle.fh)
    await vfs.close(handle)
    assert bucket.read("retry.bin") == data


async def test_chmod_during_a_parted_write_is_kept(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = parted(mounts)
    handle = await write_in_chunks(vfs, "mode.bin", os.urandom(6 * PART))
    await vfs.fs.setattr(handle.ino, mode=0o600)
    await vfs.close(handle)
    assert bucket.stat("mode.bin").metadata["mode"] == str(stat.S_IFREG | 0o600)


async def test_uploads_left_by_a_crash_are_aborted_at_the_next_mount(
    mounts: Mounts, bucket: MemoryStorage, tmp_path: Any
) -> None:
    journal = Journal(str(tmp_path / "cache" / "journal.sqlite"))
    ours = bucket.create_multipart("crashed.bin")
    journal.upload_started("crashed.bin", ours)
    theirs = bucket.create_multipart("someone-else.bin")
    journal.close()
    vfs = mounts.mount()
    with trio.fail_after(5):  # the cleanup runs in the background once the mount starts
        while len(bucket.list_multipart()) > 1:
            await trio.sleep(0.01)
    assert [u.upload_id for u in bucket.list_multipart()] == [theirs]
    assert vfs.fs.journal.unfinished_uploads() == []


@pytest.mark.parametrize("base", [8 * 1024 * 1024, 16 * 1024 * 1024])
def test_part_layout_reaches_five_tebibytes_in_ten_thousand_parts(base: int) -> None:
    layout = PartLayout(base)
    assert layout.bounds(10_000)[1] > 5 * 1024**4
    for number in (1, 2, 999, 1000, 1001, 2500, 9999):
        start, end = layout.bounds(number)
        assert layout.number_at(start) == layout.number_at(end - 1) == number
        assert layout.bounds(number + 1)[0] == end
    assert (layout.count(0), layout.count(1), layout.count(base), layout.count(base + 1)) == (1, 1, 1, 2)


async def test_the_blob_record_keeps_each_part_md5(mounts: Mounts) -> None:
    vfs = parted(mounts)
    data = os.urandom(5 * PART + 10)
    handle = await write_in_chunks(vfs, "parts.bin", data)
    await vfs.close(handle)
    record = vfs.fs.blobs.get("parts.bin")
    assert record is not None
    assert record.checksum == content_md5(data)
    assert record.part_checksums == [content_md5(data[i : i + PART]) for i in range(0, len(data), PART)]


class PartFailingStorage(PartCountingStorage):
    """A service that stops answering after the second part."""

    def upload_part(self, key: str, upload_id: str, number: int, data: Any, md5: str) -> UploadedPart:
        if number > 2:
            raise Unavailable("the service stopped answering", key=key)
        return super().upload_part(key, upload_id, number, data, md5)


async def test_an_upload_cut_off_midway_is_aborted_never_half_visible(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    vfs = mounts.mount(PartFailingStorage(mounts.bucket), **SMALL_PARTS)
    handle = await write_in_chunks(vfs, "cut.bin", os.urandom(8 * PART))
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    assert not bucket.exists("cut.bin")
    assert bucket.list_multipart() == []
    assert vfs.fs.journal.unfinished_uploads() == []


async def test_a_retried_completion_never_overwrites_a_newer_object(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    """After close failed, another writer stored the key: the retry goes beside it, not over it."""
    data = os.urandom(6 * PART)
    vfs, handle = await failed_close(mounts, "shared.bin", data)
    bucket.write("shared.bin", b"theirs")
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    await vfs.close(handle)
    assert bucket.read("shared.bin") == b"theirs"
    conflicts = [key for key in bucket.scan("") if key.startswith("shared.bin.objfs-conflict-")]
    assert [bucket.read(key) for key in conflicts] == [data]
    assert bucket.list_multipart() == []


async def test_a_retried_completion_over_an_unchanged_object_lands(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    vfs = parted(mounts)
    await vfs.write_file("kept.bin", b"old")
    vfs.storage.fail_completions = 1
    data = os.urandom(6 * PART)
    handle = await vfs.open("kept.bin", os.O_WRONLY | os.O_TRUNC)
    for offset in range(0, len(data), 512):
        await vfs.fs.write(handle.fh, offset, data[offset : offset + 512])
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    await vfs.close(handle)
    assert bucket.read("kept.bin") == data
    assert [key for key in bucket.scan("") if "objfs-conflict" in key] == []


async def test_a_large_close_cut_short_by_a_crash_is_finished_in_parts(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    """No single-PUT size limit applies to owed bytes: they go up in parts, as the close would."""
    data = os.urandom(6 * PART)
    await failed_close(mounts, "owed.bin", data)
    again = parted(mounts)  # the first mount is abandoned, as a crash leaves it
    with trio.fail_after(5):
        while not bucket.exists("owed.bin"):
            await trio.sleep(0.01)
    assert bucket.read("owed.bin") == data
    assert bucket.stat("owed.bin").etag.endswith("-6")
    assert again.storage.parts_sent == 6
    assert bucket.list_multipart() == []
