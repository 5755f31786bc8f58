"""The on-disk cache of object data, in fixed-size blocks, kept across remounts.

Block `i` of an object holds bytes `[i * block_size, (i + 1) * block_size)`; the last block may
be shorter. A block belongs to one version of its object, so it is keyed by key, etag and index:
a new etag simply misses, and `invalidate` drops the versions the filesystem no longer wants.

Block files live under `directory/blocks/` and are named by a hash, never by the key (a key
may hold any character and 1024 bytes). The index is SQLite at `directory/blocks.sqlite`.
Invariants that make a crash, a full disk or a flipped bit cost a refetch and never wrong bytes:

- a block file is written under a temporary name and renamed into place before its row is
  inserted, so a real name never holds a torn write from a crashed process;
- every row carries a checksum of the block, checked on every hit;
- on open, rows without files, files without rows and leftover temporary files are removed.

Nothing is fsynced: the data can always be fetched again, and the checksum turns a block a
power loss emptied into a miss. Large block files bypass the page cache (`direct_io`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator

import xxhash

from .direct_io import DirectFiles
from .sqlite import SqliteStore

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1024 * 1024
CHECKSUM_FORMAT = 3
"""1: BLAKE2b-128; 2: CRC-32; 3: XXH3-128. A cache written with another format is emptied at open."""
HIT_BATCH = 256
"""Hits remembered in memory before their recency is written to the index in one transaction."""

TEMP_SUFFIX = ".tmp"

BlockId = tuple[str, str, int]
"""(key, etag, index)"""

_WHERE_BLOCK = "key = ? AND etag = ? AND idx = ?"


def _write_file(files: DirectFiles, path: str, data: bytes | memoryview) -> None:
    """Module level so a test can make it fail like a full disk."""
    files.write_new(path, data)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def checksum(data: bytes | memoryview) -> str:
    """XXH3-128 in hex: btrfs, zstd and rsync guard data with the xxHash family.

    It catches what befalls a cache file (torn writes, flipped bits, a block zeroed by a power
    loss) at over 10 GB/s, where CRC-32 (2 GB/s) took a quarter of the daemon's time on a
    warm pass, which checks every block it reads. Nobody forges cache files; the service's
    MD5 is what vouches for the bytes themselves.
    """
    return xxhash.xxh3_128_hexdigest(data)


def block_name(block: BlockId) -> str:
    """`ab/abcdef...`, the block's file under `blocks/`: a SHA-256 of key, etag and index.

    Hashing the index too spreads one large object's blocks over all 256 subdirectories, so no
    directory grows past a few thousand entries. Each part is length-prefixed, so no two
    blocks share a name however their keys and etags are spelled.
    """
    digest = hashlib.sha256()
    for part in block:
        encoded = str(part).encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    name = digest.hexdigest()
    return f"{name[:2]}/{name}"


class BlockCache(SqliteStore):
    """Blocks of objects in `directory`, at most `capacity` bytes of them, least recently used out.

    Safe from any thread. Block data is read, written and hashed outside the lock; the rename
    or unlink of a block file happens under the lock with the change to its row, so the index
    and the directory always agree and a concurrent get sees a block whole or not at all.
    """

    schema = """
    CREATE TABLE IF NOT EXISTS blocks (
        key TEXT NOT NULL,
        etag TEXT NOT NULL,
        idx INTEGER NOT NULL,
        size INTEGER NOT NULL,
        checksum TEXT NOT NULL,
        last_used INTEGER NOT NULL,
        PRIMARY KEY (key, etag, idx)
    );
    CREATE INDEX IF NOT EXISTS blocks_by_last_use ON blocks (last_used);
    CREATE TABLE IF NOT EXISTS block_settings (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """

    def __init__(self, directory: str, capacity: int, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if capacity < 0 or block_size <= 0:
            raise ValueError(f"bad block cache size: capacity {capacity}, block size {block_size}")
        self.directory = directory
        self.capacity = capacity
        self.block_size = block_size
        self._blocks_dir = os.path.join(directory, "blocks")
        self._files = DirectFiles(block_size)
        os.makedirs(self._blocks_dir, mode=0o700, exist_ok=True)
        super().__init__(os.path.join(directory, "blocks.sqlite"))
        self._pending_hits: dict[BlockId, int] = {}
        self._degraded = False
        self._closed = False
        with self._lock:
            self._adopt_settings({"block_size": self.block_size, "checksum_format": CHECKSUM_FORMAT})
            self._reconcile()
            used, tick = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COALESCE(MAX(last_used), 0) FROM blocks"
            ).fetchone()
            self._used: int = used
            self._tick: int = tick
            self._evict()

    @property
    def used(self) -> int:
        """Bytes of block data indexed; file-system rounding and the SQLite file are not counted."""
        with self._lock:
            return self._used

    def get(self, key: str, etag: str, index: int) -> bytes | memoryview | None:
        """Block `index` of version `etag` of `key`, or None if it is not cached or failed its checksum."""
        block = (key, etag, index)
        with self._lock:
            row = self._row(block)
        if row is None:
            return None
        data, problem = self._load(block, *row)
        if problem is not None:
            data = self._recheck(block)
        if data is not None:
            self._touch(block)
        return data

    def put(self, key: str, etag: str, index: int, data: bytes | memoryview) -> bool:
        """Cache `data` as block `index` of version `etag` of `key`; whether it was stored.

        Never raises for a disk problem: a full or failing disk degrades the cache to uncached
        reads, with one warning until a block can be stored again.
        """
        if index < 0 or len(data) > self.block_size:
            raise ValueError(f"block {index} of {len(data)} bytes does not fit blocks of {self.block_size}")
        if len(data) > self.capacity:
            return False
        block = (key, etag, index)
        path = self._path(block)
        temp = f"{path}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        digest = checksum(data)
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            _write_file(self._files, temp, data)
            with self._lock:
                os.replace(temp, path)
                self._record(block, len(data), digest)
                self._evict()
                self._recover()
        except (OSError, sqlite3.Error) as exc:
            _unlink(temp)
            self._degrade(exc)
            return False
        return True

    def invalidate(self, key: str, keep_etag: str | None = None) -> None:
        """Drop the blocks of every version of `key` except `keep_etag` (all of them if None)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT etag, idx, size FROM blocks WHERE key = ? AND etag IS NOT ?", (key, keep_etag)
            ).fetchall()
            self._remove([((key, etag, idx), size) for etag, idx, size in rows])

    def close(self) -> None:
        """Write the recency of pending hits, so the next instance evicts in the same order."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flush_hits()
        super().close()

    def __enter__(self) -> BlockCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _path(self, block: BlockId) -> str:
        return os.path.join(self._blocks_dir, block_name(block))

    def _row(self, block: BlockId) -> tuple[int, str] | None:
        """(size, checksum) of an indexed block (lock held)."""
        return self._db.execute(f"SELECT size, checksum FROM blocks WHERE {_WHERE_BLOCK}", block).fetchone()

    def _record(self, block: BlockId, size: int, digest: str) -> None:
        """Index a block whose file is in place, replacing an earlier copy (lock held)."""
        old = self._row(block)
        self._tick += 1
        self._db.execute(
            "INSERT OR REPLACE INTO blocks (key, etag, idx, size, checksum, last_used)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*block, size, digest, self._tick),
        )
        self._used += size - (old[0] if old else 0)

    def _touch(self, block: BlockId) -> None:
        """Mark a hit in memory; the index learns of hits in batches, so a hit writes nothing."""
        with self._lock:
            self._tick += 1
            self._pending_hits[block] = self._tick
            if len(self._pending_hits) >= HIT_BATCH:
                self._flush_hits()

    def _flush_hits(self) -> None:
        """Write pending hits in one transaction (lock held); MAX keeps a newer put's recency."""
        if not self._pending_hits:
            return
        with self._transaction():
            self._db.executemany(
                f"UPDATE blocks SET last_used = MAX(last_used, ?) WHERE {_WHERE_BLOCK}",
                [(tick, *block) for block, tick in self._pending_hits.items()],
            )
        self._pending_hits.clear()

    def _evict(self) -> None:
        """Remove least recently used blocks until the cache fits its capacity (lock held)."""
        if self._used <= self.capacity:
            return
        self._flush_hits()
        excess = self._used - self.capacity
        victims: list[tuple[BlockId, int]] = []
        with contextlib.closing(
            self._db.execute("SELECT key, etag, idx, size FROM blocks ORDER BY last_used")
        ) as rows:
            for key, etag, idx, size in rows:
                victims.append(((key, etag, idx), size))
                excess -= size
                if excess <= 0:
                    break
        self._remove(victims)

    def _remove(self, blocks: list[tuple[BlockId, int]]) -> None:
        """Delete blocks' rows, then their files (lock held): a crash in between leaves orphan
        files, which the next open deletes, never a row naming a missing file."""
        if not blocks:
            return
        with self._transaction():
            self._db.executemany(f"DELETE FROM blocks WHERE {_WHERE_BLOCK}", [block for block, _ in blocks])
        for block, size in blocks:
            self._used -= size
            self._pending_hits.pop(block, None)
            _unlink(self._path(block))

    def _load(self, block: BlockId, size: int, expected: str) -> tuple[bytes | memoryview | None, str | None]:
        """The block's bytes if its file holds what the index says, else what is wrong with it."""
        try:
            data = self._files.read(self._path(block), size)
        except OSError as exc:
            return None, exc.strerror or str(exc)
        found = checksum(data)
        if len(data) != size or found != expected:
            return None, f"{len(data)} of {size} bytes, checksum {found}"
        return data, None

    def _recheck(self, block: BlockId) -> bytes | memoryview | None:
        """Judge a block that failed its check again, under the lock, where no other thread can be
        evicting or replacing it: only a block that is still bad is dropped, with one warning."""
        with self._lock:
            row = self._row(block)
            if row is None:
                return None
            data, problem = self._load(block, *row)
            if problem is not None:
                self._remove([(block, row[0])])
        if problem is not None:
            key, etag, index = block
            log.warning(
                "cached block %d of %r (etag %s) is corrupt (%s); dropped it", index, key, etag, problem
            )
        return data

    def _degrade(self, exc: BaseException) -> None:
        """Warn once per episode of failing puts, not once per block."""
        with self._lock:
            first, self._degraded = not self._degraded, True
        if first:
            log.warning("block cache in %s cannot store data (%s); reads go uncached", self.directory, exc)

    def _recover(self) -> None:
        """After a put succeeds again, end the degraded episode (lock held)."""
        if self._degraded:
            self._degraded = False
            log.info("block cache in %s stores data again", self.directory)

    def _adopt_settings(self, settings: dict[str, int]) -> None:
        """Empty the cache if it was written with other settings (lock held): with another block
        size its indexes mean other byte ranges, with another checksum format every hit fails."""
        for name, value in settings.items():
            row = self._db.execute("SELECT value FROM block_settings WHERE name = ?", (name,)).fetchone()
            if (row[0] if row else None) != value and self._db.execute("SELECT 1 FROM blocks").fetchone():
                log.info("block cache %s changed to %d; emptying the block cache", name, value)
                self._db.execute("DELETE FROM blocks")
            self._db.execute(
                "INSERT OR REPLACE INTO block_settings (name, value) VALUES (?, ?)", (name, value)
            )

    def _reconcile(self) -> None:
        """Make index and files agree after a crash (lock held): drop rows whose file is missing
        or has the wrong size, and delete files no row names."""
        files = self._scan_files()
        stale: list[BlockId] = []
        for key, etag, idx, size in self._db.execute("SELECT key, etag, idx, size FROM blocks").fetchall():
            name = block_name((key, etag, idx))
            if files.get(name) == size:
                del files[name]
            else:
                stale.append((key, etag, idx))
        if stale:
            log.info(
                "block cache: forgetting %d blocks whose files are missing or the wrong size", len(stale)
            )
            with self._transaction():
                self._db.executemany(f"DELETE FROM blocks WHERE {_WHERE_BLOCK}", stale)
        for name in files:
            _unlink(os.path.join(self._blocks_dir, name))

    def _scan_files(self) -> dict[str, int]:
        """Size of every block file by name (as `block_name` spells it); temporary files are deleted."""
        found: dict[str, int] = {}
        for subdir in os.scandir(self._blocks_dir):
            if not subdir.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(subdir.path):
                if entry.name.endswith(TEMP_SUFFIX):
                    _unlink(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found[f"{subdir.name}/{entry.name}"] = entry.stat(follow_symlinks=False).st_size
        return found

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """The connection autocommits, so statements that belong together need BEGIN (lock held)."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


__all__ = ["DEFAULT_BLOCK_SIZE", "BlockCache", "block_name", "checksum"]
