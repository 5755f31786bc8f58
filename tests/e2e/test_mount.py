"""Everyday tools on a real mount of a local folder and of an S3 bucket (moto), checked from
both sides: what the tools see through the mount, and what lands in the bucket."""

from __future__ import annotations

import errno
import filecmp
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mounting import Mount, mounted


@dataclass
class BucketView:
    """The bucket seen without objfs: a folder on disk, or boto3 on the S3 server."""

    folder: Path | None = None
    client: Any = None
    bucket: str = ""
    prefix: str = ""

    def get(self, key: str) -> bytes:
        if self.folder is not None:
            return (self.folder / key).read_bytes()
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        if self.folder is not None:
            (self.folder / key).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / key).write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def keys(self) -> set[str]:
        if self.folder is not None:
            return {
                str(p.relative_to(self.folder))
                for p in self.folder.rglob("*")
                if p.is_file() and ".objfs" not in p.parts
            }
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        return {
            o["Key"][len(self.prefix) :]
            for page in pages
            for o in page.get("Contents", [])
            if not o["Key"].endswith("/")
        }


@pytest.fixture(params=["local", "s3"])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[Mount, BucketView]]:
    if request.param == "local":
        yield request.getfixturevalue("local_mount"), BucketView(folder=request.getfixturevalue("bucket_dir"))
    else:
        client = request.getfixturevalue("s3_client")
        bucket = request.getfixturevalue("s3_bucket")
        yield (
            request.getfixturevalue("s3_mount"),
            BucketView(client=client, bucket=bucket, prefix="some/prefix/"),
        )


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top level\n",
        "empty.bin": b"",
        "photos/2024/beach.jpg": os.urandom(300_000),
        "photos/2024/notes.txt": b"sunny\n" * 100,
        "photos/cover.png": os.urandom(2048),
        "docs/readme.md": b"# hello\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def run(*command: str, cwd: Path | None = None) -> None:
    subprocess.run(command, check=True, cwd=cwd, capture_output=True)


def test_cp_r_puts_every_file_in_the_bucket(setup: tuple[Mount, BucketView], tmp_path: Path) -> None:
    mount, bucket = setup
    source = tmp_path / "photos-src"
    files = make_tree(source)
    run("cp", "-r", f"{source}/.", str(mount.path / "copy"))
    assert bucket.keys() == {f"copy/{rel}" for rel in files}
    for rel, data in files.items():
        assert bucket.get(f"copy/{rel}") == data
        assert (mount.path / "copy" / rel).read_bytes() == data
    listing = subprocess.run(
        ["ls", "-l", str(mount.path / "copy/photos/2024")], capture_output=True, text=True, check=True
    )
    assert "300000" in listing.stdout and "600" in listing.stdout


def test_tar_round_trip(setup: tuple[Mount, BucketView], tmp_path: Path) -> None:
    mount, _ = setup
    source = tmp_path / "src"
    make_tree(source)
    (mount.path / "unpacked").mkdir()
    run("sh", "-c", f"tar cf - -C {source} . | tar xf - -C {mount.path / 'unpacked'}")
    run("tar", "cf", str(tmp_path / "back.tar"), "-C", str(mount.path / "unpacked"), ".")
    (tmp_path / "back").mkdir()
    run("tar", "xf", str(tmp_path / "back.tar"), "-C", str(tmp_path / "back"))
    comparison = filecmp.dircmp(source, tmp_path / "back")
    assert _identical(comparison)


def _identical(comparison: filecmp.dircmp) -> bool:
    if comparison.left_only or comparison.right_only or comparison.diff_files or comparison.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(
        comparison.left, comparison.right, comparison.common_files, shallow=False
    )
    return not mismatch and not errors and all(_identical(sub) for sub in comparison.subdirs.values())


def test_mv_file_and_directory(setup: tuple[Mount, BucketView], tmp_path: Path) -> None:
    mount, bucket = setup
    make_tree(tmp_path / "t")
    run("cp", "-r", str(tmp_path / "t"), str(mount.path / "tree"))
    run("mv", str(mount.path / "tree/top.txt"), str(mount.path / "tree/moved.txt"))
    run("mv", str(mount.path / "tree/photos"), str(mount.path / "pictures"))
    assert (mount.path / "tree/moved.txt").read_bytes() == b"top level\n"
    assert not (mount.path / "tree/top.txt").exists()
    assert sorted(os.listdir(mount.path / "pictures")) == ["2024", "cover.png"]
    assert bucket.keys() == {
        "tree/moved.txt",
        "tree/empty.bin",
        "tree/docs/readme.md",
        "pictures/2024/beach.jpg",
        "pictures/2024/notes.txt",
        "pictures/cover.png",
    }


def test_rm_r_removes_every_key(setup: tuple[Mount, BucketView], tmp_path: Path) -> None:
    mount, bucket = setup
    make_tree(tmp_path / "t")
    run("cp", "-r", str(tmp_path / "t"), str(mount.path / "tree"))
    run("rm", "-r", str(mount.path / "tree"))
    assert not (mount.path / "tree").exists()
    assert bucket.keys() == set()


def test_append_and_truncate(setup: tuple[Mount, BucketView]) -> None:
    mount, bucket = setup
    log = mount.path / "log.txt"
    run("sh", "-c", f"echo first > {log} && echo second >> {log}")
    assert bucket.get("log.txt") == b"first\nsecond\n"
    os.truncate(log, 5)
    assert bucket.get("log.txt") == b"first"
    os.truncate(log, 8)
    assert log.read_bytes() == b"first\0\0\0"
    assert bucket.get("log.txt") == b"first\0\0\0"
    with open(log, "r+b") as middle:
        middle.seek(2)
        middle.write(b"XY")
    assert bucket.get("log.txt") == b"fiXYt\0\0\0"


def test_sizes_mtimes_and_modes_survive_a_remount(setup: tuple[Mount, BucketView]) -> None:
    mount, _ = setup
    target = mount.path / "kept.txt"
    target.write_bytes(b"12345")
    os.utime(target, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    os.chmod(target, 0o640)
    (mount.path / "empty-dir").mkdir()
    os.symlink("kept.txt", mount.path / "link")
    mount.remount()
    info = os.stat(target)
    assert (info.st_size, stat.S_IMODE(info.st_mode)) == (5, 0o640)
    assert info.st_mtime_ns == 1_600_000_000_123_456_789
    assert os.readlink(mount.path / "link") == "kept.txt"
    assert (mount.path / "link").read_bytes() == b"12345"
    assert (mount.path / "empty-dir").is_dir()
    listing = subprocess.run(
        ["ls", "-l", "--time-style=+%s", str(mount.path)], capture_output=True, text=True, check=True
    )
    assert "-rw-r----- 1" in listing.stdout and " 5 1600000000 kept.txt" in listing.stdout


def test_objects_written_by_other_tools_are_readable(setup: tuple[Mount, BucketView]) -> None:
    mount, bucket = setup
    bucket.put("outside/deep/er/file.txt", b"written without objfs")
    assert (mount.path / "outside/deep/er/file.txt").read_bytes() == b"written without objfs"
    assert sorted(os.listdir(mount.path / "outside")) == ["deep"]
    assert (mount.path / "outside/deep").is_dir()


def test_files_written_through_the_mount_have_the_right_key_and_bytes(
    setup: tuple[Mount, BucketView],
) -> None:
    mount, bucket = setup
    data = os.urandom(3 * 1024 * 1024 + 17)
    (mount.path / "dir").mkdir()
    (mount.path / "dir/big.bin").write_bytes(data)
    assert bucket.get("dir/big.bin") == data
    assert "dir/big.bin" in bucket.keys()  # noqa: SIM118 - BucketView.keys is a listing, not a dict


def test_s3_object_metadata_uses_s3fs_names(s3_mount: Mount, s3_client: Any, s3_bucket: str) -> None:
    target = s3_mount.path / "meta.txt"
    target.write_bytes(b"m")
    os.chmod(target, 0o600)
    s3_mount.remount()
    head = s3_client.head_object(Bucket=s3_bucket, Key="some/prefix/meta.txt")
    assert head["ContentLength"] == 1
    assert head["Metadata"]["mode"] == str(stat.S_IFREG | 0o600)
    assert head["Metadata"]["uid"] == str(os.getuid())
    assert "mtime" in head["Metadata"]


def test_read_only_mount_with_default_owner_and_mode(tmp_path: Path, bucket_dir: Path) -> None:
    (bucket_dir / "given.txt").write_bytes(b"from elsewhere")
    options = "ro,uid=1234,gid=4321,file_mode=0604"
    with mounted(f"local://{bucket_dir}", tmp_path, {}, "-o", options) as mount:
        target = mount.path / "given.txt"
        assert target.read_bytes() == b"from elsewhere"
        info = os.stat(target)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 4321, 0o604)
        with pytest.raises(OSError) as refused:
            (mount.path / "new.txt").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS
    assert sorted(p.name for p in bucket_dir.iterdir() if p.name != ".objfs") == ["given.txt"]


def test_virtual_xattrs_are_readable_but_not_listed(setup: tuple[Mount, BucketView]) -> None:
    mount, bucket = setup
    target = mount.path / "report.csv"
    target.write_bytes(b"a,b\n1,2\n")
    assert os.getxattr(target, "user.objfs.content_type") == b"text/csv"
    assert os.getxattr(target, "user.objfs.etag")
    assert "report.csv" in os.getxattr(target, "user.objfs.url").decode()
    assert os.listxattr(target) == []
    with pytest.raises(OSError) as refused:
        os.setxattr(target, "user.objfs.etag", b"forged")
    assert refused.value.errno == errno.EPERM
    assert bucket.get("report.csv") == b"a,b\n1,2\n"


def test_a_large_file_goes_up_in_parts_and_reads_back(
    setup: tuple[Mount, BucketView], tmp_path: Path
) -> None:
    mount, bucket = setup
    data = os.urandom(20 * 1024 * 1024 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    run("cp", str(tmp_path / "big.bin"), str(mount.path / "big.bin"))
    assert bucket.get("big.bin") == data
    assert (mount.path / "big.bin").read_bytes() == data
    assert os.stat(mount.path / "big.bin").st_size == len(data)


def test_rewriting_a_file_keeps_metadata_other_tools_gave_its_object(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str, s3_env: dict[str, str], s3_client
) -> None:
    """An S3 listing carries no metadata, so objfs must ask before replacing it on `>`."""
    s3_client.put_object(Bucket=s3_bucket, Key="prefs.json", Body=b"{}", Metadata={"color": "blue"})
    with mounted(f"s3://{s3_bucket}", tmp_path, s3_env, "--endpoint", moto_endpoint) as mount:
        assert sorted(os.listdir(mount.path)) == ["prefs.json"]  # known from the listing only
        (mount.path / "prefs.json").write_text('{"theme": "dark"}\n')
    head = s3_client.head_object(Bucket=s3_bucket, Key="prefs.json")
    assert head["Metadata"]["color"] == "blue"
    assert s3_client.get_object(Bucket=s3_bucket, Key="prefs.json")["Body"].read() == b'{"theme": "dark"}\n'


def test_a_local_folder_is_read_from_itself_not_copied_into_the_cache(
    local_mount: Mount, bucket_dir: Path
) -> None:
    data = os.urandom(9 * 1024 * 1024)
    (bucket_dir / "big.bin").write_bytes(data)
    assert (local_mount.path / "big.bin").read_bytes() == data
    cached = [
        path for path in local_mount.cache_dir.rglob("*") if path.is_file() and path.stat().st_size > 1 << 20
    ]
    assert cached == []
