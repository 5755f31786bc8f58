"""POSIX attributes: stored as s3fs-style object metadata, coalesced, and remembered per etag."""

from __future__ import annotations

import stat

import pytest
import trio

from objfs.fs.mapping import NS
from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, S3ListingStorage, seed

MTIME_NS = 1_600_000_000_123_456_789
SETTLE = 0.3
"""Longer than the test mounts' metadata delay (0.05 s), so the flusher has run."""


def metadata(bucket: MemoryStorage, key: str) -> dict[str, str]:
    return bucket.stat(key).metadata or {}


async def test_chmod_and_utimens_cost_one_copy_after_the_delay(vfs: Client, bucket: MemoryStorage) -> None:
    node = await vfs.write_file("f", b"body")
    vfs.storage.reset()
    await vfs.fs.setattr(node.ino, mode=0o600)
    await vfs.fs.setattr(node.ino, atime_ns=MTIME_NS, mtime_ns=MTIME_NS)
    assert metadata(bucket, "f")["mode"] == str(stat.S_IFREG | 0o644), "not before the delay"
    await trio.sleep(SETTLE)
    assert vfs.storage.calls["copy"] == 1
    assert metadata(bucket, "f")["mode"] == str(stat.S_IFREG | 0o600)
    assert metadata(bucket, "f")["mtime"] == "1600000000.123456789"
    assert bucket.read("f") == b"body"


async def test_chown_persists_on_flush_metadata(vfs: Client, bucket: MemoryStorage) -> None:
    await vfs.write_file("f", b"")
    await vfs.setattr("f", uid=1234, gid=5678)
    await vfs.fs.flush_metadata()
    assert (metadata(bucket, "f")["uid"], metadata(bucket, "f")["gid"]) == ("1234", "5678")


async def test_chmod_of_implied_directory_writes_its_marker(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"implied/file": b""})
    await vfs.setattr("implied", mode=0o711)
    await vfs.fs.flush_metadata()
    assert metadata(bucket, "implied/")["mode"] == str(stat.S_IFDIR | 0o711)


async def test_attributes_survive_remount(vfs: Client, mounts: Mounts) -> None:
    await vfs.write_file("f", b"")
    await vfs.setattr("f", mode=0o604, mtime_ns=MTIME_NS)
    await vfs.fs.flush_metadata()
    again = mounts.mount()
    node = await again.fs.getattr((await again.lookup("f")).ino)
    assert (node.mode, node.mtime_ns) == (stat.S_IFREG | 0o604, MTIME_NS)


async def _chmodded_files(vfs: Client) -> None:
    """Files whose modes differ from the defaults, one set at create and one by chmod."""
    await vfs.write_file("secret", b"s", mode=0o600)
    await vfs.write_file("script", b"#!", mode=0o644)
    await vfs.setattr("script", mode=0o700)
    await vfs.fs.flush_metadata()


async def test_s3_listing_takes_modes_from_records_without_heads(vfs: Client, mounts: Mounts) -> None:
    await _chmodded_files(vfs)
    again = mounts.mount(S3ListingStorage(mounts.bucket))
    entries = await again.listdir()
    assert {name: stat.S_IMODE(n.mode) for name, n in entries.items()} == {"secret": 0o600, "script": 0o700}
    assert again.storage.calls["stat"] == 0


async def test_s3_listing_without_records_shows_defaults(vfs: Client, mounts: Mounts) -> None:
    await _chmodded_files(vfs)
    again = mounts.mount(S3ListingStorage(mounts.bucket), cache="empty")
    entries = await again.listdir()
    assert {stat.S_IMODE(n.mode) for n in entries.values()} == {0o644}
    assert again.storage.calls["stat"] == 0


async def test_exact_listing_heads_in_bounded_parallel_and_remembers(vfs: Client, mounts: Mounts) -> None:
    await _chmodded_files(vfs)
    await vfs.symlink("link", "secret")
    await vfs.write_file("plain", b"")
    storage = S3ListingStorage(mounts.bucket, delay=0.05)
    again = mounts.mount(storage, cache="empty", exact_listing=True, max_parallel=2)
    entries = await again.listdir()
    assert {name: stat.filemode(n.mode) for name, n in entries.items()} == {
        "link": "lrwxrwxrwx",
        "plain": "-rw-r--r--",
        "script": "-rwx------",
        "secret": "-rw-------",
    }
    assert (storage.calls["stat"], storage.peak["stat"]) == (4, 2)
    storage.reset()
    await again.listdir()
    assert storage.calls["stat"] == 0, "HEAD results are recorded like any lookup"


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        ("1700000000", 1_700_000_000 * NS),
        ("1700000000.5", 1_700_000_000 * NS + NS // 2),
        ("1700000000.123456789", 1_700_000_000_123_456_789),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * NS),
    ],
    ids=["s3fs", "rclone", "nanoseconds", "iso8601"],
)
async def test_mtime_metadata_formats(
    vfs: Client, bucket: MemoryStorage, value: str, expected_ns: int
) -> None:
    seed(bucket, {"f": b""}, metadata={"mtime": value})
    assert (await vfs.lookup("f")).mtime_ns == expected_ns


@pytest.mark.parametrize(
    ("meta", "mode"),
    [
        ({"mode": str(stat.S_IFREG | 0o640), "uid": "7", "gid": "8"}, stat.S_IFREG | 0o640),
        ({"mode": "420"}, stat.S_IFREG | 0o644),
        ({"mode": "garbage"}, stat.S_IFREG | 0o644),
        ({}, stat.S_IFREG | 0o644),
    ],
    ids=["s3fs", "no-type-bits", "unparsable", "none"],
)
async def test_mode_metadata(vfs: Client, bucket: MemoryStorage, meta: dict[str, str], mode: int) -> None:
    seed(bucket, {"f": b""}, metadata=meta)
    node = await vfs.lookup("f")
    assert stat.filemode(node.mode) == stat.filemode(mode)
    assert (node.uid, node.gid) == (
        int(meta.get("uid", vfs.fs.config.uid)),
        int(meta.get("gid", vfs.fs.config.gid)),
    )


async def test_ls_l_of_a_big_directory_lists_it_once(mounts: Mounts, bucket: MemoryStorage) -> None:
    """lookup, stat (which counts subdirectories for st_nlink), readdir, stat of every entry:
    the directory is listed once, a page per 1,000 names, and no entry costs a HEAD."""
    seed(bucket, {f"big/f{i:04d}": b"x" for i in range(2500)})
    storage = S3ListingStorage(mounts.bucket)
    vfs = mounts.mount(storage, cache="empty")
    big = await vfs.lookup("big")
    await vfs.fs.getattr(big.ino)
    entries = await vfs.listdir("big")
    for node in entries.values():
        await vfs.fs.getattr(node.ino)
    assert len(entries) == 2500
    listings_of_big = [prefix for prefix in storage.listed if prefix == "big/"]
    assert len(listings_of_big) == 1 + 3  # the probe that found "big" a directory, then 3 pages
    assert storage.calls["stat"] == 1  # that probe's HEAD: no entry costs one
