"""The metadata cache: listings and absences trusted for the directory TTL, and what it saves."""

from __future__ import annotations

import trio

from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts, seed


async def test_a_second_listing_within_the_ttl_costs_nothing(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {f"d/f{i}": b"x" for i in range(5)})
    first = await vfs.listdir("d")
    vfs.storage.reset()
    assert await vfs.listdir("d") == first
    assert dict(vfs.storage.calls) == {}


async def test_absent_names_in_a_fresh_listing_cost_no_request(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"d/present": b"x"})
    await vfs.listdir("d")
    vfs.storage.reset()
    assert await vfs.fs.find((await vfs.lookup("d")).ino, "absent") is None
    assert dict(vfs.storage.calls) == {}


async def test_files_created_in_a_new_directory_cost_one_put_each(vfs: Client) -> None:
    await vfs.mkdir("fresh")
    vfs.storage.reset()
    for i in range(20):
        await vfs.write_file(f"fresh/file{i}", b"small")
    assert dict(vfs.storage.calls) == {"write": 20}
    assert sorted(await vfs.listdir("fresh")) == sorted(f"file{i}" for i in range(20))


async def test_changes_behind_the_mount_show_after_the_ttl(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = mounts.mount(dir_timeout=0.2, attr_timeout=0.2)
    seed(bucket, {"d/old": b"1"})
    assert sorted(await vfs.listdir("d")) == ["old"]
    seed(bucket, {"d/new": b"22", "d/old": b"333"})
    assert sorted(await vfs.listdir("d")) == ["old"]
    await trio.sleep(0.25)
    listing = await vfs.listdir("d")
    assert sorted(listing) == ["new", "old"]
    assert listing["old"].size == 3
    assert await vfs.read_file("d/old") == b"333"


async def test_own_changes_update_cached_listings(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {"d/a": b"1", "d/b": b"2"})
    await vfs.listdir("d")
    await vfs.unlink("d/a")
    await vfs.rename("d/b", "d/c")
    await vfs.write_file("d/e", b"5")
    vfs.storage.reset()
    assert sorted(await vfs.listdir("d")) == ["c", "e"]
    assert "list" not in vfs.storage.calls


async def test_many_lookups_in_one_directory_cost_one_listing(vfs: Client, bucket: MemoryStorage) -> None:
    seed(bucket, {f"photos/p{i:03d}.jpg": b"x" for i in range(50)})
    parent = await vfs.lookup("photos")
    vfs.storage.reset()
    for i in range(50):
        assert await vfs.fs.find(parent.ino, f"p{i:03d}.jpg") is not None
    for i in range(50):
        assert await vfs.fs.find(parent.ino, f"new{i}.jpg") is None
    # the listing taken to count photos' subdirectories finds every existing name; an absent name
    # is probed twice, then that same listing answers the rest: no LIST of its own
    assert vfs.storage.calls == {"stat": 2, "list": 2}


async def test_an_expired_small_listing_is_taken_again_instead_of_probing(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    vfs = mounts.mount(dir_timeout=0.05, attr_timeout=0.05)
    seed(bucket, {"d/a": b"1"})
    await vfs.listdir("d")
    parent = await vfs.lookup("d")
    await trio.sleep(0.1)
    vfs.storage.reset()
    seed(bucket, {"d/b": b"2"})
    assert await vfs.fs.find(parent.ino, "b") is not None
    assert await vfs.fs.find(parent.ino, "c") is None
    assert vfs.storage.calls == {"list": 1}


async def test_names_from_a_cached_listing_stay_valid_after_the_kernel_forgets_them(
    vfs: Client, bucket: MemoryStorage
) -> None:
    seed(bucket, {"d/f": b"data"})
    listed = (await vfs.listdir("d"))["f"]
    vfs.fs.forget(listed.ino, listed.lookups)  # as after drop_caches: the kernel lets it go
    parent = await vfs.lookup("d")
    again = await vfs.fs.find(parent.ino, "f")
    assert again is not None
    assert (await vfs.fs.getattr(again.ino)).size == 4
    handle = await vfs.fs.open(again.ino, 0)
    assert await vfs.fs.read(handle.fh, 0, 10) == b"data"
