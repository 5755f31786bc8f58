"""Items through a real mount: what the API writes, `cat` shows; what `echo >` writes, the API reads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import backends
import pytest
from mounting import mounted

from objfs.storage.registry import open_location
from objfs.store import Store

pytestmark = pytest.mark.fuse


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """A bucket the mount daemon (another process) can share with this test."""
    return backends.settings(request.param, request)


@pytest.fixture
def store(settings: dict[str, str], tmp_path: Path) -> Iterator[Store]:
    storage = open_location(None, base=settings).storage
    with Store(storage, prefix="items", cache_dir=str(tmp_path / "store-cache")) as opened:
        yield opened
    storage.close()


def test_items_are_files_on_a_mount_both_ways(store: Store, settings: dict[str, str], tmp_path: Path) -> None:
    written = store.put_item(["users", "u1"], "prefs", {"theme": "dark", "sizes": [1, 2]})
    with mounted(None, tmp_path, settings) as mount:
        folder = mount.path / "items" / "users" / "u1"
        shown = subprocess.run(
            ["cat", str(folder / "prefs.json")], capture_output=True, text=True, check=True
        )
        assert json.loads(shown.stdout) == written.value
        assert shown.stdout == '{\n  "sizes": [\n    1,\n    2\n  ],\n  "theme": "dark"\n}\n'

        command = f'echo \'{{"theme": "light"}}\' > {folder / "other.json"}'
        subprocess.run(["sh", "-c", command], check=True)
        got = store.get_item(["users", "u1"], "other")
        assert got is not None and got.value == {"theme": "light"}
        assert got.created_at == got.updated_at > 0

        subprocess.run(["sh", "-c", f'echo \'{{"theme": "blue"}}\' > {folder / "prefs.json"}'], check=True)
        updated = store.get_item(["users", "u1"], "prefs")
        assert updated.value == {"theme": "blue"}
        # created_at survives only where the writer keeps the object's metadata (see docs/STORE.md)
        assert updated.created_at <= updated.updated_at and updated.updated_at >= written.updated_at
        assert [item.key for item in store.search_items(["users"], sort="$key").items] == ["other", "prefs"]
