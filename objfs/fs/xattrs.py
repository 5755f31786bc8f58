"""Read-only virtual extended attributes that expose an object's blob record.

They answer `getfattr -n user.objfs.etag FILE` but are never listed: `cp -a` and `rsync -X`
copy whatever `listxattr` names, and a presigned URL grants access, so it must never travel
with a copy by accident.
"""

from __future__ import annotations

import errno
import os

PREFIX = "user.objfs."
ETAG = PREFIX + "etag"
CHECKSUM = PREFIX + "checksum"
CONTENT_TYPE = PREFIX + "content_type"
URL = PREFIX + "url"
STATS = PREFIX + "stats"
"""On the mount's root only: the mount's metrics as JSON, which `objfs stats` prints."""
NAMES = (ETAG, CHECKSUM, CONTENT_TYPE, URL, STATS)


def is_virtual(name: str) -> bool:
    return name.startswith(PREFIX)


def no_such_attribute(name: str) -> OSError:
    return OSError(errno.ENODATA, f"{os.strerror(errno.ENODATA)}: {name}")


def read_only(name: str) -> OSError:
    return OSError(errno.EPERM, f"{name} is maintained by objfs and cannot be changed")
