"""`objfs` command line: mount and umount.

A user mistake prints one line, `objfs: <cause>`, and exits with the code documented in
the README (see `objfs.errors`); only a bug prints a traceback, and only to the log.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import sys

from .. import __version__
from ..daemon import Readiness, prepare, serve, start_in_background
from ..errors import EXIT_CODES, EXIT_FAILURE, EXIT_MOUNTPOINT, UserError
from ..mountpoint import check_mountpoint, fusermount, mounted_type, pidfile_for
from .options import MountSpec, add_mount_arguments, mount_spec

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
    return parser


def configure_logging(level: str, log_file: str | None) -> None:
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s objfs[%(process)d] %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("botocore").setLevel(max(logging.getLevelName(level), logging.WARNING))


def run_mount(args: argparse.Namespace, argv: list[str]) -> int:
    spec: MountSpec = mount_spec(args)
    if not args.foreground:
        check_mountpoint(spec.mountpoint, nonempty=spec.nonempty)  # here, so its messages reach the user
        log_file = args.log_file or os.path.join(str(spec.fs_settings["cache_dir"]), "objfs.log")
        return start_in_background(argv, log_file)
    configure_logging("DEBUG" if args.debug else args.log_level, args.log_file)
    readiness = Readiness(args.ready_fd)
    try:
        location = prepare(spec)
        serve(location, spec.mountpoint, spec.fs_settings, spec.fuse_options, readiness)
    except UserError as exc:
        readiness.failed(exc)
        raise
    return 0


def run_umount(mountpoint: str) -> int:
    mountpoint = os.path.abspath(mountpoint)
    if mounted_type(mountpoint) != "fuse.objfs":
        raise UserError(f"{mountpoint} is not an objfs mount", EXIT_MOUNTPOINT)
    pid = _daemon_pid(mountpoint)
    result = fusermount(mountpoint)
    if result.returncode != 0:
        raise UserError(f"cannot unmount {mountpoint}: {result.stderr.strip()}", EXIT_MOUNTPOINT)
    if pid is not None:
        _wait_for_exit(pid)
    return 0


def _daemon_pid(mountpoint: str) -> int | None:
    try:
        with open(pidfile_for(mountpoint), encoding="ascii") as source:
            return int(source.read().strip())
    except (OSError, ValueError):
        return None


def _wait_for_exit(pid: int) -> None:
    """Wait until the daemon has stored pending changes and exited (a pidfd, not a poll loop)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([pidfd], [], [], UMOUNT_WAIT_SECONDS)
    finally:
        os.close(pidfd)
    if not ready:
        raise UserError(f"unmounted, but the daemon (pid {pid}) is still storing changes", EXIT_FAILURE)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if args.command == "mount":
            return run_mount(args, argv)
        return run_umount(args.mountpoint)
    except UserError as exc:
        print(f"objfs: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
