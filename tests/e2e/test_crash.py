"""A daemon killed with SIGKILL: the next mount clears the dead mount and keeps every byte."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from mounting import Mount, daemon_pid


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def kill_daemon(mount: Mount) -> None:
    pid = daemon_pid(mount.path)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists())


def test_sigkill_with_a_file_open_sets_its_bytes_aside(local_mount: Mount, bucket_dir: Path) -> None:
    (local_mount.path / "ledger.txt").write_bytes(b"closed and safe\n")
    writer = os.open(local_mount.path / "ledger.txt", os.O_WRONLY | os.O_APPEND)
    os.write(writer, b"never closed\n")
    kill_daemon(local_mount)
    with contextlib.suppress(OSError):
        os.close(writer)  # the mount is dead: ENOTCONN

    local_mount.mount()  # clears the stale mount, then recovers
    assert (local_mount.path / "ledger.txt").read_bytes() == b"closed and safe\n"
    assert (bucket_dir / "ledger.txt").read_bytes() == b"closed and safe\n"
    recovered = local_mount.cache_dir / "recovered"
    assert wait_for(lambda: any(recovered.glob("ledger.txt.*")))
    [aside] = recovered.glob("ledger.txt.*")
    assert aside.read_bytes() == b"closed and safe\nnever closed\n"
    assert "stale mount" in local_mount.last_output
