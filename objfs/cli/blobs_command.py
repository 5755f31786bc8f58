"""`objfs blobs`, `objfs verify` and `objfs gc`: the blob records of a bucket, shown, checked
against the objects, and what uploads left behind cleaned up.

Records live in the cache directory of the bucket's mounts (`--cache-dir`, or the default a
mount of the same SOURCE uses), so these commands see what this host wrote or verified.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

from ..blobs.gc import Sweep
from ..blobs.verify import Verdict, compare, file_md5, verify_bucket
from ..cache.blobs import BlobRecord, BlobRecords
from ..daemon import cache_dir_lock
from ..errors import EXIT_INTEGRITY, EXIT_USAGE, UserError, from_storage_error
from ..fs.config import FsConfig
from ..fs.xattrs import CHECKSUM
from ..storage.base import StorageError
from ..storage.registry import Location
from .options import default_cache_dir
from .sources import add_storage_arguments, location_name, open_source

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_blob_parsers(commands: argparse._SubParsersAction) -> None:
    blobs = commands.add_parser("blobs", help="list the blob records kept for a bucket")
    blobs.add_argument("source", help="the bucket, as objfs mount names it")
    blobs.add_argument("prefix", nargs="?", default="", help="only keys under this prefix")
    blobs.add_argument("--json", action="store_true", help="one JSON object per record")
    _common(blobs)
    verify = commands.add_parser("verify", help="recompute objects' MD5 and compare with their records")
    verify.add_argument("targets", nargs="+", metavar="SOURCE|PATH", help="a bucket URL, or files on a mount")
    _common(verify)
    gc = commands.add_parser("gc", help="find (and with --delete remove) what uploads left behind")
    gc.add_argument("source", help="the bucket, as objfs mount names it")
    gc.add_argument("--delete", action="store_true", help="remove what is found (default: only list it)")
    gc.add_argument("--all", action="store_true", help="every abandoned upload, not only this cache's")
    gc.add_argument("--older-than", type=_duration, default=_duration("1d"), help="age limit (default 1d)")
    _common(gc)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="the cache directory of the bucket's mounts (default: as mount)")
    add_storage_arguments(parser)


def _duration(text: str) -> float:
    """`90s`, `30m`, `12h`, `7d`, or plain seconds."""
    unit = DURATION_UNITS.get(text[-1:].lower())
    try:
        return float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 12h or 7d)") from None


def run_blob_command(args: argparse.Namespace) -> int:
    if args.command == "verify":
        return _verify(args)
    location = open_source(args, args.source)
    try:
        if args.command == "blobs":
            return _list_records(args, location)
        return _gc(args, location)
    except StorageError as exc:
        raise from_storage_error(exc) from None
    finally:
        location.storage.close()


def _cache_dir(args: argparse.Namespace, location: Location) -> str:
    return os.path.abspath(args.cache_dir or default_cache_dir(location_name(location)))


def _records(args: argparse.Namespace, location: Location) -> BlobRecords:
    return BlobRecords(FsConfig(cache_dir=_cache_dir(args, location)).blobs_path)


def _list_records(args: argparse.Namespace, location: Location) -> int:
    records = _records(args, location)
    try:
        found = records.list(_join(location.prefix, args.prefix))
    finally:
        records.close()
    for record in found:
        print(json.dumps(_as_json(record), sort_keys=True) if args.json else _as_row(record))
    return 0


def _as_json(record: BlobRecord) -> dict[str, object]:
    return {
        "key": record.key,
        "filename": record.filename,
        "content_type": record.content_type,
        "content_type_from": record.content_type_from,
        "metadata": record.metadata,
        "byte_size": record.size,
        "checksum": record.checksum,
        "created_at": _iso(record.created_at),
    }


def _as_row(record: BlobRecord) -> str:
    fields = (record.checksum, f"{record.size:>12}", _iso(record.created_at), record.content_type or "-")
    return "  ".join((*fields, record.key))


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")


def _verify(args: argparse.Namespace) -> int:
    failed = False
    for target in args.targets:
        for verdict in _verdicts(args, target):
            print(f"{verdict.status:8} {verdict.key}" + (f": {verdict.detail}" if verdict.detail else ""))
            failed |= verdict.failed
    return EXIT_INTEGRITY if failed else 0


def _verdicts(args: argparse.Namespace, target: str) -> list[Verdict]:
    """A URL is a whole bucket (prefix); anything else is a file, read through its mount."""
    if "://" not in target:
        return [_verify_file(target)]
    location = open_source(args, target)
    records = _records(args, location)
    try:
        return list(verify_bucket(location.storage, records, location.prefix))
    except StorageError as exc:
        raise from_storage_error(exc) from None
    finally:
        records.close()
        location.storage.close()


def _verify_file(path: str) -> Verdict:
    try:
        expected = os.getxattr(path, CHECKSUM).decode()
    except OSError as exc:
        raise UserError(f"{path}: no checksum to verify against ({exc.strerror})", EXIT_USAGE) from None
    return compare(path, expected, lambda: file_md5(path))


def _gc(args: argparse.Namespace, location: Location) -> int:
    cache_dir = _cache_dir(args, location)
    with cache_dir_lock(cache_dir):
        sweep = Sweep(location.storage, location.prefix, cache_dir)
        try:
            for leftover in sweep.leftovers(older_than=args.older_than, every_upload=args.all):
                if args.delete:
                    sweep.remove(leftover)
                verb = "removed" if args.delete else "found"
                print(f"{verb:8} {leftover.kind:9} {_age(leftover.age):>6}  {leftover.where}")
        finally:
            sweep.close()
    return 0


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _join(prefix: str, more: str) -> str:
    return "/".join(part for part in (prefix, more.strip("/")) if part)
