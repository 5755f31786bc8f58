"""Inodes: the numbers the kernel holds for paths, with the attributes last seen for each.

Objects have no inode numbers, so objfs hands them out per path and keeps the kernel's
lookup count for each, dropping a node only when the kernel forgets it and no file is open.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import trio

from .handles import Staging
from .mapping import PosixMeta
from .upload import StreamingUpload

ROOT_INO = 1


@dataclass
class Node:
    """One file, directory or symlink as the filesystem currently believes it to be."""

    ino: int
    path: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    etag: str | None = None
    content_type: str | None = None
    content_type_from: str | None = None
    """How objfs identified the content type ("name" or "content"); None if the object said."""
    extra_meta: dict[str, str] = field(default_factory=dict)
    meta_known: bool = False
    """Whether `extra_meta` is the object's whole user metadata (a listing may not have said)."""
    explicit: bool = False
    """A directory with a marker object (mkdir'd, or chmod'ed), not only implied by its keys."""
    symlink_target: str | None = None
    rdev: int = 0
    """The device number of a character or block device node (0 for everything else)."""
    subdirs: int | None = None
    """A directory's subdirectories when last counted (for st_nlink); None: count again."""
    subdirs_counted: float = 0.0
    lookups: int = 0
    open_count: int = 0
    staging: Staging | None = None
    upload: StreamingUpload | None = None
    """The multipart upload fed while a large file is written, if one has started."""
    meta_set_while_dirty: bool = False
    """chmod/chown/utime arrived after a multipart upload began: it needs a self-copy at the end."""
    unlinked: bool = False
    refreshed: float = 0.0
    lock: trio.Lock = field(default_factory=trio.Lock)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def uploaded(self) -> bool:
        """Whether an object exists for it (a new file exists only locally until its first flush)."""
        return self.etag is not None

    @property
    def dirty(self) -> bool:
        return self.staging is not None and self.staging.dirty

    def posix_meta(self) -> PosixMeta:
        """The attributes to store; atime only when it differs from mtime, which it defaults to."""
        atime = self.atime_ns if self.atime_ns and self.atime_ns != self.mtime_ns else None
        return PosixMeta(self.mode, self.uid, self.gid, self.mtime_ns, atime, self.rdev or None)

    def touch(self, now_ns: int | None = None) -> None:
        now_ns = now_ns or time.time_ns()
        self.mtime_ns = self.ctime_ns = now_ns

    def mark_fresh(self) -> None:
        self.refreshed = time.monotonic()

    def is_fresh(self, timeout: float) -> bool:
        return time.monotonic() - self.refreshed < timeout


class InodeTable:
    """ino <-> path for every node the kernel may still name."""

    def __init__(self, root: Node) -> None:
        self._by_ino: dict[int, Node] = {ROOT_INO: root}
        self._by_path: dict[str, Node] = {"": root}
        self._next_ino = ROOT_INO + 1

    def __getitem__(self, ino: int) -> Node:
        return self._by_ino[ino]

    def get(self, ino: int) -> Node | None:
        return self._by_ino.get(ino)

    def at(self, path: str) -> Node | None:
        return self._by_path.get(path)

    def new_ino(self) -> int:
        ino = self._next_ino
        self._next_ino += 1
        return ino

    def add(self, node: Node) -> Node:
        self._by_ino[node.ino] = node
        self._by_path[node.path] = node
        return node

    def detach(self, node: Node) -> None:
        """Unlink the path from the node; the ino stays valid until the kernel forgets it."""
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]

    def forget(self, ino: int, count: int) -> None:
        node = self._by_ino.get(ino)
        if node is None or ino == ROOT_INO:
            return
        node.lookups = max(0, node.lookups - count)
        self.drop_if_unused(node)

    def drop_if_unused(self, node: Node) -> None:
        """Keep a node with unsaved bytes (its upload failed), so `sync` can still store them."""
        if node.lookups == 0 and node.open_count == 0 and not node.dirty and node.ino != ROOT_INO:
            self._by_ino.pop(node.ino, None)
            self.detach(node)

    def move(self, old: str, new: str) -> None:
        """Re-path `old` and everything below it to `new`; whatever sat at `new` is detached first."""
        moving = [n for p, n in self._by_path.items() if p == old or p.startswith(old + "/")]
        for node in self.under(new, include_self=True):
            self.detach(node)
        for node in moving:
            self.detach(node)
        for node in moving:
            node.path = new + node.path[len(old) :]
            self._by_path[node.path] = node

    def snapshot(self) -> list[Node]:
        """Every node, copied in one step: safe from another thread (a metrics scrape), since
        copying a dict's values holds the GIL throughout."""
        return list(self._by_ino.values())

    def under(self, path: str, include_self: bool = False) -> Iterator[Node]:
        lead = path + "/" if path else ""
        return iter(
            [
                n
                for p, n in self._by_path.items()
                if (include_self and p == path) or (p.startswith(lead) and p)
            ]
        )

    def children(self, path: str) -> Iterator[Node]:
        lead = path + "/" if path else ""
        return (
            n
            for p, n in list(self._by_path.items())
            if p.startswith(lead) and "/" not in p[len(lead) :] and p
        )
