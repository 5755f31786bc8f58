"""How a namespace and a key become an object key, reversibly, with names a person can read.

`PREFIX/ns1/ns2/KEY.json`: each namespace segment is a directory and the key is a file. A name is
the text itself except for the characters that would break a path or a shell line, which are
percent-encoded as UTF-8 bytes (`%2F` for `/`, `%25` for `%`):

- `%`, `/`, `\\`, the characters Windows forbids (`<>:"|?*`) and anything not printable;
- a leading `.`, so no name is `.` or `..` or hidden from `ls`;
- in a namespace segment, the `.` of a trailing `.json`, so a directory never looks like an
  item's file (a file and a directory cannot share a name on a folder or a mount);
- the empty segment is `%` alone, which no encoding produces otherwise.

The key's file always gets `.json` appended and loses exactly one, so a key ending in `.json`
stays distinct (`a.json` is `a.json.json`). A name longer than 255 bytes is cut, at a whole
character or escape, into path components each ending in `%+` but the last; `%+` never occurs
otherwise (a `%` always starts an escape of two hex digits). Decoding re-encodes and accepts
only the canonical form, so no two object keys name one item and no two items share a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

SUFFIX = ".json"
EMPTY = "%"
CONTINUED = "%+"
NAME_MAX = 255
UNSAFE = frozenset('%/\\<>:"|?*')

Namespace = tuple[str, ...]


def _escape(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))


def _tokens(text: str, directory: bool) -> list[str]:
    """The encoded name as a list of tokens (a character or one character's escapes), never split."""
    tokens = [_escape(char) if char in UNSAFE or not char.isprintable() else char for char in text]
    if text.startswith("."):
        tokens[0] = _escape(".")
    if directory and text.endswith(SUFFIX):
        tokens[-len(SUFFIX)] = _escape(".")
    return tokens


def _components(tokens: list[str], last_room: int) -> list[str]:
    """Cut the tokens into path components: the last fits `last_room` bytes, the others carry `%+`."""
    room = NAME_MAX - len(CONTINUED)
    sizes = [len(token.encode("utf-8", "surrogatepass")) for token in tokens]
    components: list[str] = []
    start = 0
    while sum(sizes[start:]) > last_room:
        end, used = start, 0
        while end < len(tokens) - 1 and used + sizes[end] <= room:  # the last keeps a token
            used += sizes[end]
            end += 1
        components.append("".join(tokens[start:end]) + CONTINUED)
        start = end
    components.append("".join(tokens[start:]))
    return components


def segment_components(segment: str) -> list[str]:
    """The directory names one namespace segment is stored as (one, unless it is very long)."""
    if segment == "":
        return [EMPTY]
    return _components(_tokens(segment, directory=True), NAME_MAX)


def key_components(key: str) -> list[str]:
    """The path components of the key's file, the last one ending in `.json`."""
    components = _components(_tokens(key, directory=False), NAME_MAX - len(SUFFIX))
    components[-1] += SUFFIX
    return components


def namespace_path(namespace: Sequence[str]) -> str:
    """`ns1/ns2/` relative to the store's prefix ('' for the root namespace)."""
    return "".join(f"{part}/" for segment in namespace for part in segment_components(segment))


def item_path(namespace: Sequence[str], key: str) -> str:
    """`ns1/ns2/KEY.json` relative to the store's prefix."""
    return namespace_path(namespace) + "/".join(key_components(key))


def _decode(name: str) -> str | None:
    if name == EMPTY:
        return ""
    try:
        return unquote_to_bytes(name).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def parse_item_path(path: str) -> tuple[Namespace, str] | None:
    """The namespace and key `path` (relative to the prefix) stores, or None if it is not an item's.

    Only the canonical encoding counts: a file another tool named `a%41.json` is not the item `aA`,
    whose file is `aA.json`, so `get_item` and a search always agree on what exists.
    """
    if not path.endswith(SUFFIX):
        return None
    names: list[str] = []
    pending = ""
    for component in path[: -len(SUFFIX)].split("/"):
        if component.endswith(CONTINUED):
            pending += component[: -len(CONTINUED)]
            continue
        names.append(pending + component)
        pending = ""
    decoded = [text for text in map(_decode, names) if text is not None]
    if len(decoded) != len(names) or not decoded[-1].strip():
        return None
    namespace, key = tuple(decoded[:-1]), decoded[-1]
    return (namespace, key) if item_path(namespace, key) == path else None
