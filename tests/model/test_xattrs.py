"""Virtual extended attributes: readable by name, never listed, never writable."""

from __future__ import annotations

import errno

import pytest

from objfs.storage.memory import MemoryStorage

from .support import Client, expect_errno


async def test_virtual_attributes_answer_by_name(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("doc.json", b"{}")
    node = await vfs.lookup("doc.json")
    stored = bucket.stat("doc.json")
    assert await vfs.fs.getxattr(node.ino, "user.objfs.etag") == stored.etag.encode()
    assert await vfs.fs.getxattr(node.ino, "user.objfs.content_type") == b"application/json"
    assert stored.content_type == "application/json"


async def test_virtual_attributes_are_not_listed(vfs: Client) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    assert vfs.fs.listxattr(node.ino) == []


@pytest.mark.parametrize("name", ["user.objfs.etag", "user.objfs.url"])
async def test_virtual_attributes_are_read_only(vfs: Client, name: str) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    with expect_errno(errno.EPERM):
        vfs.fs.setxattr(node.ino, name)


async def test_unknown_attributes_are_absent(vfs: Client) -> None:
    node = await vfs.write_file("doc.txt", b"x")
    with expect_errno(errno.ENODATA):
        await vfs.fs.getxattr(node.ino, "user.other")
    with expect_errno(errno.ENODATA):
        await vfs.fs.getxattr(node.ino, "user.objfs.url")  # the memory backend has no URLs
