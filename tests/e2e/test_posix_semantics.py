"""POSIX semantics a legacy tool relies on, on a real mount of a local folder and of S3 on moto:
what the tool sees through the mount, what lands in the bucket, and what survives a remount."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mounting import Mount, mounted

from objfs.storage.local import LocalStorage

PREFIX = "posix/"
ATIME_NS = 1_500_000_000_111_222_333
MTIME_NS = 1_600_000_000_123_456_789
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
PATH_MAX = 4096
S3_METADATA_LIMIT = 2048


@dataclass
class Backend:
    """One kind of bucket: how to mount it, and how to look at it without objfs."""

    kind: str
    source: str
    env: dict[str, str]
    extra: tuple[str, ...] = ()
    folder: Path | None = None
    client: Any = None
    bucket: str = ""
    prefix: str = ""
    metadata_limit: int | None = None
    """The backend's user-metadata cap (Capabilities.max_metadata_bytes), None for none."""

    def mount(self, tmp_path: Path, *extra: str) -> Any:
        return mounted(self.source, tmp_path, self.env, *self.extra, *extra)

    def get(self, key: str) -> bytes:
        if self.folder is not None:
            return LocalStorage(self.folder).read(key)
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def metadata(self, key: str) -> dict[str, str]:
        if self.folder is not None:
            return LocalStorage(self.folder).stat(key).metadata or {}
        return self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)["Metadata"]

    def exists(self, key: str) -> bool:
        if self.folder is not None:
            return LocalStorage(self.folder).exists(key)
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + key)
        return any(o["Key"] == self.prefix + key for o in listed.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        folder = tmp_path / "bucket"
        folder.mkdir()
        return Backend("local", f"local://{folder}", {}, folder=folder)
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return Backend(
        "s3",
        f"s3://{bucket}/{PREFIX.rstrip('/')}",
        request.getfixturevalue("s3_env"),
        ("--endpoint-url", endpoint),
        client=request.getfixturevalue("s3_client"),
        bucket=bucket,
        prefix=PREFIX,
        metadata_limit=S3_METADATA_LIMIT,
    )


@pytest.fixture
def mount(backend: Backend, tmp_path: Path) -> Iterator[Mount]:
    with backend.mount(tmp_path) as mounted_fs:
        yield mounted_fs


def errno_of(action: Callable[[], object]) -> int:
    """The errno an operation fails with, 0 when it succeeds."""
    try:
        action()
    except OSError as exc:
        return exc.errno or -1
    return 0


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


_libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path: Path, atime: int | tuple[int, int], mtime: int | tuple[int, int]) -> None:
    """utimensat(2) itself, since os.utime cannot say UTIME_OMIT; a time is ns or (0, UTIME_*)."""

    def spec(value: int | tuple[int, int]) -> Timespec:
        return Timespec(*value) if isinstance(value, tuple) else Timespec(*divmod(value, 1_000_000_000))

    times = (Timespec * 2)(spec(atime), spec(mtime))
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), times, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(path))


# -- files created, truncated -------------------------------------------------------------------


@pytest.mark.parametrize("access", [os.O_RDONLY, os.O_WRONLY], ids=["rdonly", "wronly"])
def test_file_created_and_closed_without_writing_exists_empty(
    backend: Backend, mount: Mount, access: int
) -> None:
    os.close(os.open(mount.path / "empty", os.O_CREAT | access, 0o640))
    assert mount.path.joinpath("empty").stat().st_size == 0
    assert backend.get("empty") == b""
    mount.remount()
    found = mount.path.joinpath("empty").stat()
    assert (found.st_size, stat.S_IMODE(found.st_mode)) == (0, 0o640)


def test_truncate_of_a_closed_file_keeps_bytes_and_zero_fills(backend: Backend, mount: Mount) -> None:
    path = mount.path / "grow"
    path.write_bytes(b"hello")
    os.truncate(path, 12)
    assert path.read_bytes() == b"hello" + bytes(7)
    assert backend.get("grow") == b"hello" + bytes(7)
    os.truncate(path, 2)
    assert backend.get("grow") == b"he"


def test_ftruncate_honours_unflushed_writes(backend: Backend, mount: Mount) -> None:
    path = mount.path / "cut"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"abcdefgh")
        os.ftruncate(fd, 3)
        os.pwrite(fd, b"Z", 5)
        assert os.pread(fd, 100, 0) == b"abc\0\0Z"
    finally:
        os.close(fd)
    assert path.read_bytes() == backend.get("cut") == b"abc\0\0Z"


# -- attributes ---------------------------------------------------------------------------------


def test_chmod_chown_and_times_survive_a_remount(backend: Backend, mount: Mount) -> None:
    path = mount.path / "attrs"
    path.write_bytes(b"x")
    os.chmod(path, 0o640)
    os.chown(path, 1234, 5678)
    os.utime(path, ns=(ATIME_NS, MTIME_NS))
    for _ in range(2):
        found = path.stat()
        assert stat.S_IMODE(found.st_mode) == 0o640
        assert (found.st_uid, found.st_gid) == (1234, 5678)
        assert (found.st_atime_ns, found.st_mtime_ns) == (ATIME_NS, MTIME_NS)
        mount.remount()
    stored = backend.metadata("attrs")
    assert (stored["mode"], stored["uid"], stored["gid"]) == (str(stat.S_IFREG | 0o640), "1234", "5678")
    assert (stored["atime"], stored["mtime"]) == ("1500000000.111222333", "1600000000.123456789")


def test_utimensat_now_and_omit(backend: Backend, mount: Mount) -> None:
    path = mount.path / "times"
    path.write_bytes(b"x")
    utimensat(path, ATIME_NS, MTIME_NS)
    utimensat(path, (0, UTIME_OMIT), MTIME_NS + 1)
    assert (path.stat().st_atime_ns, path.stat().st_mtime_ns) == (ATIME_NS, MTIME_NS + 1)
    before = time.time_ns()
    utimensat(path, (0, UTIME_NOW), (0, UTIME_OMIT))
    mount.remount()
    found = path.stat()
    assert found.st_mtime_ns == MTIME_NS + 1
    assert before - 1_000_000_000 <= found.st_atime_ns <= time.time_ns()


# -- special files, names, links --------------------------------------------------------------


def test_fifo_survives_a_remount(backend: Backend, mount: Mount) -> None:
    os.mkfifo(mount.path / "pipe", 0o640)
    mount.remount()
    found = os.lstat(mount.path / "pipe")
    assert stat.S_ISFIFO(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o640
    assert int(backend.metadata("pipe")["mode"]) == stat.S_IFIFO | 0o640


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK], ids=["char", "block"])
def test_device_numbers_are_kept_in_metadata(backend: Backend, mount: Mount, kind: int) -> None:
    device = os.makedev(259, 7)
    os.mknod(mount.path / "dev", kind | 0o600, device)
    assert os.lstat(mount.path / "dev").st_rdev == device
    mount.remount()
    found = os.lstat(mount.path / "dev")
    assert (stat.S_IFMT(found.st_mode), found.st_rdev) == (kind, device)
    assert backend.metadata("dev")["rdev"] == str(device)


def test_symlink_target_up_to_path_max(backend: Backend, mount: Mount) -> None:
    target = "/".join(["d" * 254] * 16)[: PATH_MAX - 1]
    os.symlink(target, mount.path / "long")
    assert os.readlink(mount.path / "long") == target
    mount.remount()
    assert os.readlink(mount.path / "long") == target
    assert backend.get("long") == target.encode()


@pytest.mark.parametrize(
    "operation",
    [
        lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY)),
        os.mkdir,
        os.stat,
        lambda p: os.symlink("t", p),
        lambda p: os.rename(p.parent / "short", p),
    ],
    ids=["create", "mkdir", "stat", "symlink", "rename"],
)
def test_a_name_over_255_bytes_is_enametoolong(mount: Mount, operation: Callable[[Path], None]) -> None:
    (mount.path / "short").write_bytes(b"")
    assert errno_of(lambda: operation(mount.path / ("é" * 128))) == errno.ENAMETOOLONG
    (mount.path / ("n" * 255)).write_bytes(b"255 bytes is fine")


def test_directory_nlink_counts_subdirectories(backend: Backend, mount: Mount) -> None:
    top = mount.path / "top"
    for sub in ("a", "b", "c"):
        (top / sub).mkdir(parents=True)
    (top / "file").write_bytes(b"")
    assert top.stat().st_nlink == 5
    assert (top / "a").stat().st_nlink == 2
    (top / "c").rmdir()
    assert top.stat().st_nlink == 4
    mount.remount()
    assert top.stat().st_nlink == 4
    assert mount.path.stat().st_nlink == 3


def test_link_is_eperm_with_one_log_line(mount: Mount) -> None:
    (mount.path / "a").write_bytes(b"a")
    assert errno_of(lambda: os.link(mount.path / "a", mount.path / "b")) == errno.EPERM
    assert not (mount.path / "b").exists()
    assert mount.log().count("hard link") == 1


# -- unlinked while open, mmap ----------------------------------------------------------------


def test_unlinked_file_stays_usable_through_its_handle(backend: Backend, mount: Mount) -> None:
    path = mount.path / "doomed"
    path.write_bytes(b"hello")
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        assert not path.exists()
        assert os.pread(fd, 100, 0) == b"hello"
        os.pwrite(fd, b"J", 0)
        os.pwrite(fd, b"!", 5)
        os.fsync(fd)
        assert os.pread(fd, 100, 0) == b"Jello!"
        assert os.fstat(fd).st_size == 6
    finally:
        os.close(fd)
    time.sleep(0.5)
    assert not path.exists()
    assert not backend.exists("doomed")


def test_mmap_writes_after_close_arrive(backend: Backend, mount: Mount) -> None:
    path = mount.path / "mapped"
    path.write_bytes(bytes(8192))
    fd = os.open(path, os.O_RDWR)
    mapping = mmap.mmap(fd, 8192)
    os.close(fd)
    mapping[4096:4101] = b"MMAP!"
    mapping.close()
    assert wait_for(lambda: backend.get("mapped")[4096:4101] == b"MMAP!")
    assert path.read_bytes() == bytes(4096) + b"MMAP!" + bytes(4091)


# -- rename ---------------------------------------------------------------------------------------


def test_rename_over_a_file_replaces_it(backend: Backend, mount: Mount) -> None:
    (mount.path / "new").write_bytes(b"new")
    (mount.path / "old").write_bytes(b"old")
    os.rename(mount.path / "new", mount.path / "old")
    assert (mount.path / "old").read_bytes() == backend.get("old") == b"new"
    assert not backend.exists("new")


def test_rename_over_an_empty_directory_replaces_it(backend: Backend, mount: Mount) -> None:
    (mount.path / "src" / "inner").mkdir(parents=True)
    (mount.path / "src" / "inner" / "f").write_bytes(b"f")
    (mount.path / "dst").mkdir()
    os.rename(mount.path / "src", mount.path / "dst")
    assert (mount.path / "dst" / "inner" / "f").read_bytes() == backend.get("dst/inner/f") == b"f"
    assert not (mount.path / "src").exists()


def test_rename_refusals(mount: Mount) -> None:
    (mount.path / "full" / "child").mkdir(parents=True)
    (mount.path / "dir").mkdir()
    assert errno_of(lambda: os.rename(mount.path / "dir", mount.path / "full")) == errno.ENOTEMPTY
    assert (
        errno_of(lambda: os.rename(mount.path / "full", mount.path / "full" / "child" / "x")) == errno.EINVAL
    )
    assert (mount.path / "dir").is_dir() and (mount.path / "full" / "child").is_dir()


# -- filesystem ---------------------------------------------------------------------------------


def test_statfs_figures_and_directory_fsync(mount: Mount) -> None:
    figures = os.statvfs(mount.path)
    assert figures.f_bsize == figures.f_frsize == 4096
    assert figures.f_blocks == figures.f_bfree == figures.f_bavail == 2**40 // 4096
    assert figures.f_files == figures.f_ffree == 2**32
    assert figures.f_namemax == 255
    (mount.path / "d").mkdir()
    fd = os.open(mount.path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
