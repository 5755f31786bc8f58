"""Checks and tools for the mountpoint itself: what is mounted there, and unmounting it."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import subprocess

from .errors import EXIT_MOUNTPOINT, UserError

log = logging.getLogger(__name__)


def mounted_type(mountpoint: str) -> str | None:
    """The filesystem type mounted exactly at `mountpoint` (e.g. 'fuse.objfs'), or None."""
    target = os.path.realpath(mountpoint)
    found = None
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) >= 3 and _unescape(fields[1]) == target:
                found = fields[2]
    return found


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def fusermount(mountpoint: str, *, lazy: bool = False) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        raise UserError("fusermount3 not found: install the fuse3 package", EXIT_MOUNTPOINT)
    args = [tool, "-u", *(["-z"] if lazy else []), mountpoint]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def check_mountpoint(mountpoint: str, *, nonempty: bool) -> None:
    """Refuse a mountpoint that would fail or hide files; clear a stale mount a dead daemon left."""
    try:
        os.stat(mountpoint)
    except FileNotFoundError:
        raise UserError(f"mountpoint {mountpoint} does not exist", EXIT_MOUNTPOINT) from None
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise UserError(f"mountpoint {mountpoint}: {exc.strerror}", EXIT_MOUNTPOINT) from None
        clear_stale_mount(mountpoint)
    if not os.path.isdir(mountpoint):
        raise UserError(f"mountpoint {mountpoint} is not a directory", EXIT_MOUNTPOINT)
    existing = mounted_type(mountpoint)
    if existing is not None:
        raise UserError(
            f"{mountpoint} is already a mountpoint ({existing}); unmount it first", EXIT_MOUNTPOINT
        )
    if not nonempty and os.listdir(mountpoint):
        raise UserError(
            f"mountpoint {mountpoint} is not empty; mounting would hide its files (use -o nonempty)",
            EXIT_MOUNTPOINT,
        )


def clear_stale_mount(mountpoint: str) -> None:
    """A killed daemon leaves 'Transport endpoint is not connected'; unmount it and go on."""
    log.warning("%s: stale mount from a daemon that is gone; unmounting it", mountpoint)
    print(f"objfs: {mountpoint} held a stale mount (its daemon is gone); cleaned it up")
    result = fusermount(mountpoint, lazy=True)
    if result.returncode != 0:
        raise UserError(f"cannot clear stale mount at {mountpoint}: {result.stderr.strip()}", EXIT_MOUNTPOINT)


def runtime_dir() -> str:
    if os.getuid() == 0:
        return "/run/objfs"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/objfs-{os.getuid()}"
    return os.path.join(base, "objfs") if "XDG_RUNTIME_DIR" in os.environ else base


def pidfile_for(mountpoint: str) -> str:
    """Where the daemon serving `mountpoint` writes its PID, so `objfs umount` can wait for it."""
    digest = hashlib.sha256(os.path.realpath(mountpoint).encode()).hexdigest()[:16]
    return os.path.join(runtime_dir(), f"{digest}.pid")
