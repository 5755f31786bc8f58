"""The backends under test: one module each, each able to make a fresh, empty bucket.

A module here defines `settings(request) -> dict[str, str]`: the seed's variables (STORAGE_TYPE
and that type's names) for a new bucket on a real server on loopback, starting the server through
a session fixture of `servers/`. The storage contract and the mount tests run on every module,
so a new backend is covered by adding its module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

from objfs.storage.base import Storage
from objfs.storage.registry import open_location


def names() -> list[str]:
    return sorted(module.name for module in pkgutil.iter_modules(__path__))


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def settings(name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    return module(name).settings(request)


def open_bucket(name: str, request: pytest.FixtureRequest) -> Storage:
    """Open the bucket as `objfs mount MOUNTPOINT` would, from the settings alone (no SOURCE)."""
    return open_location(None, base=settings(name, request)).storage
