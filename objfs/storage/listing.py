"""Delimiter listing over a plain key -> info map, for backends whose service cannot list itself."""

from __future__ import annotations

from collections.abc import Mapping

from .base import ListPage, ObjectInfo


def page_of_keys(
    objects: Mapping[str, ObjectInfo],
    prefix: str,
    delimiter: str | None,
    token: str | None,
    limit: int,
) -> ListPage:
    """Group keys under `prefix` as S3 does: sorted, sub-prefixes rolled up, `token` = last name returned.

    Objects and sub-prefixes share one ordering, so a page boundary never skips or repeats a name.
    """
    entries: dict[str, ObjectInfo | None] = {}
    for key, info in objects.items():
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            entries.setdefault(key[: cut + len(delimiter)], None)
        else:
            entries[key] = info
    names = sorted(n for n in entries if token is None or n > token)
    page = ListPage()
    for name in names[:limit]:
        info = entries[name]
        if info is None:
            page.prefixes.append(name)
        else:
            page.objects.append(info)
    if len(names) > limit:
        page.next_token = names[limit - 1]
    return page
