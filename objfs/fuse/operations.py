"""The FUSE adapter: kernel requests in, calls on the filesystem model out, errors as errno.

Nothing here knows about objects. It converts pyfuse3's types to the model's, counts the
kernel's lookups, and turns every exception into a `FUSEError` with the right errno, so a
bug or a storage failure reaches the caller as EIO with a log line instead of a crash.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from .. import metrics
from ..fs.inodes import Node
from ..fs.model import FileSystem
from ..storage.base import StorageError

log = logging.getLogger(__name__)
EXPECTED_ERRNOS = frozenset({errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENODATA, errno.ENOTSUP})
"""Answers rather than failures (a lookup of an absent name), logged only when debugging."""
P = ParamSpec("P")
R = TypeVar("R")


def errno_of(exc: BaseException) -> int:
    if isinstance(exc, pyfuse3.FUSEError):
        return exc.errno
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    if isinstance(exc, StorageError):
        return exc.errno
    return errno.EIO


def fuse_errors(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Report any failure of a handler to the kernel as an errno, logging the unexpected ones;
    count and time every request for the metrics, and trace it at DEBUG level (`--debug`)."""
    operation = method.__name__

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        metrics.FUSE_REQUESTS.labels(operation).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s(%s)", operation, ", ".join(_traced(arg) for arg in args[1:]))
        with metrics.timed(metrics.FUSE_SECONDS, operation):
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                code = errno_of(exc)
                metrics.FUSE_ERRORS.labels(operation, errno.errorcode.get(code, str(code))).inc()
                if isinstance(exc, pyfuse3.FUSEError):
                    raise
                _log_failure(operation, exc, code)
                raise pyfuse3.FUSEError(code) from exc

    return wrapper


def _log_failure(operation: str, exc: Exception, code: int) -> None:
    """A storage failure was logged where it happened, with its request id: once is enough."""
    if not isinstance(exc, OSError | StorageError):
        log.error("%s failed unexpectedly", operation, exc_info=exc)
        return
    expected = isinstance(exc, StorageError) or code in EXPECTED_ERRNOS
    log.log(logging.DEBUG if expected else logging.WARNING, "%s: %s", operation, exc)


def _traced(argument: object) -> str:
    """Arguments as a trace shows them: the size of a data buffer, never its bytes."""
    if isinstance(argument, bytes | bytearray | memoryview):
        return f"<{len(argument)} bytes>"
    if isinstance(argument, pyfuse3.RequestContext):
        return f"uid={argument.uid}"
    if isinstance(argument, pyfuse3.EntryAttributes | pyfuse3.SetattrFields):
        return type(argument).__name__
    return repr(argument)


class Operations(pyfuse3.Operations):
    """pyfuse3 handlers; `attr_timeout`/`entry_timeout` tell the kernel how long to trust replies."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, fs: FileSystem, *, attr_timeout: float, entry_timeout: float) -> None:
        super().__init__()
        self.fs = fs
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout

    def attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        """A directory whose link count is not known now (listed in its parent's readdir) is
        sent with attr_timeout 0, so a stat asks again and gets the count."""
        nlink = self.fs.nlink(node)
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = node.ino
        attr.generation = 0
        attr.st_mode = node.mode
        attr.st_nlink = 2 if nlink is None else nlink
        attr.st_rdev = node.rdev
        attr.st_uid = node.uid
        attr.st_gid = node.gid
        attr.st_size = 0 if node.is_dir else node.size
        attr.st_blksize = 512 * 1024
        attr.st_blocks = (attr.st_size + 511) // 512
        attr.st_atime_ns = node.atime_ns
        attr.st_mtime_ns = node.mtime_ns
        attr.st_ctime_ns = node.ctime_ns
        attr.attr_timeout = 0 if nlink is None else self.attr_timeout
        attr.entry_timeout = self.entry_timeout
        return attr

    def _entry(self, node: Node) -> pyfuse3.EntryAttributes:
        self.fs.count_lookup(node)
        return self.attributes(node)

    @fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        node = await self.fs.find(parent_inode, os.fsdecode(name))
        if node is None:
            return self._absent()
        return self._entry(node)

    def _absent(self) -> pyfuse3.EntryAttributes:
        """A negative entry (inode 0): the kernel trusts the name's absence for the entry timeout."""
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = 0
        attr.entry_timeout = self.entry_timeout
        return attr

    def forget(self, inode_list: list[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self.fs.forget(ino, count)

    @fuse_errors
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return self.attributes(await self.fs.getattr(inode))

    @fuse_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: Any,
    ) -> pyfuse3.EntryAttributes:
        node = await self.fs.setattr(
            inode,
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
        )
        return self.attributes(node)

    @fuse_errors
    async def opendir(self, inode: int, ctx: Any) -> int:
        return await self.fs.opendir(inode)

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        for offset, (name, node) in enumerate(await self.fs.readdir(fh, start_id), start=start_id + 1):
            if not pyfuse3.readdir_reply(token, os.fsencode(name), self.attributes(node), offset):
                return
            self.fs.count_lookup(node)

    async def releasedir(self, fh: int) -> None:
        self.fs.releasedir(fh)

    @fuse_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        """Directory changes are stored as they happen; nothing is pending."""

    @fuse_errors
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        node = await self.fs.mknod(parent_inode, os.fsdecode(name), mode, rdev, ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        node = await self.fs.mkdir(parent_inode, os.fsdecode(name), mode, ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.rmdir(parent_inode, os.fsdecode(name))

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.unlink(parent_inode, os.fsdecode(name))

    @fuse_errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        await self.fs.rename(
            parent_inode_old, os.fsdecode(name_old), parent_inode_new, os.fsdecode(name_new), flags
        )

    @fuse_errors
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        node = await self.fs.symlink(parent_inode, os.fsdecode(name), os.fsdecode(target), ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        return os.fsencode(await self.fs.readlink(inode))

    @fuse_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> None:
        """Keys cannot share data, so hard links are refused as link(2) allows."""
        log.info("hard link to %s refused: object stores cannot share data between keys", new_name)
        raise pyfuse3.FUSEError(errno.EPERM)

    @fuse_errors
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        handle, node = await self.fs.create(parent_inode, os.fsdecode(name), mode, flags, ctx.uid, ctx.gid)
        return pyfuse3.FileInfo(fh=handle.fh), self._entry(node)

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        handle = await self.fs.open(inode, flags)
        return pyfuse3.FileInfo(fh=handle.fh)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:
        return await self.fs.read(fh, off, size)

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.fs.write(fh, off, buf)

    @fuse_errors
    async def flush(self, fh: int) -> None:
        await self.fs.flush(fh)

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync(fh)

    @fuse_errors
    async def release(self, fh: int) -> None:
        await self.fs.release(fh)

    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        return await self.fs.getxattr(inode, os.fsdecode(name))

    @fuse_errors
    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        return [os.fsencode(name) for name in await self.fs.listxattr(inode)]

    @fuse_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        await self.fs.setxattr(inode, os.fsdecode(name), value)

    @fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.removexattr(inode, os.fsdecode(name))

    @fuse_errors
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        figures = self.fs.statfs()
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = figures.block_size
        data.f_blocks = data.f_bfree = data.f_bavail = figures.blocks
        data.f_files = data.f_ffree = data.f_favail = figures.files
        data.f_namemax = figures.name_max
        return data
