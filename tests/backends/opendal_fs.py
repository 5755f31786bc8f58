"""OpenDAL's fs service on a folder of the test's own temporary directory, configured as the seed does."""

from __future__ import annotations

import pytest


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    folder = request.getfixturevalue("tmp_path") / "opendal-fs"
    folder.mkdir()
    return {"STORAGE_TYPE": "opendal", "OPENDAL_SCHEME": "fs", "OPENDAL_FS_ROOT": str(folder)}
