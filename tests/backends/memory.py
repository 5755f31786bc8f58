"""The in-process reference backend; its buckets live as long as the test process."""

from __future__ import annotations

import uuid

import pytest

IN_PROCESS = True
"""The bucket lives in this process: a mount daemon, another process, cannot share it."""


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"STORAGE_TYPE": "memory", "MEMORY_BUCKET_NAME": f"contract-{uuid.uuid4().hex}"}
