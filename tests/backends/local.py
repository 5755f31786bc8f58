"""A folder of the test's own temporary directory."""

from __future__ import annotations

import pytest


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    folder = request.getfixturevalue("tmp_path") / "bucket"
    folder.mkdir()
    return {"STORAGE_TYPE": "local", "STORAGE_LOCAL_PATH": str(folder)}
