"""User mistakes: each gives one clear line on stderr, no traceback, the documented exit code,
and mounts nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import Mount, mounted, objfs
from servers.moto import start_moto

from objfs.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_MOUNTPOINT,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from objfs.mountpoint import mounted_type


@pytest.fixture
def mountpoint(tmp_path: Path) -> Path:
    path = tmp_path / "mnt"
    path.mkdir()
    return path


def assert_refused(result, code: int, *fragments: str, mountpoint: Path | None = None) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("objfs: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    if mountpoint is not None:
        assert mounted_type(str(mountpoint)) is None


def mount(source: str, mountpoint: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None):
    return objfs("mount", source, str(mountpoint), "--cache-dir", str(tmp_path / "cache"), *extra, env=env)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unknown_scheme(mountpoint: Path, tmp_path: Path) -> None:
    result = mount("ftp://bucket", mountpoint, tmp_path)
    assert_refused(result, EXIT_USAGE, "unknown storage scheme 'ftp'", mountpoint=mountpoint)


def test_malformed_mount_option(mountpoint: Path, tmp_path: Path, bucket_dir: Path) -> None:
    result = mount(f"local://{bucket_dir}", mountpoint, tmp_path, "-o", "uid=abc")
    assert_refused(result, EXIT_USAGE, "uid=abc", mountpoint=mountpoint)


def test_missing_mountpoint(tmp_path: Path, bucket_dir: Path) -> None:
    result = mount(f"local://{bucket_dir}", tmp_path / "nowhere", tmp_path)
    assert_refused(result, EXIT_MOUNTPOINT, "does not exist")


def test_non_empty_mountpoint_is_refused_unless_nonempty(
    mountpoint: Path, tmp_path: Path, bucket_dir: Path
) -> None:
    (mountpoint / "precious.txt").write_text("do not hide me")
    result = mount(f"local://{bucket_dir}", mountpoint, tmp_path)
    assert_refused(result, EXIT_MOUNTPOINT, "not empty", "-o nonempty", mountpoint=mountpoint)
    with mounted(f"local://{bucket_dir}", tmp_path, {}, "-o", "nonempty") as live:
        assert list(live.path.iterdir()) == []
    assert (mountpoint / "precious.txt").read_text() == "do not hide me"


def test_missing_local_folder(mountpoint: Path, tmp_path: Path) -> None:
    result = mount(f"local://{tmp_path / 'no-such-folder'}", mountpoint, tmp_path)
    assert_refused(result, EXIT_NOT_FOUND, "no-such-folder", mountpoint=mountpoint)


def test_missing_bucket(mountpoint: Path, tmp_path: Path, moto_endpoint: str, s3_env: dict[str, str]) -> None:
    result = mount("s3://no-such-bucket", mountpoint, tmp_path, "--endpoint-url", moto_endpoint, env=s3_env)
    assert_refused(result, EXIT_NOT_FOUND, "no-such-bucket", "does not exist", mountpoint=mountpoint)


def test_endpoint_that_does_not_answer(mountpoint: Path, tmp_path: Path, s3_env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = mount("s3://bucket", mountpoint, tmp_path, "--endpoint-url", endpoint, env=s3_env)
    assert_refused(result, EXIT_UNAVAILABLE, "cannot reach", endpoint, mountpoint=mountpoint)


@pytest.fixture
def auth_endpoint() -> Iterator[str]:
    server = start_moto(auth=True)
    try:
        yield server.endpoint
    finally:
        server.stop()


def test_wrong_credentials(
    mountpoint: Path, tmp_path: Path, auth_endpoint: str, s3_env: dict[str, str]
) -> None:
    env = {**s3_env, "AWS_ACCESS_KEY_ID": "AKIAWRONGKEY", "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    result = mount("s3://bucket", mountpoint, tmp_path, "--endpoint-url", auth_endpoint, env=env)
    assert_refused(result, EXIT_ACCESS_DENIED, "credentials were rejected", mountpoint=mountpoint)
    assert "wrong-secret-value" not in result.stderr


def test_mountpoint_with_a_live_mount(local_mount: Mount, tmp_path: Path, bucket_dir: Path) -> None:
    result = objfs(
        "mount", f"local://{bucket_dir}", str(local_mount.path), "--cache-dir", str(tmp_path / "c2")
    )
    assert_refused(result, EXIT_MOUNTPOINT, "already a mountpoint")
    assert mounted_type(str(local_mount.path)) == "fuse.objfs"


def test_umount_of_something_not_mounted(mountpoint: Path) -> None:
    assert_refused(objfs("umount", str(mountpoint)), EXIT_MOUNTPOINT, "is not an objfs mount")


def test_version_and_help() -> None:
    assert objfs("--version").stdout.startswith("objfs ")
    help_text = objfs("--help").stdout
    assert "mount" in help_text and "exit codes" in help_text


def test_a_cache_directory_serves_one_mount(local_mount: Mount, tmp_path: Path, bucket_dir: Path) -> None:
    other = tmp_path / "other-mnt"
    other.mkdir()
    result = objfs("mount", f"local://{bucket_dir}", str(other), "--cache-dir", str(local_mount.cache_dir))
    assert_refused(result, EXIT_MOUNTPOINT, "in use by another objfs mount", mountpoint=other)


def test_bad_size_option(mountpoint: Path, tmp_path: Path, bucket_dir: Path) -> None:
    result = mount(f"local://{bucket_dir}", mountpoint, tmp_path, "-o", "cache_size=lots")
    assert_refused(result, EXIT_USAGE, "cache_size=lots", mountpoint=mountpoint)
