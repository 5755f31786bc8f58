"""Mount options: long flags, their `-o name=value` twins, and what each layer receives.

`-o` options are parsed here, never handed to libfuse wholesale: those libfuse knows
(`allow_other`, `ro`, ...) go to `pyfuse3.init`, objfs's own (`uid=`, `umask=`, `nonempty`,
cache options) configure objfs, and mount(8)'s bookkeeping options are ignored.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import EXIT_USAGE, UserError
from ..storage.registry import Location
from .sources import add_storage_arguments, location_name, open_source

FUSE_FLAGS = {"allow_other", "allow_root", "default_permissions", "ro", "auto_unmount"}
FUSE_PASSTHROUGH = {"noatime", "nodev", "nosuid", "noexec", "dev", "suid", "exec", "atime", "sync", "dirsync"}
MOUNT8_ONLY = {"rw", "defaults", "auto", "noauto", "user", "nouser", "users", "nofail", "_netdev", "async"}


def _octal(text: str) -> int:
    return int(text, 8)


def _flag(_text: str) -> bool:
    return True


READ_STRATEGIES = ("stream", "ranges")


def _read_strategy(text: str) -> str:
    if text not in READ_STRATEGIES:
        raise ValueError(text)
    return text


SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from `512M`, `4G`, `1048576` or `2GiB` (binary units, as du and df print them)."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned[-1:] in SIZE_UNITS else (cleaned, "")
    try:
        value = float(number) * SIZE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 512M or 4G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a size cannot be negative: {text!r}")
    return int(value)


@dataclass(frozen=True)
class Option:
    """One mount option: its attribute name and how `-o name=value` text converts to it."""

    dest: str
    convert: Callable[[str], object]
    takes_value: bool = True


OPTIONS: dict[str, Option] = {
    "uid": Option("uid", int),
    "gid": Option("gid", int),
    "umask": Option("umask", _octal),
    "file_mode": Option("file_mode", _octal),
    "dir_mode": Option("dir_mode", _octal),
    "nonempty": Option("nonempty", _flag, takes_value=False),
    "cache_dir": Option("cache_dir", str),
    "attr_timeout": Option("attr_timeout", float),
    "dir_timeout": Option("dir_timeout", float),
    "exact_listing": Option("exact_listing", _flag, takes_value=False),
    "max_parallel": Option("max_parallel", int),
    "cache_size": Option("cache_size", parse_size),
    "read_ahead": Option("read_ahead", parse_size),
    "block_size": Option("block_size", parse_size),
    "read_strategy": Option("read_strategy", _read_strategy),
    "retry_deadline": Option("retry_deadline", float),
    "endpoint": Option("endpoint", str),
    "endpoint_url": Option("endpoint", str),
    "region": Option("region", str),
    "addressing_style": Option("addressing_style", str),
    "profile": Option("profile", str),
    "ca_bundle": Option("ca_bundle", str),
    "proxy": Option("proxy", str),
    "sse": Option("sse", str),
    "sse_kms_key_id": Option("sse_kms_key_id", str),
    "storage_class": Option("storage_class", str),
    "config": Option("config", lambda name: [name]),
    "credentials_file": Option("credentials_file", str),
    "metrics_addr": Option("metrics_addr", str),
    "allow_other": Option("allow_other", _flag, takes_value=False),
    "ro": Option("read_only", _flag, takes_value=False),
}


def add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        help="what to mount: local:///srv/bucket, s3://bucket/prefix, gs://bucket, azure://container, "
        "opendal+fs:///path, ... (default: STORAGE_TYPE and its variables from the environment or --config)",
    )
    parser.add_argument("mountpoint", help="an existing, empty directory")
    parser.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPT[,OPT...]",
        help="mount options as mount(8) passes them; each has a long-flag twin below",
    )
    add_storage_arguments(parser)
    attrs = parser.add_argument_group("attributes of objects without metadata")
    attrs.add_argument("--uid", type=int, help="owner (default: the mounting user)")
    attrs.add_argument("--gid", type=int, help="group (default: the mounting user's group)")
    attrs.add_argument("--umask", type=_octal, help="umask for default modes (octal, default 022)")
    attrs.add_argument("--file-mode", type=_octal, help="mode of files without a stored mode (octal)")
    attrs.add_argument("--dir-mode", type=_octal, help="mode of directories without a stored mode (octal)")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument("--allow-other", action="store_true", default=None, help="let other users in")
    behaviour.add_argument("--read-only", "--ro", action="store_true", default=None, help="mount read-only")
    behaviour.add_argument(
        "--nonempty",
        action="store_true",
        default=None,
        help="mount over a non-empty directory, hiding its files",
    )
    behaviour.add_argument("--cache-dir", help="local state: staging files and metadata records")
    behaviour.add_argument("--attr-timeout", type=float, help="seconds attributes are trusted (default 1)")
    behaviour.add_argument("--dir-timeout", type=float, help="seconds names are trusted (default 1)")
    behaviour.add_argument(
        "--exact-listing",
        action="store_true",
        default=None,
        help="HEAD objects whose listing lacks metadata (slower ls -l, exact modes)",
    )
    behaviour.add_argument("--max-parallel", type=int, help="concurrent storage requests (default 16)")
    behaviour.add_argument(
        "--cache-size", type=parse_size, help="cap of the disk data cache (default 1G; 0: off)"
    )
    behaviour.add_argument(
        "--read-ahead", type=parse_size, help="fetched ahead of sequential readers (default 16M)"
    )
    behaviour.add_argument(
        "--block-size", type=parse_size, help="unit of reads and of the cache (default 4M)"
    )
    behaviour.add_argument(
        "--retry-deadline",
        type=float,
        help="seconds a failing request is retried before the caller gets EIO (default 30)",
    )
    behaviour.add_argument(
        "--read-strategy",
        choices=READ_STRATEGIES,
        help="sequential readers: one streaming GET (stream, the default) or parallel ranged GETs "
        "(ranges, the default for a local folder)",
    )
    daemon = parser.add_argument_group("process")
    daemon.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground")
    daemon.add_argument("--log-file", help="log here (default: stderr, or cache-dir/objfs.log in background)")
    daemon.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    daemon.add_argument(
        "--debug", action="store_true", help="log every operation (same as --log-level DEBUG)"
    )
    daemon.add_argument(
        "--metrics-addr", metavar="HOST:PORT", help="serve Prometheus metrics there, e.g. 127.0.0.1:9464"
    )
    daemon.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)


@dataclass
class MountSpec:
    """Everything a mount needs, sorted by the layer that uses it."""

    location: Location
    """The bucket, opened (no request sent yet): `prepare` checks it before mounting."""
    mountpoint: str
    fs_settings: dict[str, object]
    fuse_options: set[str] = field(default_factory=set)
    nonempty: bool = False
    retry_deadline: float = 30.0
    metrics_addr: str | None = None


def apply_o_options(args: argparse.Namespace) -> set[str]:
    """Fold `-o` options into `args` (an explicit long flag wins); return the libfuse options."""
    fuse: set[str] = set()
    for group in args.options:
        for item in filter(None, (part.strip() for part in group.split(","))):
            name, has_value, value = item.partition("=")
            if name in MOUNT8_ONLY or name.startswith("x-"):
                continue
            if name in FUSE_PASSTHROUGH or name == "default_permissions":
                fuse.add(name)
                continue
            option = OPTIONS.get(name)
            if option is None or bool(has_value) != option.takes_value:
                raise UserError(f"unknown or malformed mount option {item!r}", EXIT_USAGE)
            try:
                converted = option.convert(value)
            except (ValueError, argparse.ArgumentTypeError):
                raise UserError(f"bad value in mount option {item!r}", EXIT_USAGE) from None
            if getattr(args, option.dest) is None:
                setattr(args, option.dest, converted)
    return fuse


def default_cache_dir(source: str) -> str:
    """One directory per source, so remounting the same bucket finds its records again."""
    base = (
        "/var/cache/objfs"
        if os.getuid() == 0
        else os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "objfs")
    )
    return os.path.join(base, hashlib.sha256(source.encode()).hexdigest()[:16])


def mount_spec(args: argparse.Namespace) -> MountSpec:
    fuse = apply_o_options(args)
    location = open_source(args, args.source)
    name = location_name(location)
    fuse |= {"default_permissions", "subtype=objfs", f"fsname={name.replace(',', '_')}"}
    if args.allow_other:
        fuse.add("allow_other")
    if args.read_only:
        fuse.add("ro")
    settings = {
        name: getattr(args, name)
        for name in (
            "uid",
            "gid",
            "umask",
            "file_mode",
            "dir_mode",
            "attr_timeout",
            "dir_timeout",
            "exact_listing",
            "max_parallel",
            "cache_size",
            "read_ahead",
            "block_size",
            "read_strategy",
        )
        if getattr(args, name) is not None
    }
    settings["cache_dir"] = os.path.abspath(args.cache_dir or default_cache_dir(name))
    return MountSpec(
        location,
        os.path.abspath(args.mountpoint),
        settings,
        fuse,
        bool(args.nonempty),
        args.retry_deadline if args.retry_deadline is not None else MountSpec.retry_deadline,
        args.metrics_addr,
    )
