"""Supabase Storage's REST API, spoken by the session's in-repo fake of it (see servers/supabase_fake)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from servers.supabase_fake import API_KEY


def settings(request: pytest.FixtureRequest) -> dict[str, str]:
    endpoint = request.getfixturevalue("supabase_endpoint")
    return {
        "STORAGE_TYPE": "supabase",
        "SUPABASE_URL": endpoint,
        "SUPABASE_API_KEY": API_KEY,
        "SUPABASE_BUCKET_NAME": create_bucket(endpoint),
    }


def create_bucket(endpoint: str) -> str:
    """A new, empty bucket, made with the Storage API's own POST /bucket."""
    name = f"objfs-test-{uuid.uuid4().hex[:16]}"
    headers = {"apikey": API_KEY, "Authorization": f"Bearer {API_KEY}"}
    response = httpx.post(f"{endpoint}/storage/v1/bucket", json={"id": name, "name": name}, headers=headers)
    response.raise_for_status()
    return name
