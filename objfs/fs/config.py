"""The settings of one mount that shape the filesystem model (not how it is mounted)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FsConfig:
    """Defaults for objects that carry no POSIX metadata, timeouts, and where local state lives."""

    cache_dir: str
    prefix: str = ""
    uid: int = os.getuid()
    gid: int = os.getgid()
    umask: int = 0o022
    file_mode: int | None = None
    dir_mode: int | None = None
    attr_timeout: float = 1.0
    dir_timeout: float = 1.0
    exact_listing: bool = False
    max_parallel: int = 16
    metadata_delay: float = 0.2
    """How long a chmod/chown/utime waits for the next one, so `cp -p` costs one self-copy."""
    part_size: int = 8 * 1024 * 1024
    """The first parts' size; it doubles every 1,000 parts (see objfs.fs.upload.PartLayout)."""
    multipart_threshold: int = 16 * 1024 * 1024
    """A file growing past this is uploaded in parts while it is written; smaller ones in one PUT."""
    parts_in_flight: int = 4
    """Parts uploading at once, so a write's memory is bounded by this times the part size."""
    block_size: int = 4 * 1024 * 1024
    """The unit of reads and of the data cache: one ranged GET fetches one block."""
    read_ahead: int = 16 * 1024 * 1024
    """How far ahead of a sequential reader blocks are fetched."""
    read_strategy: str | None = None
    """`stream`: one streaming GET per sequential pass; `ranges`: parallel ranged GETs; None:
    `ranges` for a backend on local disk (a ranged read is a pread), `stream` for the others."""
    cache_size: int = 1024 * 1024 * 1024
    """Cap of the data cache on disk (blocks of objects read); 0 turns it off."""
    memory_cache: int = 32 * 1024 * 1024
    """Recent blocks kept in memory; read-ahead lands here, so keep it above `read_ahead`."""

    @property
    def default_file_mode(self) -> int:
        return self.file_mode if self.file_mode is not None else 0o666 & ~self.umask

    @property
    def default_dir_mode(self) -> int:
        return self.dir_mode if self.dir_mode is not None else 0o777 & ~self.umask

    @property
    def staging_dir(self) -> str:
        return os.path.join(self.cache_dir, "staging")

    @property
    def records_path(self) -> str:
        return os.path.join(self.cache_dir, "records.sqlite")

    @property
    def recovery_dir(self) -> str:
        """Where bytes of files open at a crash are set aside (never over the real key)."""
        return os.path.join(self.cache_dir, "recovered")

    @property
    def blocks_dir(self) -> str:
        return os.path.join(self.cache_dir, "data")

    @property
    def blobs_path(self) -> str:
        return os.path.join(self.cache_dir, "blobs.sqlite")

    @property
    def journal_path(self) -> str:
        return os.path.join(self.cache_dir, "journal.sqlite")
