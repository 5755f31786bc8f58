"""`objfs store put|get|delete|search|namespaces|size|clear SOURCE ...`: the item store for scripts.

JSON in (a value as an argument, or `-` for stdin; filters as JSON) and JSON out on stdout, one
document per command. A NAMESPACE is `users/u1` (segments split on `/`, '' for the root) or a JSON
array (`'["a/b", "c"]'`) when a segment holds a `/`. Mistakes are one line on stderr with the
exit code of `objfs.errors`; a missing item is exit code 4, a conflicting conditional put 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..errors import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE, UserError, from_storage_error
from ..storage.base import StorageError
from ..store import Store, StoreConflict
from .sources import add_storage_arguments, open_source


def add_store_parser(commands: argparse._SubParsersAction) -> None:
    store = commands.add_parser("store", help="put, get and search JSON items kept as files in a bucket")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    put = _action(actions, "put", "insert or update an item; prints it with its new etag")
    _item_arguments(put)
    put.add_argument("value", help="the value, a JSON object, or - to read it from stdin")
    put.add_argument("--if-match", metavar="ETAG", help="write only over this version of the item")
    put.add_argument(
        "--conflict",
        choices=["overwrite", "error"],
        default="overwrite",
        help="error: fail if another writer changes the item during this put (default: last write wins)",
    )
    _item_arguments(_action(actions, "get", "print an item (exit code 4 if there is none)"))
    _item_arguments(_action(actions, "delete", 'delete an item; prints {"deleted": true|false}'))
    search = _action(actions, "search", 'print {"items": [...], "total": N}')
    search.add_argument("namespace", nargs="?", default="", help="namespace prefix (default: all)")
    search.add_argument("--filter", type=_json_object, help='e.g. \'{"age": {"$gte": 18}}\'')
    search.add_argument("--query", help="case-insensitive text in the key or the value")
    search.add_argument("--sort", action="append", help="a field; --sort=-field for descending; repeatable")
    _window(search, 10)
    namespaces = _action(actions, "namespaces", "print the namespaces that hold items, as JSON arrays")
    namespaces.add_argument("--prefix", default="", help="only namespaces starting with these segments")
    namespaces.add_argument("--suffix", default="", help="only namespaces ending with these segments")
    namespaces.add_argument("--max-depth", type=int, help="cut namespaces to this many segments")
    _window(namespaces, 100)
    _action(actions, "size", "print the number of items")
    clear = _action(actions, "clear", "delete every item (irreversible; needs --yes)")
    clear.add_argument("--yes", action="store_true", help="yes, delete every item under SOURCE")


def _action(actions: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=text, description=text)
    parser.add_argument("source", help="the bucket and prefix, e.g. s3://bucket/items")
    parser.add_argument("--cache-dir", help="where the search index lives (default: the source's cache)")
    add_storage_arguments(parser)
    return parser


def _item_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("namespace", help="e.g. users/u1, or a JSON array of segments; '' for the root")
    parser.add_argument("key")


def _window(parser: argparse.ArgumentParser, limit: int) -> None:
    parser.add_argument("--offset", type=int, default=0, help="skip this many results")
    parser.add_argument("--limit", type=int, default=limit, help=f"at most this many (default {limit})")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def namespace_of(text: str) -> list[str]:
    """`a/b` is ["a", "b"], '' is the root, and a JSON array says segments that hold a `/`."""
    if text.startswith("["):
        try:
            segments = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"namespace {text!r} is not a JSON array: {exc}") from None
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise UserError(f"namespace {text!r} must be a JSON array of strings")
        return segments
    return text.split("/") if text else []


def _value(text: str) -> dict[str, Any]:
    source = sys.stdin.read() if text == "-" else text
    try:
        return _json_object(source)
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"the value is {exc}") from None


# -- the actions --------------------------------------------------------------------------------


def _put(store: Store, args: argparse.Namespace) -> Any:
    item = store.put_item(
        namespace_of(args.namespace),
        args.key,
        _value(args.value),
        if_match=args.if_match,
        conflict=args.conflict,
    )
    return item.to_json()


def _get(store: Store, args: argparse.Namespace) -> Any:
    item = store.get_item(namespace_of(args.namespace), args.key)
    if item is None:
        raise UserError(f"no item {args.key!r} in namespace {args.namespace!r}", EXIT_NOT_FOUND)
    return item.to_json()


def _delete(store: Store, args: argparse.Namespace) -> Any:
    return {"deleted": store.delete_item(namespace_of(args.namespace), args.key)}


def _search(store: Store, args: argparse.Namespace) -> Any:
    result = store.search_items(
        namespace_of(args.namespace),
        filter=args.filter,
        query=args.query,
        sort=args.sort,
        offset=args.offset,
        limit=args.limit,
    )
    return {"items": [item.to_json() for item in result.items], "total": result.total}


def _namespaces(store: Store, args: argparse.Namespace) -> Any:
    found = store.list_namespaces(
        namespace_of(args.prefix), namespace_of(args.suffix), args.max_depth, args.offset, args.limit
    )
    return [list(namespace) for namespace in found]


def _clear(store: Store, args: argparse.Namespace) -> Any:
    if not args.yes:
        raise UserError(f"clear deletes every item under {args.source}: add --yes to do it")
    return {"deleted": store.clear()}


ACTIONS: dict[str, Callable[[Store, argparse.Namespace], Any]] = {
    "put": _put,
    "get": _get,
    "delete": _delete,
    "search": _search,
    "namespaces": _namespaces,
    "size": lambda store, args: store.size(),
    "clear": _clear,
}


def run_store(args: argparse.Namespace) -> int:
    """Run one action and print its JSON; every failure a user can act on is a UserError."""
    location = open_source(args, args.source)
    try:
        with Store(location.storage, location.prefix, args.cache_dir) as store:
            result = ACTIONS[args.store_command](store, args)
    except ValueError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None
    except StoreConflict as exc:
        raise UserError(str(exc), EXIT_CONFLICT) from None
    except StorageError as exc:
        raise from_storage_error(exc) from None
    finally:
        location.storage.close()
    print(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    return 0
