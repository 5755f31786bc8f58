"""Nothing acknowledged is lost: owed bytes stored safely after a failure or a crash.

A close that failed, or that a crash cut short, still owes its bytes to the bucket; they are
stored only over the object version they derive from, else beside it under a conflict name.
Bytes of files still open at a crash were never acknowledged: they are set aside locally,
never written over the real key. Multipart uploads a crash stranded are aborted.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from ..cache.journal import CLOSING, Journal, StagedFile
from ..storage.base import ObjectInfo, PreconditionFailed, Storage, StorageError, content_md5
from .conflicts import conflict_key
from .handles import Staging
from .upload import StreamingUpload

log = logging.getLogger(__name__)
Runner = Callable[..., Awaitable[Any]]
UploadTo = Callable[[str], StreamingUpload]
"""A new multipart upload of one file's bytes, with its metadata, to the key given."""


class ConflictStored(OSError):
    """Owed bytes went beside their object, which had changed: EIO, and where the bytes are."""

    def __init__(self, key: str, conflict_key: str) -> None:
        super().__init__(errno.EIO, f"{key} changed meanwhile; the written data is in {conflict_key}")
        self.conflict_key = conflict_key


def owed_conditions(base_etag: str | None) -> dict[str, Any]:
    """Owed bytes go only over the version they derive from, or, for a new file, where none is."""
    return {"if_match": base_etag} if base_etag else {"if_none_match": True}


def stored_beside(key: str, conflict: str) -> ConflictStored:
    """Say, once in the log and then to the writer, that owed bytes went beside a changed object."""
    log.warning(
        "%s changed in the bucket since these bytes were staged; they were stored as %s", key, conflict
    )
    return ConflictStored(key, conflict)


class Recovery:
    """What one cache directory's journal says is still owed, and how it is paid."""

    def __init__(
        self,
        storage: Storage,
        run: Runner,
        journal: Journal,
        recovery_dir: str,
        *,
        uploads: Callable[[dict[str, str], str | None], UploadTo],
        wants_parts: Callable[[int], bool],
    ) -> None:
        self.storage = storage
        self.run = run
        self.journal = journal
        self.recovery_dir = recovery_dir
        self.uploads = uploads
        """Given metadata and content type, how to start uploads of a file's bytes in parts."""
        self.wants_parts = wants_parts

    async def after_crash(self) -> None:
        """At mount: abort stranded uploads, store what closes owed, set aside open files."""
        await self._abort_unfinished_uploads()
        await self._recover_staged_files()

    async def put_owed(
        self,
        key: str,
        body: BinaryIO,
        md5: str,
        metadata: dict[str, str],
        content_type: str | None,
        base_etag: str | None,
    ) -> ObjectInfo:
        """Store bytes owed since a failure or a crash, but only over the version they derive from.

        If the object changed meanwhile (or appeared, for a new file), the bytes go beside it
        under a conflict name and ConflictStored says where: nothing is overwritten or lost.
        """
        try:
            return await self.run(
                self.storage.write,
                key,
                body,
                metadata=metadata,
                content_type=content_type,
                md5=md5,
                **owed_conditions(base_etag),
            )
        except PreconditionFailed:
            conflict = conflict_key(key)
            await self.run(
                self.storage.write, conflict, body, metadata=metadata, content_type=content_type, md5=md5
            )
            raise stored_beside(key, conflict) from None

    async def finish_owed_parts(
        self, upload_to: UploadTo, upload: StreamingUpload, staging: Staging
    ) -> ObjectInfo:
        """`put_owed` for a file sent in parts: complete only over the version the bytes derive
        from, else send them again beside it under a conflict name."""
        try:
            return await upload.finish(staging, owed_conditions(staging.base_etag))
        except PreconditionFailed:
            conflict = conflict_key(upload.key)
            await upload_to(conflict).finish(staging)
            raise stored_beside(upload.key, conflict) from None

    async def _recover_staged_files(self) -> None:
        """After a crash: upload what a close owed; set aside what was never closed."""
        for entry in self.journal.staged_files():
            if not os.path.exists(entry.path):
                self.journal.unstaged(entry.path)
            elif entry.state == CLOSING:
                await self._finish_owed_upload(entry)
            else:
                self._set_aside(entry)

    async def _finish_owed_upload(self, entry: StagedFile) -> None:
        staging = Staging(os.path.dirname(entry.path), entry.base_etag, path=entry.path)
        try:
            await self._store_owed(entry, staging)
            log.info("stored %s, whose close was cut short by a crash", entry.key)
        except ConflictStored:
            pass
        except StorageError as exc:
            log.error(
                "%s still owed to the bucket (kept in %s, retried next mount): %s", entry.key, entry.path, exc
            )
            return
        finally:
            staging.close()
        os.unlink(entry.path)
        self.journal.unstaged(entry.path)

    async def _store_owed(self, entry: StagedFile, staging: Staging) -> None:
        """In parts where a close would have used them, so no size limit of a single PUT applies."""
        if self.wants_parts(staging.size):
            upload_to = self.uploads(entry.metadata, entry.content_type)
            await self.finish_owed_parts(upload_to, upload_to(entry.key), staging)
            return
        with staging.open_for_upload() as body:
            md5 = await self.run(content_md5, body)
            await self.put_owed(entry.key, body, md5, entry.metadata, entry.content_type, entry.base_etag)

    def _set_aside(self, entry: StagedFile) -> None:
        """Bytes of a file open at the crash were never acknowledged: keep them, off the real key."""
        target = os.path.join(self.recovery_dir, f"{entry.key}.{time.strftime('%Y%m%dT%H%M%S')}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(entry.path, target)
        self.journal.unstaged(entry.path)
        log.warning(
            "%s was open when objfs stopped; its unsaved bytes are in %s (the object is unchanged)",
            entry.key,
            target,
        )

    async def _abort_unfinished_uploads(self) -> None:
        """Multipart uploads this cache started before a crash hold invisible parts: drop them."""
        for key, upload_id, _ in self.journal.unfinished_uploads():
            try:
                await self.run(self.storage.abort_multipart, key, upload_id)
            except StorageError as exc:
                log.warning("could not abort leftover upload %s of %s: %s", upload_id, key, exc)
                continue
            log.info("aborted upload %s of %s left by an earlier crash", upload_id, key)
            self.journal.upload_ended(upload_id)
