"""The block cache: fixed-size blocks of object versions on disk, LRU-capped, checked on every hit."""

from __future__ import annotations

import errno
import logging
import os
import random
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from objfs.cache import blocks
from objfs.cache.blocks import BlockCache, block_name

BLOCK = 1024
CAPACITY = 4 * BLOCK


def data_for(key: str, index: int, size: int = BLOCK) -> bytes:
    """Bytes that differ for every block, so a block served for the wrong one shows."""
    return (f"{key}#{index}|".encode() * (size // 4 + 1))[:size]


def block_files(directory: Path) -> dict[str, int]:
    """Size of every file under `blocks/`, by the name `block_name` gives it."""
    root = directory / "blocks"
    return {str(path.relative_to(root)): path.stat().st_size for path in root.rglob("*") if path.is_file()}


def block_path(directory: Path, key: str, etag: str, index: int) -> Path:
    return directory / "blocks" / block_name((key, etag, index))


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[BlockCache]:
    opened = BlockCache(str(tmp_path), capacity=CAPACITY, block_size=BLOCK)
    yield opened
    opened.close()


def test_full_and_short_blocks_round_trip(cache: BlockCache) -> None:
    stored = {
        ("big.bin", 0): data_for("big.bin", 0),
        ("big.bin", 1): data_for("big.bin", 1, size=100),  # the short last block
        ("tiny.txt", 0): data_for("tiny.txt", 0, size=10),  # a whole small object
    }
    for (key, index), data in stored.items():
        assert cache.put(key, "e1", index, data)
    for (key, index), data in stored.items():
        assert cache.get(key, "e1", index) == data
    assert cache.get("big.bin", "e1", 2) is None
    assert cache.used == BLOCK + 100 + 10


def test_another_etag_is_another_object(cache: BlockCache) -> None:
    cache.put("k", "old", 0, b"old bytes")
    assert cache.get("k", "new", 0) is None
    assert cache.get("k", "old", 0) == b"old bytes"


def test_invalidate_keeps_only_the_named_etag_then_nothing(cache: BlockCache, tmp_path: Path) -> None:
    for etag, index in [("old", 0), ("old", 1), ("new", 0)]:
        cache.put("k", etag, index, data_for(etag, index, size=100))
    cache.put("other", "old", 0, b"x" * 100)

    cache.invalidate("k", keep_etag="new")
    assert [cache.get("k", "old", index) for index in (0, 1)] == [None, None]
    assert cache.get("k", "new", 0) == data_for("new", 0, size=100)
    assert cache.used == 200

    cache.invalidate("k")
    assert cache.get("k", "new", 0) is None
    assert cache.get("other", "old", 0) == b"x" * 100
    assert block_files(tmp_path) == {block_name(("other", "old", 0)): 100}
    assert cache.used == 100


def test_eviction_drops_least_recently_used_blocks(cache: BlockCache, tmp_path: Path) -> None:
    for index in range(4):
        cache.put("k", "e", index, data_for("k", index))
    cache.get("k", "e", 0)
    cache.get("k", "e", 1)
    for index in range(4, 10):
        assert cache.put("k", "e", index, data_for("k", index))
        assert cache.get("k", "e", 0) is not None  # block 0 stays the most recently used
        assert cache.used <= CAPACITY
    # Each put evicted the oldest: 2, 3, then 1 (its early hit aged), then 4, 5, 6.
    survivors = {0, 7, 8, 9}
    for index in range(10):
        assert (cache.get("k", "e", index) is not None) == (index in survivors), index
    assert cache.used == CAPACITY
    assert block_files(tmp_path) == {block_name(("k", "e", index)): BLOCK for index in survivors}


def test_hits_write_nothing_to_the_index(cache: BlockCache, tmp_path: Path) -> None:
    """Recency is batched in memory, so a hit costs no write (let alone an fsync)."""
    cache.put("k", "e", 0, b"data")
    wal = tmp_path / "blocks.sqlite-wal"
    before = wal.stat()
    for _ in range(20):
        assert cache.get("k", "e", 0) == b"data"
    after = wal.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_block_larger_than_the_capacity_is_not_cached(tmp_path: Path) -> None:
    with BlockCache(str(tmp_path), capacity=100, block_size=BLOCK) as small:
        assert small.put("k", "e", 0, b"x" * 101) is False
        assert small.get("k", "e", 0) is None
        assert small.used == 0
        with pytest.raises(ValueError):
            small.put("k", "e", 0, b"x" * (BLOCK + 1))
    assert block_files(tmp_path) == {}


def test_blocks_and_their_recency_survive_reopening(tmp_path: Path) -> None:
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as first:
        for index in range(4):
            first.put("k", "e", index, data_for("k", index))
        first.get("k", "e", 0)
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as second:
        assert second.used == CAPACITY
        assert second.get("k", "e", 2) == data_for("k", 2)
        second.put("k", "e", 4, data_for("k", 4))
        assert second.get("k", "e", 1) is None  # the least recently used before the restart
        assert second.get("k", "e", 0) == data_for("k", 0)


def test_reopening_with_less_capacity_evicts(tmp_path: Path) -> None:
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as first:
        for index in range(4):
            first.put("k", "e", index, data_for("k", index))
    with BlockCache(str(tmp_path), 2 * BLOCK, BLOCK) as second:
        assert second.used == 2 * BLOCK
        assert [second.get("k", "e", index) is not None for index in range(4)] == [False, False, True, True]
    assert len(block_files(tmp_path)) == 2


def test_reopening_with_another_block_size_empties_the_cache(tmp_path: Path) -> None:
    """Block 1 of 1 KiB blocks is not block 1 of 2 KiB blocks: serving it would be wrong bytes."""
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as first:
        first.put("k", "e", 1, data_for("k", 1))
    with BlockCache(str(tmp_path), CAPACITY, 2 * BLOCK) as second:
        assert second.get("k", "e", 1) is None
        assert second.used == 0
    assert block_files(tmp_path) == {}


def test_a_cache_of_another_checksum_format_is_emptied(tmp_path: Path) -> None:
    """Blocks checksummed another way would all fail their check: they go at open, quietly."""
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as first:
        first.put("k", "e", 1, data_for("k", 1))
    index = sqlite3.connect(tmp_path / "blocks.sqlite")
    with index:
        index.execute("UPDATE block_settings SET value = 1 WHERE name = 'checksum_format'")
    index.close()
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as second:
        assert second.get("k", "e", 1) is None
        assert second.used == 0
        second.put("k", "e", 1, data_for("k", 1))
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as third:
        assert third.get("k", "e", 1) == data_for("k", 1)


def test_reopening_reconciles_files_and_index(tmp_path: Path) -> None:
    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as first:
        for index in range(3):
            first.put("k", "e", index, data_for("k", index))
    block_path(tmp_path, "k", "e", 1).unlink()  # a row whose file vanished
    os.truncate(block_path(tmp_path, "k", "e", 2), 10)  # a file torn outside the cache
    orphan = tmp_path / "blocks" / "ab" / ("ab" + "0" * 62)  # a file whose row a crash lost
    stray = tmp_path / "blocks" / "cd" / "something.1234.tmp"  # a write a crash interrupted
    for leftover in (orphan, stray):
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(b"left over")

    with BlockCache(str(tmp_path), CAPACITY, BLOCK) as second:
        assert second.used == BLOCK
        assert [second.get("k", "e", index) is not None for index in range(3)] == [True, False, False]
    assert block_files(tmp_path) == {block_name(("k", "e", 0)): BLOCK}


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[5:8] = bytes(255 - byte for byte in data[5:8])
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    os.truncate(path, 7)


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate])
def test_corrupt_block_is_a_miss_dropped_with_one_warning(
    damage: Callable[[Path], None], cache: BlockCache, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache.put("photos/cat.jpeg", "e", 0, data_for("cat", 0))
    cache.put("photos/dog.jpeg", "e", 0, data_for("dog", 0))
    damage(block_path(tmp_path, "photos/cat.jpeg", "e", 0))

    with caplog.at_level(logging.WARNING, logger=blocks.__name__):
        assert cache.get("photos/cat.jpeg", "e", 0) is None
        assert cache.get("photos/cat.jpeg", "e", 0) is None
    assert len(warnings_in(caplog)) == 1
    assert "photos/cat.jpeg" in warnings_in(caplog)[0]
    assert not block_path(tmp_path, "photos/cat.jpeg", "e", 0).exists()
    assert cache.used == BLOCK
    assert cache.get("photos/dog.jpeg", "e", 0) == data_for("dog", 0)


def _disk_full(_files: object, path: str, data: bytes) -> None:
    """Like a write that ran out of space half way: a partial file, then ENOSPC."""
    with open(path, "xb") as file:
        file.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def test_full_disk_degrades_to_uncached_reads_with_one_warning(
    cache: BlockCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache.put("k", "e", 0, data_for("k", 0))
    monkeypatch.setattr(blocks, "_write_file", _disk_full)
    with caplog.at_level(logging.WARNING, logger=blocks.__name__):
        assert [cache.put("k", "e", index, data_for("k", index)) for index in (1, 2, 3)] == [False] * 3
    assert len(warnings_in(caplog)) == 1
    assert "No space left on device" in warnings_in(caplog)[0]
    assert block_files(tmp_path) == {block_name(("k", "e", 0)): BLOCK}  # no temporary file left
    assert cache.get("k", "e", 0) == data_for("k", 0)
    assert cache.get("k", "e", 1) is None
    assert cache.used == BLOCK


def test_each_degraded_episode_warns_once(
    cache: BlockCache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=blocks.__name__):
        for _episode in range(2):
            with monkeypatch.context() as patched:
                patched.setattr(blocks, "_write_file", _disk_full)
                assert not cache.put("k", "e", 0, b"a")
                assert not cache.put("k", "e", 1, b"b")
            assert cache.put("k", "e", 2, b"c")
    assert len(warnings_in(caplog)) == 2


def test_threads_get_the_right_bytes_or_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Eight threads putting, getting and invalidating shared and own blocks in a cache that evicts."""
    capacity = 8 * BLOCK
    wrong: list[tuple[str, int]] = []

    def work(worker: int) -> None:
        rng = random.Random(worker)
        for _ in range(150):
            key = rng.choice(["shared", f"own-{worker}"])
            index = rng.randrange(6)
            roll = rng.random()
            if roll < 0.45:
                cache.put(key, "e", index, data_for(key, index))
            elif roll < 0.98:
                if cache.get(key, "e", index) not in (None, data_for(key, index)):
                    wrong.append((key, index))
            else:
                cache.invalidate(key)

    with caplog.at_level(logging.WARNING, logger=blocks.__name__):
        with BlockCache(str(tmp_path), capacity, BLOCK) as cache, ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))  # re-raises any thread's exception
            used = cache.used
        assert not wrong
        assert used <= capacity
        assert sum(block_files(tmp_path).values()) == used
        with BlockCache(str(tmp_path), capacity, BLOCK) as reopened:
            assert reopened.used == used  # index and files agreed: reconciling removed nothing
    assert warnings_in(caplog) == []
