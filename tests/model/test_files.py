"""Files: what a write leaves in the bucket, and when."""

from __future__ import annotations

import errno
import os
import re
import stat

import pytest

from objfs.storage.memory import MemoryStorage

from .support import GID, UID, Client, FlakyStorage, Mounts, expect_errno, seed

MTIME = re.compile(r"\d+(\.\d{9})?")


async def test_close_stores_bytes_and_s3fs_metadata(vfs: Client, bucket: MemoryStorage) -> None:
    handle = await vfs.create("notes.txt", mode=0o640)
    await vfs.fs.write(handle.fh, 0, b"hello ")
    await vfs.fs.write(handle.fh, 6, b"world")
    assert not bucket.exists("notes.txt"), "nothing is stored before flush"
    await vfs.fs.flush(handle.fh)
    assert bucket.read("notes.txt") == b"hello world"
    await vfs.fs.release(handle.fh)
    meta = bucket.stat("notes.txt").metadata or {}
    assert meta["mode"] == str(stat.S_IFREG | 0o640)
    assert (meta["uid"], meta["gid"]) == (str(UID), str(GID))
    assert MTIME.fullmatch(meta["mtime"]), meta["mtime"]
    assert bucket.stat("notes.txt").content_type == "text/plain"


async def test_written_file_reads_back_on_another_mount(vfs: Client, mounts: Mounts) -> None:
    await vfs.write_file("data.bin", b"\x00\x01" * 1000)
    assert await mounts.mount(cache="other").read_file("data.bin") == b"\x00\x01" * 1000


async def test_empty_file_is_stored_at_release(vfs: Client, bucket: MemoryStorage) -> None:
    handle = await vfs.create("empty")
    await vfs.fs.release(handle.fh)
    assert bucket.read("empty") == b""
    assert (await vfs.lookup("empty")).size == 0


async def test_mount_prefix_puts_keys_under_it(mounts: Mounts, bucket: MemoryStorage) -> None:
    seed(bucket, {"elsewhere.txt": b"not mine"})
    vfs = mounts.mount(prefix="some/prefix")
    await vfs.mkdir("docs")
    await vfs.write_file("docs/a.txt", b"A")
    await vfs.write_file("top.txt", b"T")
    assert sorted(bucket.scan("")) == ["elsewhere.txt", "some/prefix/docs/a.txt", "some/prefix/top.txt"]
    assert bucket.exists("some/prefix/docs/")
    assert sorted(await vfs.listdir()) == ["docs", "top.txt"]


async def test_write_in_the_middle_keeps_the_rest_and_other_metadata(
    vfs: Client, bucket: MemoryStorage
) -> None:
    seed(bucket, {"greeting": b"hello world"}, metadata={"color": "blue"})
    handle = await vfs.open("greeting", os.O_RDWR)
    await vfs.fs.write(handle.fh, 6, b"WORLD")
    await vfs.close(handle)
    assert bucket.read("greeting") == b"hello WORLD"
    assert (bucket.stat("greeting").metadata or {})["color"] == "blue"


async def test_append_writes_at_the_end(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"log": b"one\n"})
    handle = await vfs.open("log", os.O_WRONLY | os.O_APPEND)
    await vfs.fs.write(handle.fh, 0, b"two\n")
    await vfs.close(handle)
    assert bucket.read("log") == b"one\ntwo\n"


@pytest.mark.parametrize(
    ("size", "expected"),
    [(4, b"0123"), (0, b""), (13, b"0123456789\0\0\0")],
    ids=["shrink", "empty", "grow"],
)
async def test_truncate_closed_file_updates_object_at_once(
    vfs: Client, bucket: MemoryStorage, size: int, expected: bytes
) -> None:
    await vfs.write_file("digits", b"0123456789")
    node = await vfs.setattr("digits", size=size)
    assert bucket.read("digits") == expected
    assert node.size == size
    assert not node.dirty


async def test_open_with_o_trunc_empties_the_file(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"old": b"old content", "also": b"more"})
    handle = await vfs.open("old", os.O_WRONLY | os.O_TRUNC)
    await vfs.fs.write(handle.fh, 0, b"new")
    await vfs.close(handle)
    await vfs.close(await vfs.open("also", os.O_WRONLY | os.O_TRUNC))
    assert (bucket.read("old"), bucket.read("also")) == (b"new", b"")


async def test_unlinked_open_file_stays_readable(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("doomed", b"last words")
    handle = await vfs.open("doomed")
    await vfs.unlink("doomed")
    assert not bucket.exists("doomed")
    assert await vfs.read_all(handle) == b"last words"
    await vfs.fs.release(handle.fh)
    assert not bucket.exists("doomed"), "closing must not bring it back"


async def test_file_replaced_by_rename_stays_readable_through_open_handle(
    vfs: Client, bucket: MemoryStorage
) -> None:
    await vfs.write_file("current", b"old version")
    await vfs.write_file("incoming", b"new version!")
    handle = await vfs.open("current")
    await vfs.rename("incoming", "current")
    assert await vfs.read_all(handle) == b"old version"
    await vfs.fs.release(handle.fh)
    assert bucket.read("current") == b"new version!"


async def test_sync_uploads_dirty_open_files(vfs: Client, bucket: MemoryStorage) -> None:
    handle = await vfs.create("open.txt")
    await vfs.fs.write(handle.fh, 0, b"unsaved")
    await vfs.fs.sync()
    assert bucket.read("open.txt") == b"unsaved"


async def test_upload_failure_is_eio_and_the_data_is_kept(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = mounts.mount(FlakyStorage(bucket.bucket))
    handle = await vfs.create("precious")
    await vfs.fs.write(handle.fh, 0, b"keep me")
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    assert not bucket.exists("precious")
    assert await vfs.fs.read(handle.fh, 0, 100) == b"keep me"
    await vfs.fs.flush(handle.fh)
    assert bucket.read("precious") == b"keep me"


async def test_upload_failing_at_close_is_retried_by_sync_after_forget(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    vfs = mounts.mount(FlakyStorage(bucket.bucket))
    handle = await vfs.create("precious")
    await vfs.fs.write(handle.fh, 0, b"keep me")
    await vfs.fs.release(handle.fh)
    assert not bucket.exists("precious")
    vfs.fs.forget(handle.ino, 1)
    await vfs.fs.sync()
    assert bucket.read("precious") == b"keep me"


async def test_sequential_small_reads_cost_one_request_per_block(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    vfs = mounts.mount(block_size=64 * 1024, read_ahead=256 * 1024, read_strategy="ranges")
    body = os.urandom(64 * 1024 * 10 + 1000)
    seed(bucket, {"big": body})
    handle = await vfs.open("big")
    vfs.storage.reset()
    assert await vfs.read_all(handle, chunk=4096) == body
    assert dict(vfs.storage.calls) == {"read": 11}


async def test_getattr_sees_changes_made_by_others(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = mounts.mount(attr_timeout=0)
    seed(bucket, {"shared": b"abc"})
    node = await vfs.lookup("shared")
    seed(bucket, {"shared": b"abcdefghij"})
    assert (await vfs.fs.getattr(node.ino)).size == 10
    bucket.delete("shared")
    with expect_errno(errno.ENOENT):
        await vfs.fs.getattr(node.ino)


@pytest.mark.parametrize("kind", ["file", "directory"])
async def test_creating_an_existing_name_is_eexist(vfs: Client, kind: str) -> None:
    await vfs.write_file("taken", b"")
    with expect_errno(errno.EEXIST):
        await (vfs.create("taken") if kind == "file" else vfs.mkdir("taken"))
