"""Names: unlink, rename (copy then delete) and symlinks, as keys in the bucket."""

from __future__ import annotations

import errno
import stat

import pytest

from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, expect_errno, seed

RENAME_NOREPLACE = 1


def keys(bucket: MemoryStorage) -> list[str]:
    return [info.key for info in bucket.iter_objects()]


async def test_unlink_deletes_the_key(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("trash", b"x")
    await vfs.unlink("trash")
    assert not bucket.exists("trash")
    with expect_errno(errno.ENOENT):
        await vfs.lookup("trash")


@pytest.mark.parametrize(("length", "code"), [(255, errno.ENOENT), (256, errno.ENAMETOOLONG)])
async def test_name_length_limit(vfs: Client, length: int, code: int) -> None:
    with expect_errno(code):
        await vfs.lookup("é" * (length // 2) + "x" * (length % 2))


async def test_rename_file_moves_bytes_and_metadata(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("src.txt", b"payload", mode=0o640)
    before = bucket.stat("src.txt").metadata
    await vfs.rename("src.txt", "dst.txt")
    assert keys(bucket) == ["dst.txt"]
    assert bucket.read("dst.txt") == b"payload"
    assert bucket.stat("dst.txt").metadata == before
    assert (await vfs.lookup("dst.txt")).mode == stat.S_IFREG | 0o640
    with expect_errno(errno.ENOENT):
        await vfs.lookup("src.txt")


async def test_rename_over_existing_file_replaces_it(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("new", b"fresh")
    await vfs.write_file("old", b"stale data")
    await vfs.rename("new", "old")
    assert keys(bucket) == ["old"]
    assert await vfs.read_file("old") == b"fresh"


async def test_rename_of_unsaved_open_file_stores_it_under_new_name(
    vfs: Client, bucket: MemoryStorage
) -> None:
    handle = await vfs.create("draft")
    await vfs.fs.write(handle.fh, 0, b"v1")
    await vfs.rename("draft", "final")
    await vfs.fs.write(handle.fh, 2, b"+v2")
    await vfs.close(handle)
    assert keys(bucket) == ["final"]
    assert bucket.read("final") == b"v1+v2"


async def test_rename_directory_moves_every_key(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("tree")
    await vfs.mkdir("tree/sub")
    await vfs.write_file("tree/one", b"1")
    await vfs.write_file("tree/sub/two", b"2")
    seed(bucket, {"tree/sub/deep/three": b"3", "treehouse": b"not inside"})
    await vfs.rename("tree", "moved")
    assert keys(bucket) == [
        "moved/",
        "moved/one",
        "moved/sub/",
        "moved/sub/deep/three",
        "moved/sub/two",
        "treehouse",
    ]
    assert await vfs.read_file("moved/sub/two") == b"2"
    assert await vfs.read_file("moved/sub/deep/three") == b"3"
    with expect_errno(errno.ENOENT):
        await vfs.lookup("tree")


async def test_rename_directory_onto_empty_directory_replaces_it(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("src", mode=0o700)
    await vfs.write_file("src/f", b"f")
    await vfs.mkdir("dst")
    await vfs.rename("src", "dst")
    assert keys(bucket) == ["dst/", "dst/f"]
    assert (bucket.stat("dst/").metadata or {})["mode"] == str(stat.S_IFDIR | 0o700)


async def test_rename_directory_onto_non_empty_directory_changes_nothing(
    vfs: Client, bucket: MemoryStorage
) -> None:
    await vfs.mkdir("src")
    await vfs.mkdir("dst")
    await vfs.write_file("dst/keep", b"k")
    with expect_errno(errno.ENOTEMPTY):
        await vfs.rename("src", "dst")
    assert keys(bucket) == ["dst/", "dst/keep", "src/"]


async def test_rename_directory_onto_directory_with_unsaved_file_is_enotempty(
    vfs: Client, bucket: MemoryStorage
) -> None:
    await vfs.mkdir("src")
    await vfs.mkdir("dst")
    handle = await vfs.create("dst/new")
    with expect_errno(errno.ENOTEMPTY):
        await vfs.rename("src", "dst")
    await vfs.close(handle)
    assert keys(bucket) == ["dst/", "dst/new", "src/"]


async def test_rename_directory_into_itself_is_einval(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("p")
    await vfs.mkdir("p/c")
    with expect_errno(errno.EINVAL):
        await vfs.rename("p", "p/c/p")
    assert keys(bucket) == ["p/", "p/c/"]


@pytest.mark.parametrize(
    ("source", "target", "flags", "code"),
    [
        ("file", "other", RENAME_NOREPLACE, errno.EEXIST),
        ("file", "dir", 0, errno.EISDIR),
        ("dir", "file", 0, errno.ENOTDIR),
        ("file", "other", 2, errno.EINVAL),
    ],
)
async def test_rename_refusals_leave_bucket_unchanged(
    vfs: Client, bucket: MemoryStorage, source: str, target: str, flags: int, code: int
) -> None:
    await vfs.write_file("file", b"F")
    await vfs.write_file("other", b"O")
    await vfs.mkdir("dir")
    with expect_errno(code):
        await vfs.rename(source, target, flags)
    assert keys(bucket) == ["dir/", "file", "other"]
    assert (bucket.read("file"), bucket.read("other")) == (b"F", b"O")


async def test_symlink_is_object_with_target_body(vfs: Client, bucket: MemoryStorage, mounts: Mounts) -> None:
    node = await vfs.symlink("link", "../some/target.txt")
    assert bucket.read("link") == b"../some/target.txt"
    assert (bucket.stat("link").metadata or {})["mode"] == str(stat.S_IFLNK | 0o777)
    assert await vfs.fs.readlink(node.ino) == "../some/target.txt"
    again = mounts.mount(cache="fresh")
    remounted = await again.lookup("link")
    assert remounted.is_link
    assert remounted.size == len("../some/target.txt")
    assert await again.fs.readlink(remounted.ino) == "../some/target.txt"


async def test_readlink_of_regular_file_is_einval(vfs: Client) -> None:
    node = await vfs.write_file("plain", b"")
    with expect_errno(errno.EINVAL):
        await vfs.fs.readlink(node.ino)


async def test_rename_directory_with_open_file_inside(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.mkdir("d")
    handle = await vfs.create("d/f")
    await vfs.fs.write(handle.fh, 0, b"before ")
    await vfs.rename("d", "e")
    await vfs.fs.write(handle.fh, 7, b"after")
    await vfs.close(handle)
    assert keys(bucket) == ["e/", "e/f"]
    assert bucket.read("e/f") == b"before after"
