"""Which items a search returns and in what order.

A field is a dotted path into the value (`profile.age`, `tags.0` for a list's first element),
or one of the item's own attributes: `$key`, `$namespace`, `$created_at`, `$updated_at`.

Filters: `{"status": "active"}` is equality; `{"age": {"$gte": 18, "$lt": 65}}` combines
operators (`$eq $ne $gt $gte $lt $lte $in`), all of which must hold. Equality is JSON's: `1`
equals `1.0` but not `true`. The order operators compare numbers with numbers and strings with
strings; any other pair, or a missing field, does not match (so `$ne` and nothing else matches
an item without the field).

Sorting: fields ascending, or descending with a leading `-` (`["-score", "name"]`), then
namespace and key. Values of different types order as missing < null < booleans < numbers <
strings < lists and objects. That makes the order total, so pages taken with `offset`/`limit`
over unchanged items never skip or repeat one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .items import Item

MISSING = object()
ATTRIBUTES: dict[str, Callable[[Item], Any]] = {
    "$key": lambda item: item.key,
    "$namespace": lambda item: list(item.namespace),
    "$created_at": lambda item: item.created_at,
    "$updated_at": lambda item: item.updated_at,
}

Sort = str | Sequence[str] | None


def field(item: Item, path: str) -> Any:
    """The value at `path`, or MISSING."""
    if path in ATTRIBUTES:
        return ATTRIBUTES[path](item)
    current: Any = item.value
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _kind(value: Any) -> int:
    """A type's place in the cross-type order; numbers and strings are the comparable kinds."""
    if value is MISSING:
        return 0
    if value is None:
        return 1
    if isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 3
    return 4 if isinstance(value, str) else 5


def equal(a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[name], b[name]) for name in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: _kind(a) in (3, 4) and _kind(a) == _kind(b) and compare(a, b)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": equal,
    "$ne": lambda a, b: not equal(a, b),
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
    "$in": lambda a, b: any(equal(a, candidate) for candidate in b),
}


def _is_operators(condition: Any) -> bool:
    return isinstance(condition, dict) and bool(condition) and all(str(k).startswith("$") for k in condition)


def check_filter(filter: object) -> dict[str, Any]:
    """The filter, checked once so a typo is a ValueError rather than a search that finds nothing."""
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise ValueError("filter must be a mapping of field to value or operators")
    for path, condition in filter.items():
        if not _is_operators(condition):
            continue
        for operator, operand in condition.items():
            if operator not in OPERATORS:
                known = " ".join(OPERATORS)
                raise ValueError(f"filter on {path!r}: unknown operator {operator} (known: {known})")
            if operator == "$in" and not isinstance(operand, list | tuple):
                raise ValueError(f"filter on {path!r}: $in needs a list")
    return dict(filter)


def _holds(value: Any, condition: Any) -> bool:
    if not _is_operators(condition):
        return equal(value, condition)
    return all(OPERATORS[operator](value, operand) for operator, operand in condition.items())


def text(item: Item) -> str:
    """What `query` searches: the key and the value's JSON text, field names included (as the
    seed matches its map's text), folded for a case-insensitive match."""
    return f"{item.key}\n{json.dumps(item.value, ensure_ascii=False, sort_keys=True)}".casefold()


def matches(item: Item, filter: Mapping[str, Any], query: str | None) -> bool:
    if query and query.strip() and query.casefold() not in text(item):
        return False
    return all(_holds(field(item, path), condition) for path, condition in filter.items())


def check_sort(sort: Sort) -> list[tuple[str, bool]]:
    """(field, descending) pairs from `"field"`, `"-field"` or a list of them."""
    if sort is None:
        return []
    fields = [sort] if isinstance(sort, str) else list(sort)
    if not all(isinstance(name, str) and name.lstrip("-") for name in fields):
        raise ValueError("sort must be field names, each with an optional leading '-' for descending")
    return [(name[1:], True) if name.startswith("-") else (name, False) for name in fields]


def _rank(value: Any) -> tuple[int, Any]:
    kind = _kind(value)
    if kind in (2, 3, 4):
        return kind, value
    return kind, json.dumps(value, sort_keys=True) if kind == 5 else 0


def ordered(items: list[Item], sort: list[tuple[str, bool]]) -> list[Item]:
    """Sorted by the fields, then namespace and key; Python's sort is stable in both directions,
    so sorting by the last field first and the first field last gives the combined order."""
    result = sorted(items, key=lambda item: (item.namespace, item.key))
    for path, descending in reversed(sort):
        result.sort(key=lambda item, path=path: _rank(field(item, path)), reverse=descending)
    return result
