"""The pure mapping helpers: keys, names, times and metadata in s3fs's formats."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator

import pytest

from objfs.fs.mapping import (
    NAME_MAX,
    NS,
    PosixMeta,
    decode_meta,
    dir_key,
    encode_meta,
    format_time,
    key_of,
    name_problem,
    parse_time,
)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0"),
        (1_700_000_000 * NS, "1700000000"),
        (1_700_000_000 * NS + 1, "1700000000.000000001"),
        (1_700_000_000_500_000_000, "1700000000.500000000"),
        (-1_500_000_000, "-1.500000000"),
        (-NS // 2, "-0.500000000"),
    ],
)
def test_format_time_round_trip(ns: int, text: str) -> None:
    assert format_time(ns) == text
    assert parse_time(text) == ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1700000000.5", 1_700_000_000 * NS + NS // 2),
        (" 1700000000 ", 1_700_000_000 * NS),
        ("1700000000.1234567891", 1_700_000_000_123_456_789),
        ("-1.5", -1_500_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * NS),
        ("2023-11-14T22:13:20.25+00:00", 1_700_000_000 * NS + NS // 4),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000 * NS),
        ("1969-12-31T23:59:58.5Z", -1_500_000_000),
    ],
    ids=[
        "rclone",
        "spaces",
        "beyond-ns",
        "negative",
        "iso-z",
        "iso-fraction",
        "iso-offset",
        "iso-before-1970",
    ],
)
def test_parse_time(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.fixture
def far_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local zone five hours off UTC, in POSIX form so no zoneinfo files are needed."""
    monkeypatch.setenv("TZ", "XXX+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_iso_time_without_zone_is_utc_on_every_host(far_time_zone: None) -> None:
    assert parse_time("2023-11-14T22:13:20") == 1_700_000_000 * NS


@pytest.mark.parametrize("text", ["", "soon", "12abc", "1.2.3", "1.-5", "--1"])
def test_parse_time_rejects_garbage(text: str) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("ok.txt", False),
        ("x" * NAME_MAX, False),
        ("é" * (NAME_MAX // 2), False),
        ("", True),
        (".", True),
        ("..", True),
        ("a\0b", True),
        ("x" * (NAME_MAX + 1), True),
        ("é" * (NAME_MAX // 2 + 1), True),
        ("...", False),
        (".hidden", False),
    ],
)
def test_name_problem(name: str, bad: bool) -> None:
    assert (name_problem(name) is not None) == bad


@pytest.mark.parametrize(
    ("prefix", "path", "key", "directory"),
    [
        ("", "", "", ""),
        ("", "a/b", "a/b", "a/b/"),
        ("some/prefix", "", "some/prefix", "some/prefix/"),
        ("some/prefix", "a", "some/prefix/a", "some/prefix/a/"),
    ],
)
def test_keys(prefix: str, path: str, key: str, directory: str) -> None:
    assert (key_of(prefix, path), dir_key(prefix, path)) == (key, directory)


def test_metadata_round_trip_keeps_other_keys() -> None:
    meta = PosixMeta(stat.S_IFREG | 0o640, 1000, 100, 1_700_000_000_250_000_000)
    encoded = encode_meta(meta, {"Color": "blue"})
    assert encoded == {
        "color": "blue",
        "mode": "33184",
        "uid": "1000",
        "gid": "100",
        "mtime": "1700000000.250000000",
    }
    assert decode_meta(encoded) == meta


def test_decode_meta_ignores_unparsable_values() -> None:
    assert decode_meta({"Mode": "rw-r--r--", "UID": " 7 ", "mtime": "later"}) == PosixMeta(uid=7)
