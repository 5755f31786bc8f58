"""Naming a bucket on the command line, the same way for every command that opens one.

`objfs mount`, `objfs store`, `objfs blobs`, `objfs verify` and `objfs gc` all take a SOURCE
URL (or none, for STORAGE_TYPE from the environment) and the same storage flags and files.
"""

from __future__ import annotations

import argparse
import os

from ..errors import from_storage_error
from ..storage.base import StorageError
from ..storage.registry import Location, open_location
from .settings_files import storage_base

STORAGE_FLAGS = (
    "endpoint",
    "region",
    "addressing_style",
    "profile",
    "ca_bundle",
    "proxy",
    "sse",
    "sse_kms_key_id",
    "storage_class",
)


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    storage = parser.add_argument_group("storage (secrets only from the environment or a 0600 file)")
    storage.add_argument("--endpoint", "--endpoint-url", dest="endpoint", help="the service's endpoint URL")
    storage.add_argument("--region", help="the bucket's region")
    storage.add_argument("--addressing-style", choices=["auto", "path", "virtual"], help="S3 URL style")
    storage.add_argument("--profile", help="an AWS profile name from ~/.aws/config (credentials stay there)")
    storage.add_argument("--ca-bundle", help="PEM file of certificate authorities to trust")
    storage.add_argument("--proxy", help="HTTP(S) proxy for requests to the service, e.g. http://proxy:3128")
    storage.add_argument("--sse", choices=["sse-s3", "sse-kms", "sse-c"], help="server-side encryption")
    storage.add_argument("--sse-kms-key-id", help="KMS key for --sse sse-kms")
    storage.add_argument("--storage-class", help="storage class of new objects, e.g. STANDARD_IA")
    storage.add_argument(
        "--config",
        "--env-file",
        dest="config",
        action="append",
        help="KEY=VALUE settings file (NAME means /etc/objfs/NAME.conf); may be repeated",
    )
    storage.add_argument("--credentials-file", help="KEY=VALUE file of secrets, mode 0600")


def storage_flags(args: argparse.Namespace) -> dict[str, str]:
    return {name: getattr(args, name) for name in STORAGE_FLAGS if getattr(args, name)}


def storage_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings files and the environment, merged by precedence (see settings_files)."""
    return storage_base(os.environ, args.config or [], args.credentials_file)


def open_source(args: argparse.Namespace, source: str | None) -> Location:
    """The bucket SOURCE names, opened (no request sent yet); a mistake is a UserError."""
    try:
        return open_location(source, storage_flags(args), storage_settings(args))
    except StorageError as exc:
        raise from_storage_error(exc) from None


def location_name(location: Location) -> str:
    """The bucket's name for `mount` and the cache directory, e.g. `s3://bucket/prefix`."""
    return f"{location.storage.describe()}/{location.prefix}".rstrip("/")
