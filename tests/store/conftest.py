"""Fixtures of the item store's tests: a store on each backend under test, and a counting wrapper.

`mounting` (tests/e2e) is put on the path here, as tests/e2e's own conftest makes it importable
there, so the mount test uses the same helper as every other e2e test.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import backends
import pytest

from objfs.storage.base import Storage
from objfs.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

STORE_BACKENDS = ["memory", "local", "s3"]
COUNTED = ("stat", "read", "read_stream", "write", "list", "copy", "delete")


class Requests:
    """Counts a storage's calls by replacing its methods on the instance, so `iter_objects` (which
    calls `self.list`) is counted page by page; `before` runs a hook ahead of a call, e.g. another
    writer landing between a put's read and its write."""

    def __init__(self, storage: Storage) -> None:
        self.calls: Counter[str] = Counter()
        self.before: dict[str, Callable[[], None]] = {}
        for name in COUNTED:
            setattr(storage, name, self._counting(name, getattr(storage, name)))

    def _counting(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            hook = self.before.pop(name, None)
            if hook is not None:
                hook()
            return method(*args, **kwargs)

        return counted

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture(params=STORE_BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    bucket = backends.open_bucket(request.param, request)
    yield bucket
    bucket.close()


@pytest.fixture
def store(storage: Storage, tmp_path: Path) -> Iterator[Store]:
    with Store(storage, prefix="items", cache_dir=str(tmp_path / "store-cache")) as opened:
        yield opened


@pytest.fixture
def calls(storage: Storage) -> Requests:
    return Requests(storage)
