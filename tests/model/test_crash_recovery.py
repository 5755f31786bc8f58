"""Nothing acknowledged is lost, nothing half-written lands: retries after EIO and after a crash.

A crash is simulated by abandoning a FileSystem without closing anything, then mounting a
new one on the same bucket and cache directory, as a restarted daemon would.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import trio

from objfs.storage.memory import MemoryStorage

from .support import Client, FlakyStorage, Mounts, expect_errno, seed


async def wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.01)


def recovered(cache: Path) -> dict[str, bytes]:
    root = cache / "recovered"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def failed_close(mounts: Mounts, path: str, data: bytes) -> Client:
    """A mount whose upload of `path` fails, leaving the handle open with the bytes staged."""
    vfs = mounts.mount(FlakyStorage(mounts.bucket, failures=1))
    handle = await vfs.create(path)
    await vfs.fs.write(handle.fh, 0, data)
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    return vfs


async def test_a_retry_after_eio_does_not_overwrite_newer_data(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = await failed_close(mounts, "report.txt", b"mine")
    seed(bucket, {"report.txt": b"someone else's, written since"})
    handle = next(iter(vfs.fs.handles.values()))
    with expect_errno(errno.EIO):
        await vfs.fs.flush(handle.fh)
    assert bucket.read("report.txt") == b"someone else's, written since"
    conflicts = [key for key in bucket.scan("") if key.startswith("report.txt.objfs-conflict-")]
    assert [bucket.read(key) for key in conflicts] == [b"mine"]


async def test_a_retry_after_eio_stores_when_nothing_changed(mounts: Mounts, bucket: MemoryStorage) -> None:
    vfs = await failed_close(mounts, "report.txt", b"mine")
    handle = next(iter(vfs.fs.handles.values()))
    await vfs.fs.flush(handle.fh)
    assert bucket.read("report.txt") == b"mine"


async def test_a_close_cut_short_by_a_crash_is_finished_at_the_next_mount(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    await failed_close(mounts, "owed.txt", b"acknowledged bytes")
    assert not bucket.exists("owed.txt")
    mounts.mount()
    await wait_until(lambda: bucket.exists("owed.txt"))
    assert bucket.read("owed.txt") == b"acknowledged bytes"


async def test_owed_bytes_go_beside_an_object_that_changed_during_the_crash(
    mounts: Mounts, bucket: MemoryStorage
) -> None:
    await failed_close(mounts, "owed.txt", b"mine")
    seed(bucket, {"owed.txt": b"theirs"})
    mounts.mount()
    await wait_until(lambda: any(k.startswith("owed.txt.objfs-conflict-") for k in bucket.scan("")))
    assert bucket.read("owed.txt") == b"theirs"


async def test_a_file_open_at_the_crash_is_set_aside_not_stored(
    mounts: Mounts, bucket: MemoryStorage, tmp_path: Path
) -> None:
    seed(bucket, {"draft.txt": b"the last saved version"})
    vfs = mounts.mount()
    handle = await vfs.open("draft.txt", flags=2)  # O_RDWR
    await vfs.fs.write(handle.fh, 0, b"HALF")
    mounts.mount()
    await wait_until(lambda: recovered(tmp_path / "cache") != {})
    [(name, data)] = recovered(tmp_path / "cache").items()
    assert name.startswith("draft.txt.")
    assert data == b"HALFlast saved version"
    assert bucket.read("draft.txt") == b"the last saved version"
