"""Open files: the staging file that collects writes until they are uploaded, and file handles.

Object stores replace whole objects, so a file being written lives in a local staging file
(in the cache directory, never in memory) and is uploaded as one object on flush, fsync and
close. Several handles of one file share one staging file, so they see each other's writes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from .reader import ReadState


class Staging:
    """A local copy of one file's bytes; `dirty` while it holds changes not yet in the bucket."""

    def __init__(self, directory: str, base_etag: str | None = None, *, path: str | None = None) -> None:
        """A new, empty staging file in `directory`, or the one at `path` an earlier run left."""
        if path is None:
            os.makedirs(directory, exist_ok=True)
            self._fd, self.path = tempfile.mkstemp(prefix="staged-", dir=directory)
        else:
            self._fd, self.path = os.open(path, os.O_RDWR), path
        self.dirty = False
        self.base_etag = base_etag
        """The object version these bytes derive from (None: a new file); a retry requires it."""
        self.failed = False
        """An upload of these bytes failed, so the next one is conditional on `base_etag`."""

    @property
    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def write(self, offset: int, data: bytes) -> int:
        written = os.pwrite(self._fd, data, offset)
        self.dirty = True
        return written

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self.dirty = True

    def fill_from(self, chunks: Iterable[bytes]) -> None:
        """Load the object's current bytes before the first write; does not make it dirty."""
        offset = 0
        for chunk in chunks:
            offset += os.pwrite(self._fd, chunk, offset)

    def head(self, size: int) -> bytes:
        """The first bytes, to identify the content type of a file whose name does not tell."""
        return os.pread(self._fd, size, 0)

    def open_for_upload(self) -> BinaryIO:
        """An independent reader at offset 0, so an upload never races the writers' offsets."""
        return open(self.path, "rb")

    def close(self) -> None:
        os.close(self._fd)

    def discard(self) -> None:
        self.close()
        os.unlink(self.path)


@dataclass
class Handle:
    """One `open()` of a file."""

    fh: int
    ino: int
    writable: bool
    append: bool = False
    md5: str | None = None
    """The object's MD5 as known when the file was opened, to check a whole read against."""
    reading: ReadState = field(default_factory=ReadState)
