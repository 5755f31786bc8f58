"""The filesystem model: POSIX operations carried out on objects, testable without FUSE.

Every method works on inode numbers and names as the kernel gives them, raises `OSError`
with the errno a caller should see (or a `StorageError`, whose class carries its errno), and
runs every storage call in a worker thread behind one capacity limiter, so a slow request
never stalls the event loop or the requests beside it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import itertools
import logging
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import outcome
import trio

from .. import metrics
from ..cache.blobs import BlobRecord, BlobRecords
from ..cache.blocks import BlockCache
from ..cache.journal import Journal
from ..cache.listings import ListingCache
from ..cache.records import MetadataRecords
from ..storage.base import (
    IntegrityError,
    ListPage,
    NotFound,
    ObjectInfo,
    Storage,
    StorageError,
    Unsupported,
    content_md5,
)
from . import content_type, xattrs
from .config import FsConfig
from .handles import Handle, Staging
from .inodes import ROOT_INO, InodeTable, Node
from .mapping import (
    DIR_CONTENT_TYPE,
    NAME_MAX,
    NS,
    child_path,
    decode_meta,
    dir_key,
    encode_meta,
    is_dir_mode,
    key_of,
    metadata_bytes,
    name_problem,
    parent_of,
)
from .reader import BlockReader, ObjectVersion
from .recovery import ConflictStored, Recovery, UploadTo
from .upload import PartLayout, StreamingUpload

log = logging.getLogger(__name__)
T = TypeVar("T")
POSIX_NAMES = ("mode", "uid", "gid", "mtime", "atime", "rdev")
RELIST_ENTRIES = 2000
"""A directory this small is listed again (at most 2 LISTs) rather than probed name by name."""
PROBES_BEFORE_LISTING = 2
"""Lookups probed in a never-listed directory before one listing answers the rest."""
MD5_META = "md5chksum"
"""rclone's name for the base64 MD5 of an object in its user metadata."""
PLAIN_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
RENAME_NOREPLACE = 1  # linux/fs.h; RENAME_EXCHANGE cannot be done with copies
SPECIAL_KINDS = (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK)
"""What mknod can make: an empty object each (directories and symlinks have their own calls)."""


def fail(code: int, detail: str = "") -> OSError:
    return OSError(code, f"{os.strerror(code)}{': ' + detail if detail else ''}")


@dataclass(frozen=True)
class StatFs:
    """Figures for `df`: object stores have no fixed size, so a large, constant capacity."""

    block_size: int = 4096
    blocks: int = 2**40 // 4096
    files: int = 2**32
    name_max: int = NAME_MAX


@dataclass
class DirHandle:
    ino: int
    entries: list[tuple[str, Node]] | None = None


class FileSystem:
    """One mounted bucket prefix."""

    def __init__(self, storage: Storage, config: FsConfig) -> None:
        self.storage = storage
        self.config = config
        self.records = MetadataRecords(config.records_path)
        self.journal = Journal(config.journal_path)
        self.blobs = BlobRecords(config.blobs_path)
        self.recovery = Recovery(
            storage,
            self._io,
            self.journal,
            config.recovery_dir,
            uploads=self._uploads_of,
            wants_parts=self._wants_parts,
        )
        self._part_slots = trio.Semaphore(config.parts_in_flight)
        self.blocks = (
            BlockCache(config.blocks_dir, config.cache_size, config.block_size)
            if config.cache_size and not storage.capabilities.local_disk
            else None
        )
        self.reader = BlockReader(
            storage,
            self._io,
            self.blocks,
            block_size=config.block_size,
            read_ahead=config.read_ahead,
            memory_bytes=config.memory_cache,
            strategy=config.read_strategy or ("ranges" if storage.capabilities.local_disk else "stream"),
        )
        self._nursery: trio.Nursery | None = None
        self.limiter = trio.CapacityLimiter(config.max_parallel)
        now = time.time_ns()
        root = Node(
            ROOT_INO,
            "",
            stat.S_IFDIR | config.default_dir_mode,
            config.uid,
            config.gid,
            mtime_ns=now,
            atime_ns=now,
            ctime_ns=now,
            explicit=True,
            lookups=1,
        )
        self.inodes = InodeTable(root)
        self.listings: ListingCache[Node] = ListingCache(config.dir_timeout)
        self.counted: ListingCache[Node] = ListingCache(config.dir_timeout)
        """Listings taken to count subdirectories: they serve readdir and names they hold, never an
        absence, so an object another tool just wrote is still found by name at once."""
        self.handles: dict[int, Handle] = {}
        self.dir_handles: dict[int, DirHandle] = {}
        self._fh = itertools.count(1)
        self._meta_pending: dict[int, Node] = {}
        self._meta_wakeup = trio.Event()
        self._warned: set[str] = set()

    # -- plumbing ------------------------------------------------------------------------

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self.limiter)

    def key(self, node: Node) -> str:
        return (
            dir_key(self.config.prefix, node.path) if node.is_dir else key_of(self.config.prefix, node.path)
        )

    def node(self, ino: int) -> Node:
        found = self.inodes.get(ino)
        if found is None:
            raise fail(errno.ESTALE, f"inode {ino}")
        return found

    def _dir(self, ino: int) -> Node:
        node = self.node(ino)
        if not node.is_dir:
            raise fail(errno.ENOTDIR, node.path)
        return node

    def _warn_once(self, key: str, why: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("skipping key %r: %s", key, why)

    @staticmethod
    def _check_name(name: str) -> None:
        if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise fail(errno.ENAMETOOLONG, name[:40] + "...")

    async def start(self, nursery: trio.Nursery) -> None:
        """Run the background tasks: metadata coalescing, part uploads, crash leftovers cleanup."""
        self._nursery = self.reader.nursery = nursery
        nursery.start_soon(self._metadata_flusher)
        nursery.start_soon(self.recovery.after_crash)

    def close(self) -> None:
        self.records.close()
        self.journal.close()
        self.blobs.close()
        if self.blocks is not None:
            self.blocks.close()

    # -- attributes from objects -----------------------------------------------------------

    def _new_node(self, path: str, mode: int) -> Node:
        return Node(self.inodes.new_ino(), path, mode, self.config.uid, self.config.gid)

    def _node_at(self, path: str, is_dir: bool) -> Node:
        """The node for `path`, replacing a known one whose kind (file or directory) changed."""
        node = self.inodes.at(path)
        if node is not None and node.is_dir == is_dir:
            return node
        if node is not None:
            self.inodes.detach(node)
        kind = (
            stat.S_IFDIR | self.config.default_dir_mode
            if is_dir
            else stat.S_IFREG | self.config.default_file_mode
        )
        return self.inodes.add(self._new_node(path, kind))

    def _known_metadata(self, info: ObjectInfo) -> dict[str, str] | None:
        if info.metadata is not None:
            return info.metadata
        return self.records.get(info.key, info.etag)

    def _apply_info(self, node: Node, info: ObjectInfo, metadata: dict[str, str] | None) -> None:
        """Take size, etag and POSIX attributes from an object, keeping local unsaved changes."""
        if node.dirty or node.ino in self._meta_pending:
            return
        if node.etag and node.etag != info.etag and self.blocks is not None:
            self.blocks.invalidate(info.key, keep_etag=info.etag)  # another version: free its blocks
        meta = decode_meta(metadata)
        # a mode without file-type bits (some tools write only the permissions) keeps the node's kind
        kind = (stat.S_IFMT(meta.mode or 0) if not node.is_dir else 0) or stat.S_IFMT(node.mode)
        default = self.config.default_dir_mode if node.is_dir else self.config.default_file_mode
        node.mode = kind | (stat.S_IMODE(meta.mode) if meta.mode is not None else default)
        node.uid = meta.uid if meta.uid is not None else self.config.uid
        node.gid = meta.gid if meta.gid is not None else self.config.gid
        node.mtime_ns = meta.mtime_ns or int(info.mtime * NS)
        node.atime_ns = meta.atime_ns or node.mtime_ns
        node.rdev = meta.rdev or 0
        node.ctime_ns = max(node.mtime_ns, int(info.mtime * NS))
        node.etag = info.etag
        node.content_type = info.content_type
        node.extra_meta = {k: v for k, v in (metadata or {}).items() if k.lower() not in POSIX_NAMES}
        node.meta_known = metadata is not None
        if node.is_dir:
            node.explicit = True
        else:
            node.size = info.size
        if metadata is not None and info.metadata is not None:
            self.records.put(info.key, info.etag, metadata)
        node.mark_fresh()

    def _file_node(self, path: str, info: ObjectInfo, metadata: dict[str, str] | None) -> Node:
        node = self._node_at(path, is_dir=is_dir_mode(decode_meta(metadata).mode))
        self._apply_info(node, info, metadata)
        return node

    def _dir_node(self, path: str, marker: ObjectInfo | None) -> Node:
        node = self._node_at(path, is_dir=True)
        if marker is not None:
            self._apply_info(node, marker, self._known_metadata(marker))
            node.mark_fresh()
        elif not node.explicit and not node.mtime_ns:
            # A listing names a sub-directory without its marker's metadata: show defaults now,
            # but leave the node stale so the next lookup fetches the real mode.
            node.mtime_ns = node.atime_ns = node.ctime_ns = self.inodes[ROOT_INO].mtime_ns
        return node

    # -- finding names -------------------------------------------------------------------------

    async def _probe(self, path: str) -> Node | None:
        """What `path` is in the bucket: one HEAD of the key and one LIST of `key/`, in parallel."""
        key = key_of(self.config.prefix, path)
        found: dict[str, Any] = {}

        async def head() -> None:
            with contextlib.suppress(NotFound):
                found["info"] = await self._io(self.storage.stat, key)

        async def children() -> None:
            found["page"] = await self._io(self.storage.list, key + "/", "/", None, 1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(head)
            nursery.start_soon(children)
        page, info = found["page"], found.get("info")
        if page.objects or page.prefixes:
            marker = page.objects[0] if page.objects and page.objects[0].key == key + "/" else None
            if marker is not None and self._known_metadata(marker) is None:
                marker = await self._io(self.storage.stat, marker.key)
            if info is not None:
                self._warn_once(
                    key, f"an object and a directory share the name; showing the directory {key}/"
                )
            node = self._dir_node(path, marker)
            node.mark_fresh()  # a probe saw the marker or its absence: the attributes are exact
            return node
        if info is not None:
            return self._file_node(path, info, info.metadata)
        return None

    def _current(self, node: Node) -> bool:
        """Whether the node's attributes stand without asking the bucket: seen recently, or local."""
        local_only = not node.is_dir and not node.uploaded
        listed = node.is_dir and self.listings.fresh(node.path) is not None  # just seen to exist
        return node.is_fresh(self.config.attr_timeout) or node.dirty or local_only or listed

    async def _find(self, parent: Node, name: str) -> Node | None:
        self._check_name(name)
        path = child_path(parent.path, name)
        node = self.inodes.at(path)
        if node is not None and self._current(node):
            return node
        listing = self.listings.fresh(parent.path)
        counted = self.counted.fresh(parent.path) if listing is None else None
        if counted is not None and name in counted:
            listing = counted
        elif listing is None and self.listings.worth_listing(
            parent.path, RELIST_ENTRIES, PROBES_BEFORE_LISTING
        ):
            listing = {name: found for name, found in await self._list_dir(parent)}
        if listing is None:
            return await self._probe(path)
        found = listing.get(name)
        if found is None:
            return None
        found = self._live(found)
        if self._current(found) or found.meta_known or found.is_dir:
            return found  # a directory is a name in a fresh listing: nothing more to ask
        return await self._head_file(path)

    async def _head_file(self, path: str) -> Node | None:
        """A listing said `path` is a file: one HEAD for the user metadata it did not carry."""
        try:
            info = await self._io(self.storage.stat, key_of(self.config.prefix, path))
        except NotFound:
            return None
        return self._file_node(path, info, info.metadata)

    async def _existing(self, parent_ino: int, name: str) -> Node:
        node = await self._find(self._dir(parent_ino), name)
        if node is None:
            raise fail(errno.ENOENT, name)
        return node

    async def lookup(self, parent_ino: int, name: str) -> Node:
        """Resolve a name; the caller counts the kernel's lookup when it replies."""
        return await self._listed(await self._existing(parent_ino, name))

    async def find(self, parent_ino: int, name: str) -> Node | None:
        """Like `lookup`, with None for an absent name, so the kernel can cache the absence."""
        node = await self._find(self._dir(parent_ino), name)
        return None if node is None else await self._listed(node)

    async def getattr(self, ino: int) -> Node:
        return await self._listed(await self._attributes(ino))

    def nlink(self, node: Node) -> int | None:
        """2 + subdirectories for a directory, from a fresh listing or count; None when not known now."""
        if not node.is_dir:
            return 1
        listing = self._fresh_listing(node.path)
        if listing is not None:
            return 2 + sum(1 for child in listing.values() if child.is_dir)
        if node.subdirs is None or time.monotonic() - node.subdirs_counted >= self.config.dir_timeout:
            return None
        return 2 + node.subdirs

    async def _listed(self, node: Node) -> Node:
        """Make a directory's st_nlink known: it counts subdirectories, which only a listing shows
        (one LIST per 1,000 entries, trusted for --dir-timeout). The listing only counts: it is not
        kept to answer lookups, so an object another tool just wrote is found by name at once."""
        if self.nlink(node) is None:
            entries = await self._fetch_listing(node)
            self.counted.store(node.path, entries)
            node.subdirs = sum(1 for child in entries.values() if child.is_dir)
            node.subdirs_counted = time.monotonic()
        return node

    def _recount_parent(self, path: str) -> None:
        """A directory appeared or went under `path`'s parent: its count is stale."""
        parent = self.inodes.at(parent_of(path))
        if parent is not None:
            parent.subdirs = None

    async def _attributes(self, ino: int) -> Node:
        node = self.node(ino)
        if node.ino == ROOT_INO or self._current(node):
            return node
        fresh = await self._probe(node.path)
        if fresh is None:
            if node.open_count:
                return node
            raise fail(errno.ENOENT, node.path)
        return fresh if fresh.ino == ino else node

    def count_lookup(self, node: Node) -> None:
        node.lookups += 1

    def forget(self, ino: int, count: int) -> None:
        self.inodes.forget(ino, count)

    # -- directories -------------------------------------------------------------------------

    async def opendir(self, ino: int) -> int:
        self._dir(ino)
        fh = next(self._fh)
        self.dir_handles[fh] = DirHandle(ino)
        return fh

    async def readdir(self, fh: int, start: int) -> list[tuple[str, Node]]:
        """Entries from index `start`; the listing is taken once per open, so offsets stay stable."""
        handle = self.dir_handles[fh]
        if handle.entries is None:
            handle.entries = await self._list_dir(self._dir(handle.ino))
        return handle.entries[start:]

    def releasedir(self, fh: int) -> None:
        self.dir_handles.pop(fh, None)

    async def _pages(self, prefix: str, delimiter: str | None) -> AsyncIterator[ListPage]:
        """Every page of a listing, one request each, following the continuation tokens."""
        token = None
        while True:
            page = await self._io(self.storage.list, prefix, delimiter, token, 1000)
            yield page
            token = page.next_token
            if not token:
                return

    async def _list_all(self, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        async for page in self._pages(prefix, "/"):
            objects += page.objects
            prefixes += page.prefixes
        return objects, prefixes

    async def _list_dir(self, node: Node) -> list[tuple[str, Node]]:
        cached = self.listings.fresh(node.path)
        if cached is None:
            counted = self.counted.fresh(node.path)  # just taken to count subdirectories
            cached = await self._fetch_listing(node) if counted is None else counted
            self.listings.store(node.path, cached)
        return sorted((name, self._live(node)) for name, node in cached.items())

    def _live(self, node: Node) -> Node:
        """A node from a cached listing as the inode table knows it now.

        The kernel may have forgotten it since the listing was taken (dropping it from the
        table); handing its old number out again would make the next request ESTALE.
        """
        current = self.inodes.at(node.path)
        if current is not None:
            return current
        if self.inodes.get(node.ino) is None and not node.unlinked:
            self.inodes.add(node)
        return node

    async def _fetch_listing(self, node: Node) -> dict[str, Node]:
        """One delimiter listing per 1000 entries; attributes from it and the metadata records."""
        prefix = dir_key(self.config.prefix, node.path)
        objects, prefixes = await self._list_all(prefix)
        entries: dict[str, Node] = {}
        for sub in prefixes:
            name = self._entry_name(sub[len(prefix) : -1], sub)
            if name is not None:
                entries[name] = self._dir_node(child_path(node.path, name), None)
        metadata = await self._listing_metadata(objects)
        for info in objects:
            name = info.key[len(prefix) :]
            if not name:
                self._apply_info(node, info, metadata.get(info.key))
                continue
            if self._entry_name(name, info.key) is None:
                continue
            if name in entries:
                self._warn_once(info.key, f"an object and a directory share the name; showing {info.key}/")
                continue
            entries[name] = self._file_node(child_path(node.path, name), info, metadata.get(info.key))
        for child in self.inodes.children(node.path):
            if not child.uploaded and not child.unlinked:
                entries.setdefault(child.path.rpartition("/")[2], child)
        return entries

    def _entry_name(self, name: str, key: str) -> str | None:
        problem = name_problem(name)
        if problem:
            self._warn_once(key, problem)
            return None
        return name

    async def _listing_metadata(self, objects: list[ObjectInfo]) -> dict[str, dict[str, str] | None]:
        """User metadata per key: from the listing, the records, or (with exact listing) a HEAD."""
        known = {info.key: self._known_metadata(info) for info in objects}
        missing = [key for key, md in known.items() if md is None]
        if not self.config.exact_listing or not missing:
            return known

        async def head(key: str) -> None:
            with contextlib.suppress(NotFound):
                info = await self._io(self.storage.stat, key)
                known[key] = info.metadata
                if info.metadata is not None:
                    self.records.put(key, info.etag, info.metadata)  # the next listing needs no HEAD

        async with trio.open_nursery() as nursery:
            for key in missing:
                nursery.start_soon(head, key)
        return known

    async def mkdir(self, parent_ino: int, name: str, mode: int, uid: int, gid: int) -> Node:
        path = await self._free_path(parent_ino, name)
        node = self._new_node(path, stat.S_IFDIR | stat.S_IMODE(mode))
        node.uid, node.gid, node.explicit = uid, gid, True
        node.touch()
        await self._write_marker(node)
        self._added(node)
        return node

    async def _free_path(self, parent_ino: int, name: str) -> str:
        parent = self._dir(parent_ino)
        if await self._find(parent, name) is not None:
            raise fail(errno.EEXIST, name)
        return child_path(parent.path, name)

    async def _write_marker(self, node: Node) -> None:
        metadata = encode_meta(node.posix_meta(), node.extra_meta)
        info = await self._io(
            self.storage.write, self.key(node), b"", metadata=metadata, content_type=DIR_CONTENT_TYPE
        )
        self._saved(node, info, metadata)

    def _saved(self, node: Node, info: ObjectInfo, metadata: dict[str, str]) -> None:
        """Record what this host just stored, so listings show it without a HEAD."""
        node.etag = info.etag
        node.meta_known = True
        node.extra_meta = {k: v for k, v in metadata.items() if k not in POSIX_NAMES}
        self.records.put(info.key, info.etag, metadata)
        self._meta_pending.pop(node.ino, None)
        node.mark_fresh()

    async def rmdir(self, parent_ino: int, name: str) -> None:
        node = await self._existing(parent_ino, name)
        if not node.is_dir:
            raise fail(errno.ENOTDIR, name)
        if await self._has_children(node):
            raise fail(errno.ENOTEMPTY, name)
        await self._io(self.storage.delete, self.key(node))
        self._gone(node)

    async def _has_children(self, node: Node) -> bool:
        if any(not c.uploaded and not c.unlinked for c in self.inodes.children(node.path)):
            return True
        marker = self.key(node)
        page = await self._io(self.storage.list, marker, "/", None, 2)
        return bool(page.prefixes) or any(o.key != marker for o in page.objects)

    def _fresh_listing(self, path: str) -> dict[str, Node] | None:
        listing = self.listings.fresh(path)
        return self.counted.fresh(path) if listing is None else listing

    def _listings_added(self, path: str, node: Node) -> None:
        for cache in (self.listings, self.counted):
            cache.added(path, node)

    def _listings_removed(self, path: str) -> None:
        for cache in (self.listings, self.counted):
            cache.removed(path)

    def _added(self, node: Node) -> None:
        """A name this mount created: known at once to lookups and cached listings."""
        self.inodes.add(node)
        self._listings_added(node.path, node)
        if node.is_dir:
            self.listings.store(node.path, {})
            self._recount_parent(node.path)

    def _gone(self, node: Node) -> None:
        if node.is_dir:
            self._recount_parent(node.path)
        self._listings_removed(node.path)
        self.records.forget(self.key(node))
        self.blobs.forget(self.key(node))
        node.unlinked = True
        self._meta_pending.pop(node.ino, None)
        self.inodes.detach(node)
        if node.staging is not None:
            self.journal.unstaged(node.staging.path)  # removed: its bytes are owed to no key
            if node.open_count == 0:
                self._drop_staging(node)
        self.inodes.drop_if_unused(node)

    # -- files ---------------------------------------------------------------------------------

    def _new_handle(self, node: Node, flags: int) -> Handle:
        writable = flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
        handle = Handle(next(self._fh), node.ino, writable, append=bool(flags & os.O_APPEND))
        self.handles[handle.fh] = handle
        node.open_count += 1
        return handle

    async def create(
        self, parent_ino: int, name: str, mode: int, flags: int, uid: int, gid: int
    ) -> tuple[Handle, Node]:
        path = await self._free_path(parent_ino, name)
        node = self._new_node(path, stat.S_IFREG | stat.S_IMODE(mode))
        node.uid, node.gid = uid, gid
        node.content_type = content_type.from_name(name)
        node.content_type_from = content_type.FROM_NAME if node.content_type else None
        node.meta_known = True
        node.touch()
        node.atime_ns = node.mtime_ns
        node.staging = self._new_staging(node, dirty=True)
        node.mark_fresh()
        self._added(node)
        return self._new_handle(node, flags), node

    async def open(self, ino: int, flags: int) -> Handle:
        node = self.node(ino)
        if node.is_dir:
            raise fail(errno.EISDIR, node.path)
        handle = self._new_handle(node, flags)
        if flags & os.O_TRUNC and handle.writable and (node.size or not node.uploaded):
            await self._truncate(node, 0)
        handle.md5 = self.expected_md5(node) if node.uploaded else None
        return handle

    async def _staging(self, node: Node) -> Staging:
        """The node's staging file, filled with the object's bytes the first time it is needed."""
        async with node.lock:
            if node.staging is None:
                staging = self._new_staging(node)
                if node.uploaded and node.size:
                    chunks = self.storage.read_stream(self.key(node))
                    await self._io(staging.fill_from, chunks)
                node.staging = staging
            return node.staging

    async def read(self, fh: int, offset: int, length: int) -> bytes | memoryview:
        handle = self.handles[fh]
        node = self.node(handle.ino)
        if node.staging is not None:
            return node.staging.read(offset, length)
        if not node.uploaded or offset >= node.size:
            return b""
        version = ObjectVersion(self.key(node), node.etag or "", node.size, handle.md5)
        try:
            return await self.reader.read(version, handle.reading, offset, length)
        except IntegrityError as exc:
            raise fail(errno.EIO, str(exc)) from exc

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        handle = self.handles[fh]
        node = self.node(handle.ino)
        staging = await self._staging(node)
        async with node.lock:  # not while an upload reads the file it has checksummed
            if handle.append:
                offset = staging.size
            written = staging.write(offset, data)
        node.size = staging.size
        node.touch()
        await self._send_full_parts(node, offset, offset + written)
        return written

    def _wants_parts(self, size: int) -> bool:
        return self.storage.capabilities.multipart and size >= self.config.multipart_threshold

    def _new_upload(self, node: Node) -> StreamingUpload:
        """A multipart upload of the node's bytes to its key, with its metadata."""
        upload_to = self._uploads_of(encode_meta(node.posix_meta(), node.extra_meta), node.content_type)
        return upload_to(self.key(node))

    def _uploads_of(self, metadata: dict[str, str], content_type: str | None) -> UploadTo:
        """How to start multipart uploads of bytes with this metadata, to any key (conflict copies too)."""
        part_size = max(self.config.part_size, self.storage.capabilities.min_part_size)

        def upload_to(key: str) -> StreamingUpload:
            return StreamingUpload(
                self.storage,
                self._io,
                PartLayout(part_size),
                self._part_slots,
                key,
                metadata,
                content_type,
                on_start=self.journal.upload_started,
                on_end=self.journal.upload_ended,
            )

        return upload_to

    async def _send_full_parts(self, node: Node, start: int, end: int) -> None:
        """Upload completed parts in the background, so close waits only for the last ones."""
        if node.upload is not None:
            node.upload.touched(start, end)
        elif self._nursery is not None and node.staging and self._wants_parts(node.staging.size):
            await self._learn_extra_meta(node)
            self._identify_content(node, node.staging)
            node.upload = self._new_upload(node)
        if node.upload is not None and self._nursery is not None and node.staging is not None:
            await node.upload.send_ready(node.staging, self._nursery)

    async def flush(self, fh: int) -> None:
        """Close-to-open: when close returns 0, the object holds what was written."""
        await self._upload(self.node(self.handles[fh].ino))

    async def fsync(self, fh: int) -> None:
        await self.flush(fh)

    async def release(self, fh: int) -> None:
        handle = self.handles.pop(fh)
        handle.reading.stop_stream()
        node = self.node(handle.ino)
        node.open_count -= 1
        try:
            await self._upload(node)
        except (OSError, StorageError) as exc:
            log.error("upload of %s failed at close, staged data kept: %s", self.key(node), exc)
        if node.open_count == 0 and node.staging is not None and (node.unlinked or not node.dirty):
            self._drop_staging(node)
        self.inodes.drop_if_unused(node)

    def _new_staging(self, node: Node, *, dirty: bool = False) -> Staging:
        """A staging file, journalled so a crash can neither lose its bytes nor misplace them."""
        staging = Staging(self.config.staging_dir, node.etag)
        staging.dirty = dirty
        self.journal.staged(staging.path, self.key(node), node.etag)
        return staging

    def _drop_staging(self, node: Node) -> None:
        if node.staging is not None:
            self.journal.unstaged(node.staging.path)
            node.staging.discard()
            node.staging = None

    async def _upload(self, node: Node) -> None:
        """Store the staging file as the object, with the node's metadata in the same request."""
        async with node.lock:
            staging = node.staging
            if staging is None or not staging.dirty or node.unlinked:
                return
            await self._learn_extra_meta(node)
            self._identify_content(node, staging)
            metadata = encode_meta(node.posix_meta(), node.extra_meta)
            staging.dirty = False
            self.journal.closing(staging.path, metadata, node.content_type)
            try:
                if node.upload is not None or self._wants_parts(staging.size):
                    info, metadata = await self._upload_parts(node, staging, metadata)
                else:
                    info, metadata = await self._put_whole(node, staging, metadata)
            except ConflictStored:
                staging.failed = False  # the bytes are stored, beside the object: owed no more
                self.journal.stored(staging.path, staging.base_etag)
                raise
            except StorageError as exc:
                staging.dirty = staging.failed = True
                log.error("upload of %s failed: %s (request id %s)", self.key(node), exc, exc.request_id)
                raise fail(errno.EIO, f"upload of {self.key(node)} failed") from exc
            staging.failed = False
            staging.base_etag = info.etag
            self.journal.stored(staging.path, info.etag)
            node.size = info.size if not staging.dirty else node.size
            self._saved(node, info, metadata)

    async def _put_whole(
        self, node: Node, staging: Staging, metadata: dict[str, str]
    ) -> tuple[ObjectInfo, dict[str, str]]:
        """One PUT carrying its MD5, checked by the service and kept in metadata and the blob record."""
        with staging.open_for_upload() as body:
            md5 = await self._io(content_md5, body)
            metadata = {**metadata, MD5_META: md5}
            if staging.failed:  # a retry must not overwrite a version written since the failure
                info = await self.recovery.put_owed(
                    self.key(node), body, md5, metadata, node.content_type, staging.base_etag
                )
            else:
                info = await self._io(
                    self.storage.write,
                    self.key(node),
                    body,
                    metadata=metadata,
                    content_type=node.content_type,
                    md5=md5,
                )
        self._record_blob(info, md5, node, metadata)
        return info, metadata

    def _identify_content(self, node: Node, staging: Staging) -> None:
        """A file whose name told nothing gets the type its first bytes show, before it is stored."""
        if node.content_type is not None or node.content_type_from is not None:
            return
        node.content_type = content_type.from_content(staging.head(content_type.HEAD_BYTES))
        node.content_type_from = content_type.FROM_CONTENT if node.content_type else None

    def _record_blob(
        self,
        info: ObjectInfo,
        md5: str,
        node: Node,
        metadata: dict[str, str],
        part_md5s: list[str] | None = None,
    ) -> None:
        self.blobs.put(
            BlobRecord(
                info.key,
                info.size,
                md5,
                info.etag,
                node.content_type,
                metadata,
                part_checksums=part_md5s or [],
                content_type_from=node.content_type_from,
            )
        )

    def expected_md5(self, node: Node) -> str | None:
        """The MD5 (base64) the object must have: from our blob record, rclone's metadata, or the etag."""
        record = self.blobs.get(self.key(node))
        if record is not None and record.etag == node.etag:
            return record.checksum
        if node.meta_known and MD5_META in node.extra_meta:
            return node.extra_meta[MD5_META]
        if self.storage.capabilities.etag_is_md5 and node.etag and PLAIN_MD5_ETAG.match(node.etag):
            return base64.b64encode(bytes.fromhex(node.etag)).decode()
        return None

    async def _upload_parts(
        self, node: Node, staging: Staging, metadata: dict[str, str]
    ) -> tuple[ObjectInfo, dict[str, str]]:
        """Complete the multipart upload; returns the object and the metadata it carries.

        The metadata was fixed when the upload began; the mtime that later writes moved is
        accepted as it was then, but an explicit chmod/chown/utime since costs one self-copy.
        """
        upload, node.upload = node.upload, None
        if upload is None or upload.key != self.key(node):
            if upload is not None:
                await upload.abort()  # renamed while written: parts went to the old key
            upload = self._new_upload(node)
        whole_md5 = self._in_background(self._io, _md5_of, staging)  # while the last parts go up
        info = await self._finish_parts(node, upload, staging)
        md5 = await whole_md5()
        if node.meta_set_while_dirty or _without_mtime(metadata) != _without_mtime(upload.metadata):
            node.meta_set_while_dirty = False
            info = await self._io(
                self.storage.copy, info.key, info.key, metadata=metadata, content_type=node.content_type
            )
        else:
            metadata = upload.metadata
        self._record_blob(info, md5, node, metadata, upload.part_md5s())
        return info, metadata

    def _in_background(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
        """Start `fn(*args)` now in the mount's nursery; the returned function awaits its result."""
        done, results = trio.Event(), []

        async def run() -> None:
            results.append(await outcome.acapture(fn, *args))
            done.set()

        async def result() -> T:
            await done.wait()
            return results[0].unwrap()

        if self._nursery is None:
            raise RuntimeError("the filesystem is not started")
        self._nursery.start_soon(run)
        return result

    async def _finish_parts(self, node: Node, upload: StreamingUpload, staging: Staging) -> ObjectInfo:
        """Complete; a retry after a failure completes only over the version the bytes derive
        from, and if the object changed meanwhile the bytes go beside it under a conflict name."""
        if not staging.failed:
            return await upload.finish(staging)
        upload_to = self._uploads_of(upload.metadata, upload.content_type)
        return await self.recovery.finish_owed_parts(upload_to, upload, staging)

    async def _truncate(self, node: Node, size: int) -> None:
        if node.is_dir:
            raise fail(errno.EISDIR, node.path)
        if size == 0 and node.staging is None:
            node.staging = self._new_staging(node, dirty=True)
        staging = await self._staging(node)
        if node.upload is not None:
            node.upload.touched(min(size, staging.size), max(size, staging.size))
        staging.truncate(size)
        node.size = size
        node.touch()
        if node.open_count == 0:
            await self._upload(node)
            self._drop_staging(node)

    async def setattr(
        self,
        ino: int,
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        atime_ns: int | None = None,
        mtime_ns: int | None = None,
    ) -> Node:
        node = self.node(ino)
        if size is not None:
            await self._truncate(node, size)
        if mode is not None:
            node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(mode)
        node.uid = node.uid if uid is None else uid
        node.gid = node.gid if gid is None else gid
        node.mtime_ns = node.mtime_ns if mtime_ns is None else mtime_ns
        node.atime_ns = node.atime_ns if atime_ns is None else atime_ns
        if (mode, uid, gid, mtime_ns, atime_ns) != (None,) * 5:
            node.ctime_ns = time.time_ns()
            node.meta_set_while_dirty = node.upload is not None
            self._schedule_metadata(node)
        return node

    # -- metadata changes, coalesced -----------------------------------------------------------

    def _schedule_metadata(self, node: Node) -> None:
        """Persist soon, in one request however many changes arrive: a dirty file carries it itself."""
        if node.dirty or (node.ino == ROOT_INO and not self.config.prefix):
            return
        self._meta_pending[node.ino] = node
        self._meta_wakeup.set()

    async def _metadata_flusher(self) -> None:
        while True:
            await self._meta_wakeup.wait()
            self._meta_wakeup = trio.Event()
            await trio.sleep(self.config.metadata_delay)
            await self.flush_metadata()

    async def flush_metadata(self) -> None:
        pending, self._meta_pending = self._meta_pending, {}
        for node in pending.values():
            try:
                await self._persist_metadata(node)
            except NotFound:
                log.warning("attributes of %s not saved: the object was deleted elsewhere", self.key(node))
            except StorageError as exc:
                log.error("saving attributes of %s failed, will retry: %s", self.key(node), exc)
                self._meta_pending[node.ino] = node

    async def _persist_metadata(self, node: Node) -> None:
        async with node.lock:
            if node.unlinked or node.dirty:
                return
            if node.is_dir:
                await self._write_marker(node)
                return
            key = self.key(node)
            await self._learn_extra_meta(node)
            metadata = encode_meta(node.posix_meta(), node.extra_meta)
            info = await self._io(
                self.storage.copy, key, key, metadata=metadata, content_type=node.content_type
            )
            self._saved(node, info, metadata)

    def dirty_bytes(self) -> int:
        """Bytes of files written and not yet stored; called by the metrics, from another thread."""
        return sum(node.size for node in self.inodes.snapshot() if node.dirty)

    async def sync(self) -> None:
        """Store every pending change: metadata and dirty files, open or not (for unmount)."""
        await self.flush_metadata()
        for node in [n for n in self.inodes.under("", include_self=False) if n.dirty]:
            await self._upload(node)

    # -- names ---------------------------------------------------------------------------------

    async def unlink(self, parent_ino: int, name: str) -> None:
        node = await self._existing(parent_ino, name)
        if node.is_dir:
            raise fail(errno.EISDIR, name)
        await self._keep_for_open_handles(node)
        if node.uploaded:
            await self._io(self.storage.delete, self.key(node))
        self._gone(node)

    async def _keep_for_open_handles(self, node: Node) -> None:
        """Copy an open file's bytes locally before its object goes, as POSIX keeps them readable."""
        if node.open_count and node.staging is None:
            await self._staging(node)

    async def symlink(self, parent_ino: int, name: str, target: str, uid: int, gid: int) -> Node:
        node = await self._write_whole(parent_ino, name, stat.S_IFLNK | 0o777, uid, gid, os.fsencode(target))
        node.symlink_target = target
        return node

    async def mknod(self, parent_ino: int, name: str, mode: int, rdev: int, uid: int, gid: int) -> Node:
        """A FIFO, socket or device is an empty object whose `mode` says its type (as s3fs stores
        them) and whose `rdev` metadata keeps a device's number; a regular file is an empty file."""
        if stat.S_IFMT(mode) not in SPECIAL_KINDS:
            raise fail(errno.EINVAL, f"mknod of file type {stat.S_IFMT(mode):o}")
        device = rdev if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else 0
        return await self._write_whole(parent_ino, name, mode, uid, gid, b"", device)

    async def _write_whole(
        self, parent_ino: int, name: str, mode: int, uid: int, gid: int, body: bytes, rdev: int = 0
    ) -> Node:
        """Create a file whose object is written at once, with its attributes, in one PUT."""
        path = await self._free_path(parent_ino, name)
        node = self._new_node(path, mode)
        node.uid, node.gid, node.rdev, node.size = uid, gid, rdev, len(body)
        node.touch()
        metadata = encode_meta(node.posix_meta())
        info = await self._io(self.storage.write, self.key(node), body, metadata=metadata)
        self._saved(node, info, metadata)
        self._added(node)
        return node

    async def readlink(self, ino: int) -> str:
        node = self.node(ino)
        if not node.is_link:
            raise fail(errno.EINVAL, node.path)
        if node.symlink_target is None:
            node.symlink_target = os.fsdecode(await self._io(self.storage.read, self.key(node)))
        return node.symlink_target

    async def rename(
        self, old_parent: int, old_name: str, new_parent: int, new_name: str, flags: int = 0
    ) -> None:
        """Copy then delete: not atomic on an object store (see docs/SEMANTICS.md)."""
        self._check_name(new_name)
        node = await self._existing(old_parent, old_name)
        target_dir = self._dir(new_parent)
        new_path = child_path(target_dir.path, new_name)
        if new_path == node.path:
            return
        target = await self._find(target_dir, new_name)
        self._check_rename(node, new_path, target, flags)
        if target is not None and target.is_dir and await self._has_children(target):
            raise fail(errno.ENOTEMPTY, new_path)  # before anything is deleted: a refusal changes nothing
        if target is not None:
            if target.is_dir:
                await self._io(self.storage.delete, self.key(target))
            await self._keep_for_open_handles(target)
            self._gone(target)
        if node.is_dir:
            await self._move_tree(node, new_path)
        else:
            await self._move_file(node, new_path)
        self._listings_removed(node.path)
        if node.is_dir:
            self._recount_parent(node.path)
        self.inodes.move(node.path, new_path)
        self._listings_added(new_path, node)
        if node.is_dir:
            self._recount_parent(new_path)

    def _check_rename(self, node: Node, new_path: str, target: Node | None, flags: int) -> None:
        if flags & ~RENAME_NOREPLACE:
            raise fail(errno.EINVAL, "rename flags other than RENAME_NOREPLACE are not supported")
        if node.is_dir and new_path.startswith(node.path + "/"):
            raise fail(errno.EINVAL, "cannot move a directory into itself")
        if target is None:
            return
        if flags & RENAME_NOREPLACE:
            raise fail(errno.EEXIST, new_path)
        if target.is_dir and not node.is_dir:
            raise fail(errno.EISDIR, new_path)
        if node.is_dir and not target.is_dir:
            raise fail(errno.ENOTDIR, new_path)

    async def _move_file(self, node: Node, new_path: str) -> None:
        await self._upload(node)
        if node.ino in self._meta_pending:
            await self._persist_metadata(node)
        if not node.uploaded:
            return
        old_key, new_key = self.key(node), key_of(self.config.prefix, new_path)
        info = await self._io(self.storage.copy, old_key, new_key)
        await self._io(self.storage.delete, old_key)
        self._move_record(old_key, node.etag, info)
        node.etag = info.etag

    async def _move_tree(self, node: Node, new_path: str) -> None:
        for child in [n for n in self.inodes.under(node.path) if n.dirty]:
            await self._upload(child)
        old_prefix = dir_key(self.config.prefix, node.path)
        new_prefix = dir_key(self.config.prefix, new_path)
        infos = [info async for page in self._pages(old_prefix, None) for info in page.objects]

        async def move(info: ObjectInfo) -> None:
            copied = await self._io(self.storage.copy, info.key, new_prefix + info.key[len(old_prefix) :])
            self._move_record(info.key, info.etag, copied)

        async with trio.open_nursery() as nursery:
            for info in infos:
                nursery.start_soon(move, info)
        async with trio.open_nursery() as nursery:
            for info in infos:
                nursery.start_soon(self._io, self.storage.delete, info.key)

    def _move_record(self, old_key: str, old_etag: str | None, copied: ObjectInfo) -> None:
        old = self.records.get(old_key, old_etag) if old_etag else None
        if old is not None:
            self.records.put(copied.key, copied.etag, old)
        self.records.forget(old_key)
        self.blobs.move(old_key, copied.key, etag=copied.etag)

    # -- extended attributes -------------------------------------------------------------------

    async def getxattr(self, ino: int, name: str) -> bytes:
        node = self.node(ino)
        if xattrs.is_virtual(name):
            value = await self._virtual_xattr(node, name)
            if value is None:
                raise xattrs.no_such_attribute(name)
            return value.encode()
        found = (await self._user_xattrs(node)).get(name) if xattrs.is_user(name) else None
        if found is None:
            raise xattrs.no_such_attribute(name)
        return found

    async def _virtual_xattr(self, node: Node, name: str) -> str | None:
        if name == xattrs.STATS and node.ino == ROOT_INO:
            return metrics.snapshot_json().decode()
        if name == xattrs.ETAG:
            return node.etag
        if name == xattrs.CONTENT_TYPE:
            return node.content_type
        if name == xattrs.CHECKSUM:
            return self.expected_md5(node)
        if name == xattrs.URL and node.uploaded:
            try:
                return await self._io(self.storage.url, self.key(node))
            except Unsupported:
                return None
        return None

    async def listxattr(self, ino: int) -> list[str]:
        """The user's attributes; the virtual ones are deliberately absent (see objfs.fs.xattrs)."""
        return sorted(name for name in await self._user_xattrs(self.node(ino)) if xattrs.is_user(name))

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        node = self.node(ino)
        xattrs.check_settable(name)
        await self._store_xattrs(node, {**await self._user_xattrs(node), name: value})

    async def removexattr(self, ino: int, name: str) -> None:
        node = self.node(ino)
        xattrs.check_settable(name)
        values = await self._user_xattrs(node)
        if values.pop(name, None) is None:
            raise xattrs.no_such_attribute(name)
        await self._store_xattrs(node, values)

    async def _user_xattrs(self, node: Node) -> dict[str, bytes]:
        await self._whole_metadata(node)
        return xattrs.decode(node.extra_meta.get(xattrs.META_NAME))

    async def _whole_metadata(self, node: Node) -> None:
        """A listing may not have carried the object's user metadata: one HEAD fetches it."""
        if not node.dirty:
            await self._learn_extra_meta(node)

    async def _learn_extra_meta(self, node: Node) -> None:
        """Before objfs replaces an object's metadata, learn what else it carries (an S3 listing does
        not say), so other tools' metadata survives a rewrite, as a file's xattrs survive `>`."""
        if node.meta_known or not node.uploaded:
            return
        try:
            info = await self._io(self.storage.stat, self.key(node))
        except NotFound:
            return  # gone meanwhile: nothing to keep
        node.extra_meta = {k: v for k, v in (info.metadata or {}).items() if k.lower() not in POSIX_NAMES}
        node.meta_known = info.metadata is not None
        node.content_type = node.content_type or info.content_type  # a listing does not say either

    async def _store_xattrs(self, node: Node, values: dict[str, bytes]) -> None:
        """Stored like chmod: coalesced into one self-copy, or carried by the pending upload."""
        if node.ino == ROOT_INO and not self.config.prefix:
            raise fail(errno.ENOTSUP, "the bucket's root has no object to carry attributes")
        extra = xattrs.with_values(node.extra_meta, values)
        self._check_metadata_fits(node, extra)
        node.extra_meta = extra
        node.ctime_ns = time.time_ns()
        node.meta_set_while_dirty = node.upload is not None
        self._schedule_metadata(node)

    def _check_metadata_fits(self, node: Node, extra: dict[str, str]) -> None:
        """ENOSPC, before anything is stored, when the metadata would pass the backend's cap
        (2 KiB on S3, shared by mode, owner, times, the MD5 and the attributes)."""
        limit = self.storage.capabilities.max_metadata_bytes
        if limit is None:
            return
        metadata = encode_meta(node.posix_meta(), extra)
        if not node.is_dir:
            metadata.setdefault(MD5_META, "=" * 24)  # every upload adds the body's MD5
        size = metadata_bytes(metadata)
        if size > limit:
            raise fail(errno.ENOSPC, f"{node.path}: metadata of {size} bytes passes the {limit}-byte cap")

    def statfs(self) -> StatFs:
        return StatFs()


def _md5_of(staging: Staging) -> str:
    with staging.open_for_upload() as body:
        return content_md5(body)


def _without_mtime(metadata: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k != "mtime"}
