"""The item store's API on memory, local folders and S3 (moto): the seed's behaviours, the layout a
person sees in the bucket, and what a search costs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from objfs.storage.base import Storage
from objfs.store import CorruptItem, Store, StoreConflict

from .conftest import Requests


def keys(items: list[Any]) -> list[str]:
    return [item.key for item in items]


def fill(store: Store, count: int, namespace: tuple[str, ...] = ("docs",)) -> None:
    for n in range(count):
        store.put_item(namespace, f"k{n:03d}", {"n": n, "parity": "even" if n % 2 == 0 else "odd"})


# -- put, get, delete ---------------------------------------------------------------------------


def test_an_item_put_is_got_back_with_its_timestamps(store: Store) -> None:
    before = time.time() * 1000
    put = store.put_item(["users", "u1"], "prefs", {"theme": "dark", "size": {"w": 3}})
    got = store.get_item(["users", "u1"], "prefs")
    assert got == put
    assert got.namespace == ("users", "u1") and got.value == {"theme": "dark", "size": {"w": 3}}
    assert before - 1000 <= got.created_at == got.updated_at <= time.time() * 1000 + 1000


def test_an_update_replaces_the_value_in_place_and_keeps_created_at(store: Store) -> None:
    first = store.put_item(["users"], "u1", {"name": "Ann", "age": 30})
    second = store.put_item(["users"], "u1", {"name": "Ann", "age": 31})
    got = store.get_item(["users"], "u1")
    assert got.value == {"name": "Ann", "age": 31}
    assert got.created_at == first.created_at
    assert got.updated_at == second.updated_at > first.updated_at
    assert store.size() == 1


def test_a_missing_item_is_none(store: Store) -> None:
    assert store.get_item(["users"], "nobody") is None


def test_delete_says_whether_the_item_existed(store: Store) -> None:
    store.put_item(["users"], "u1", {"a": 1})
    assert store.delete_item(["users"], "u1") is True
    assert store.delete_item(["users"], "u1") is False
    assert store.get_item(["users"], "u1") is None
    assert store.search_items(["users"]).total == 0


def test_clear_size_and_is_empty(store: Store, storage: Storage) -> None:
    assert store.is_empty() and store.size() == 0
    fill(store, 3)
    store.put_item([], "at-root", {"x": 1})
    storage.write("items/docs/notes.txt", b"not an item")
    assert not store.is_empty() and store.size() == 4
    assert store.clear() == 4
    assert store.is_empty() and store.size() == 0
    assert storage.read("items/docs/notes.txt") == b"not an item"


def test_stores_with_different_prefixes_do_not_see_each_other(
    store: Store, storage: Storage, tmp_path
) -> None:
    store.put_item(["a"], "k", {"v": 1})
    with Store(storage, prefix="other", cache_dir=str(tmp_path / "other-cache")) as other:
        assert other.get_item(["a"], "k") is None
        assert other.search_items().total == 0
        other.put_item(["a"], "k", {"v": 2})
    assert store.get_item(["a"], "k").value == {"v": 1}


# -- what the bucket holds ----------------------------------------------------------------------


def test_the_object_is_the_value_as_readable_json_with_timestamps_in_metadata(
    store: Store, storage: Storage
) -> None:
    item = store.put_item(["users", "u1"], "prefs", {"theme": "dark", "a": [1, "é"]})
    body = storage.read("items/users/u1/prefs.json")
    assert body.decode() == '{\n  "a": [\n    1,\n    "é"\n  ],\n  "theme": "dark"\n}\n'
    metadata = storage.stat("items/users/u1/prefs.json").metadata
    assert metadata["objfs-created-at"] == str(item.created_at)
    assert metadata["objfs-updated-at"] == str(item.updated_at)


def test_an_object_written_by_another_tool_is_an_item_dated_by_its_mtime(
    store: Store, storage: Storage
) -> None:
    storage.write("items/users/u2/prefs.json", b'{"theme": "light"}')
    mtime = int(storage.stat("items/users/u2/prefs.json").mtime * 1000)
    item = store.get_item(["users", "u2"], "prefs")
    assert item.value == {"theme": "light"}
    assert item.created_at == item.updated_at == mtime
    assert keys(store.search_items(["users"]).items) == ["prefs"]


def test_a_body_rewritten_with_the_old_metadata_kept_gets_a_new_updated_at(
    store: Store, storage: Storage
) -> None:
    """As a mount does when a file is rewritten: it keeps metadata it does not know."""
    first = store.put_item(["users"], "u1", {"v": 1})
    key = "items/users/u1.json"
    storage.write(key, b'{"v": 2}\n', metadata=storage.stat(key).metadata)
    item = store.get_item(["users"], "u1")
    assert item.value == {"v": 2}
    assert item.created_at == first.created_at
    edited = int(storage.stat(key).mtime * 1000)  # S3 keeps whole seconds: never before creation
    assert item.updated_at == max(edited, first.created_at)


def test_a_broken_object_is_an_error_for_get_and_skipped_by_search(store: Store, storage: Storage) -> None:
    storage.write("items/docs/broken.json", b"hello\n")
    store.put_item(["docs"], "fine", {"ok": True})
    with pytest.raises(CorruptItem, match=r"broken\.json is not JSON"):
        store.get_item(["docs"], "broken")
    assert keys(store.search_items(["docs"]).items) == ["fine"]
    assert store.delete_item(["docs"], "broken") is True


AWKWARD_KEYS = [
    "a/b",
    "..",
    ".hidden",
    "x.json",
    "x",
    "100%",
    "%41",
    "a%2Fb",
    "tab\there",
    "new\nline",
    "spaces are fine",
    "ünïcödé 雪",
    'win<>:"|?*\\',
    "k" * 300,
    "雪" * 120,
]
AWKWARD_NAMESPACES = [("a/b",), (".", ".."), ("",), ("x.json",), ("n" * 400, "deep"), ("%+",)]


def test_awkward_keys_and_namespaces_round_trip_to_distinct_readable_objects(
    store: Store, storage: Storage
) -> None:
    for n, key in enumerate(AWKWARD_KEYS):
        store.put_item(["k"], key, {"n": n})
    for n, namespace in enumerate(AWKWARD_NAMESPACES):
        store.put_item(namespace, "item", {"n": n})
    for n, key in enumerate(AWKWARD_KEYS):
        assert store.get_item(["k"], key).value == {"n": n}
    found = store.search_items(["k"], limit=100)
    assert sorted(keys(found.items)) == sorted(AWKWARD_KEYS)
    assert set(store.list_namespaces(limit=100)) == {("k",), *AWKWARD_NAMESPACES}
    object_keys = [info.key for info in storage.iter_objects("items/")]
    assert len(object_keys) == len(AWKWARD_KEYS) + len(AWKWARD_NAMESPACES)
    for object_key in object_keys:
        for name in object_key.split("/"):
            assert name not in ("", ".", "..") and len(name.encode()) <= 255, object_key
    assert {"items/k/a%2Fb.json", "items/k/x.json.json", "items/k/x.json", "items/k/%2E..json"} <= set(
        object_keys
    )
    assert "items/x%2Ejson/item.json" in object_keys


# -- search ---------------------------------------------------------------------------------------

PEOPLE = {
    "ann": {"name": "Ann", "age": 31, "tags": ["admin"], "address": {"city": "Oslo"}, "active": True},
    "bob": {"name": "Bob", "age": 25, "tags": [], "address": {"city": "Rome"}, "active": False},
    "cid": {"name": "Cid", "age": 40, "address": {"city": "oslo"}, "active": True, "note": "Likes OSLO"},
    "dee": {"name": "Dee", "age": "unknown", "address": {"city": "Paris"}, "active": 1},
}


@pytest.fixture
def people(store: Store) -> Store:
    for key, value in PEOPLE.items():
        store.put_item(["org", "people"], key, value)
    store.put_item(["org", "teams"], "core", {"name": "Core", "age": 3})
    return store


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"name": "Ann"}, ["ann"]),
        ({"active": True}, ["ann", "cid"]),
        ({"active": 1}, ["dee"]),
        ({"age": {"$eq": 25}}, ["bob"]),
        ({"age": {"$ne": 25}}, ["ann", "cid", "dee"]),
        ({"age": {"$gt": 30}}, ["ann", "cid"]),
        ({"age": {"$gte": 31}}, ["ann", "cid"]),
        ({"age": {"$lt": 31}}, ["bob"]),
        ({"age": {"$lte": 31}}, ["ann", "bob"]),
        ({"age": {"$gte": 25, "$lt": 40}}, ["ann", "bob"]),
        ({"age": {"$gt": "a"}}, ["dee"]),
        ({"name": {"$in": ["Bob", "Dee", "Zed"]}}, ["bob", "dee"]),
        ({"address.city": "Oslo"}, ["ann"]),
        ({"address.city": {"$in": ["oslo", "Rome"]}}, ["bob", "cid"]),
        ({"tags.0": "admin"}, ["ann"]),
        ({"tags": []}, ["bob"]),
        ({"address": {"city": "Paris"}}, ["dee"]),
        ({"note": {"$ne": "x"}}, ["ann", "bob", "cid", "dee"]),
        ({"note": {"$gt": ""}}, ["cid"]),
        ({"missing.path": 1}, []),
        ({"$key": {"$in": ["ann", "cid"]}}, ["ann", "cid"]),
    ],
)
def test_filters(people: Store, filter: dict[str, Any], expected: list[str]) -> None:
    result = people.search_items(["org", "people"], filter=filter)
    assert keys(result.items) == expected
    assert result.total == len(expected)


def test_query_matches_key_and_value_ignoring_case(people: Store) -> None:
    assert keys(people.search_items(["org"], query="oslo").items) == ["ann", "cid"]
    assert keys(people.search_items(["org"], query="BO").items) == ["bob"]
    assert keys(people.search_items(["org"], query="core").items) == ["core"]
    assert keys(people.search_items(["org"], query="oslo", filter={"active": True, "age": 40}).items) == [
        "cid"
    ]


def test_the_namespace_prefix_matches_whole_segments(people: Store) -> None:
    people.put_item(["organisation"], "x", {})
    assert people.search_items(["org"]).total == 5
    assert people.search_items(["org", "teams"]).total == 1
    assert people.search_items([]).total == 6
    assert people.search_items(["org", "peop"]).total == 0


def test_sort_by_fields_in_either_direction_then_namespace_and_key(people: Store) -> None:
    by_age = people.search_items(["org", "people"], sort="age")
    assert keys(by_age.items) == ["bob", "ann", "cid", "dee"]  # numbers before strings
    assert keys(people.search_items(["org", "people"], sort="-age").items) == ["dee", "cid", "ann", "bob"]
    ties = people.search_items(["org"], sort=["-active", "address.city"], limit=10)
    assert keys(ties.items) == ["dee", "ann", "cid", "bob", "core"]  # 1 is a number, above booleans
    assert keys(people.search_items(["org"], sort="-$key").items) == ["dee", "core", "cid", "bob", "ann"]
    by_time = people.search_items(["org", "people"], sort="$updated_at")
    assert keys(by_time.items) == ["ann", "bob", "cid", "dee"]


@pytest.mark.parametrize("sort", [None, "parity", "-parity", ["parity", "-n"]])
def test_pages_never_skip_or_repeat_an_item(store: Store, sort: Any) -> None:
    fill(store, 23)
    seen: list[str] = []
    for offset in range(0, 30, 5):
        page = store.search_items(["docs"], sort=sort, offset=offset, limit=5)
        assert page.total == 23
        assert len(page.items) == max(0, min(5, 23 - offset))
        seen += keys(page.items)
    assert sorted(seen) == [f"k{n:03d}" for n in range(23)]
    whole = store.search_items(["docs"], sort=sort, limit=100)
    assert keys(whole.items) == seen
    assert store.search_items(["docs"], offset=23, limit=5).items == []
    assert store.search_items(["docs"], limit=0).items == []


# -- namespaces -----------------------------------------------------------------------------------


def test_list_namespaces_with_prefix_suffix_depth_and_window(store: Store) -> None:
    for namespace in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("b", "x"), ("c",)]:
        store.put_item(namespace, "item", {})
    assert store.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("b", "x"), ("c",)]
    assert store.list_namespaces(prefix=["a"]) == [("a", "b", "c"), ("a", "b", "d"), ("a", "x")]
    assert store.list_namespaces(suffix=["x"]) == [("a", "x"), ("b", "x")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",), ("c",)]
    assert store.list_namespaces(prefix=["a"], max_depth=2) == [("a", "b"), ("a", "x")]
    assert store.list_namespaces(offset=1, limit=2) == [("a", "b", "d"), ("a", "x")]


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.put_item(None, "k", {}), "namespace cannot be null"),
        (lambda s: s.put_item(["a"], None, {}), "key cannot be null or empty"),
        (lambda s: s.put_item(["a"], "  ", {}), "key cannot be null or empty"),
        (lambda s: s.put_item("a/b", "k", {}), "namespace must be a list of strings"),
        (lambda s: s.put_item(["a", 1], "k", {}), "namespace segments must be strings"),
        (lambda s: s.put_item(["a"], "k", None), "value cannot be null"),
        (lambda s: s.put_item(["a"], "k", [1]), "value must be a mapping"),
        (lambda s: s.put_item(["a"], "k", {"x": object()}), "value is not JSON-serialisable"),
        (lambda s: s.put_item(["a"], "k", {"x": float("nan")}), "value is not JSON-serialisable"),
        (lambda s: s.get_item(None, "k"), "namespace cannot be null"),
        (lambda s: s.get_item(["a"], None), "key cannot be null"),
        (lambda s: s.get_item(["a"], ""), "key cannot be empty"),
        (lambda s: s.delete_item(None, "k"), "namespace cannot be null"),
        (lambda s: s.delete_item(["a"], None), "key cannot be null"),
        (lambda s: s.delete_item(["a"], " "), "key cannot be empty"),
        (lambda s: s.search_items(None), "namespace_prefix cannot be null"),
        (lambda s: s.search_items(offset=-1), "offset cannot be negative"),
        (lambda s: s.search_items(limit=-1), "limit cannot be negative"),
        (lambda s: s.search_items(filter={"a": {"$regex": "x"}}), "unknown operator \\$regex"),
        (lambda s: s.search_items(filter={"a": {"$in": 3}}), "\\$in needs a list"),
        (lambda s: s.search_items(sort=["-"]), "sort must be field names"),
        (lambda s: s.list_namespaces(prefix=None), "prefix cannot be null"),
        (lambda s: s.list_namespaces(max_depth=-1), "max_depth cannot be negative"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_argument(store: Store, call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(store)


# -- concurrency ----------------------------------------------------------------------------------


def test_if_match_writes_only_over_the_version_the_caller_saw(store: Store) -> None:
    seen = store.put_item(["a"], "k", {"v": 1})
    newer = store.put_item(["a"], "k", {"v": 2}, if_match=seen.etag)
    with pytest.raises(
        StoreConflict, match=r"conflict on item a/k: expected version \S+, but it is now version"
    ):
        store.put_item(["a"], "k", {"v": 3}, if_match=seen.etag)
    assert store.get_item(["a"], "k").value == {"v": 2}
    store.delete_item(["a"], "k")
    with pytest.raises(StoreConflict, match="but it no longer exists"):
        store.put_item(["a"], "k", {"v": 4}, if_match=newer.etag)


def test_a_writer_landing_during_a_put_wins_by_default_and_conflicts_on_request(
    store: Store, storage: Storage, calls: Requests
) -> None:
    store.put_item(["a"], "k", {"v": 1})
    other = json.dumps({"v": "other"}).encode()
    calls.before["write"] = lambda: storage.write("items/a/k.json", other)
    store.put_item(["a"], "k", {"v": 2})
    assert store.get_item(["a"], "k").value == {"v": 2}  # last write wins

    calls.before["write"] = lambda: storage.write("items/a/k.json", other)
    with pytest.raises(StoreConflict, match="another writer changed it"):
        store.put_item(["a"], "k", {"v": 3}, conflict="error")
    assert store.get_item(["a"], "k").value == {"v": "other"}

    calls.before["write"] = lambda: storage.write("items/a/new.json", other)
    with pytest.raises(StoreConflict, match="another writer created it meanwhile"):
        store.put_item(["a"], "new", {"v": 3}, conflict="error")


# -- the index ------------------------------------------------------------------------------------


def test_the_index_follows_objects_changed_behind_its_back(store: Store, storage: Storage) -> None:
    fill(store, 3)
    assert store.search_items(["docs"], filter={"n": 1}).total == 1
    storage.write("items/docs/k001.json", b'{"n": 100}')
    storage.delete("items/docs/k002.json")
    storage.write("items/docs/k009.json", b'{"n": 9}')
    found = store.search_items(["docs"], sort="n")
    assert [(item.key, item.value["n"]) for item in found.items] == [("k000", 0), ("k009", 9), ("k001", 100)]


def test_a_warm_search_costs_listings_only(store: Store, storage: Storage, calls: Requests, tmp_path) -> None:
    fill(store, 30)
    with Store(storage, prefix="items", cache_dir=str(tmp_path / "cold-cache")) as cold:
        calls.reset()
        assert cold.search_items(["docs"], filter={"parity": "odd"}).total == 15
        assert calls.calls["read"] == 30 and calls.calls["list"] == 1
        calls.reset()
        assert cold.search_items(["docs"], filter={"parity": "even"}).total == 15
        assert dict(calls.calls) == {"list": 1}
    calls.reset()
    store.search_items(["docs"])
    assert dict(calls.calls) == {"list": 1}  # what this store wrote, it indexed
    storage.write("items/docs/k004.json", b'{"n": 4, "parity": "changed"}')
    calls.reset()
    assert store.search_items(["docs"], filter={"parity": "changed"}).total == 1
    assert calls.calls["read"] == 1 and calls.calls["list"] == 1


def test_get_item_of_an_indexed_version_costs_one_stat(store: Store, calls: Requests) -> None:
    store.put_item(["a"], "k", {"v": 1})
    calls.reset()
    assert store.get_item(["a"], "k").value == {"v": 1}
    assert dict(calls.calls) == {"stat": 1}
