"""Extended attributes: the user's own `user.*`, stored as s3fs stores them, and read-only
virtual ones that expose an object's blob record.

User attributes live in one user-metadata entry, `xattr`, holding what s3fs writes there: the
JSON object `{"name":"base64(value)",...}` percent-encoded (every byte but letters, digits and
`/.-_~` as `%XX`), so a bucket moves between s3fs and objfs with its attributes. They count
against the backend's metadata cap together with mode, owner and times.

The virtual `user.objfs.*` attributes answer `getfattr -n user.objfs.etag FILE` but are never
listed: `cp -a` and `rsync -X` copy whatever `listxattr` names, and a presigned URL grants
access, so it must never travel with a copy by accident.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import logging
import os
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)
PREFIX = "user.objfs."
ETAG = PREFIX + "etag"
CHECKSUM = PREFIX + "checksum"
CONTENT_TYPE = PREFIX + "content_type"
URL = PREFIX + "url"
STATS = PREFIX + "stats"
"""On the mount's root only: the mount's metrics as JSON, which `objfs stats` prints."""
NAMES = (ETAG, CHECKSUM, CONTENT_TYPE, URL, STATS)
META_NAME = "xattr"
"""s3fs's user-metadata name for all of an object's extended attributes."""
USER = "user."
_S3FS_SAFE = "/.-_~"
"""What s3fs's urlEncode leaves as it is, besides ASCII letters and digits."""


def is_virtual(name: str) -> bool:
    return name.startswith(PREFIX)


def is_user(name: str) -> bool:
    return name.startswith(USER) and not is_virtual(name)


def no_such_attribute(name: str) -> OSError:
    return OSError(errno.ENODATA, f"{os.strerror(errno.ENODATA)}: {name}")


def read_only(name: str) -> OSError:
    return OSError(errno.EPERM, f"{name} is maintained by objfs and cannot be changed")


def check_settable(name: str) -> None:
    """Only `user.*` is stored; other namespaces (trusted, security, system) need the kernel's
    or an ACL's semantics an object cannot give, so `cp -a` is told they are unsupported."""
    if is_virtual(name):
        raise read_only(name)
    if not name.startswith(USER):
        raise OSError(errno.ENOTSUP, f"{os.strerror(errno.ENOTSUP)}: only user.* attributes are stored")


def decode(encoded: str | None) -> dict[str, bytes]:
    """The attributes in an `xattr` metadata value; an unreadable value counts as none, logged."""
    if not encoded:
        return {}
    try:
        values = json.loads(unquote(encoded))
        return {str(name): base64.b64decode(value, validate=True) for name, value in values.items()}
    except (ValueError, AttributeError, binascii.Error) as exc:
        log.warning("ignoring unreadable extended attributes %r: %s", encoded[:80], exc)
        return {}


def encode(values: dict[str, bytes]) -> str:
    """s3fs's form: names as they are, values in base64, the JSON text percent-encoded."""
    pairs = ",".join(
        f'{json.dumps(name, ensure_ascii=False)}:"{base64.b64encode(value).decode()}"'
        for name, value in sorted(values.items())
    )
    return quote("{" + pairs + "}", safe=_S3FS_SAFE)


def with_values(metadata: dict[str, str], values: dict[str, bytes]) -> dict[str, str]:
    """`metadata` carrying `values` as its attributes (no `xattr` entry when there are none)."""
    rest = {name: value for name, value in metadata.items() if name != META_NAME}
    return {**rest, META_NAME: encode(values)} if values else rest
