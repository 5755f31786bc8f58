"""Conflict copies: bytes owed to a key that changed meanwhile, stored beside it, never over it.

`report.txt.objfs-conflict-20261123T140312` holds what this host had staged for `report.txt`
when it found the object changed by someone else; the name says when, so `objfs gc` can find
old ones without any record.
"""

from __future__ import annotations

import calendar
import re
import time

SUFFIX = ".objfs-conflict-"
TIME_FORMAT = "%Y%m%dT%H%M%S"
_NAME = re.compile(re.escape(SUFFIX) + r"(\d{8}T\d{6})$")


def conflict_key(key: str, when: float | None = None) -> str:
    """The key a conflict copy of `key` is stored under (UTC, to the second)."""
    return f"{key}{SUFFIX}{time.strftime(TIME_FORMAT, time.gmtime(when))}"


def conflict_time(key: str) -> float | None:
    """When a conflict copy was made, from its name; None if `key` is not one."""
    match = _NAME.search(key)
    if match is None:
        return None
    return float(calendar.timegm(time.strptime(match.group(1), TIME_FORMAT)))
