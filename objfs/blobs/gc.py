"""What uploads leave behind, found and (on request) removed: the seed's unattached blobs in
object-store terms.

- multipart uploads this cache journalled and no mount finished (billed by the service until
  aborted), and with `every_upload` any upload under the prefix older than the age limit;
- staging files no journal entry refers to (a journalled one is owed to the bucket: never touched);
- bytes set aside in `recovered/` after a crash, and conflict copies in the bucket, once older
  than the age limit, since a person may still want them before then.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..cache.journal import Journal
from ..fs.config import FsConfig
from ..fs.conflicts import conflict_time
from ..storage.base import Storage

UPLOAD, STAGING, RECOVERED, CONFLICT = "upload", "staging", "recovered", "conflict"


@dataclass(frozen=True)
class Leftover:
    kind: str
    name: str
    """A key in the bucket, or a path in the cache directory."""
    age: float
    upload_id: str | None = None

    @property
    def where(self) -> str:
        return f"{self.name} (upload {self.upload_id})" if self.upload_id else self.name


class Sweep:
    """One bucket prefix and the cache directory of its mounts; the caller holds the cache lock."""

    def __init__(self, storage: Storage, prefix: str, cache_dir: str) -> None:
        self.storage = storage
        self.prefix = prefix
        self.config = FsConfig(cache_dir=cache_dir)
        self.journal = Journal(self.config.journal_path)

    def close(self) -> None:
        self.journal.close()

    def leftovers(self, *, older_than: float, every_upload: bool) -> list[Leftover]:
        cutoff = time.time() - older_than
        found = list(self._journalled_uploads())
        if every_upload:
            known = {leftover.upload_id for leftover in found}
            found += [u for u in self._uploads_before(cutoff) if u.upload_id not in known]
        found += self._orphaned_staging()
        found += [f for f in self._files(self.config.recovery_dir, RECOVERED) if f.age > older_than]
        found += self._conflict_copies_before(cutoff)
        return found

    def remove(self, leftover: Leftover) -> None:
        if leftover.kind == UPLOAD:
            self.storage.abort_multipart(leftover.name, leftover.upload_id or "")
            self.journal.upload_ended(leftover.upload_id or "")
        elif leftover.kind == CONFLICT:
            self.storage.delete(leftover.name)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover.name)

    def _journalled_uploads(self) -> Iterator[Leftover]:
        now = time.time()
        for key, upload_id, started in self.journal.unfinished_uploads():
            yield Leftover(UPLOAD, key, now - started, upload_id)

    def _uploads_before(self, cutoff: float) -> Iterator[Leftover]:
        now = time.time()
        for upload in self.storage.list_multipart(self.prefix):
            if upload.initiated < cutoff:
                yield Leftover(UPLOAD, upload.key, now - upload.initiated, upload.upload_id)

    def _orphaned_staging(self) -> list[Leftover]:
        owed = {os.path.realpath(staged.path) for staged in self.journal.staged_files()}
        staged = self._files(self.config.staging_dir, STAGING)
        return [leftover for leftover in staged if os.path.realpath(leftover.name) not in owed]

    @staticmethod
    def _files(folder: str, kind: str) -> list[Leftover]:
        now, found = time.time(), []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False):
                    found.append(Leftover(kind, entry.path, now - entry.stat(follow_symlinks=False).st_mtime))
        return found

    def _conflict_copies_before(self, cutoff: float) -> list[Leftover]:
        now, found = time.time(), []
        for info in self.storage.iter_objects(self.prefix, delimiter=None):
            made = conflict_time(info.key)
            if made is not None and made < cutoff:
                found.append(Leftover(CONFLICT, info.key, now - made))
        return found
