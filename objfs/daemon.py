"""The mount process: check everything a user could get wrong, mount, serve, flush, unmount.

`objfs mount` without `--foreground` starts this same program again in the background and
waits on a pipe until it says the mount answers, or why it could not mount, so the command
returns only when the directory is usable and exits with the code of the real cause.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pyfuse3
import trio

from . import metrics
from .cli.options import MountSpec
from .cli.progress import FlushProgress
from .errors import EXIT_FAILURE, EXIT_MOUNTPOINT, EXIT_USAGE, UserError, from_storage_error
from .fs.config import FsConfig
from .fs.model import FileSystem
from .fuse.operations import Operations
from .mountpoint import check_mountpoint, pidfile_for
from .storage.base import StorageError
from .storage.registry import Location
from .storage.retrying import RetryingStorage

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
"""mallopt's parameter numbers, from glibc's malloc.h."""
LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc refuses a higher mapping threshold on 64-bit systems; buffers above it are mapped apart."""
BLOCKS_KEPT_FREE = 2
"""Blocks' worth of freed memory the heap keeps for reuse."""


class Readiness:
    """Tells whoever started the mount that it answers, or the one line saying why it failed."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def _send(self, line: str) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, line.encode() + b"\n")
            os.close(self._fd)
        self._fd = None

    def ready(self) -> None:
        self._send("ok")
        notify_systemd("READY=1", f"MAINPID={os.getpid()}")

    def failed(self, error: UserError) -> None:
        self._send(f"error {error.exit_code} {error}")


def prepare(spec: MountSpec) -> Location:
    """Every check that can fail for a user mistake, done before anything is mounted."""
    check_mountpoint(spec.mountpoint, nonempty=spec.nonempty)
    location = spec.location
    try:
        location.storage.check()
    except StorageError as exc:
        raise from_storage_error(exc) from None
    return Location(RetryingStorage(location.storage, deadline=spec.retry_deadline), location.prefix)


@contextlib.contextmanager
def cache_dir_lock(cache_dir: str) -> Iterator[None]:
    """One mount per cache directory: two would evict and reconcile each other's blocks."""
    os.makedirs(cache_dir, exist_ok=True)
    with open(os.path.join(cache_dir, "lock"), "w", encoding="ascii") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"cache directory {cache_dir} is in use by another objfs mount; "
                "give this one its own --cache-dir",
                EXIT_MOUNTPOINT,
            ) from None
        yield


def serve(location: Location, spec: MountSpec, readiness: Readiness) -> None:
    config = FsConfig(prefix=location.prefix, **spec.fs_settings)
    reuse_block_memory(config.block_size)
    with cache_dir_lock(config.cache_dir):
        fs = FileSystem(location.storage, config)
        metrics.track_dirty_bytes(fs.dirty_bytes)
        if spec.metrics_addr:
            serve_metrics(spec.metrics_addr)
        try:
            _mount_and_run(fs, spec.mountpoint, spec.fuse_options, readiness)
        finally:
            fs.close()
            location.storage.close()


def _mount_and_run(fs: FileSystem, mountpoint: str, fuse_options: set[str], readiness: Readiness) -> None:
    ops = Operations(fs, attr_timeout=fs.config.attr_timeout, entry_timeout=fs.config.dir_timeout)
    pid_path = pidfile_for(mountpoint)  # resolving the path once mounted would wait on this very process
    try:
        pyfuse3.init(ops, mountpoint, fuse_options)
    except RuntimeError as exc:
        raise UserError(f"cannot mount on {mountpoint}: {exc}", EXIT_MOUNTPOINT) from None
    with pidfile(pid_path):
        try:
            trio.run(_run, fs, mountpoint, readiness)
        finally:
            pyfuse3.close(unmount=True)


async def _run(fs: FileSystem, mountpoint: str, readiness: Readiness) -> None:
    shutdown = Shutdown(fs)
    async with trio.open_nursery() as nursery:
        await fs.start(nursery)
        nursery.start_soon(shutdown.on_signals)
        nursery.start_soon(_announce_when_answering, mountpoint, fs.config.block_size, readiness)
        await pyfuse3.main()
        if not shutdown.aborted:
            log.info("unmounted %s; storing pending changes", mountpoint)
            await fs.sync()
        nursery.cancel_scope.cancel()


class Shutdown:
    """SIGTERM or SIGINT: store every dirty file while still mounted, then unmount.

    Open files keep working while their data is stored. A second signal stops the flush and
    unmounts at once; what was not stored stays staged in the cache directory, journalled, and
    the next mount stores it (see objfs.fs.recovery).
    """

    def __init__(self, fs: FileSystem) -> None:
        self.fs = fs
        self.aborted = False

    async def on_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            first = await signals.__anext__()
            notify_systemd("STOPPING=1")
            log.info("%s: storing pending changes, then unmounting", signal.Signals(first).name)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._abort_on_second, signals, nursery.cancel_scope)
                if sys.stderr.isatty():
                    nursery.start_soon(self._show_progress)
                await self.fs.sync()
                nursery.cancel_scope.cancel()
            pyfuse3.terminate()

    async def _show_progress(self) -> None:
        """On a terminal (objfs -f, then Ctrl-C): what is left to store, once a second has passed."""
        progress = FlushProgress()
        try:
            while True:
                await trio.sleep(1)
                progress.show(self.fs.dirty_bytes())
        finally:
            progress.done()

    async def _abort_on_second(self, signals: AsyncIterator[int], flush: trio.CancelScope) -> None:
        second = await signals.__anext__()
        self.aborted = True
        log.warning(
            "%s again: unmounting without storing the rest; the next mount stores what is staged",
            signal.Signals(second).name,
        )
        flush.cancel()


def serve_metrics(address: str) -> None:
    try:
        metrics.serve(address)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot serve metrics on {address}: {exc}", EXIT_USAGE) from None
    log.info("metrics on http://%s/metrics", address)


def notify_systemd(*states: str) -> None:
    """Tell systemd about the service (sd_notify(3)): one datagram to $NOTIFY_SOCKET, if set.

    The protocol is a documented datagram of KEY=VALUE lines; Type=notify units wait for READY=1.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as channel:
            channel.connect(address)
            channel.sendall("\n".join(states).encode())
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", address, exc)


async def _announce_when_answering(mountpoint: str, read_ahead: int, readiness: Readiness) -> None:
    """The mount answers once a stat of its root is served by this process."""
    root = await trio.to_thread.run_sync(os.stat, mountpoint)
    widen_kernel_read_ahead(root.st_dev, read_ahead)
    log.info("mounted on %s", mountpoint)
    readiness.ready()


def widen_kernel_read_ahead(device: int, read_ahead: int) -> None:
    """Let the kernel keep many reads in flight for a sequential reader, not one 128 KiB read.

    FUSE caps a mount's kernel read-ahead at the 128 KiB default; only root may raise it (in
    sysfs). Raised to one block (4 MiB), a sequential read from the disk cache got about 35%
    faster; wider, the reads arrive too far out of order to be recognised as one stream.
    Without the permission, the default stays and nothing else changes.
    """
    setting = f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb"
    try:
        with open(setting, "w", encoding="ascii") as out:
            out.write(str(max(128, read_ahead // 1024)))
    except OSError as exc:
        log.debug("kernel read-ahead left at its default (%s): %s", setting, exc)


def reuse_block_memory(block_size: int) -> None:
    """Take blocks and parts from one heap that keeps freed ones for the next.

    Each block the daemon streams or reads from its disk cache, and each part it uploads, is a
    fresh buffer. By default glibc gives a buffer of this size a mapping of its own, and a
    fresh mapping is faulted in page by page: 1,024 page faults for a 4 MiB block, a fifth of
    the daemon's CPU on a cold read and a third on a warm one. At its highest the mapping
    threshold sends blocks and parts to the heap; one arena lets a buffer freed in one thread
    be reused by the next one allocated in another (per-thread arenas grew by some 40 MiB that
    way); the trim threshold keeps two blocks of free memory resident instead of returning
    them to the system and faulting them in again. Faults per 512 MiB went from 131,000 to
    about 12,000 reading and from 265,000 to about 50,000 writing. A libc without `mallopt`
    (musl) is left as it is.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, 1)
        libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, BLOCKS_KEPT_FREE * block_size)


@contextlib.contextmanager
def pidfile(path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii") as out:
        out.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def start_in_background(argv: list[str], log_file: str) -> int:
    """Run `objfs mount ... --foreground` detached; return once it reports, with its exit code."""
    read_end, write_end = os.pipe()
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    with open(log_file, "ab") as log_out:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "objfs",
                *argv,
                "--foreground",
                "--ready-fd",
                str(write_end),
                "--log-file",
                log_file,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_out,
            stderr=log_out,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end, "r") as reply:
        line = reply.readline().strip()
    if line == "ok":
        return 0
    status, _, rest = line.partition(" ")
    if status == "error":
        code, _, message = rest.partition(" ")
        raise UserError(message, int(code))
    raise UserError(f"the mount process exited before mounting; see {log_file}", EXIT_FAILURE)
