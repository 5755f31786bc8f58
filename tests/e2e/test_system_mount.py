"""objfs as a system mount: systemd's notify protocol and clean stop, mount(8) and fstab through
mount.fuse.objfs, metrics over HTTP and through `objfs stats`, and logs free of secrets."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import OBJFS, mounted, objfs
from servers.process import free_port
from test_crash import wait_for

from objfs.mountpoint import fusermount, mounted_type

pytestmark = pytest.mark.fuse
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(60)
    yield listener
    listener.close()


def test_systemd_hears_ready_only_once_the_mount_answers_and_sigterm_stores_dirty_files(
    tmp_path: Path, bucket_dir: Path, notify_socket: socket.socket
) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    command = [*OBJFS, "mount", f"local://{bucket_dir}", str(mountpoint), "--foreground"]
    command += ["--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname()}
    daemon = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        message = notify_socket.recv(4096).decode()
        assert mounted_type(str(mountpoint)) == "fuse.objfs"  # mounted and answering before READY=1
        assert "READY=1" in message.splitlines() and f"MAINPID={daemon.pid}" in message

        writer = os.open(mountpoint / "dirty.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(writer, b"written, never closed")
        daemon.send_signal(signal.SIGTERM)
        assert notify_socket.recv(4096).decode() == "STOPPING=1"
        assert daemon.wait(timeout=60) == 0, daemon.stderr.read() if daemon.stderr else ""
        with contextlib.suppress(OSError):
            os.close(writer)
        assert mounted_type(str(mountpoint)) is None
        assert (bucket_dir / "dirty.txt").read_bytes() == b"written, never closed"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if mounted_type(str(mountpoint)) is not None:
            fusermount(str(mountpoint), lazy=True)


def test_unit_files_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(ROOT / "systemd" / "objfs@.service", units / "objfs@.service")
    shutil.copy(ROOT / "systemd" / "mnt-data.mount", units / "mnt-data.mount")
    (units / "objfs@data.service").symlink_to(units / "objfs@.service")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(units / "objfs@data.service"), str(units / "mnt-data.mount")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
    )
    problems = [line for line in result.stderr.splitlines() if "objfs" in line or "mnt-data" in line]
    assert result.returncode == 0 and not problems, result.stderr


def _mount8(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def unmounted_at_the_end(mountpoint: Path) -> Iterator[None]:
    try:
        yield
    finally:
        if mounted_type(str(mountpoint)) is not None:
            objfs("umount", str(mountpoint))
        if mounted_type(str(mountpoint)) is not None:
            fusermount(str(mountpoint), lazy=True)


def test_mount_t_fuse_objfs_with_options(tmp_path: Path, bucket_dir: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    (bucket_dir / "hello.txt").write_text("hi")
    options = f"allow_other,uid=1234,file_mode=0640,cache_dir={tmp_path / 'cache'}"
    with unmounted_at_the_end(mountpoint):
        result = _mount8("-t", "fuse.objfs", f"local://{bucket_dir}", str(mountpoint), "-o", options)
        assert result.returncode == 0, result.stderr
        info = (mountpoint / "hello.txt").stat()
        assert (info.st_uid, info.st_mode & 0o777) == (1234, 0o640)
        (mountpoint / "new.txt").write_text("through mount(8)")
        result = subprocess.run(["umount", str(mountpoint)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert wait_for((bucket_dir / "new.txt").exists)
    assert (bucket_dir / "new.txt").read_text() == "through mount(8)"


def test_mount_a_from_an_fstab(tmp_path: Path, bucket_dir: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(
        f"local://{bucket_dir} {mountpoint} fuse.objfs "
        f"_netdev,x-systemd.automount,nofail,cache_dir={tmp_path / 'cache'} 0 0\n"
    )
    with unmounted_at_the_end(mountpoint):
        result = _mount8("-a", "-T", str(fstab))
        assert result.returncode == 0, result.stderr
        (mountpoint / "via-fstab.txt").write_text("fstab")
        assert objfs("umount", str(mountpoint)).returncode == 0
    assert (bucket_dir / "via-fstab.txt").read_text() == "fstab"


def test_mount_fuse3_style_invocation_without_a_command(tmp_path: Path, bucket_dir: Path) -> None:
    """mount.fuse3 runs `objfs SOURCE MOUNTPOINT -o OPTIONS`, with no `mount` command word."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    with unmounted_at_the_end(mountpoint):
        result = objfs(f"local://{bucket_dir}", str(mountpoint), "-o", f"ro,cache_dir={tmp_path / 'cache'}")
        assert result.returncode == 0, result.stderr
        with pytest.raises(OSError):
            (mountpoint / "x").write_text("read-only")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def _sample(text: str, name: str) -> float:
    """One sample of the exposition format, `name{labels} value`; 0 when not yet exported."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return 0.0


def test_metrics_endpoint_and_stats_count_the_work_done(tmp_path: Path, bucket_dir: Path) -> None:
    port = free_port()
    with mounted(f"local://{bucket_dir}", tmp_path, {}, "--metrics-addr", f"127.0.0.1:{port}") as mount:
        writes = 'objfs_backend_requests_total{operation="write"}'
        before = _sample(_scrape(port), writes)
        for number in range(5):
            (mount.path / f"f{number}.txt").write_bytes(b"x" * 1000)
        text = _scrape(port)
        assert _sample(text, writes) == before + 5
        assert _sample(text, "objfs_uploaded_bytes_total") >= 5000
        assert _sample(text, 'objfs_fuse_requests_total{operation="create"}') >= 5
        assert "objfs_fuse_request_seconds_bucket" in text and "objfs_dirty_bytes" in text

        stats = objfs("stats", str(mount.path), "--json")
        assert stats.returncode == 0, stats.stderr
        figures = json.loads(stats.stdout)
        assert figures["objfs_backend_requests_total"]["operation=write"] == _sample(_scrape(port), writes)
        human = objfs("stats", str(mount.path))
        assert "objfs_backend_requests_total{operation=write} " in human.stdout


def test_a_debug_log_holds_no_secret(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    secrets = {"S3_ACCESS_KEY": "AKIAOBJFSLOGTESTKEY1", "S3_SECRET_KEY": "objfs-log-test-secret-value"}
    environment = {"S3_ENDPOINT": moto_endpoint, "S3_REGION": "us-east-1", **secrets}
    with mounted(f"s3://{s3_bucket}", tmp_path, environment, "--debug") as mount:
        (mount.path / "a.txt").write_text("logged operations")
        assert (mount.path / "a.txt").read_text() == "logged operations"
        assert (mount.path / "missing").exists() is False
        log = mount.log()
    assert "write" in log and "DEBUG" in log
    for value in secrets.values():
        assert value not in log


def test_umount_stores_files_still_open_before_unmounting(tmp_path: Path, bucket_dir: Path) -> None:
    with mounted(f"local://{bucket_dir}", tmp_path, {}) as mount:
        writer = os.open(mount.path / "open.txt", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(writer, b"still open at umount")
        started = time.monotonic()
        result = objfs("umount", str(mount.path))
        with contextlib.suppress(OSError):
            os.close(writer)
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 30
        assert (bucket_dir / "open.txt").read_bytes() == b"still open at umount"
        mount.mount()  # the context manager unmounts at the end


def test_entry_point_runs_as_mount8_would(tmp_path: Path, bucket_dir: Path) -> None:
    """The helper is found with mount(8)'s reset PATH, and `-f` (pretend) mounts nothing."""
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    helper = Path(sys.executable).with_name("mount.fuse.objfs")
    result = subprocess.run(
        [str(helper), f"local://{bucket_dir}", str(mountpoint), "-f", "-o", "rw"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert mounted_type(str(mountpoint)) is None
