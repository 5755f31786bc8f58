"""`objfs` command line: mount and umount.

A user mistake prints one line, `objfs: <cause>`, and exits with the code documented in
the README (see `objfs.errors`); only a bug prints a traceback, and only to the log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import sys
import time

from .. import __version__
from ..daemon import Readiness, prepare, serve, start_in_background
from ..errors import EXIT_CODES, EXIT_FAILURE, EXIT_MOUNTPOINT, UserError
from ..metrics import STATS_ATTRIBUTE
from ..mountpoint import check_mountpoint, fusermount, mounted_type, pidfile_for
from .blobs_command import add_blob_parsers, run_blob_command
from .options import MountSpec, add_mount_arguments, mount_spec
from .progress import FlushProgress
from .store_command import add_store_parser, run_store

UMOUNT_WAIT_SECONDS = 300


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="objfs",
        description="Mount an object store bucket (or a prefix of one) as a directory.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"objfs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mount = commands.add_parser("mount", help="mount SOURCE on MOUNTPOINT")
    add_mount_arguments(mount)
    umount = commands.add_parser("umount", help="store pending changes and unmount")
    umount.add_argument("mountpoint")
    stats = commands.add_parser("stats", help="what a mount has done: requests, cache, bytes, dirty data")
    stats.add_argument("mountpoint")
    stats.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    add_blob_parsers(commands)
    add_store_parser(commands)
    return parser


def configure_logging(level: str, log_file: str | None) -> None:
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s objfs[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    # SDKs log request headers at DEBUG; only objfs's own loggers follow --log-level/--debug
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("objfs").setLevel(level)


def run_mount(args: argparse.Namespace, argv: list[str]) -> int:
    spec: MountSpec = mount_spec(args)
    if not args.foreground:
        spec.location.storage.close()  # the daemon opens its own
        check_mountpoint(spec.mountpoint, nonempty=spec.nonempty)  # here, so its messages reach the user
        log_file = args.log_file or os.path.join(str(spec.fs_settings["cache_dir"]), "objfs.log")
        return start_in_background(argv, log_file)
    configure_logging("DEBUG" if args.debug else args.log_level, args.log_file)
    readiness = Readiness(args.ready_fd)
    try:
        location = prepare(spec)
        serve(location, spec, readiness)
    except UserError as exc:
        readiness.failed(exc)
        raise
    return 0


def run_umount(mountpoint: str) -> int:
    """Ask the daemon to store every pending change and unmount (SIGTERM), and wait for it.

    Without a known daemon (its pidfile gone), unmount directly; the kernel then tells the
    daemon, which stores what is pending before it exits.
    """
    mountpoint = _objfs_mount(mountpoint)
    pid = _daemon_pid(mountpoint)
    if pid is None or not _signal(pid, signal.SIGTERM):
        result = fusermount(mountpoint)
        if result.returncode != 0:
            raise UserError(f"cannot unmount {mountpoint}: {result.stderr.strip()}", EXIT_MOUNTPOINT)
    if pid is not None:
        _wait_for_exit(pid, UmountProgress(mountpoint) if sys.stderr.isatty() else None)
    return 0


def _signal(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _daemon_pid(mountpoint: str) -> int | None:
    try:
        with open(pidfile_for(mountpoint), encoding="ascii") as source:
            return int(source.read().strip())
    except (OSError, ValueError):
        return None


class UmountProgress(FlushProgress):
    """Progress of a daemon's flush, read from its metrics through the mount while it lasts."""

    def __init__(self, mountpoint: str) -> None:
        super().__init__()
        self.mountpoint = mountpoint

    def tick(self) -> None:
        """The mount may go at any moment: then there is nothing left to show."""
        try:
            dirty = json.loads(os.getxattr(self.mountpoint, STATS_ATTRIBUTE)).get("objfs_dirty_bytes")
        except OSError:
            return
        if isinstance(dirty, int | float):
            self.show(dirty)


def _objfs_mount(mountpoint: str) -> str:
    """The absolute mountpoint, or a UserError when no objfs mount is there."""
    mountpoint = os.path.abspath(mountpoint)
    if mounted_type(mountpoint) != "fuse.objfs":
        raise UserError(f"{mountpoint} is not an objfs mount", EXIT_MOUNTPOINT)
    return mountpoint


def _wait_for_exit(pid: int, progress: UmountProgress | None) -> None:
    """Wait until the daemon has stored pending changes and exited (a pidfd, not a poll loop)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + UMOUNT_WAIT_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([pidfd], [], [], 1.0)
            if ready:
                return
            if progress is not None:
                progress.tick()
    finally:
        os.close(pidfd)
        if progress is not None:
            progress.done()
    waited = f"{UMOUNT_WAIT_SECONDS} s"
    raise UserError(f"the daemon (pid {pid}) is still storing changes after {waited}", EXIT_FAILURE)


def run_stats(mountpoint: str, as_json: bool) -> int:
    mountpoint = _objfs_mount(mountpoint)
    try:
        figures = json.loads(os.getxattr(mountpoint, STATS_ATTRIBUTE))
    except OSError as exc:
        message = f"cannot read the statistics of {mountpoint}: {exc.strerror}"
        raise UserError(message, EXIT_MOUNTPOINT) from None
    if as_json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0
    for name, value in sorted(figures.items()):
        if isinstance(value, dict):
            for labels, number in sorted(value.items()):
                print(f"{name}{{{labels}}} {_figure(number)}")
        else:
            print(f"{name} {_figure(value)}")
    return 0


def _figure(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) and not value.is_integer() else f"{int(value)}"


BLOB_COMMANDS = ("blobs", "verify", "gc")
COMMANDS = ("mount", "umount", "stats", "store", *BLOB_COMMANDS)
MOUNT8_FLAGS = {"-s": "sloppy", "-f": "fake", "-n": "no mtab", "-v": "verbose"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        argv = ["mount", *argv]  # `objfs SOURCE MOUNTPOINT -o ...`, as mount.fuse3 runs a FUSE program
    args = build_parser().parse_args(argv)
    try:
        if args.command == "mount":
            return run_mount(args, argv)
        if args.command == "stats":
            return run_stats(args.mountpoint, args.json)
        if args.command in BLOB_COMMANDS:
            return run_blob_command(args)
        if args.command == "store":
            return run_store(args)
        return run_umount(args.mountpoint)
    except UserError as exc:
        print(f"objfs: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def mount_helper() -> int:
    """`mount.fuse.objfs SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]`, as mount(8) runs it for type fuse.objfs.

    mount(8) passes its own flags before or after the options; they mean nothing to objfs except
    `-f` (pretend), which must mount nothing. The mount goes to the background, as mount(8) expects.
    """
    argv = [arg for arg in sys.argv[1:] if arg not in MOUNT8_FLAGS]
    if "-f" in sys.argv[1:]:
        return 0
    return main(["mount", *argv])


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
