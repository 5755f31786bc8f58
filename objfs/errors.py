"""Errors a user can fix, and the documented exit code each one gives."""

from __future__ import annotations

from .storage.base import BadConfiguration, NotFound, PermissionDenied, StorageError, Unavailable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_MOUNTPOINT = 3
EXIT_NOT_FOUND = 4
EXIT_ACCESS_DENIED = 5
EXIT_UNAVAILABLE = 6
EXIT_INTEGRITY = 7
EXIT_CONFLICT = 8

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure (the log has details)",
    EXIT_USAGE: "bad command line, option or configuration (unknown scheme, bad option value)",
    EXIT_MOUNTPOINT: "mountpoint problem: missing, not a directory, not empty, already mounted, busy",
    EXIT_NOT_FOUND: "the bucket, container or folder does not exist",
    EXIT_ACCESS_DENIED: "the credentials were rejected or lack permission",
    EXIT_UNAVAILABLE: "the endpoint did not answer",
    EXIT_INTEGRITY: "objfs verify: an object does not hold what its record says (or is missing)",
    EXIT_CONFLICT: "objfs store: the item changed since it was read (a conditional put lost)",
}


class UserError(Exception):
    """A mistake the user can fix: shown as one line, no traceback, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def from_storage_error(exc: StorageError) -> UserError:
    """The user-facing form of a storage error met before mounting."""
    codes: list[tuple[type[StorageError], int]] = [
        (BadConfiguration, EXIT_USAGE),
        (NotFound, EXIT_NOT_FOUND),
        (PermissionDenied, EXIT_ACCESS_DENIED),
        (Unavailable, EXIT_UNAVAILABLE),
    ]
    code = next((c for cls, c in codes if isinstance(exc, cls)), EXIT_FAILURE)
    return UserError(str(exc), code)
