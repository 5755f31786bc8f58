"""`objfs store ...` as a shell script uses it: JSON in and out, one-line errors, documented exit codes.

The parser is built here as objfs/cli/main.py builds it (a `store` sub-command beside the others),
and errors are printed as main prints them.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from objfs.cli.store_command import add_store_parser, run_store
from objfs.errors import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE, UserError


class Cli:
    """`objfs store ACTION SOURCE ARGS... --cache-dir DIR` on a local folder, as main runs it."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "bucket").mkdir()
        self.source = f"local://{tmp_path / 'bucket'}/items"
        self.cache = ["--cache-dir", str(tmp_path / "cache")]
        self.capsys = capsys

    def __call__(self, action: str, *argv: str, source: str | None = None) -> tuple[int, Any, str]:
        """(exit code, stdout parsed as JSON or None, stderr)."""
        parser = argparse.ArgumentParser(prog="objfs")
        add_store_parser(parser.add_subparsers(dest="command", required=True))
        try:
            code = run_store(parser.parse_args(["store", action, source or self.source, *argv, *self.cache]))
        except UserError as exc:
            print(f"objfs: {exc}", file=sys.stderr)
            code = exc.exit_code
        out, err = self.capsys.readouterr()
        return code, json.loads(out) if out else None, err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, capsys)


def test_put_get_search_namespaces_size_delete_clear(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, put, _ = cli("put", "users/u1", "prefs", '{"theme": "dark", "n": 2}')
    assert code == 0 and put["value"] == {"theme": "dark", "n": 2} and put["namespace"] == ["users", "u1"]
    monkeypatch.setattr("sys.stdin", io.StringIO('{"theme": "light", "n": 5}'))
    assert cli("put", '["users", "a/b"]', "prefs", "-")[0] == 0
    assert (tmp_path / "bucket/items/users/a%2Fb/prefs.json").read_text() == (
        '{\n  "n": 5,\n  "theme": "light"\n}\n'
    )

    code, got, _ = cli("get", "users/u1", "prefs")
    assert code == 0 and got == put

    code, found, _ = cli("search", "users", "--filter", '{"n": {"$gt": 1}}', "--sort=-n", "--limit", "1")
    assert code == 0 and found["total"] == 2
    assert [(i["namespace"], i["value"]["theme"]) for i in found["items"]] == [(["users", "a/b"], "light")]

    assert cli("namespaces", "--max-depth", "1")[1] == [["users"]]
    assert cli("namespaces", "--prefix", "users")[1] == [["users", "a/b"], ["users", "u1"]]
    assert cli("size")[1] == 2
    assert cli("delete", "users/u1", "prefs")[1] == {"deleted": True}
    assert cli("delete", "users/u1", "prefs")[1] == {"deleted": False}
    assert cli("clear", "--yes")[1] == {"deleted": 1}
    assert cli("size")[1] == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["get", "users", "nobody"], EXIT_NOT_FOUND, "objfs: no item 'nobody' in namespace 'users'\n"),
        (["put", "users", " ", "{}"], EXIT_USAGE, "objfs: key cannot be null or empty\n"),
        (["put", "users", "k", "{not json"], EXIT_USAGE, "objfs: the value is not JSON: "),
        (["put", "users", "k", "[1, 2]"], EXIT_USAGE, "objfs: the value is not a JSON object\n"),
        (["put", "[1]", "k", "{}"], EXIT_USAGE, "objfs: namespace '[1]' must be a JSON array of strings\n"),
        (
            ["search", "--filter", '{"a": {"$like": 1}}'],
            EXIT_USAGE,
            "objfs: filter on 'a': unknown operator $like",
        ),
        (["search", "--offset", "-1"], EXIT_USAGE, "objfs: offset cannot be negative\n"),
        (["clear"], EXIT_USAGE, "objfs: clear deletes every item under "),
    ],
)
def test_mistakes_are_one_line_with_their_exit_code(
    cli: Cli, argv: list[str], code: int, message: str
) -> None:
    result, out, err = cli(*argv)
    assert (result, out) == (code, None)
    assert err.startswith(message) and err.count("\n") == 1


def test_a_stale_etag_is_a_conflict(cli: Cli) -> None:
    first = cli("put", "a", "k", '{"v": 1}')[1]
    assert cli("put", "a", "k", '{"v": 2}', "--if-match", first["etag"])[0] == 0
    code, out, err = cli("put", "a", "k", '{"v": 3}', "--if-match", first["etag"])
    assert (code, out) == (EXIT_CONFLICT, None)
    assert err.startswith("objfs: conflict on item a/k: expected version ")


def test_an_unknown_scheme_is_a_usage_error(cli: Cli) -> None:
    code, out, err = cli("size", source="nosuch://bucket")
    assert (code, out) == (EXIT_USAGE, None) and err.startswith("objfs: unknown storage scheme 'nosuch'")
