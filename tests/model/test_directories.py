"""Directories: implied by keys or marked by `dir/` objects, and what listing them costs."""

from __future__ import annotations

import errno
import stat

import pytest

from objfs.fs.mapping import DIR_CONTENT_TYPE
from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, expect_errno, seed


async def test_keys_imply_directories(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"a/b/c.txt": b"12345", "top.bin": b"0123456789"})
    assert (await vfs.lookup("a")).is_dir
    assert (await vfs.lookup("a/b")).is_dir
    root = await vfs.listdir()
    assert sorted(root) == ["a", "top.bin"]
    assert root["a"].is_dir
    assert (root["top.bin"].size, stat.S_ISREG(root["top.bin"].mode)) == (10, True)
    assert list(await vfs.listdir("a")) == ["b"]
    assert {name: n.size for name, n in (await vfs.listdir("a/b")).items()} == {"c.txt": 5}
    assert await vfs.read_file("a/b/c.txt") == b"12345"


@pytest.mark.parametrize(("count", "lists"), [(1000, 1), (1001, 2), (2500, 3)])
async def test_readdir_costs_one_list_per_thousand_and_no_heads(
    vfs: Client, bucket: MemoryStorage, count: int, lists: int
) -> None:
    seed(bucket, {f"f{i:05d}": bytes(i % 7) for i in range(count)})
    entries = await vfs.listdir()
    assert len(entries) == count
    assert entries["f00006"].size == 6
    assert dict(vfs.storage.calls) == {"list": lists}


async def test_keys_that_cannot_be_names_are_skipped(vfs: Client, bucket: MemoryStorage) -> None:
    long = "n" * 300
    seed(
        bucket,
        {
            "x//y": b"",
            "./z": b"",
            "../up": b"",
            long: b"",
            f"d/{long}": b"",
            "nul\0name": b"",
            "fine.txt": b"ok",
        },
    )
    assert sorted(await vfs.listdir()) == ["d", "fine.txt", "x"]
    assert await vfs.listdir("x") == {}
    assert await vfs.listdir("d") == {}


async def test_object_beside_same_named_prefix_shows_as_directory(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"a": b"shadowed", "a/inner": b"seen"})
    assert (await vfs.listdir())["a"].is_dir
    assert (await vfs.lookup("a")).is_dir
    assert list(await vfs.listdir("a")) == ["inner"]


async def test_mkdir_writes_marker_with_directory_mode(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("made", mode=0o750)
    marker = bucket.stat("made/")
    assert (marker.size, marker.content_type) == (0, DIR_CONTENT_TYPE)
    assert (marker.metadata or {})["mode"] == str(stat.S_IFDIR | 0o750)


async def test_empty_directory_survives_remount(vfs: Client, mounts: Mounts) -> None:
    await vfs.mkdir("empty", mode=0o700)
    again = mounts.mount(cache="fresh")
    node = await again.lookup("empty")
    assert node.mode == stat.S_IFDIR | 0o700
    assert "empty" in await again.listdir()
    assert await again.listdir("empty") == {}


async def test_directory_mode_after_listing_on_fresh_mount(vfs: Client, mounts: Mounts) -> None:
    await vfs.mkdir("private", mode=0o700)
    again = mounts.mount(cache="fresh")
    await again.listdir()
    assert (await again.lookup("private")).mode == stat.S_IFDIR | 0o700


async def test_rmdir_refuses_non_empty_and_removes_marker(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("full")
    await vfs.write_file("full/file", b"x")
    with expect_errno(errno.ENOTEMPTY):
        await vfs.rmdir("full")
    await vfs.unlink("full/file")
    await vfs.rmdir("full")
    assert bucket.scan("", directories=True) == []
    with expect_errno(errno.ENOENT):
        await vfs.lookup("full")


async def test_rmdir_refuses_directory_with_unsaved_new_file(vfs: Client) -> None:
    await vfs.mkdir("busy")
    await vfs.create("busy/new")
    with expect_errno(errno.ENOTEMPTY):
        await vfs.rmdir("busy")


async def test_rmdir_of_a_file_is_enotdir(vfs: Client) -> None:
    await vfs.write_file("plain", b"")
    with expect_errno(errno.ENOTDIR):
        await vfs.rmdir("plain")


async def test_new_unsaved_file_is_listed_only_locally(vfs: Client, mounts: Mounts) -> None:
    handle = await vfs.create("pending")
    await vfs.fs.write(handle.fh, 0, b"1234")
    assert (await vfs.listdir())["pending"].size == 4
    assert "pending" not in await mounts.mount(cache="other").listdir()
