"""mknod, directory link counts, and access times: what stat shows and what the object keeps."""

from __future__ import annotations

import errno
import stat

import pytest

from objfs.fs.inodes import ROOT_INO as ROOT
from objfs.storage.memory import MemoryStorage

from .support import GID, UID, Client, Mounts, S3ListingStorage, expect_errno, seed

ATIME_NS = 1_500_000_000_111_222_333


@pytest.mark.parametrize(
    ("kind", "rdev", "stored_rdev"),
    [
        (stat.S_IFIFO, 0, None),
        (stat.S_IFSOCK, 0, None),
        (stat.S_IFCHR, 0x1234, "4660"),
        (stat.S_IFBLK, 7, "7"),
    ],
)
async def test_mknod_stores_an_empty_object_with_its_type(
    vfs: Client, mounts: Mounts, bucket: MemoryStorage, kind: int, rdev: int, stored_rdev: str | None
) -> None:
    node = await vfs.fs.mknod(ROOT, "special", kind | 0o640, rdev, UID, GID)
    assert (stat.S_IFMT(node.mode), node.rdev) == (kind, rdev)
    stored = bucket.stat("special")
    assert (stored.size, (stored.metadata or {})["mode"]) == (0, str(kind | 0o640))
    assert (stored.metadata or {}).get("rdev") == stored_rdev
    again = await mounts.mount().lookup("special")
    assert (again.mode, again.rdev) == (kind | 0o640, rdev)


async def test_mknod_of_a_regular_file_makes_an_empty_file(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.fs.mknod(ROOT, "plain", stat.S_IFREG | 0o600, 0, UID, GID)
    assert bucket.read("plain") == b""
    assert stat.S_ISREG((await vfs.lookup("plain")).mode)


async def test_mknod_refuses_an_existing_name(vfs: Client) -> None:
    await vfs.write_file("taken", b"")
    with expect_errno(errno.EEXIST):
        await vfs.fs.mknod(ROOT, "taken", stat.S_IFIFO | 0o600, 0, UID, GID)


async def test_directory_nlink_is_two_plus_subdirectories(
    vfs: Client, mounts: Mounts, bucket: MemoryStorage
) -> None:
    seed(bucket, {"top/implied/x": b"", "top/file": b""})
    await vfs.mkdir("top/made")
    top = await vfs.lookup("top")
    assert vfs.fs.nlink(top) == 4
    await vfs.rmdir("top/made")
    assert vfs.fs.nlink(await vfs.fs.getattr(top.ino)) == 3
    fresh = mounts.mount(S3ListingStorage(mounts.bucket), cache="other")
    assert fresh.fs.nlink(await fresh.lookup("top")) == 3
    assert fresh.fs.nlink(await fresh.lookup("top/file")) == 1


async def test_a_directory_listed_in_its_parent_has_no_nlink_until_looked_up(
    vfs: Client, bucket: MemoryStorage
) -> None:
    seed(bucket, {"a/b/c/d": b""})
    entries = await vfs.listdir("a")
    assert vfs.fs.nlink(entries["b"]) is None
    assert vfs.fs.nlink(await vfs.fs.getattr(entries["b"].ino)) == 3


async def test_atime_is_stored_when_it_differs_from_mtime(
    vfs: Client, mounts: Mounts, bucket: MemoryStorage
) -> None:
    node = await vfs.write_file("f", b"x")
    await vfs.fs.setattr(node.ino, atime_ns=ATIME_NS, mtime_ns=ATIME_NS + 1)
    await vfs.fs.flush_metadata()
    assert (bucket.stat("f").metadata or {})["atime"] == "1500000000.111222333"
    again = await mounts.mount(cache="other").lookup("f")
    assert (again.atime_ns, again.mtime_ns) == (ATIME_NS, ATIME_NS + 1)
    await vfs.fs.setattr(node.ino, atime_ns=ATIME_NS + 1)
    await vfs.fs.flush_metadata()
    assert "atime" not in (bucket.stat("f").metadata or {})
