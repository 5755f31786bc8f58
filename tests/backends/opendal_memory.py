"""OpenDAL's memory service: every operator is a new, private, empty store, so no name is needed."""

from __future__ import annotations

import pytest

IN_PROCESS = True
"""The bucket lives in this process: a mount daemon, another process, cannot share it."""


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"STORAGE_TYPE": "opendal", "OPENDAL_SCHEME": "memory"}
