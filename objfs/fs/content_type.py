"""An object's content type: from its name where the name tells, else from its first bytes.

The name is cheap and what users expect (`report.pdf` is application/pdf even while empty); a
name without a known extension (`backup-2026`, `IMG_0001`) is identified by its magic numbers
with puremagic, a maintained pure-Python library, rather than a table of our own.
"""

from __future__ import annotations

import mimetypes

import puremagic

HEAD_BYTES = 8192
"""Enough for every signature puremagic knows (they sit at the very start of a file)."""
FROM_NAME, FROM_CONTENT = "name", "content"


def from_name(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]


def from_content(head: bytes) -> str | None:
    """The type the first bytes show, or None when they match no signature (plain text, say)."""
    if not head:
        return None
    try:
        kind = puremagic.from_string(head, mime=True)
    except (puremagic.PureError, ValueError):
        return None
    return kind or None
