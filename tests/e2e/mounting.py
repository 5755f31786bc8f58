"""Mounting for tests: `objfs mount` run as a user would, and always undone (unmounted, its
daemon stopped by PID) even when a test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from objfs.mountpoint import fusermount, mounted_type, pidfile_for

OBJFS = [sys.executable, "-m", "objfs"]
MOUNT_TIMEOUT = 60


def objfs(
    *args: str, env: dict[str, str] | None = None, timeout: float = MOUNT_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run the objfs command line as a user would, capturing what it prints."""
    return subprocess.run(
        [*OBJFS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Mount:
    """One mounted source; `remount()` unmounts and mounts again with the same cache directory."""

    source: str | None
    """A SOURCE URL, or None to mount what STORAGE_TYPE and its variables in `env` name."""
    path: Path
    cache_dir: Path
    env: dict[str, str]
    extra: list[str] = field(default_factory=list)
    last_output: str = ""

    def mount(self) -> None:
        source = [] if self.source is None else [self.source]
        result = objfs(
            "mount",
            *source,
            str(self.path),
            "--cache-dir",
            str(self.cache_dir),
            *self.extra,
            env=self.env,
        )
        self.last_output = result.stdout + result.stderr
        assert result.returncode == 0, f"mount failed ({result.returncode}): {result.stderr}\n{self.log()}"
        assert mounted_type(str(self.path)) == "fuse.objfs"

    def unmount(self) -> None:
        result = objfs("umount", str(self.path))
        assert result.returncode == 0, f"umount failed: {result.stderr}\n{self.log()}"
        assert mounted_type(str(self.path)) is None

    def remount(self) -> None:
        self.unmount()
        self.mount()

    def log(self) -> str:
        path = self.cache_dir / "objfs.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def force_cleanup(self) -> None:
        """Leave nothing behind whatever state the test ended in: unmount, then stop the daemon."""
        pid = daemon_pid(self.path)
        if mounted_type(str(self.path)) is not None and fusermount(str(self.path)).returncode != 0:
            fusermount(str(self.path), lazy=True)
        if pid is not None:
            _stop(pid)


def daemon_pid(mountpoint: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(Path(pidfile_for(str(mountpoint))).read_text().strip())
    return None


def _stop(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


@contextlib.contextmanager
def mounted(source: str | None, tmp_path: Path, env: dict[str, str], *extra: str) -> Iterator[Mount]:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir(parents=True, exist_ok=True)
    mount = Mount(source, mountpoint, tmp_path / "cache", env, list(extra))
    try:
        mount.mount()
        yield mount
        mount.unmount()
    finally:
        mount.force_cleanup()
