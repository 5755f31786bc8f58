"""ClickZetta volumes, spoken by the in-repo FAKE Lakehouse (`servers/clickzetta_fake.py`) over moto.

Each call logs in as a new user, whose user volume (the seed's default type) is new and empty.
"""

from __future__ import annotations

import uuid

import pytest
from servers.clickzetta_fake import PASSWORD


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "STORAGE_TYPE": "clickzetta-volume",
        "CLICKZETTA_VOLUME_SERVICE": request.getfixturevalue("clickzetta_endpoint"),
        "CLICKZETTA_VOLUME_USERNAME": f"testing-{uuid.uuid4().hex[:12]}",
        "CLICKZETTA_VOLUME_PASSWORD": PASSWORD,
        "CLICKZETTA_VOLUME_INSTANCE": "testing",
    }
