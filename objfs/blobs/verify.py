"""Recompute objects' MD5 and compare it with what their blob records (or plain-MD5 etags) say.

This is the seed's integrity check in object-store terms: a record made when the object was
written holds the MD5 of the bytes sent, so a later difference is corruption or a change made
behind objfs's back, and either must be reported per object, not averaged away.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..cache.blobs import BlobRecords
from ..storage.base import MD5_CHUNK, NotFound, Storage

PLAIN_MD5_ETAG = re.compile(r"[0-9a-f]{32}")
OK, MISMATCH, MISSING, UNKNOWN = "ok", "mismatch", "missing", "unknown"


@dataclass(frozen=True)
class Verdict:
    key: str
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (MISMATCH, MISSING)


def verify_bucket(storage: Storage, records: BlobRecords, prefix: str) -> Iterator[Verdict]:
    """Every object under `prefix`, then every record whose object is gone."""
    recorded = {record.key: record.checksum for record in records.list(prefix)}
    for info in storage.iter_objects(prefix, delimiter=None):
        if info.key.endswith("/"):
            continue  # a directory marker holds nothing to check
        expected = recorded.pop(info.key, None) or md5_of_etag(info.etag)
        if expected is None:
            yield Verdict(info.key, UNKNOWN, "no record and no MD5 etag to compare with")
            continue
        yield compare(info.key, expected, lambda key=info.key: stream_md5(storage, key))
    for key in sorted(recorded):
        yield Verdict(key, MISSING, "recorded, but not in the bucket")


def compare(key: str, expected: str, compute: Callable[[], str]) -> Verdict:
    """Run `compute` (giving the base64 MD5 of what is stored now) and judge the result."""
    try:
        actual = compute()
    except NotFound:
        return Verdict(key, MISSING, "recorded, but not in the bucket")
    except OSError as exc:
        return Verdict(key, MISMATCH, f"cannot be read: {exc.strerror or exc}")
    if actual == expected:
        return Verdict(key, OK)
    return Verdict(key, MISMATCH, f"MD5 {actual}, recorded {expected}")


def stream_md5(storage: Storage, key: str) -> str:
    digest = hashlib.md5()
    for chunk in storage.read_stream(key):
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def file_md5(path: str) -> str:
    """The file's MD5 read in the seed's 5 MB chunks (through a mount: each chunk is a FUSE read)."""
    digest = hashlib.md5()
    with open(path, "rb") as source:
        for chunk in iter(lambda: source.read(MD5_CHUNK), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def md5_of_etag(etag: str) -> str | None:
    """A single-request S3-style etag is the hex MD5 of the bytes: usable when no record exists."""
    if not PLAIN_MD5_ETAG.fullmatch(etag):
        return None
    return base64.b64encode(bytes.fromhex(etag)).decode()
