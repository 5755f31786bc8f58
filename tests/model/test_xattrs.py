"""Extended attributes: user.* kept in s3fs's `xattr` metadata entry within the metadata cap;
the virtual user.objfs.* readable by name, never listed, never writable."""

from __future__ import annotations

import errno

import pytest
import trio

from objfs.fs import xattrs
from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, S3ListingStorage, expect_errno, seed

SETTLE = 0.3
"""Longer than the test mounts' metadata delay (0.05 s), so the flusher has run."""


async def test_virtual_attributes_answer_by_name(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("doc.json", b"{}")
    node = await vfs.lookup("doc.json")
    stored = bucket.stat("doc.json")
    assert await vfs.fs.getxattr(node.ino, "user.objfs.etag") == stored.etag.encode()
    assert await vfs.fs.getxattr(node.ino, "user.objfs.content_type") == b"application/json"
    assert stored.content_type == "application/json"


async def test_virtual_attributes_are_not_listed(vfs: Client) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    await vfs.fs.setxattr(node.ino, "user.mine", b"1")
    assert await vfs.fs.listxattr(node.ino) == ["user.mine"]


@pytest.mark.parametrize("name", ["user.objfs.etag", "user.objfs.url"])
async def test_virtual_attributes_are_read_only(vfs: Client, name: str) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    with expect_errno(errno.EPERM):
        await vfs.fs.setxattr(node.ino, name, b"forged")
    with expect_errno(errno.EPERM):
        await vfs.fs.removexattr(node.ino, name)


async def test_unknown_attributes_are_absent(vfs: Client) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    with expect_errno(errno.ENODATA):
        await vfs.fs.getxattr(node.ino, "user.other")
    with expect_errno(errno.ENODATA):
        await vfs.fs.getxattr(node.ino, "user.objfs.url")  # the memory backend has no URLs
    with expect_errno(errno.ENODATA):
        await vfs.fs.removexattr(node.ino, "user.other")


async def test_user_attributes_cost_one_copy_and_keep_the_body(vfs: Client, bucket: MemoryStorage) -> None:
    node = await vfs.write_file("f", b"body")
    vfs.storage.reset()
    await vfs.fs.setxattr(node.ino, "user.a", b"hello")
    await vfs.fs.setxattr(node.ino, "user.b", b"")
    await trio.sleep(SETTLE)
    assert vfs.storage.calls["copy"] == 1
    stored = bucket.stat("f").metadata or {}
    assert xattrs.decode(stored["xattr"]) == {"user.a": b"hello", "user.b": b""}
    assert bucket.read("f") == b"body"


async def test_attributes_set_while_writing_travel_with_the_upload(
    vfs: Client, bucket: MemoryStorage
) -> None:
    handle = await vfs.create("f")
    await vfs.fs.write(handle.fh, 0, b"data")
    await vfs.fs.setxattr(handle.ino, "user.k", b"v")
    await vfs.close(handle)
    assert xattrs.decode((bucket.stat("f").metadata or {})["xattr"]) == {"user.k": b"v"}


async def test_s3fs_attributes_read_and_others_kept(mounts: Mounts, bucket: MemoryStorage) -> None:
    """Attributes s3fs wrote, outside user.*, are kept though not listed."""
    s3fs_value = xattrs.encode({"user.tag": b"\x00\xff", "security.selinux": b"ctx"})
    seed(bucket, {"f": b""}, metadata={"xattr": s3fs_value})
    vfs = mounts.mount(S3ListingStorage(mounts.bucket))
    await vfs.listdir()  # the listing carries no metadata: the first attribute call HEADs
    node = await vfs.lookup("f")
    assert await vfs.fs.listxattr(node.ino) == ["user.tag"]
    await vfs.fs.setxattr(node.ino, "user.more", b"1")
    await vfs.fs.flush_metadata()
    assert set(xattrs.decode((bucket.stat("f").metadata or {})["xattr"])) == {
        "user.tag",
        "user.more",
        "security.selinux",
    }


async def test_removing_the_last_attribute_drops_the_entry(vfs: Client, bucket: MemoryStorage) -> None:
    node = await vfs.write_file("f", b"")
    await vfs.fs.setxattr(node.ino, "user.a", b"1")
    await vfs.fs.removexattr(node.ino, "user.a")
    await vfs.fs.flush_metadata()
    assert "xattr" not in (bucket.stat("f").metadata or {})


async def test_passing_the_metadata_cap_is_enospc_and_stores_nothing(
    vfs: Client, bucket: MemoryStorage
) -> None:
    node = await vfs.write_file("f", b"")
    await vfs.fs.setxattr(node.ino, "user.fits", b"v" * 1000)
    with expect_errno(errno.ENOSPC):
        await vfs.fs.setxattr(node.ino, "user.more", b"v" * 1000)
    await vfs.fs.flush_metadata()
    assert await vfs.fs.listxattr(node.ino) == ["user.fits"]
    assert set(xattrs.decode((bucket.stat("f").metadata or {})["xattr"])) == {"user.fits"}


@pytest.mark.parametrize("name", ["trusted.x", "security.selinux", "system.posix_acl_access"])
async def test_other_namespaces_are_not_supported(vfs: Client, name: str) -> None:
    node = await vfs.write_file("f", b"")
    with expect_errno(errno.ENOTSUP):
        await vfs.fs.setxattr(node.ino, name, b"x")


async def test_the_bucket_root_cannot_carry_attributes(vfs: Client) -> None:
    with expect_errno(errno.ENOTSUP):
        await vfs.fs.setxattr((await vfs.lookup("")).ino, "user.a", b"1")


def test_encoding_is_s3fs_s() -> None:
    assert xattrs.encode({"user.a": b"hello"}) == "%7B%22user.a%22%3A%22aGVsbG8%3D%22%7D"
    assert xattrs.decode("%7B%22user.a%22%3A%22aGVsbG8%3D%22%7D") == {"user.a": b"hello"}
    assert xattrs.decode("not json") == {}
