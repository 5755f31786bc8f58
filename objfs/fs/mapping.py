"""How paths become keys and POSIX attributes become object metadata.

Metadata uses s3fs's names and formats (`mode` in decimal with the file-type bits, `uid`,
`gid`, `mtime` and `atime` in seconds) so a bucket written by objfs mounts under s3fs with the
same attributes, and the reverse; rclone's fractional `mtime` reads the same way. s3fs keeps no
device numbers: `rdev` (decimal, as `st_rdev`) is objfs's own name, the one other S3 FUSE
tools use.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NAME_MAX = 255
DIR_CONTENT_TYPE = "application/x-directory"
NS = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS = re.compile(r"(-?)([0-9]+)(?:\.([0-9]*))?")
"""Decimal seconds with an optional fraction, as s3fs and rclone write `mtime`."""


def key_of(prefix: str, path: str) -> str:
    """The object key of the file at `path` (relative to the mount root, '' for the root)."""
    if not prefix:
        return path
    return f"{prefix}/{path}" if path else prefix


def dir_key(prefix: str, path: str) -> str:
    """The key prefix under which a directory's children live (and its marker's key)."""
    key = key_of(prefix, path)
    return f"{key}/" if key else ""


def child_path(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def name_problem(name: str) -> str | None:
    """Why `name` (one key segment) cannot be a file name, or None when it can."""
    if name in ("", ".", ".."):
        return f"segment {name!r} is not a file name"
    if "\0" in name:
        return "contains a NUL byte"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        return f"segment longer than {NAME_MAX} bytes"
    return None


@dataclass
class PosixMeta:
    """The POSIX attributes an object's user metadata can carry; None where it carries nothing."""

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None
    atime_ns: int | None = None
    rdev: int | None = None


def metadata_bytes(metadata: dict[str, str]) -> int:
    """User metadata's size as S3 counts it against its cap: the UTF-8 bytes of every name and value."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


def format_time(ns: int) -> str:
    """Whole seconds as s3fs writes them, with nanoseconds after a dot when there are any.

    The sign covers the whole value (-1.5 s is "-1.500000000"), as rclone and `parse_time` read it.
    """
    sign = "-" if ns < 0 else ""
    sec, frac = divmod(abs(ns), NS)
    return f"{sign}{sec}.{frac:09d}" if frac else f"{sign}{sec}"


def parse_time(text: str) -> int | None:
    """Seconds (s3fs), fractional seconds (rclone) or an ISO 8601 time, as nanoseconds."""
    text = text.strip()
    number = _SECONDS.fullmatch(text)
    if number:
        sign, sec, frac = number.groups()
        ns = int(sec) * NS + int(((frac or "") + "000000000")[:9])
        return -ns if sign else ns
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # a bucket is read from many hosts: no zone cannot mean this host's zone
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def decode_meta(metadata: dict[str, str] | None) -> PosixMeta:
    """Read POSIX attributes from user metadata; unparsable values count as absent."""
    md = {k.lower(): v for k, v in (metadata or {}).items()}
    mtime = md.get("mtime")
    atime = md.get("atime")
    return PosixMeta(
        mode=_parse_int(md.get("mode")),
        uid=_parse_int(md.get("uid")),
        gid=_parse_int(md.get("gid")),
        mtime_ns=parse_time(mtime) if mtime else None,
        atime_ns=parse_time(atime) if atime else None,
        rdev=_parse_int(md.get("rdev")),
    )


def encode_meta(meta: PosixMeta, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (the object's other user metadata) with the POSIX attributes written over it."""
    out = {k.lower(): v for k, v in (base or {}).items()}
    if meta.mode is not None:
        out["mode"] = str(meta.mode)
    if meta.uid is not None:
        out["uid"] = str(meta.uid)
    if meta.gid is not None:
        out["gid"] = str(meta.gid)
    if meta.mtime_ns is not None:
        out["mtime"] = format_time(meta.mtime_ns)
    if meta.atime_ns is not None:
        out["atime"] = format_time(meta.atime_ns)
    if meta.rdev:
        out["rdev"] = str(meta.rdev)
    return out


def is_dir_mode(mode: int | None) -> bool:
    return mode is not None and stat.S_ISDIR(mode)
