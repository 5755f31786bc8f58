"""Run the model's async tests under trio, each with its own bucket, cache dir and nursery.

There is no pytest-trio here: an `async def` test is run by `trio.run`, inside a nursery in
which every FileSystem the test mounts runs its metadata flusher; the nursery is cancelled
when the test body returns.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

from objfs.storage.memory import MemoryStorage

from .support import Client, Mounts

TEST_TIMEOUT = 20.0


async def _run(body: Callable[[], Awaitable[None]], mounts: Mounts | None) -> None:
    """The test's failure is raised outside the nursery, so it is reported bare, not in a group."""
    failure: Exception | None = None
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            if mounts is not None:
                await mounts.start(nursery)
            try:
                await body()
            except Exception as exc:
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in inspect.signature(test).parameters}
    trio.run(_run, partial(test, **kwargs), pyfuncitem.funcargs.get("mounts"))
    return True


@pytest.fixture
def bucket_name() -> Iterator[str]:
    name = f"model-{uuid.uuid4().hex}"
    yield name
    MemoryStorage._buckets.pop(name, None)


@pytest.fixture
def bucket(bucket_name: str) -> MemoryStorage:
    """The bucket as other tools see it: for seeding objects and checking what was stored."""
    return MemoryStorage(bucket_name)


@pytest.fixture
def mounts(bucket_name: str, tmp_path: Path) -> Mounts:
    return Mounts(bucket_name, str(tmp_path))


@pytest.fixture
def vfs(mounts: Mounts) -> Client:
    """The filesystem under test, on the test's bucket with default settings."""
    return mounts.mount()
