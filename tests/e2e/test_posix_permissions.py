"""Permission checks as another user sees them: the kernel enforces modes (objfs always mounts
with default_permissions) on a mount with allow_other, which every user can reach.

Each operation runs in a forked child that drops to another uid and reports its errno in its
exit status. CI runs as root, which may switch to any uid.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mounting import Mount
from test_posix_semantics import Backend, backend, errno_of

OWNER, OTHER = 4001, 4002
GROUP = 4000
__all__ = ["backend"]  # the parametrized local/S3 fixture, shared with the other POSIX tests


@pytest.fixture
def shared_mount(backend: Backend) -> Iterator[Mount]:
    """A mount with allow_other under a 0755 directory in /tmp (pytest's own are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="objfs-posix-", dir="/tmp"))
    try:
        base.chmod(0o755)
        with backend.mount(base, "-o", "allow_other") as mount:
            yield mount
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_user(uid: int, action: Callable[[], object]) -> int:
    """The errno `action` fails with when run as `uid` (0: it succeeded)."""
    pid = os.fork()
    if pid == 0:
        code = 255
        try:
            os.setgroups([])
            os.setgid(GROUP)
            os.setuid(uid)
            code = errno_of(action)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def owned_file(path: Path, mode: int, uid: int = OWNER) -> Path:
    path.write_bytes(b"secret")
    os.chmod(path, mode)
    os.chown(path, uid, GROUP)
    return path


def test_mount_passes_default_permissions(shared_mount: Mount) -> None:
    options = next(
        line.split()[3]
        for line in Path("/proc/mounts").read_text().splitlines()
        if str(shared_mount.path) in line
    )
    assert {"default_permissions", "allow_other"} <= set(options.split(","))


def test_a_0600_file_is_unreadable_by_another_user(shared_mount: Mount) -> None:
    secret = owned_file(shared_mount.path / "secret", 0o600)
    assert as_user(OTHER, secret.read_bytes) == errno.EACCES
    assert as_user(OWNER, secret.read_bytes) == 0


def test_a_0555_directory_refuses_create(shared_mount: Mount) -> None:
    locked = shared_mount.path / "locked"
    locked.mkdir(mode=0o555)
    os.chmod(locked, 0o555)
    assert as_user(OTHER, (locked / "new").touch) == errno.EACCES
    assert as_user(OTHER, (locked / "dir").mkdir) == errno.EACCES
    assert not (locked / "new").exists()


def test_the_sticky_bit_protects_other_users_files(shared_mount: Mount) -> None:
    shared = shared_mount.path / "shared"
    shared.mkdir()
    os.chmod(shared, stat.S_ISVTX | 0o777)
    mine = owned_file(shared / "mine", 0o666)
    assert as_user(OTHER, mine.unlink) == errno.EPERM
    assert as_user(OTHER, lambda: os.rename(mine, shared / "taken")) == errno.EPERM
    assert mine.read_bytes() == b"secret"
    assert as_user(OWNER, mine.unlink) == 0
    assert not mine.exists()


def test_chown_by_a_non_owner_is_eperm(shared_mount: Mount) -> None:
    theirs = owned_file(shared_mount.path / "theirs", 0o666)
    assert as_user(OTHER, lambda: os.chown(theirs, OTHER, -1)) == errno.EPERM
    assert as_user(OTHER, lambda: os.chmod(theirs, 0o777)) == errno.EPERM
    assert (theirs.stat().st_uid, stat.S_IMODE(theirs.stat().st_mode)) == (OWNER, 0o666)
